// Hash commands: HSET, HMSET, HSETNX, HGET, HMGET, HGETALL, HDEL, HEXISTS, HLEN, HKEYS, HVALS,
// HSTRLEN, HINCRBY, HINCRBYFLOAT, HRANDFIELD, HSCAN, with Redis 7's semantics and error texts.
//
// A hash is one value of type ValueType.HASH (storage/value-type.ts) whose payload is
// storage/hash-codec.ts's encoding. Every write is a read-modify-write of the whole value through
// the KeyStore's `update` (one synchronous step, as INCR), so the hash commands are durable,
// transactional (MULTI/EXEC, TXN.BEGIN, Lua) and replicated exactly as strings are. A hash
// command on a key of another type answers WRONGTYPE; a write keeps the key's TTL (as Redis);
// removing the last field deletes the key (as Redis).
//
// Buffers: fields and values from the arguments are views into socket chunks; the codec copies
// them into the encoded value within the call, and decoded hashes are the codec's own copies.
import {
  checkHashLimits,
  decodeHash,
  decodeHashView,
  encodeHash,
  type Hash,
  sortedFields,
} from '../../../storage/hash-codec.js';
import { ValueType } from '../../../storage/value-type.js';
import type { Latest, Updated } from '../../../txn/write-pipeline.js';
import { CommandError, checkType, ERR_OVERFLOW, ERR_SYNTAX, replyTooLarge, wrongArity } from '../errors.js';
import { globMatch } from '../glob.js';
import { NOTIFY } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import {
  andThen,
  held,
  INT64_MAX,
  INT64_MIN,
  int64Arg,
  lower,
  type MaybePromise,
  parseInt64,
  type ScanOptions,
  scanOption,
} from './args.js';
import { floatSum } from './counters.js';
import { isFiniteLongDouble, parseLongDouble } from './decimal-float.js';
import { notify } from './notify.js';
import { FIRST_KEY, spec } from './spec.js';

/**
 * HSCAN_ONE_PAGE_FIELDS: a hash of at most this many fields is scanned in one reply with cursor
 * 0, whatever COUNT says: what Redis does for a hash in its compact (listpack) encoding, which it
 * keeps up to hash-max-listpack-entries = 128 fields. Larger hashes page by field order.
 */
export const HSCAN_ONE_PAGE_FIELDS = 128;
/** HSCAN_COUNT_DEFAULT: fields an HSCAN page examines when COUNT is not given (as Redis). */
const HSCAN_COUNT_DEFAULT = 10;
/**
 * HRANDFIELD_PICKS_MAX: the most picks of a negative HRANDFIELD count (repeats allowed, so not
 * bounded by the hash): a reply of about 16 bytes per pick at least, built whole.
 */
const HRANDFIELD_PICKS_MAX = 1_000_000;

const ERR_HASH_NOT_INTEGER = 'ERR hash value is not an integer';
const ERR_HASH_NOT_FLOAT = 'ERR hash value is not a float';
const ERR_NOT_FLOAT = 'ERR value is not a valid float';
const ERR_NAN_OR_INFINITY_ARG = 'ERR value is NaN or Infinity';

const hashDoc = (since: string, summary: string) => ({ group: 'hash', since, summary });
const EMPTY: Hash = new Map();

/** field: an argument as the codec's field name (latin1: binary-safe). */
function field(arg: Buffer): string {
  return arg.toString('latin1');
}

/** fieldBytes: a field name back as bytes for a reply. */
function fieldBytes(name: string): Buffer {
  return Buffer.from(name, 'latin1');
}

/** readHash reads a key as a hash (empty when absent), or throws WRONGTYPE. */
function readHash(
  ctx: CommandContext,
  key: Buffer,
  then: (hash: Hash, latest: Latest) => Held,
): MaybePromise<Held> {
  return andThen(ctx.store.readLatest(key), (latest) => {
    checkType(latest.value, latest.valueType, ValueType.HASH);
    return then(latest.value === undefined ? EMPTY : decodeHash(latest.value), latest);
  });
}

/** Edit: what a change to a hash decided. `changed` false writes nothing. */
interface Edit<T> {
  readonly result: T;
  readonly changed: boolean;
}

/**
 * modify runs `edit` on the key's hash (a new, empty one when absent) and writes it back in the
 * same step: with its TTL kept, as a hash, or deletes the key when no field is left.
 */
function modify<T>(
  ctx: CommandContext,
  key: Buffer,
  edit: (hash: Hash) => Edit<T>,
): MaybePromise<Updated<T>> {
  return ctx.store.update(key, (current, expiresAt, valueType) => {
    checkType(current, valueType, ValueType.HASH);
    // A view, not a copy: `current` is the pipeline's read-only value and the hash is re-encoded
    // (every value copied) before this function returns; results never keep a value of it.
    const hash = current === undefined ? new Map<string, Buffer>() : decodeHashView(current);
    const { result, changed } = edit(hash);
    if (!changed) return { result };
    if (hash.size === 0) return { result, write: current === undefined ? undefined : null };
    checkHashLimits(hash);
    return { result, write: encodeHash(hash), expiresAt, valueType: ValueType.HASH };
  });
}

/** hset is HSET (replies the fields added) and HMSET (replies OK). */
function hset(name: string, replyOk: boolean) {
  return (ctx: CommandContext, args: Buffer[]): MaybePromise<Held> => {
    if (args.length % 2 !== 0) throw wrongArity(name);
    const key = args[1]!;
    return andThen(
      modify(ctx, key, (hash) => {
        let added = 0;
        for (let i = 2; i < args.length; i += 2) {
          const f = field(args[i]!);
          if (!hash.has(f)) added++;
          hash.set(f, args[i + 1]!);
        }
        return { result: added, changed: true };
      }),
      ({ result, durable }) => {
        notify(ctx, durable, NOTIFY.hash, 'hset', key);
        return held(durable, (w) => (replyOk ? w.ok() : w.integer(result)));
      },
    );
  };
}

function hsetnx(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const f = field(args[2]!);
  return andThen(
    modify(ctx, key, (hash) => {
      if (hash.has(f)) return { result: 0, changed: false };
      hash.set(f, args[3]!);
      return { result: 1, changed: true };
    }),
    ({ result, durable }) => {
      if (result === 1) notify(ctx, durable, NOTIFY.hash, 'hset', key);
      return held(durable, (w) => w.integer(result));
    },
  );
}

function hget(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) => {
    ctx.server.stats.countRead(latest.value !== undefined);
    const value = hash.get(field(args[2]!));
    return held(latest.durable, (w) => w.bulk(value ?? null));
  });
}

function hmget(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) => {
    const values = args.slice(2).map((a) => hash.get(field(a)) ?? null);
    // A field named many times repeats its value: the reply can pass the hash many times over.
    let bytes = 0;
    for (const v of values) bytes += v?.length ?? 0;
    const limit = ctx.server.limits.replyBytes;
    if (bytes > limit) throw replyTooLarge('the values asked for', limit, 'ask for fewer fields at a time');
    return held(latest.durable, (w) => w.bulkArray(values));
  });
}

function hgetall(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) =>
    held(latest.durable, (w) => {
      // RESP3: a map; RESP2: the flat field, value, ... array (the writer's fallback).
      w.mapHeader(hash.size);
      for (const f of sortedFields(hash)) {
        w.bulk(fieldBytes(f));
        w.bulk(hash.get(f)!);
      }
    }),
  );
}

function hkeys(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) =>
    held(latest.durable, (w) => w.bulkArray(sortedFields(hash).map(fieldBytes))),
  );
}

function hvals(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) =>
    held(latest.durable, (w) => w.bulkArray(sortedFields(hash).map((f) => hash.get(f)!))),
  );
}

function hlen(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) => held(latest.durable, (w) => w.integer(hash.size)));
}

function hexists(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) =>
    held(latest.durable, (w) => w.integer(hash.has(field(args[2]!)) ? 1 : 0)),
  );
}

function hstrlen(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return readHash(ctx, args[1]!, (hash, latest) =>
    held(latest.durable, (w) => w.integer(hash.get(field(args[2]!))?.length ?? 0)),
  );
}

function hdel(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  return andThen(
    modify(ctx, key, (hash) => {
      let deleted = 0;
      for (let i = 2; i < args.length; i++) if (hash.delete(field(args[i]!))) deleted++;
      return { result: { deleted, emptied: deleted > 0 && hash.size === 0 }, changed: deleted > 0 };
    }),
    ({ result, durable }) => {
      // Redis: `hdel`, then `del` when the last field went (and the key with it).
      if (result.deleted > 0) notify(ctx, durable, NOTIFY.hash, 'hdel', key);
      if (result.emptied) notify(ctx, durable, NOTIFY.generic, 'del', key);
      return held(durable, (w) => w.integer(result.deleted));
    },
  );
}

function hincrby(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const f = field(args[2]!);
  const delta = int64Arg(args[3]!);
  return andThen(
    modify(ctx, key, (hash) => {
      let n = 0n;
      const current = hash.get(f);
      if (current !== undefined) {
        const parsed = parseInt64(current);
        if (parsed === undefined) throw new CommandError(ERR_HASH_NOT_INTEGER);
        n = parsed;
      }
      const next = n + delta;
      if (next > INT64_MAX || next < INT64_MIN) throw new CommandError(ERR_OVERFLOW);
      hash.set(f, Buffer.from(next.toString(), 'latin1'));
      return { result: next, changed: true };
    }),
    ({ result, durable }) => {
      notify(ctx, durable, NOTIFY.hash, 'hincrby', key);
      return held(durable, (w) => w.integer(result));
    },
  );
}

function hincrbyfloat(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const f = field(args[2]!);
  const delta = parseLongDouble(args[3]!.toString('latin1'));
  if (delta === undefined) throw new CommandError(ERR_NOT_FLOAT);
  if (!isFiniteLongDouble(delta)) throw new CommandError(ERR_NAN_OR_INFINITY_ARG);
  return andThen(
    modify(ctx, key, (hash) => {
      const text = floatSum(hash.get(f), delta, ERR_HASH_NOT_FLOAT);
      hash.set(f, text);
      return { result: text, changed: true };
    }),
    ({ result, durable }) => {
      notify(ctx, durable, NOTIFY.hash, 'hincrbyfloat', key);
      return held(durable, (w) => w.bulk(result));
    },
  );
}

/**
 * randomCount reads HRANDFIELD's count: Redis's range (-2^63 is refused with its message), and,
 * unlike Redis, at most HRANDFIELD_PICKS_MAX repeated picks: Redis streams a reply of any length,
 * where this server builds it whole, and one `HRANDFIELD h -100000000` ran the process out of
 * memory (docs/compat.md).
 */
/** countArg: HRANDFIELD's count, an integer in [-2^63 + 1, 2^63 - 1] (Redis's first check). */
function countArg(arg: Buffer): bigint {
  const n = int64Arg(arg);
  if (n < -INT64_MAX) {
    throw new CommandError(`ERR value is out of range, value must between ${-INT64_MAX} and ${INT64_MAX}`);
  }
  return n;
}

function randomCount(arg: Buffer, withValues: boolean): number {
  const n = countArg(arg);
  // WITHVALUES doubles the reply's length: Redis 7.0 refuses a count past half the range.
  if (withValues && (n > INT64_MAX / 2n || n < -INT64_MAX / 2n))
    throw new CommandError('ERR value is out of range');
  if (n < -BigInt(HRANDFIELD_PICKS_MAX)) {
    throw new CommandError(
      `ERR value is out of range: a negative count picks at most ${HRANDFIELD_PICKS_MAX} fields in Cairn`,
    );
  }
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}

/** hrandfield: HRANDFIELD key [count [WITHVALUES]] (Redis 6.2). */
function hrandfield(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  // Redis's order (hrandfieldCommand): the count, the syntax, then WITHVALUES's range.
  if (args.length >= 3) countArg(args[2]!);
  if (args.length > 4 || (args.length === 4 && lower(args[3]!) !== 'withvalues')) {
    throw new CommandError(ERR_SYNTAX);
  }
  const withValues = args.length === 4;
  const count = args.length >= 3 ? randomCount(args[2]!, withValues) : undefined;
  return readHash(ctx, args[1]!, (hash, latest) => {
    const fields = sortedFields(hash);
    if (count === undefined) {
      const one = fields.length === 0 ? undefined : fields[Math.floor(Math.random() * fields.length)];
      return held(latest.durable, (w) => w.bulk(one === undefined ? null : fieldBytes(one)));
    }
    let picked: string[];
    if (fields.length === 0 || count === 0) picked = [];
    else if (count < 0) {
      // Negative: that many picks, repeats allowed.
      picked = Array.from({ length: -count }, () => fields[Math.floor(Math.random() * fields.length)]!);
    } else if (count >= fields.length) picked = fields;
    else {
      // Distinct picks: a partial Fisher-Yates shuffle.
      const pool = fields.slice();
      for (let i = 0; i < count; i++) {
        const j = i + Math.floor(Math.random() * (pool.length - i));
        [pool[i], pool[j]] = [pool[j]!, pool[i]!];
      }
      picked = pool.slice(0, count);
    }
    // Checked before the reply is built: a negative count repeats fields, so the reply can pass
    // the hash (at most HASH_BYTES_MAX) many times over.
    let bytes = 0;
    for (const f of picked) bytes += f.length + (withValues ? hash.get(f)!.length : 0);
    const limit = ctx.server.limits.replyBytes;
    if (bytes > limit) throw replyTooLarge('the fields picked', limit, 'ask for a smaller count');
    return held(latest.durable, (w) => {
      if (!withValues) {
        w.bulkArray(picked.map(fieldBytes));
        return;
      }
      if (w.protocol === 3) {
        // RESP3: pairs, as Redis 7 replies.
        w.arrayHeader(picked.length);
        for (const f of picked) {
          w.arrayHeader(2);
          w.bulk(fieldBytes(f));
          w.bulk(hash.get(f)!);
        }
        return;
      }
      w.arrayHeader(picked.length * 2);
      for (const f of picked) {
        w.bulk(fieldBytes(f));
        w.bulk(hash.get(f)!);
      }
    });
  });
}

/**
 * hscan: HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]. A small hash comes back whole
 * with cursor 0 (as Redis's listpack hashes do); a larger one pages in field order, the cursor
 * naming the last field returned (the server's cursor table, as SCAN), so fields written or
 * deleted between pages never make it repeat or skip the fields that stay.
 */
const ERR_INVALID_CURSOR = 'ERR invalid cursor';
/** CURSOR_MAX: the largest cursor Redis's strtoul takes (an unsigned 64-bit long). */
const CURSOR_MAX = 2n ** 64n - 1n;

/**
 * scanCursorSyntax: whether Redis's parseScanCursorOrReply (strtoul) takes the cursor: an
 * optional sign and decimal digits of at most 2^64 - 1, or nothing at all (0).
 */
function scanCursorSyntax(cursor: string): boolean {
  if (cursor === '') return true;
  if (!/^[+-]?\d+$/.test(cursor)) return false;
  const digits = cursor.replace(/^[+-]/, '');
  return BigInt(digits) <= CURSOR_MAX;
}

function hscan(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const cursor = args[2]!.toString('latin1');
  if (!scanCursorSyntax(cursor)) throw new CommandError(ERR_INVALID_CURSOR);
  return readHash(ctx, key, (hash, latest) => {
    // Redis's order (hscanCommand): the cursor's syntax, the key (missing: an empty page,
    // whatever the cursor's value and the options) and its type, then the options. A cursor
    // this server did not give out is refused once the key is known to be a hash.
    if (latest.value === undefined) {
      return held(latest.durable, (w) => {
        w.arrayHeader(2);
        w.bulk('0');
        w.arrayHeader(0);
      });
    }
    const o: ScanOptions = { pattern: undefined, count: HSCAN_COUNT_DEFAULT };
    let noValues = false;
    for (let i = 3; i < args.length; i++) {
      const opt = lower(args[i]!);
      if (opt === 'novalues') {
        noValues = true;
        continue;
      }
      if (i + 1 >= args.length) throw new CommandError(ERR_SYNTAX);
      if (!scanOption(o, opt, args[++i]!)) throw new CommandError(ERR_SYNTAX);
    }
    const { pattern, count } = o;
    const fields = sortedFields(hash);
    let after: string | undefined;
    if (!/^[+-]?0*$/.test(cursor)) {
      const saved = /^\d+$/.test(cursor) ? ctx.server.cursors.get(cursor) : undefined;
      // A hash returned in one page ignores an unknown cursor, as Redis's listpack hashes do.
      if (saved === undefined && fields.length > HSCAN_ONE_PAGE_FIELDS)
        throw new CommandError(ERR_INVALID_CURSOR);
      after = saved?.toString('latin1');
    }
    let page: string[];
    let next = '0';
    if (fields.length <= HSCAN_ONE_PAGE_FIELDS && after === undefined) page = fields;
    else {
      let from = 0;
      if (after !== undefined) {
        const resumeAfter = after;
        from = fields.findIndex((f) => f > resumeAfter);
        if (from < 0) from = fields.length;
      }
      page = fields.slice(from, from + count);
      if (from + count < fields.length) {
        next = ctx.server.cursors.save(
          fieldBytes(page[page.length - 1]!),
          after === undefined ? undefined : cursor,
        );
      }
    }
    const matched = pattern === undefined ? page : page.filter((f) => globMatch(pattern, fieldBytes(f)));
    return held(latest.durable, (w) => {
      w.arrayHeader(2);
      w.bulk(next);
      w.arrayHeader(noValues ? matched.length : matched.length * 2);
      for (const f of matched) {
        w.bulk(fieldBytes(f));
        if (!noValues) w.bulk(hash.get(f)!);
      }
    });
  });
}

const WRITE_FAST = ['write', 'denyoom', 'fast'] as const;
const READ_FAST = ['readonly', 'fast'] as const;
const READ = ['readonly'] as const;

export const HASH_COMMANDS = [
  spec(
    'hset',
    -4,
    WRITE_FAST,
    FIRST_KEY,
    hashDoc('2.0.0', 'Creates or modifies the value of a field in a hash.'),
    hset('hset', false),
  ),
  spec(
    'hmset',
    -4,
    WRITE_FAST,
    FIRST_KEY,
    hashDoc('2.0.0', 'Sets the values of multiple fields.'),
    hset('hmset', true),
  ),
  spec(
    'hsetnx',
    4,
    WRITE_FAST,
    FIRST_KEY,
    hashDoc('2.0.0', "Sets the value of a field in a hash only when the field doesn't exist."),
    hsetnx,
  ),
  spec('hget', 3, READ_FAST, FIRST_KEY, hashDoc('2.0.0', 'Returns the value of a field in a hash.'), hget),
  spec(
    'hmget',
    -3,
    READ_FAST,
    FIRST_KEY,
    hashDoc('2.0.0', 'Returns the values of all fields in a hash.'),
    hmget,
  ),
  spec('hgetall', 2, READ, FIRST_KEY, hashDoc('2.0.0', 'Returns all fields and values in a hash.'), hgetall),
  spec('hkeys', 2, READ, FIRST_KEY, hashDoc('2.0.0', 'Returns all fields in a hash.'), hkeys),
  spec('hvals', 2, READ, FIRST_KEY, hashDoc('2.0.0', 'Returns all values in a hash.'), hvals),
  spec('hlen', 2, READ_FAST, FIRST_KEY, hashDoc('2.0.0', 'Returns the number of fields in a hash.'), hlen),
  spec(
    'hexists',
    3,
    READ_FAST,
    FIRST_KEY,
    hashDoc('2.0.0', 'Determines whether a field exists in a hash.'),
    hexists,
  ),
  spec(
    'hstrlen',
    3,
    READ_FAST,
    FIRST_KEY,
    hashDoc('3.2.0', 'Returns the length of the value of a field.'),
    hstrlen,
  ),
  spec(
    'hdel',
    -3,
    ['write', 'fast'],
    FIRST_KEY,
    hashDoc(
      '2.0.0',
      'Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.',
    ),
    hdel,
  ),
  spec(
    'hincrby',
    4,
    WRITE_FAST,
    FIRST_KEY,
    hashDoc(
      '2.0.0',
      "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
    ),
    hincrby,
  ),
  spec(
    'hincrbyfloat',
    4,
    WRITE_FAST,
    FIRST_KEY,
    hashDoc(
      '2.6.0',
      "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
    ),
    hincrbyfloat,
  ),
  spec(
    'hrandfield',
    -2,
    READ,
    FIRST_KEY,
    hashDoc('6.2.0', 'Returns one or more random fields from a hash.'),
    hrandfield,
  ),
  spec('hscan', -3, READ, FIRST_KEY, hashDoc('2.8.0', 'Iterates over fields and values of a hash.'), hscan),
];
