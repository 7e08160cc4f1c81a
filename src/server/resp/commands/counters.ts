// INCR, DECR, INCRBY, DECRBY: 64-bit signed arithmetic on decimal strings, with Redis's rules
// (the stored value must parse as string2ll does) and error texts; INCRBYFLOAT, Redis's long
// double sum and print (decimal-float.ts, as HINCRBYFLOAT).
import { ValueType } from '../../../storage/value-type.js';
import { CommandError, checkType, ERR_NOT_INTEGER, ERR_OVERFLOW } from '../errors.js';
import { NOTIFY } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import { andThen, held, INT64_MAX, INT64_MIN, int64Arg, type MaybePromise, parseInt64 } from './args.js';
import {
  addLongDouble,
  formatLongDouble,
  isFiniteLongDouble,
  type LongDouble,
  parseLongDouble,
} from './decimal-float.js';
import { notify } from './notify.js';
import { FIRST_KEY, spec } from './spec.js';

function incrBy(ctx: CommandContext, key: Buffer, delta: bigint): MaybePromise<Held> {
  // The result keeps the key's TTL, as in Redis.
  const updated = ctx.store.update(key, (current, expiresAt, valueType) => {
    checkType(current, valueType, ValueType.STRING);
    let n = 0n;
    if (current !== undefined) {
      const parsed = parseInt64(current);
      if (parsed === undefined) throw new CommandError(ERR_NOT_INTEGER);
      n = parsed;
    }
    const next = n + delta;
    if (next > INT64_MAX || next < INT64_MIN) throw new CommandError(ERR_OVERFLOW);
    return { result: next, write: Buffer.from(next.toString(), 'latin1'), expiresAt };
  });
  return andThen(updated, ({ result, durable }) => {
    // Redis names INCR, DECR, INCRBY and DECRBY's event `incrby` alike.
    notify(ctx, durable, NOTIFY.string, 'incrby', key);
    return held(durable, (w) => w.integer(result));
  });
}

/**
 * floatSum is INCRBYFLOAT's and HINCRBYFLOAT's arithmetic: the stored decimal `current`
 * (undefined: 0) plus `delta`, printed as Redis prints it. `notFloat`: the error for a stored
 * value that is not a number (the two commands word it differently).
 */
export function floatSum(current: Buffer | undefined, delta: LongDouble, notFloat: string): Buffer {
  let base = parseLongDouble('0')!;
  if (current !== undefined) {
    const parsed = parseLongDouble(current.toString('latin1'));
    if (parsed === undefined) throw new CommandError(notFloat);
    base = parsed;
  }
  const sum = addLongDouble(base, delta);
  if (!isFiniteLongDouble(sum)) throw new CommandError(ERR_NAN_OR_INFINITY);
  return Buffer.from(formatLongDouble(sum), 'latin1');
}

/** incrByFloat is INCRBYFLOAT key increment: the sum keeps the key's TTL; event `incrbyfloat`. */
function incrByFloat(ctx: CommandContext, key: Buffer, arg: Buffer): MaybePromise<Held> {
  const delta = parseLongDouble(arg.toString('latin1'));
  const updated = ctx.store.update(key, (current, expiresAt, valueType) => {
    // Redis's order (incrbyfloatCommand): the key's type, its value, then the increment; an
    // infinite increment fails as the sum does (floatSum), after the value is read.
    checkType(current, valueType, ValueType.STRING);
    if (delta === undefined) throw new CommandError(ERR_NOT_FLOAT);
    const text = floatSum(current, delta, ERR_NOT_FLOAT);
    return { result: text, write: text, expiresAt };
  });
  return andThen(updated, ({ result, durable }) => {
    notify(ctx, durable, NOTIFY.string, 'incrbyfloat', key);
    return held(durable, (w) => w.bulk(result));
  });
}

const ERR_NOT_FLOAT = 'ERR value is not a valid float';
const ERR_NAN_OR_INFINITY = 'ERR increment would produce NaN or Infinity';

const doc = (since: string, summary: string) => ({ group: 'string', since, summary });
const FLAGS = ['write', 'denyoom', 'fast'] as const;

export const COUNTER_COMMANDS = [
  spec(
    'incr',
    2,
    FLAGS,
    FIRST_KEY,
    doc('1.0.0', 'Increments the integer value of a key by one.'),
    (ctx, args) => incrBy(ctx, args[1]!, 1n),
  ),
  spec(
    'decr',
    2,
    FLAGS,
    FIRST_KEY,
    doc('1.0.0', 'Decrements the integer value of a key by one.'),
    (ctx, args) => incrBy(ctx, args[1]!, -1n),
  ),
  spec(
    'incrby',
    3,
    FLAGS,
    FIRST_KEY,
    doc('1.0.0', 'Increments the integer value of a key by a number.'),
    (ctx, args) => incrBy(ctx, args[1]!, int64Arg(args[2]!)),
  ),
  spec(
    'incrbyfloat',
    3,
    FLAGS,
    FIRST_KEY,
    doc('2.6.0', 'Increment the floating point value of a key by a number.'),
    (ctx, args) => incrByFloat(ctx, args[1]!, args[2]!),
  ),
  spec(
    'decrby',
    3,
    FLAGS,
    FIRST_KEY,
    doc('1.0.0', 'Decrements a number from the integer value of a key.'),
    (ctx, args) => {
      const delta = int64Arg(args[2]!);
      // -INT64_MIN does not fit 64 bits (Redis checks the same).
      if (delta === INT64_MIN) throw new CommandError('ERR decrement would overflow');
      return incrBy(ctx, args[1]!, -delta);
    },
  ),
];
