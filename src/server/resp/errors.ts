// CommandError: a command's error reply. Handlers throw it; the connection writes `-<message>`.
// Messages follow Redis's texts exactly (clients and tests match on them).
import { CairnError } from '../../storage/errors.js';
import { TxnConflictError } from '../../txn/errors.js';

export class CommandError extends Error {
  override name = 'CommandError';
}

export const ERR_SYNTAX = 'ERR syntax error';
export const ERR_NOT_INTEGER = 'ERR value is not an integer or out of range';
export const ERR_OVERFLOW = 'ERR increment or decrement would overflow';
export const ERR_NOAUTH = 'NOAUTH Authentication required.';
export const ERR_WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';
/** ERR_WRONGTYPE: Redis's reply to a command on a key of another type (a string command on a hash). */
export const ERR_WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

/**
 * checkType throws WRONGTYPE unless a present value has the type the command works on
 * (storage/value-type.ts). One number compared: the string commands' hot path allocates nothing.
 */
export function checkType(value: Buffer | undefined, valueType: number, want: number): void {
  if (value !== undefined && valueType !== want) throw new CommandError(ERR_WRONGTYPE);
}

/**
 * replyTooLarge: the refusal of a command whose reply would pass the server's reply limit
 * (limits.ts, REPLY_BYTES_MAX).
 */
export function replyTooLarge(what: string, limitBytes: number, hint: string): CommandError {
  return new CommandError(`ERR reply too large: ${what} pass ${limitBytes} bytes; ${hint}`);
}

export function wrongArity(name: string): CommandError {
  return new CommandError(`ERR wrong number of arguments for '${name}' command`);
}

export function unknownSubcommand(sub: Buffer, command: string): CommandError {
  return new CommandError(
    `ERR unknown subcommand '${sub.toString('latin1').slice(0, 128)}'. Try ${command.toUpperCase()} HELP.`,
  );
}

/** errorReply maps anything a handler threw to the text of an error reply. */
export function errorReply(err: unknown): string {
  if (err instanceof CommandError) return err.message;
  // Conflicts get their own error code: clients retry on it (as on Redis's EXECABORT or nil).
  if (err instanceof TxnConflictError) return `CONFLICT ${err.message}`;
  // A replicated store's errors keep their own codes: CLUSTERDOWN (did not take effect, retry)
  // and UNCERTAIN (may have taken effect): clients must tell them apart (docs/cluster.md).
  if (err instanceof CairnError && err.code === 'CLUSTER_DOWN') return `CLUSTERDOWN ${err.message}`;
  if (err instanceof CairnError && err.code === 'UNCERTAIN') return `UNCERTAIN ${err.message}`;
  if (err instanceof CairnError && err.code === 'WRONG_TYPE') return ERR_WRONGTYPE;
  // Storage's operating errors (limits, closed store, I/O) keep their message under ERR.
  if (err instanceof CairnError) return `ERR ${err.message}`;
  return 'ERR internal error';
}
