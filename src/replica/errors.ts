// The typed operating errors of the peer transport. A peer that sends bytes we cannot accept
// (damaged, truncated, hostile, or from an incompatible version) is an operating error: the
// connection is dropped and the process carries on. Programmer errors (sending a local message,
// a term that is not a safe integer) are assertions instead (src/stdx/assert.ts).

/** PeerProtocolError: bytes from a peer do not follow docs/peer-protocol.md. */
export class PeerProtocolError extends Error {
  override name = 'PeerProtocolError';
}

/** TransportStartError: the transport cannot start (address in use, invalid address). */
export class TransportStartError extends Error {
  override name = 'TransportStartError';
}
