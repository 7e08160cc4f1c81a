// cjson.decode's parser in process (the byte-for-byte comparison with redis-server is in
// test/server/redis-diff-lua-libs.test.ts): strings stay bytes, escapes and their refusals at
// lua-cjson's positions, strtod's numbers, and any input answered with a value or a CjsonError.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CjsonError, decodeJson, type JsonValue, NULL, strtod } from './cjson-parse.js';

const decode = (text: string | Buffer): JsonValue =>
  decodeJson(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
const refusal = (text: string): string => {
  try {
    decode(text);
    return 'accepted';
  } catch (err) {
    if (err instanceof CjsonError) return err.message;
    throw err;
  }
};

describe('cjson.decode parser', () => {
  it('keeps raw bytes, invalid UTF-8 included, and writes escapes as UTF-8', () => {
    expect(Buffer.from(decode(Buffer.from([0x22, 0xff, 0xfe, 0x22])) as Uint8Array)).toEqual(
      Buffer.from([0xff, 0xfe]),
    );
    expect(Buffer.from(decode('"\xc3\xa9\\u00e9\\ud83d\\ude00\\u0000a"') as Uint8Array)).toEqual(
      Buffer.from([0xc3, 0xa9, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x00, 0x61]),
    );
  });

  it("refuses lone surrogates and bad digits at the escape's position, as lua-cjson", () => {
    expect(refusal('"\\ud83d"')).toBe('Expected value but found invalid unicode escape code at character 2');
    expect(refusal('"ab\\udc00"')).toMatch(/at character 4$/);
    expect(refusal('["a", "\\ud83d\\u0041"]')).toMatch(
      /value but found invalid unicode escape code at character 8$/,
    );
    expect(refusal('{"\\ud83d":1}')).toBe(
      'Expected object key string but found invalid unicode escape code at character 3',
    );
    expect(refusal('"\\uZZZZ"')).toMatch(/at character 2$/);
    expect(refusal('"\\\\ud83d"')).toBe('accepted'); // an escaped backslash, then text
  });

  it('reads objects, arrays and literals, null as NULL, and the last of repeated keys', () => {
    const v = decode('{"a":[1,true,null],"a":{"b":false}}') as { entries: [Uint8Array, JsonValue][] };
    expect(v.entries.map(([k]) => Buffer.from(k).toString())).toEqual(['a', 'a']);
    expect(decode('[1,true,null]')).toEqual([1, true, NULL]);
  });

  it('reads numbers as glibc strtod does', () => {
    const read = (text: string): number | undefined => strtod(Buffer.from(text), 0)?.value;
    expect(read('0x1F')).toBe(31);
    expect(read('0x1.8p1')).toBe(3);
    expect(read('-0x10')).toBe(-16);
    expect(read('Infinity')).toBe(Number.POSITIVE_INFINITY);
    expect(read('-inf')).toBe(Number.NEGATIVE_INFINITY);
    expect(read('nan')).toBeNaN();
    expect(read('1e500')).toBe(Number.POSITIVE_INFINITY);
    expect(read('1.')).toBe(1);
    expect(read('-')).toBeUndefined();
    expect(strtod(Buffer.from('1e+x'), 0)).toEqual({ value: 1, end: 1 });
    expect(strtod(Buffer.from('0xg'), 0)).toEqual({ value: 0, end: 1 });
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (d) => {
        const text = Object.is(d, -0) ? '-0' : String(d);
        expect(strtod(Buffer.from(text), 0)).toEqual({ value: d, end: text.length });
      }),
    );
  });

  it('answers any bytes with a value or a CjsonError, never another exception', () => {
    const alphabet = fc.constantFrom(...'{}[]:,"\\ u0123456789abcdefx+-.eEpPtruflsnNaIi\t\n'.split(''));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 40 }), (chars) => {
        const r = refusal(chars.join(''));
        expect(typeof r).toBe('string');
      }),
      { numRuns: 2_000 },
    );
  });
});
