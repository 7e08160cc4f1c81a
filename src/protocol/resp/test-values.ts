// Test support: fast-check arbitraries for the value model, a normal form for comparing values
// (Buffers, errors, NaN and -0 compared by content), and the RESP2 projection of a RESP3 value.
import fc from 'fast-check';
import { formatDouble } from './encoder.js';
import { RespAttributed, RespError, RespPush, type RespValue, RespVerbatim } from './types.js';

const lineText = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
const anyText = fc.string({ unit: 'grapheme', maxLength: 12 });
const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));

const scalar: fc.Arbitrary<RespValue> = fc.oneof(
  lineText,
  bytes,
  fc.maxSafeInteger(),
  fc.double(),
  fc.bigInt({ min: -(2n ** 100n), max: 2n ** 100n }),
  fc.boolean(),
  fc.constant(null),
  lineText.filter((s) => s.length > 0).map((m) => new RespError(m)),
  anyText.filter((s) => s.length > 0).map((m) => new RespError(m, true)),
  fc.tuple(fc.constantFrom('txt', 'mkd'), bytes).map(([f, t]) => new RespVerbatim(f, t)),
);

/** respValue: any value of the model, nested a few levels. */
export const respValue: fc.Arbitrary<RespValue> = fc.letrec<{ value: RespValue; plain: RespValue }>(
  (tie) => ({
    plain: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      scalar,
      fc.array(tie('value'), { maxLength: 4 }),
      fc.array(tie('value'), { maxLength: 4 }).map((items) => new Set(items)),
      fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 3 }).map((pairs) => new Map(pairs)),
      fc.array(tie('value'), { maxLength: 3 }).map((items) => new RespPush(items)),
    ),
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('plain'),
      fc
        .tuple(fc.array(fc.tuple(tie('value'), tie('value')), { maxLength: 2 }), tie('plain'))
        .map(([pairs, v]) => new RespAttributed(new Map(pairs), v)),
    ),
  }),
).value;

/** normal gives a value a form that toEqual compares by content. */
export function normal(v: RespValue): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (typeof v === 'number') return Number.isNaN(v) ? 'NaN' : Object.is(v, -0) ? '-0' : v;
  if (Buffer.isBuffer(v)) return { bytes: v.toString('hex') };
  if (Array.isArray(v)) return v.map(normal);
  if (v instanceof RespError) return { error: v.message, bulk: v.bulk };
  if (v instanceof Set) return { set: [...v].map(normal) };
  if (v instanceof Map) return { map: [...v].map(([k, x]) => [normal(k), normal(x)]) };
  if (v instanceof RespPush) return { push: v.items.map(normal) };
  if (v instanceof RespVerbatim) return { verbatim: v.format, text: v.text.toString('hex') };
  return { attributes: normal(v.attributes), value: normal(v.value) };
}

/** resp2 is what a RESP2 client reads back for a value the server wrote (Redis's fallbacks). */
export function resp2(v: RespValue): RespValue {
  if (v === null || typeof v === 'string' || Buffer.isBuffer(v)) return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number')
    return Number.isSafeInteger(v) && !Object.is(v, -0) ? v : Buffer.from(formatDouble(v));
  if (typeof v === 'bigint') return Buffer.from(v.toString());
  if (Array.isArray(v)) return v.map(resp2);
  if (v instanceof RespError) return v.bulk ? new RespError(v.message.replace(/[\r\n]/g, ' ')) : v;
  if (v instanceof Set) return [...v].map(resp2);
  if (v instanceof Map) return [...v].flatMap(([k, x]) => [resp2(k), resp2(x)]);
  if (v instanceof RespPush) return v.items.map(resp2);
  if (v instanceof RespVerbatim) return v.text;
  return resp2(v.value);
}
