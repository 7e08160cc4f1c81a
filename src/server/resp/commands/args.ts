// Argument parsing shared by the command handlers, with Redis's rules and error texts.
import { CommandError, ERR_NOT_INTEGER, ERR_SYNTAX } from '../errors.js';
import { isMatchAll } from '../glob.js';
import type { Held } from '../types.js';

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
/** INT64_DIGITS_MAX: "-9223372036854775808" is 20 characters. */
const INT64_CHARS_MAX = 20;

/**
 * parseInt64 parses a signed 64-bit decimal exactly as Redis's string2ll: optional '-', digits,
 * no '+', no spaces, no leading zeros (except "0" itself). Undefined when it is not one.
 */
export function parseInt64(buf: Buffer): bigint | undefined {
  const len = buf.length;
  if (len === 0 || len > INT64_CHARS_MAX) return undefined;
  let i = 0;
  if (buf[0] === 0x2d) {
    if (len === 1) return undefined;
    i = 1;
  }
  if (buf[i] === 0x30 && len > i + 1) return undefined;
  if (buf[i] === 0x30 && i === 1) return undefined; // "-0"
  for (let j = i; j < len; j++) {
    const c = buf[j]!;
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const n = BigInt(buf.toString('latin1'));
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

/** int64Arg parses an integer argument or throws Redis's "not an integer" error. */
export function int64Arg(buf: Buffer): bigint {
  const n = parseInt64(buf);
  if (n === undefined) throw new CommandError(ERR_NOT_INTEGER);
  return n;
}

/** intArg is int64Arg as a Number, for indexes and counts (clamped to the safe range). */
export function intArg(buf: Buffer): number {
  const n = int64Arg(buf);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (n < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(n);
}

/** ScanOptions: MATCH and COUNT as the SCAN family takes them (pattern undefined: every name). */
export interface ScanOptions {
  pattern: Buffer | undefined;
  count: number;
}

/**
 * scanOption applies a MATCH or COUNT option (its lowercased name, its value) to `o` and says
 * whether it was one; a COUNT below 1 is a syntax error, as in Redis.
 */
export function scanOption(o: ScanOptions, opt: string, value: Buffer): boolean {
  if (opt === 'match') o.pattern = isMatchAll(value) ? undefined : value;
  else if (opt === 'count') {
    o.count = intArg(value);
    if (o.count < 1) throw new CommandError(ERR_SYNTAX);
  } else return false;
  return true;
}

/** is compares an argument with an option name, ignoring ASCII case. */
export function is(arg: Buffer, option: string): boolean {
  return arg.length === option.length && arg.toString('latin1').toLowerCase() === option;
}

/** lower is an argument as a lower-case string (option names, subcommands). */
export function lower(arg: Buffer): string {
  return arg.toString('latin1').toLowerCase();
}

/** held is a reply that waits for `durable` (sent at once when undefined). */
export function held(durable: Promise<void> | undefined, reply: Held['reply']): Held {
  return { durable, reply };
}

/** joinDurable waits for every promise given (undefined when none). */
export function joinDurable(promises: readonly (Promise<void> | undefined)[]): Promise<void> | undefined {
  const pending = promises.filter((p): p is Promise<void> => p !== undefined);
  if (pending.length === 0) return undefined;
  if (pending.length === 1) return pending[0];
  return Promise.all(pending).then(() => undefined);
}

/** MaybePromise: a value now, or later. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * andThen applies `f` to a value now, or once its promise resolves. Handlers built on it stay
 * synchronous over a synchronous KeyStore: a Lua script's redis.call runs them in the middle of
 * the script (src/server/resp/lua/script-store.ts), where nothing can be awaited.
 */
export function andThen<T, R>(value: MaybePromise<T>, f: (v: T) => MaybePromise<R>): MaybePromise<R> {
  return value instanceof Promise ? value.then(f) : f(value);
}
