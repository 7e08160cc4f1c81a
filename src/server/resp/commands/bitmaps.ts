// Bitmap commands: GETBIT, SETBIT, BITCOUNT, BITPOS, BITOP, over string values as Redis 7
// (t_bitops.c): bit 0 is the most significant bit of the first byte; a missing key is an endless
// run of zero bits; a string read as bits may be any string. Checked against redis-server
// (test/server/redis-diff-bitmaps.test.ts).
//
// Sizes: a string is at most VALUE_BYTES_MAX (64 MiB) here, where Redis's proto-max-bulk-len is
// 512 MiB: SETBIT past it is Redis's own "string exceeds maximum allowed size" error, and GETBIT
// of an offset up to Redis's 2^32 bits reads 0 as there. BITFIELD is not implemented.
import { VALUE_BYTES_MAX } from '../../../storage/limits.js';
import { ValueType } from '../../../storage/value-type.js';
import { CommandError, checkType, ERR_SYNTAX } from '../errors.js';
import { NOTIFY } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import { andThen, held, int64Arg, is, lower, type MaybePromise, parseInt64 } from './args.js';
import { notify } from './notify.js';
import { FIRST_KEY, spec } from './spec.js';

const bitmap = (since: string, summary: string) => ({ group: 'bitmap', since, summary });

/** BIT_OFFSET_BYTES_MAX: Redis's bound on a bit offset's byte (512 MiB, its proto-max-bulk-len). */
const BIT_OFFSET_BYTES_MAX = 512n * 1024n * 1024n;
const ERR_BIT_OFFSET = 'ERR bit offset is not an integer or out of range';
const ERR_BIT_VALUE = 'ERR bit is not an integer or out of range';
const ERR_TOO_LARGE = 'ERR string exceeds maximum allowed size (proto-max-bulk-len)';

/** POPCOUNT: the set bits of each byte. */
const POPCOUNT = (() => {
  const t = new Uint8Array(256);
  for (let i = 1; i < 256; i++) t[i] = (i & 1) + (t[i >> 1] as number);
  return t;
})();

/** bitOffset parses a bit offset as Redis's getBitOffsetFromArgument (0 .. 2^32 - 1). */
function bitOffset(arg: Buffer): number {
  const n = parseInt64(arg);
  if (n === undefined || n < 0n || n >> 3n >= BIT_OFFSET_BYTES_MAX) throw new CommandError(ERR_BIT_OFFSET);
  return Number(n);
}

function bitAt(value: Buffer | undefined, offset: number): number {
  const byte = offset >>> 3;
  if (value === undefined || byte >= value.length) return 0;
  return ((value[byte] as number) >> (7 - (offset & 7))) & 1;
}

function getbit(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const offset = bitOffset(args[2]!);
  return andThen(ctx.store.readLatest(args[1]!), (latest) => {
    checkType(latest.value, latest.valueType, ValueType.STRING);
    const bit = bitAt(latest.value, offset);
    return held(latest.durable, (w) => w.integer(bit));
  });
}

/** setbit: SETBIT key offset 0|1; replies the bit's old value. The key keeps its TTL. */
function setbit(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const offset = bitOffset(args[2]!);
  const arg = args[3]!;
  if (arg.length !== 1 || (arg[0] !== 0x30 && arg[0] !== 0x31)) throw new CommandError(ERR_BIT_VALUE);
  const on = arg[0] === 0x31;
  const byte = offset >>> 3;
  if (byte + 1 > VALUE_BYTES_MAX) throw new CommandError(ERR_TOO_LARGE);
  const updated = ctx.store.update(key, (current, expiresAt, valueType) => {
    checkType(current, valueType, ValueType.STRING);
    const old = bitAt(current, offset);
    const next = Buffer.alloc(Math.max(current?.length ?? 0, byte + 1));
    current?.copy(next);
    const mask = 1 << (7 - (offset & 7));
    next[byte] = on ? (next[byte] as number) | mask : (next[byte] as number) & ~mask;
    return { result: old, write: next, expiresAt };
  });
  return andThen(updated, ({ result, durable }) => {
    notify(ctx, durable, NOTIFY.string, 'setbit', key);
    return held(durable, (w) => w.integer(result));
  });
}

/**
 * Span: a range of a string in bytes [start, end], with the bits of its first and last byte left
 * out by a range given in bits (Redis's first_byte_neg_mask and last_byte_neg_mask).
 */
interface Span {
  start: number;
  end: number;
  firstMask: number;
  lastMask: number;
}

/**
 * span turns a BITCOUNT or BITPOS range into bytes as Redis does: negative indexes count from
 * the end, then the range is clamped to the string (`length` bytes), in bits when `isBit`.
 */
function span(start0: bigint, end0: bigint, length: number, isBit: boolean): Span {
  const total = BigInt(isBit ? length * 8 : length);
  let start = start0;
  let end = end0;
  if (start < 0n) start = total + start;
  if (end < 0n) end = total + end;
  if (start < 0n) start = 0n;
  if (end < 0n) end = 0n;
  if (end >= total) end = total - 1n;
  const s = Number(start);
  const e = Number(end);
  if (!isBit || s > e) return { start: s, end: e, firstMask: 0, lastMask: 0 };
  return {
    start: s >>> 3,
    end: e >>> 3,
    firstMask: ~((1 << (8 - (s & 7))) - 1) & 0xff,
    lastMask: (1 << (7 - (e & 7))) - 1,
  };
}

/** unit parses BYTE or BIT (any case): true for BIT. */
function unit(arg: Buffer): boolean {
  if (is(arg, 'bit')) return true;
  if (is(arg, 'byte')) return false;
  throw new CommandError(ERR_SYNTAX);
}

/** bitcount: BITCOUNT key [start end [BYTE|BIT]]. */
function bitcount(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return andThen(ctx.store.readLatest(args[1]!), (latest) => {
    // A missing key counts 0 before its arguments are looked at, as in Redis.
    if (latest.value === undefined) return held(latest.durable, (w) => w.integer(0));
    checkType(latest.value, latest.valueType, ValueType.STRING);
    const value = latest.value;
    let s: Span;
    if (args.length === 2) s = { start: 0, end: value.length - 1, firstMask: 0, lastMask: 0 };
    else if (args.length === 4 || args.length === 5) {
      const start = int64Arg(args[2]!);
      const end = int64Arg(args[3]!);
      const isBit = args.length === 5 && unit(args[4]!);
      if (start < 0n && end < 0n && start > end) return held(latest.durable, (w) => w.integer(0));
      s = span(start, end, value.length, isBit);
    } else throw new CommandError(ERR_SYNTAX);
    let count = 0;
    if (s.start <= s.end) {
      for (let i = s.start; i <= s.end; i++) count += POPCOUNT[value[i] as number] as number;
      if (s.firstMask !== 0) count -= POPCOUNT[(value[s.start] as number) & s.firstMask] as number;
      if (s.lastMask !== 0) count -= POPCOUNT[(value[s.end] as number) & s.lastMask] as number;
    }
    return held(latest.durable, (w) => w.integer(count));
  });
}

/**
 * bitpos: BITPOS key bit [start [end [BYTE|BIT]]]: the first bit set to `bit` in the range, or -1.
 * Looking for a 0 with no end given, the string is followed by zeros (its length in bits).
 */
function bitpos(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const bitArg = int64Arg(args[2]!);
  if (bitArg !== 0n && bitArg !== 1n) throw new CommandError('ERR The bit argument must be 1 or 0.');
  const bit = Number(bitArg);
  return andThen(ctx.store.readLatest(args[1]!), (latest) => {
    if (latest.value === undefined) return held(latest.durable, (w) => w.integer(bit === 1 ? -1 : 0));
    checkType(latest.value, latest.valueType, ValueType.STRING);
    const value = latest.value;
    let s: Span;
    let endGiven = false;
    if (args.length === 3) s = { start: 0, end: value.length - 1, firstMask: 0, lastMask: 0 };
    else if (args.length <= 6) {
      const start = int64Arg(args[3]!);
      const isBit = args.length === 6 && unit(args[5]!);
      let end: bigint;
      if (args.length >= 5) {
        end = int64Arg(args[4]!);
        endGiven = true;
      } else end = isBit ? BigInt(value.length * 8 + 7) : BigInt(value.length - 1);
      s = span(start, end, value.length, isBit);
    } else throw new CommandError(ERR_SYNTAX);
    const pos = s.start > s.end ? -1 : findBit(value, s, bit, endGiven);
    return held(latest.durable, (w) => w.integer(pos));
  });
}

/** findBit: the position of the first `bit` within span `s`, as BITPOS answers it. */
function findBit(value: Buffer, s: Span, bit: number, endGiven: boolean): number {
  for (let i = s.start; i <= s.end; i++) {
    let byte = value[i] as number;
    // Bits outside the range read as the opposite of the one sought.
    const outside = (i === s.start ? s.firstMask : 0) | (i === s.end ? s.lastMask : 0);
    byte = bit === 1 ? byte & ~outside & 0xff : byte | outside;
    const target = bit === 1 ? byte : ~byte & 0xff;
    if (target !== 0) return i * 8 + Math.clz32(target) - 24;
  }
  if (bit === 1 || endGiven) return -1;
  return (s.end + 1) * 8;
}

const BITOPS = ['and', 'or', 'xor', 'not'] as const;

/** bitop: BITOP AND|OR|XOR|NOT destkey key [key ...]; replies the result's length. */
function bitop(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const op = lower(args[1]!);
  if (!(BITOPS as readonly string[]).includes(op)) throw new CommandError(ERR_SYNTAX);
  if (op === 'not' && args.length !== 4)
    throw new CommandError('ERR BITOP NOT must be called with a single source key.');
  const dest = args[2]!;
  const sources = args.slice(3);
  const updated = ctx.store.updateMany([dest, ...sources], (current, _expiresAt, valueTypes) => {
    let maxLen = 0;
    for (let i = 1; i < current.length; i++) {
      checkType(current[i], valueTypes[i] as number, ValueType.STRING);
      maxLen = Math.max(maxLen, current[i]?.length ?? 0);
    }
    if (maxLen === 0) {
      // Nothing to store: the destination is deleted (a NOT of an empty key too).
      const existed = current[0] !== undefined;
      return { result: { length: 0, deleted: existed }, writes: existed ? [{ key: dest, value: null }] : [] };
    }
    const out = Buffer.alloc(maxLen);
    const srcs = current.slice(1).map((v) => v ?? Buffer.alloc(0));
    const first = srcs[0] as Buffer;
    for (let j = 0; j < maxLen; j++) {
      let byte = j < first.length ? (first[j] as number) : 0;
      if (op === 'not') byte = ~byte & 0xff;
      for (let i = 1; i < srcs.length; i++) {
        const src = srcs[i] as Buffer;
        const b = j < src.length ? (src[j] as number) : 0;
        if (op === 'and') byte &= b;
        else if (op === 'or') byte |= b;
        else byte ^= b;
      }
      out[j] = byte;
    }
    // Stored as SET stores: a string without an expiry, whatever the destination held.
    return { result: { length: maxLen, deleted: false }, writes: [{ key: dest, value: out }] };
  });
  return andThen(updated, ({ result, durable }) => {
    if (result.length > 0) notify(ctx, durable, NOTIFY.string, 'set', dest);
    else if (result.deleted) notify(ctx, durable, NOTIFY.generic, 'del', dest);
    return held(durable, (w) => w.integer(result.length));
  });
}

export const BITMAP_COMMANDS = [
  spec(
    'getbit',
    3,
    ['readonly', 'fast'],
    FIRST_KEY,
    bitmap('2.2.0', 'Returns a bit value by offset.'),
    getbit,
  ),
  spec(
    'setbit',
    4,
    ['write', 'denyoom'],
    FIRST_KEY,
    bitmap(
      '2.2.0',
      "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.",
    ),
    setbit,
  ),
  spec(
    'bitcount',
    -2,
    ['readonly'],
    FIRST_KEY,
    bitmap('2.6.0', 'Counts the number of set bits (population counting) in a string.'),
    bitcount,
  ),
  spec(
    'bitpos',
    -3,
    ['readonly'],
    FIRST_KEY,
    bitmap('2.8.7', 'Finds the first set (1) or clear (0) bit in a string.'),
    bitpos,
  ),
  spec(
    'bitop',
    -4,
    ['write', 'denyoom'],
    [2, -1, 1],
    bitmap('2.6.0', 'Performs bitwise operations on multiple strings, and stores the result.'),
    bitop,
  ),
];
