// RespProtocolError: the bytes on the wire are not valid RESP (or exceed a limit in limits.ts).
// It is an operating error, not a bug: the peer sent garbage. A parser that threw one is
// poisoned: every later call throws the same error, because the stream position is lost. The
// server replies with `-${message}` and closes the connection, as Redis does.

export class RespProtocolError extends Error {
  override name = 'RespProtocolError';
}
