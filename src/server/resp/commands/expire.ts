// Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (with NX/XX/GT/LT), TTL, PTTL,
// EXPIRETIME, PEXPIRETIME, PERSIST; Redis 7 semantics and error texts (expire.c).
//
// A key's expiry is stored with its value (docs/format.md), so changing it rewrites the value:
// the commands are read-modify-writes through the write pipeline, which keeps them linearizable with
// every other write and holds their replies until the write is durable.
import { CommandError } from '../errors.js';
import { NOTIFY } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import { andThen, held, lower, type MaybePromise } from './args.js';
import { alreadyExpired, type ExpireUnit, expireCommandAt } from './expire-args.js';
import { notify } from './notify.js';
import { FIRST_KEY, spec } from './spec.js';

const generic = (since: string, summary: string) => ({ group: 'generic', since, summary });

interface ExpireFlags {
  nx: boolean;
  xx: boolean;
  gt: boolean;
  lt: boolean;
}

/** parseExpireFlags reads EXPIRE's NX/XX/GT/LT (Redis parseExtendedExpireArgumentsOrReply). */
function parseExpireFlags(args: Buffer[], from: number): ExpireFlags {
  const f: ExpireFlags = { nx: false, xx: false, gt: false, lt: false };
  for (let i = from; i < args.length; i++) {
    const a = lower(args[i]!);
    if (a === 'nx') f.nx = true;
    else if (a === 'xx') f.xx = true;
    else if (a === 'gt') f.gt = true;
    else if (a === 'lt') f.lt = true;
    else throw new CommandError(`ERR Unsupported option ${args[i]!.toString('latin1')}`);
  }
  if (f.nx && (f.xx || f.gt || f.lt)) {
    throw new CommandError('ERR NX and XX, GT or LT options at the same time are not compatible');
  }
  if (f.gt && f.lt) throw new CommandError('ERR GT and LT options at the same time are not compatible');
  return f;
}

/** conditionHolds applies NX/XX/GT/LT to the key's current expiry (undefined: none, i.e. infinite). */
function conditionHolds(f: ExpireFlags, current: number | undefined, when: number): boolean {
  if (f.nx && current !== undefined) return false;
  if (f.xx && current === undefined) return false;
  if (f.gt && (current === undefined || when <= current)) return false;
  if (f.lt && current !== undefined && when >= current) return false;
  return true;
}

function expire(unit: ExpireUnit, command: string) {
  return (ctx: CommandContext, args: Buffer[]): MaybePromise<Held> => {
    const flags = parseExpireFlags(args, 3);
    const db = ctx.server.db;
    const nowMs = db.clock.nowMs();
    const when = expireCommandAt(args[2]!, unit, nowMs, command);
    const past = alreadyExpired(when, nowMs);
    const updated = ctx.store.update(args[1]!, (current, currentExpiry, valueType) => {
      if (current === undefined || !conditionHolds(flags, currentExpiry, when)) return { result: 0 };
      if (past) return { result: 1, write: null };
      // Rewritten with its type: EXPIRE keeps a hash a hash.
      return { result: 1, write: current, expiresAt: when, valueType };
    });
    return andThen(updated, ({ result, durable }) => {
      // A time already past deletes the key: Redis reports `del` then, `expire` otherwise.
      if (result === 1) notify(ctx, durable, NOTIFY.generic, past ? 'del' : 'expire', args[1]!);
      return held(durable, (w) => w.integer(result));
    });
  };
}

/** ttl replies as Redis's ttlGenericCommand: -2 missing, -1 no expiry, else the time (rounded). */
function ttl(ms: boolean, absolute: boolean) {
  return (ctx: CommandContext, args: Buffer[]): MaybePromise<Held> =>
    andThen(ctx.store.readLatest(args[1]!), (latest) => {
      const db = ctx.server.db;
      const nowMs = db.clock.nowMs();
      let reply: number;
      if (latest.value === undefined) reply = -2;
      else if (latest.expiresAt === undefined) reply = -1;
      else {
        const t = Math.max(0, absolute ? latest.expiresAt : latest.expiresAt - nowMs);
        reply = ms ? t : Math.floor((t + 500) / 1000);
      }
      return held(latest.durable, (w) => w.integer(reply));
    });
}

function persist(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> {
  const updated = ctx.store.update(args[1]!, (current, expiresAt, valueType) =>
    current === undefined || expiresAt === undefined
      ? { result: 0 }
      : { result: 1, write: current, valueType },
  );
  return andThen(updated, ({ result, durable }) => {
    if (result === 1) notify(ctx, durable, NOTIFY.generic, 'persist', args[1]!);
    return held(durable, (w) => w.integer(result));
  });
}

const WRITE = ['write', 'fast'] as const;
const READ = ['readonly', 'fast'] as const;

export const EXPIRE_COMMANDS = [
  spec(
    'expire',
    -3,
    WRITE,
    FIRST_KEY,
    generic('1.0.0', 'Sets the expiration time of a key in seconds.'),
    expire('ex', 'expire'),
  ),
  spec(
    'pexpire',
    -3,
    WRITE,
    FIRST_KEY,
    generic('2.6.0', 'Sets the expiration time of a key in milliseconds.'),
    expire('px', 'pexpire'),
  ),
  spec(
    'expireat',
    -3,
    WRITE,
    FIRST_KEY,
    generic('1.2.0', 'Sets the expiration time of a key to a Unix timestamp.'),
    expire('exat', 'expireat'),
  ),
  spec(
    'pexpireat',
    -3,
    WRITE,
    FIRST_KEY,
    generic('2.6.0', 'Sets the expiration time of a key to a Unix milliseconds timestamp.'),
    expire('pxat', 'pexpireat'),
  ),
  spec(
    'ttl',
    2,
    READ,
    FIRST_KEY,
    generic('1.0.0', 'Returns the expiration time in seconds of a key.'),
    ttl(false, false),
  ),
  spec(
    'pttl',
    2,
    READ,
    FIRST_KEY,
    generic('2.6.0', 'Returns the expiration time in milliseconds of a key.'),
    ttl(true, false),
  ),
  spec(
    'expiretime',
    2,
    READ,
    FIRST_KEY,
    generic('7.0.0', 'Returns the expiration time of a key as a Unix timestamp.'),
    ttl(false, true),
  ),
  spec(
    'pexpiretime',
    2,
    READ,
    FIRST_KEY,
    generic('7.0.0', 'Returns the expiration time of a key as a Unix milliseconds timestamp.'),
    ttl(true, true),
  ),
  spec('persist', 2, WRITE, FIRST_KEY, generic('2.2.0', 'Removes the expiration time of a key.'), persist),
];
