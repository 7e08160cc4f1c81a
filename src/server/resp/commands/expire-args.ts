// Expiry arguments shared by SET, SETEX, PSETEX, GETEX and the EXPIRE family, with Redis's rules
// (t_string.c getExpireMillisecondsOrReply, expire.c expireGenericCommand) and error texts.
// Times are absolute ms since the Unix epoch on the store's clock (Db.clock).
import { EXPIRES_AT_MAX } from '../../../storage/limits.js';
import { CommandError } from '../errors.js';
import { INT64_MAX, INT64_MIN, int64Arg } from './args.js';

/** ExpireUnit: how an expire argument counts (relative or absolute, seconds or milliseconds). */
export type ExpireUnit = 'ex' | 'px' | 'exat' | 'pxat';

const MS_PER_SECOND = 1000n;

export function invalidExpireTime(command: string): CommandError {
  return new CommandError(`ERR invalid expire time in '${command}' command`);
}

function isSeconds(unit: ExpireUnit): boolean {
  return unit === 'ex' || unit === 'exat';
}

function isRelative(unit: ExpireUnit): boolean {
  return unit === 'ex' || unit === 'px';
}

/**
 * setExpireAt converts the argument of SET/GETEX's EX/PX/EXAT/PXAT (or SETEX/PSETEX) to an
 * absolute time. Redis requires it to be positive. A time beyond EXPIRES_AT_MAX (year 287,396)
 * is refused with the same error: the store keeps times as safe integers (a deviation only for
 * values Redis would accept up to 2^63 ms).
 */
export function setExpireAt(arg: Buffer, unit: ExpireUnit, nowMs: number, command: string): number {
  const n = int64Arg(arg);
  if (n <= 0n || (isSeconds(unit) && n > INT64_MAX / MS_PER_SECOND)) throw invalidExpireTime(command);
  let ms = isSeconds(unit) ? n * MS_PER_SECOND : n;
  if (isRelative(unit)) ms += BigInt(nowMs);
  if (ms > BigInt(EXPIRES_AT_MAX)) throw invalidExpireTime(command);
  return Number(ms);
}

/**
 * expireCommandAt converts the argument of EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT. Unlike SET's, it
 * may be zero or negative (the key is then deleted). Undefined means "already past" without a
 * representable time (below 0).
 */
export function expireCommandAt(arg: Buffer, unit: ExpireUnit, nowMs: number, command: string): number {
  let when = int64Arg(arg);
  if (isSeconds(unit)) {
    if (when > INT64_MAX / MS_PER_SECOND || when < INT64_MIN / MS_PER_SECOND)
      throw invalidExpireTime(command);
    when *= MS_PER_SECOND;
  }
  const base = isRelative(unit) ? BigInt(nowMs) : 0n;
  if (when > INT64_MAX - base) throw invalidExpireTime(command);
  when += base;
  if (when > BigInt(EXPIRES_AT_MAX)) throw invalidExpireTime(command);
  // Anything at or below zero is simply in the past; -1 keeps it a number the caller compares.
  return when < 0n ? -1 : Number(when);
}

/** alreadyExpired is Redis's checkAlreadyExpired: a time at or before now deletes the key. */
export function alreadyExpired(expiresAt: number, nowMs: number): boolean {
  return expiresAt <= nowMs;
}
