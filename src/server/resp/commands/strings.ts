// String commands: GET, SET, SETEX, PSETEX, GETEX, GETDEL, GETSET, SETNX, MGET, MSET, MSETNX,
// APPEND, STRLEN, GETRANGE.
// Reads go through the write pipeline (src/txn/write-pipeline.ts): a value whose write is not durable yet
// comes with its durability promise, and the reply is held until it resolves.
// Expiry follows Redis: SET (without KEEPTTL), GETSET and MSET clear a key's TTL; APPEND keeps it.

import { READ_INTO } from '../../../storage/engine.js';
import { VALUE_BYTES_MAX } from '../../../storage/limits.js';
import { ValueType } from '../../../storage/value-type.js';
import type { Latest } from '../../../txn/write-pipeline.js';
import { CommandError, checkType, ERR_SYNTAX, wrongArity } from '../errors.js';
import { NOTIFY } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import { andThen, held, int64Arg, intArg, joinDurable, lower, type MaybePromise } from './args.js';
import { alreadyExpired, type ExpireUnit, setExpireAt } from './expire-args.js';
import { notify } from './notify.js';
import { ALL_KEYS, FIRST_KEY, spec } from './spec.js';

const EMPTY = Buffer.alloc(0);
const string = (since: string, summary: string) => ({ group: 'string', since, summary });

/** replyOk: the reply of a write answered +OK, one function for every such write (no closure per command). */
const replyOk: Held['reply'] = (w) => w.ok();

/** read: a GET-style read of one key, counted in INFO's keyspace_hits / keyspace_misses. */
function read(ctx: CommandContext, key: Buffer): MaybePromise<Latest> {
  return andThen(ctx.store.readLatest(key), (latest) => {
    ctx.server.stats.countRead(latest.value !== undefined);
    // Every string read (GET, STRLEN, GETRANGE) of another type's key is WRONGTYPE, as in Redis.
    checkType(latest.value, latest.valueType, ValueType.STRING);
    return latest;
  });
}

function get(ctx: CommandContext, args: Buffer[]): MaybePromise<Held | undefined> {
  const key = args[1]!;
  // A string the reply can show now goes straight from the store into the reply (issue 14);
  // anything else (pending writes, another type, a transaction's or a script's store) reads
  // through readLatest.
  const into = ctx.store.readStringInto?.(key, ctx.w) ?? READ_INTO.OTHER;
  if (into !== READ_INTO.OTHER) {
    if (into === READ_INTO.ABSENT) ctx.w.null();
    ctx.server.stats.countRead(into === READ_INTO.WRITTEN);
    return undefined;
  }
  return andThen(read(ctx, key), (latest) => held(latest.durable, (w) => w.bulk(latest.value ?? null)));
}

/** SetOptions: SET's and GETEX's options (Redis parseExtendedStringArgumentsOrReply). */
interface SetOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  unit: ExpireUnit | undefined;
  expire: Buffer | undefined;
}

const EXPIRE_UNITS: readonly string[] = ['ex', 'px', 'exat', 'pxat'];

/**
 * parseSetOptions parses SET's options (`forGetex` false) or GETEX's (true) with Redis's
 * rules: NX/XX exclude each other, one kind of expiry at most (the same one may repeat),
 * KEEPTTL and PERSIST exclude any expiry, and anything else is a syntax error.
 */
function parseSetOptions(args: Buffer[], from: number, forGetex: boolean): SetOptions {
  const o: SetOptions = {
    nx: false,
    xx: false,
    get: false,
    keepTtl: false,
    persist: false,
    unit: undefined,
    expire: undefined,
  };
  for (let i = from; i < args.length; i++) {
    const a = lower(args[i]!);
    const hasNext = i + 1 < args.length;
    if (a === 'nx' && !o.xx && !forGetex) o.nx = true;
    else if (a === 'xx' && !o.nx && !forGetex) o.xx = true;
    else if (a === 'get' && !forGetex) o.get = true;
    else if (a === 'keepttl' && !forGetex && o.unit === undefined) o.keepTtl = true;
    else if (a === 'persist' && forGetex && o.unit === undefined) o.persist = true;
    else if (
      EXPIRE_UNITS.includes(a) &&
      !o.keepTtl &&
      !o.persist &&
      (o.unit === undefined || o.unit === a) &&
      hasNext
    ) {
      o.unit = a as ExpireUnit;
      o.expire = args[++i]!;
    } else throw new CommandError(ERR_SYNTAX);
  }
  return o;
}

/**
 * plainSetQueued: what a plain SET (`SET key value`) does once its write is queued with
 * durability `durable`: its keyspace event, and its +OK held until the write is durable. Also
 * the end of each SET of a run (set-run.ts), whose writes are one.
 */
export function plainSetQueued(ctx: CommandContext, key: Buffer, durable: Promise<void> | undefined): Held {
  notify(ctx, durable, NOTIFY.string, 'set', key);
  return held(durable, replyOk);
}

function set(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const value = args[2]!;
  const db = ctx.server.db;
  const latest = ctx.store;
  if (args.length === 3) return plainSetQueued(ctx, key, latest.put(key, value));
  const o = parseSetOptions(args, 3, false);
  const nowMs = db.clock.nowMs();
  const expiresAt = o.unit === undefined ? undefined : setExpireAt(o.expire!, o.unit, nowMs, 'set');
  const updated = latest.update(key, (current, currentExpiry, valueType) => {
    // SET overwrites a key of any type, except that GET must read the old value as a string.
    if (o.get) checkType(current, valueType, ValueType.STRING);
    if ((o.nx && current !== undefined) || (o.xx && current === undefined)) {
      return { result: { old: current, wrote: false } };
    }
    const result = { old: current, wrote: true };
    // A time already past (EXAT/PXAT) leaves nothing to store: the key is deleted.
    if (expiresAt !== undefined && alreadyExpired(expiresAt, nowMs)) {
      return { result, write: current === undefined ? undefined : null };
    }
    return { result, write: value, expiresAt: o.keepTtl ? currentExpiry : expiresAt };
  });
  return andThen(updated, ({ result, durable }) => {
    if (result.wrote) notifySet(ctx, durable, key, expiresAt, nowMs);
    return held(durable, (w) => {
      if (o.get) w.bulk(result.old ?? null);
      else if (result.wrote) w.ok();
      else w.null();
    });
  });
}

/**
 * notifySet reports a SET with an optional expiry as Redis does: `set`, then `expire` when it
 * gave one; a time already past deleted the key at once here, where Redis expires it a moment
 * later: `expired` follows.
 */
function notifySet(
  ctx: CommandContext,
  durable: Promise<void> | undefined,
  key: Buffer,
  expiresAt: number | undefined,
  nowMs: number,
): void {
  notify(ctx, durable, NOTIFY.string, 'set', key);
  if (expiresAt === undefined) return;
  notify(ctx, durable, NOTIFY.generic, 'expire', key);
  if (alreadyExpired(expiresAt, nowMs)) notify(ctx, durable, NOTIFY.expired, 'expired', key);
}

/** setex is SETEX (seconds) and PSETEX (milliseconds): SET key value EX/PX ttl. */
function setex(unit: 'ex' | 'px', command: string) {
  return (ctx: CommandContext, args: Buffer[]): Held => {
    const db = ctx.server.db;
    const expiresAt = setExpireAt(args[2]!, unit, db.clock.nowMs(), command);
    const durable = ctx.store.put(args[1]!, args[3]!, expiresAt);
    notify(ctx, durable, NOTIFY.string, 'set', args[1]!);
    notify(ctx, durable, NOTIFY.generic, 'expire', args[1]!);
    return held(durable, replyOk);
  };
}

function getex(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const o = parseSetOptions(args, 2, true);
  const db = ctx.server.db;
  const nowMs = db.clock.nowMs();
  let event: string | undefined;
  return andThen(
    ctx.store.update(args[1]!, (current, currentExpiry, valueType) => {
      event = undefined;
      checkType(current, valueType, ValueType.STRING);
      if (current === undefined) return { result: current };
      // Redis's order (getexCommand): the options' syntax, the key (missing: nil) and its type,
      // then the expire time's value.
      const expiresAt = o.unit === undefined ? undefined : setExpireAt(o.expire!, o.unit, nowMs, 'getex');
      if (expiresAt !== undefined) {
        event = alreadyExpired(expiresAt, nowMs) ? 'del' : 'expire';
        if (event === 'del') return { result: current, write: null };
        return { result: current, write: current, expiresAt };
      }
      // PERSIST rewrites the value only when there is an expiry to remove.
      if (o.persist && currentExpiry !== undefined) {
        event = 'persist';
        return { result: current, write: current };
      }
      return { result: current };
    }),
    ({ result, durable }) => {
      if (event !== undefined) notify(ctx, durable, NOTIFY.generic, event, args[1]!);
      return held(durable, (w) => w.bulk(result ?? null));
    },
  );
}

function getdel(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return andThen(
    ctx.store.update(args[1]!, (current, _expiresAt, valueType) => {
      checkType(current, valueType, ValueType.STRING);
      return { result: current, write: current === undefined ? undefined : null };
    }),
    ({ result, durable }) => {
      if (result !== undefined) notify(ctx, durable, NOTIFY.generic, 'del', args[1]!);
      return held(durable, (w) => w.bulk(result ?? null));
    },
  );
}

function getset(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const value = args[2]!;
  return andThen(
    ctx.store.update(args[1]!, (current, _expiresAt, valueType) => {
      checkType(current, valueType, ValueType.STRING);
      return { result: current, write: value };
    }),
    ({ result, durable }) => {
      notify(ctx, durable, NOTIFY.string, 'set', args[1]!);
      return held(durable, (w) => w.bulk(result ?? null));
    },
  );
}

function setnx(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const value = args[2]!;
  return andThen(
    ctx.store.update(args[1]!, (current) =>
      current === undefined ? { result: 1, write: value } : { result: 0 },
    ),
    ({ result, durable }) => {
      if (result === 1) notify(ctx, durable, NOTIFY.string, 'set', args[1]!);
      return held(durable, (w) => w.integer(result));
    },
  );
}

function mget(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return andThen(ctx.store.readMany(args.slice(1), ctx.server.limits.replyBytes), (values) => {
    for (const v of values) ctx.server.stats.countRead(v.value !== undefined);
    // MGET answers nil for a key of another type, as Redis does (no WRONGTYPE).
    return held(joinDurable(values.map((v) => v.durable)), (w) =>
      w.bulkArray(values.map((v) => (v.valueType === ValueType.STRING ? (v.value ?? null) : null))),
    );
  });
}

function pairs(args: Buffer[], name: string): { key: Buffer; value: Buffer }[] {
  if ((args.length - 1) % 2 !== 0) throw wrongArity(name);
  const out: { key: Buffer; value: Buffer }[] = [];
  for (let i = 1; i < args.length; i += 2) out.push({ key: args[i]!, value: args[i + 1]! });
  return out;
}

function mset(ctx: CommandContext, args: Buffer[]): Held {
  const ops = pairs(args, 'mset').map((p) => ({ type: 'put' as const, key: p.key, value: p.value }));
  const durable = ctx.store.batch(ops);
  for (const op of ops) notify(ctx, durable, NOTIFY.string, 'set', op.key);
  return held(durable, replyOk);
}

function msetnx(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const ps = pairs(args, 'msetnx');
  return andThen(
    ctx.store.updateMany(
      ps.map((p) => p.key),
      (current) => (current.some((v) => v !== undefined) ? { result: 0 } : { result: 1, writes: ps }),
    ),
    ({ result, durable }) => {
      if (result === 1) for (const p of ps) notify(ctx, durable, NOTIFY.string, 'set', p.key);
      return held(durable, (w) => w.integer(result));
    },
  );
}

/** ERR_STRING_TOO_LONG: Redis's refusal of a string past its proto-max-bulk-len (here VALUE_BYTES_MAX). */
const ERR_STRING_TOO_LONG = 'ERR string exceeds maximum allowed size (proto-max-bulk-len)';

function append(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const suffix = args[2]!;
  return andThen(
    ctx.store.update(args[1]!, (current, expiresAt, valueType) => {
      checkType(current, valueType, ValueType.STRING);
      // As SETRANGE and Redis's APPEND (checkStringLength): checked before the bytes are joined.
      if ((current?.length ?? 0) + suffix.length > VALUE_BYTES_MAX)
        throw new CommandError(ERR_STRING_TOO_LONG);
      const value = current === undefined ? Buffer.from(suffix) : Buffer.concat([current, suffix]);
      return { result: value.length, write: value, expiresAt };
    }),
    ({ result, durable }) => {
      notify(ctx, durable, NOTIFY.string, 'append', args[1]!);
      return held(durable, (w) => w.integer(result));
    },
  );
}

/**
 * setrange is SETRANGE key offset value (Redis t_string.c setrangeCommand): overwrites from
 * `offset`, padding with zero bytes; replies the new length. An empty value writes nothing (and
 * creates no key); the result may not exceed VALUE_BYTES_MAX (Redis: proto-max-bulk-len). The
 * key keeps its TTL. Event `setrange`.
 */
function setrange(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const key = args[1]!;
  const value = args[3]!;
  const offset = int64Arg(args[2]!);
  if (offset < 0n) throw new CommandError('ERR offset is out of range');
  const at = Number(offset);
  const updated = ctx.store.update(key, (current, expiresAt, valueType) => {
    // Redis's order (setrangeCommand): the key's type, an empty value (nothing to do, whatever
    // the offset), then the length.
    checkType(current, valueType, ValueType.STRING);
    const old = current ?? EMPTY;
    if (value.length === 0) return { result: old.length };
    if (offset + BigInt(value.length) > BigInt(VALUE_BYTES_MAX)) throw new CommandError(ERR_STRING_TOO_LONG);
    const next = Buffer.alloc(Math.max(old.length, at + value.length));
    old.copy(next);
    value.copy(next, at);
    return { result: next.length, write: next, expiresAt };
  });
  return andThen(updated, ({ result, durable }) => {
    if (value.length > 0) notify(ctx, durable, NOTIFY.string, 'setrange', key);
    return held(durable, (w) => w.integer(result));
  });
}

function strlen(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return andThen(read(ctx, args[1]!), (latest) =>
    held(latest.durable, (w) => w.integer(latest.value?.length ?? 0)),
  );
}

/** substring applies GETRANGE's index rules (Redis t_string.c getrangeCommand). */
export function substring(value: Buffer, startArg: number, endArg: number): Buffer {
  let start = startArg;
  let end = endArg;
  if (start < 0 && end < 0 && start > end) return EMPTY;
  const len = value.length;
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (len === 0 || start > end) return EMPTY;
  return value.subarray(start, end + 1);
}

function getrange(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const start = intArg(args[2]!);
  const end = intArg(args[3]!);
  return andThen(read(ctx, args[1]!), (latest) =>
    held(latest.durable, (w) => w.bulk(substring(latest.value ?? EMPTY, start, end))),
  );
}

export const STRING_COMMANDS = [
  spec('get', 2, ['readonly', 'fast'], FIRST_KEY, string('1.0.0', 'Returns the string value of a key.'), get),
  spec('set', -3, ['write', 'denyoom'], FIRST_KEY, string('1.0.0', 'Sets the string value of a key.'), set),
  spec(
    'setex',
    4,
    ['write', 'denyoom'],
    FIRST_KEY,
    string(
      '2.0.0',
      "Sets the string value and expiration time of a key. Creates the key if it doesn't exist.",
    ),
    setex('ex', 'setex'),
  ),
  spec(
    'psetex',
    4,
    ['write', 'denyoom'],
    FIRST_KEY,
    string(
      '2.6.0',
      "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist.",
    ),
    setex('px', 'psetex'),
  ),
  spec(
    'getex',
    -2,
    ['write', 'fast'],
    FIRST_KEY,
    string('6.2.0', 'Returns the string value of a key after setting its expiration time.'),
    getex,
  ),
  spec(
    'getdel',
    2,
    ['write', 'fast'],
    FIRST_KEY,
    string('6.2.0', 'Returns the string value of a key after deleting the key.'),
    getdel,
  ),
  spec(
    'getset',
    3,
    ['write', 'denyoom', 'fast'],
    FIRST_KEY,
    string('1.0.0', 'Returns the previous string value of a key after setting it to a new value.'),
    getset,
  ),
  spec(
    'setnx',
    3,
    ['write', 'denyoom', 'fast'],
    FIRST_KEY,
    string('1.0.0', "Set the string value of a key only when the key doesn't exist."),
    setnx,
  ),
  spec(
    'mget',
    -2,
    ['readonly', 'fast'],
    ALL_KEYS,
    string('1.0.0', 'Atomically returns the string values of one or more keys.'),
    mget,
  ),
  spec(
    'mset',
    -3,
    ['write', 'denyoom'],
    [1, -1, 2],
    string('1.0.1', 'Atomically creates or modifies the string values of one or more keys.'),
    mset,
  ),
  spec(
    'msetnx',
    -3,
    ['write', 'denyoom'],
    [1, -1, 2],
    string(
      '1.0.1',
      "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    ),
    msetnx,
  ),
  spec(
    'append',
    3,
    ['write', 'denyoom', 'fast'],
    FIRST_KEY,
    string('2.0.0', "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    append,
  ),
  spec(
    'strlen',
    2,
    ['readonly', 'fast'],
    FIRST_KEY,
    string('2.2.0', 'Returns the length of a string value.'),
    strlen,
  ),
  spec(
    'getrange',
    4,
    ['readonly'],
    FIRST_KEY,
    string('2.4.0', 'Returns a substring of the string stored at a key.'),
    getrange,
  ),
  spec(
    'substr',
    4,
    ['readonly'],
    FIRST_KEY,
    string('1.0.0', 'Returns a substring from a string value (GETRANGE, its older name).'),
    getrange,
  ),
  spec(
    'setrange',
    4,
    ['write', 'denyoom'],
    FIRST_KEY,
    string(
      '2.2.0',
      "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    ),
    setrange,
  ),
];
