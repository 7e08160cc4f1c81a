// Keyspace commands: DEL, UNLINK, EXISTS, TYPE, DBSIZE, KEYS, SCAN, FLUSHDB, FLUSHALL.
//
// Commands that look at many keys (DBSIZE, KEYS, SCAN, FLUSHDB) read through the KeyStore's
// keysAfter/countKeys: outside a transaction they see the connection's own earlier writes (and
// everyone's queued before) and reveal nothing that is not durable (src/server/resp/key-store.ts);
// inside one they see its snapshot and own writes.
import { CorruptionError } from '../../../storage/errors.js';
import { valueTypeName } from '../../../storage/value-type.js';
import type { Updated } from '../../../txn/write-pipeline.js';
import { CommandError, ERR_SYNTAX, replyTooLarge } from '../errors.js';
import { globMatch, isMatchAll } from '../glob.js';
import { FLUSH_BATCH_KEYS, SCAN_COUNT_DEFAULT, SCAN_COUNT_MAX } from '../limits.js';
import { NOTIFY } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import {
  andThen,
  held,
  joinDurable,
  lower,
  type MaybePromise,
  type ScanOptions,
  scanOption,
} from './args.js';
import { notify } from './notify.js';
import { ALL_KEYS, FIRST_KEY, NO_KEYS, spec } from './spec.js';

const ERR_NO_SUCH_KEY = 'ERR no such key';
const generic = (since: string, summary: string) => ({ group: 'generic', since, summary });
const server = (since: string, summary: string) => ({ group: 'server', since, summary });

function del(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  // Each key counts once however often it is named (as Redis).
  const seen = new Set<string>();
  const keys: Buffer[] = [];
  for (let i = 1; i < args.length; i++) {
    const k = args[i]!.toString('latin1');
    if (seen.has(k)) continue;
    seen.add(k);
    keys.push(args[i]!);
  }
  let updated: MaybePromise<Updated<{ key: Buffer; value: null }[]>>;
  try {
    updated = ctx.store.updateMany(keys, (current) => {
      const writes = keys.filter((_, i) => current[i] !== undefined).map((key) => ({ key, value: null }));
      return { result: writes, writes };
    });
  } catch (err) {
    if (!(err instanceof CorruptionError)) throw err;
    return delDamaged(ctx, keys);
  }
  return andThen(updated, ({ result, durable }) => {
    for (const { key } of result) notify(ctx, durable, NOTIFY.generic, 'del', key);
    return held(durable, (w) => w.integer(result.length));
  });
}

/**
 * delDamaged is DEL when a key's record fails verification (damage recovery could not see: a
 * sealed file read through its hint file): the damaged key is deleted too, without its value,
 * so that DEL can clear what GET reports broken. Keys are read one by one (in one synchronous
 * step, as the update would), and the deletes go as one atomic batch.
 */
function delDamaged(ctx: CommandContext, keys: readonly Buffer[]): MaybePromise<Held> {
  const gone: Buffer[] = [];
  for (const key of keys) {
    let present: boolean;
    try {
      const latest = ctx.store.readLatest(key);
      if (latest instanceof Promise)
        throw new CommandError('ERR a damaged key cannot be deleted inside a transaction');
      present = latest.value !== undefined;
    } catch (err) {
      if (!(err instanceof CorruptionError)) throw err;
      ctx.server.logger?.warn(
        { key: key.toString('hex').slice(0, 64), err: err.message },
        'deleting a damaged key',
      );
      present = true;
    }
    if (present) gone.push(key);
  }
  const durable =
    gone.length === 0 ? undefined : ctx.store.batch(gone.map((key) => ({ type: 'delete', key })));
  for (const key of gone) notify(ctx, durable, NOTIFY.generic, 'del', key);
  return held(durable, (w) => w.integer(gone.length));
}

/**
 * rename is RENAME (`nx` false: replies OK, overwrites the destination) and RENAMENX (`nx`:
 * replies 1, or 0 when the destination exists), Redis's rules: the value moves with its type
 * and TTL, in one atomic write; a missing source is `ERR no such key`; a key renamed to itself
 * is left alone. Events `rename_from` (source) and `rename_to` (destination).
 */
function rename(nx: boolean) {
  return (ctx: CommandContext, args: Buffer[]): MaybePromise<Held> => {
    const [src, dst] = [args[1]!, args[2]!];
    if (src.equals(dst)) {
      return andThen(ctx.store.readLatest(src), (latest) => {
        if (latest.value === undefined) throw new CommandError(ERR_NO_SUCH_KEY);
        return held(latest.durable, (w) => (nx ? w.integer(0) : w.ok()));
      });
    }
    const updated = ctx.store.updateMany([src, dst], (current, expiresAt, valueTypes) => {
      const value = current[0];
      if (value === undefined) throw new CommandError(ERR_NO_SUCH_KEY);
      if (nx && current[1] !== undefined) return { result: false };
      return {
        result: true,
        writes: [
          { key: src, value: null },
          { key: dst, value, expiresAt: expiresAt[0], valueType: valueTypes[0] },
        ],
      };
    });
    return andThen(updated, ({ result, durable }) => {
      if (result) {
        notify(ctx, durable, NOTIFY.generic, 'rename_from', src);
        notify(ctx, durable, NOTIFY.generic, 'rename_to', dst);
      }
      return held(durable, (w) => (nx ? w.integer(result ? 1 : 0) : w.ok()));
    });
  };
}

/**
 * copy is COPY source destination [DB db] [REPLACE] (Redis 6.2): the value with its type and
 * TTL; 1 when copied, 0 when the source is missing or the destination exists without REPLACE.
 * One database: DB 0 only.
 */
function copy(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const [src, dst] = [args[1]!, args[2]!];
  let replace = false;
  for (let i = 3; i < args.length; i++) {
    const opt = lower(args[i]!);
    if (opt === 'replace') replace = true;
    else if (opt === 'db' && i + 1 < args.length) {
      const db = args[++i]!.toString('latin1');
      if (!/^-?[0-9]+$/.test(db)) throw new CommandError('ERR value is not an integer or out of range');
      if (Number(db) !== 0) throw new CommandError('ERR DB index is out of range');
    } else throw new CommandError(ERR_SYNTAX);
  }
  if (src.equals(dst)) throw new CommandError('ERR source and destination objects are the same');
  const updated = ctx.store.updateMany([src, dst], (current, expiresAt, valueTypes) => {
    const value = current[0];
    if (value === undefined || (current[1] !== undefined && !replace)) return { result: false };
    return {
      result: true,
      writes: [{ key: dst, value, expiresAt: expiresAt[0], valueType: valueTypes[0] }],
    };
  });
  return andThen(updated, ({ result, durable }) => {
    if (result) notify(ctx, durable, NOTIFY.generic, 'copy_to', dst);
    return held(durable, (w) => w.integer(result ? 1 : 0));
  });
}

function exists(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return andThen(ctx.store.readMany(args.slice(1)), (values) => {
    const count = values.filter((v) => v.value !== undefined).length;
    return held(joinDurable(values.map((v) => v.durable)), (w) => w.integer(count));
  });
}

function type(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  return andThen(ctx.store.readLatest(args[1]!), (latest) =>
    held(latest.durable, (w) =>
      w.simple(latest.value === undefined ? 'none' : valueTypeName(latest.valueType)),
    ),
  );
}

async function dbsize(ctx: CommandContext): Promise<void> {
  const n = await ctx.store.countKeys();
  ctx.w.integer(n);
}

/** keysFrom reads up to `limit` keys after `after` (exclusive), in key order. */
async function keysFrom(ctx: CommandContext, after: Buffer | undefined, limit: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const key of ctx.store.keysAfter(after, limit)) out.push(key);
  return out;
}

async function keys(ctx: CommandContext, args: Buffer[]): Promise<void> {
  const pattern = args[1]!;
  const all = isMatchAll(pattern);
  const out: Buffer[] = [];
  const limit = ctx.server.limits.replyBytes;
  let spent = 0;
  for await (const key of ctx.store.keysAfter(undefined)) {
    if (!all && !globMatch(pattern, key)) continue;
    spent += key.length;
    if (spent > limit) throw replyTooLarge('the keys matched', limit, 'use SCAN');
    out.push(key);
  }
  ctx.w.bulkArray(out);
}

const CURSOR_DIGITS = /^[0-9]+$/;

async function scan(ctx: CommandContext, args: Buffer[]): Promise<void> {
  const cursor = args[1]!.toString('latin1');
  if (!CURSOR_DIGITS.test(cursor)) throw new CommandError('ERR invalid cursor');
  let after: Buffer | undefined;
  if (cursor !== '0') {
    after = ctx.server.cursors.get(cursor);
    if (after === undefined) throw new CommandError('ERR invalid cursor');
  }
  const o: ScanOptions = { pattern: undefined, count: SCAN_COUNT_DEFAULT };
  // TYPE: Redis filters the keys of one page by their type after reading them (so a page may
  // come back empty with a non-zero cursor). An unknown type name matches nothing here.
  let wantType: string | undefined;
  for (let i = 2; i < args.length; i++) {
    const opt = lower(args[i]!);
    if (i + 1 >= args.length) throw new CommandError(ERR_SYNTAX);
    const value = args[++i]!;
    if (scanOption(o, opt, value)) continue;
    if (opt === 'type') wantType = lower(value);
    else throw new CommandError(ERR_SYNTAX);
  }
  const { pattern } = o;
  const count = Math.min(o.count, SCAN_COUNT_MAX);
  const examined = await keysFrom(ctx, after, count);
  const next =
    examined.length < count
      ? '0'
      : ctx.server.cursors.save(examined[examined.length - 1]!, cursor === '0' ? undefined : cursor);
  let matched = examined.filter((k) => pattern === undefined || globMatch(pattern, k));
  if (wantType !== undefined && matched.length > 0) {
    const types = await ctx.store.readMany(matched);
    const want = wantType;
    matched = matched.filter((_, i) => {
      const t = types[i]!;
      return t.value !== undefined && valueTypeName(t.valueType) === want;
    });
  }
  const w = ctx.w;
  w.arrayHeader(2);
  w.bulk(next);
  w.bulkArray(matched);
}

/** flushdb: FLUSHDB and FLUSHALL, which are one command here (Cairn has one database). */
async function flushdb(ctx: CommandContext, args: Buffer[]): Promise<void> {
  if (args.length > 2 || (args.length === 2 && !['async', 'sync'].includes(lower(args[1]!))))
    throw new CommandError(ERR_SYNTAX);
  // CLIENT TRACKING: every tracking client drops its whole cache (Redis's null invalidation).
  ctx.server.tracking.flushed();
  // One forward pass in key order: keys written behind the pass while it runs survive
  // (FLUSHDB is not atomic here, unlike Redis: documented).
  const store = ctx.store;
  let after: Buffer | undefined;
  for (;;) {
    const batch = await keysFrom(ctx, after, FLUSH_BATCH_KEYS);
    if (batch.length === 0) break;
    await store.batch(batch.map((key) => ({ type: 'delete' as const, key })));
    after = batch[batch.length - 1];
    if (batch.length < FLUSH_BATCH_KEYS) break;
  }
  ctx.w.ok();
}

export const KEY_COMMANDS = [
  spec('del', -2, ['write'], ALL_KEYS, generic('1.0.0', 'Deletes one or more keys.'), del),
  spec(
    'unlink',
    -2,
    ['write', 'fast'],
    ALL_KEYS,
    generic('4.0.0', 'Asynchronously deletes one or more keys.'),
    del,
  ),
  spec(
    'rename',
    3,
    ['write'],
    [1, 2, 1],
    generic('1.0.0', 'Renames a key and overwrites the destination.'),
    rename(false),
  ),
  spec(
    'renamenx',
    3,
    ['write', 'fast'],
    [1, 2, 1],
    generic('1.0.0', "Renames a key only when the target key name doesn't exist."),
    rename(true),
  ),
  spec(
    'copy',
    -3,
    ['write', 'denyoom'],
    [1, 2, 1],
    generic('6.2.0', 'Copies the value of a key to a new key.'),
    copy,
  ),
  spec(
    'touch',
    -2,
    ['readonly', 'fast'],
    ALL_KEYS,
    generic(
      '3.2.1',
      'Returns the number of existing keys out of those specified after updating the time they were last accessed.',
    ),
    // No access times are kept: TOUCH counts the keys that exist, as EXISTS does.
    exists,
  ),
  spec(
    'exists',
    -2,
    ['readonly', 'fast'],
    ALL_KEYS,
    generic('1.0.0', 'Determines whether one or more keys exist.'),
    exists,
  ),
  spec(
    'type',
    2,
    ['readonly', 'fast'],
    FIRST_KEY,
    generic('1.0.0', 'Determines the type of value stored at a key.'),
    type,
  ),
  spec(
    'dbsize',
    1,
    ['readonly', 'fast'],
    NO_KEYS,
    server('1.0.0', 'Returns the number of keys in the database.'),
    dbsize,
  ),
  spec(
    'keys',
    2,
    ['readonly'],
    NO_KEYS,
    generic('1.0.0', 'Returns all key names that match a pattern.'),
    keys,
  ),
  spec(
    'scan',
    -2,
    ['readonly'],
    NO_KEYS,
    generic('2.8.0', 'Iterates over the key names in the database.'),
    scan,
  ),
  spec(
    'flushdb',
    -1,
    ['write'],
    NO_KEYS,
    server('1.0.0', 'Removes all keys from the current database.'),
    flushdb,
  ),
  spec('flushall', -1, ['write'], NO_KEYS, server('1.0.0', 'Removes all keys from all databases.'), flushdb),
];
