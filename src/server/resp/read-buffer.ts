// Reading a socket into a reused buffer (issue 14): the bytes of every read land in one buffer
// the server owns, instead of a fresh allocation per read wrapped in a stream chunk.
//
// Why: at `-P 1` a command is one socket read. Node's default path allocates a 64 KiB backing
// store per read (shrunk to the bytes read), wraps it in a Buffer, pushes it through the Readable
// machinery and emits 'data'. Node's own `onread` option (net.connect's `{ buffer, callback }`)
// skips all of that: libuv reads into the given buffer and the callback gets the byte count. A
// minimal RESP server measured about 2 µs of CPU less per PING with it (15 -> 13 µs, redis-benchmark
// -P 1, docs/benchmarks.md). But `onread` is only offered for sockets the program creates, not for
// those a net.Server accepts; so it is switched on here for an accepted socket the way the Socket
// constructor does it: the socket's own kBuffer / kBufferCb fields (found by their symbols'
// descriptions) and the handle's useUserBuffer. Node's pause(), resume(), EOF and errors all
// honour those fields (net.js). When this Node does not have them, lendReads returns false and
// the caller reads 'data' chunks as before.
//
// Borrowed bytes: the buffer is read into again at the next read of any connection of the server,
// so the callback's bytes are valid only during the call. Whatever outlives it must be copied
// (connection.ts: the parser's unparsed rest, arguments of commands that may keep them).
import type { RespSocket } from './socket.js';

/** READ_BUFFER_BYTES: the shared read buffer's size (libuv's suggested size for a TCP read). */
export const READ_BUFFER_BYTES = 64 * 1024;

interface ReadSymbols {
  readonly buffer: symbol;
  readonly callback: symbol;
  readonly generator: symbol | undefined;
}

let symbols: ReadSymbols | null | undefined;

/** readSymbols finds the Socket fields behind `onread` on `socket`, or null when there are none. */
function readSymbols(socket: RespSocket): ReadSymbols | null {
  if (symbols !== undefined) return symbols;
  const own = Object.getOwnPropertySymbols(socket);
  const named = (name: string): symbol | undefined => own.find((s) => s.description === name);
  const buffer = named('kBuffer');
  const callback = named('kBufferCb');
  symbols =
    buffer === undefined || callback === undefined
      ? null
      : { buffer, callback, generator: named('kBufferGen') };
  return symbols;
}

/** The part of a TCP handle used here (StreamBase::UseUserBuffer). */
interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

/**
 * lendReads makes every later read of `socket` land in `buffer` and calls `onRead(buffer, n)`
 * with the byte count, instead of emitting 'data'. Call it before the socket has read anything
 * (in the server's 'connection' listener). Returns false, changing nothing, when this Node's
 * sockets do not support it.
 */
export function lendReads(
  socket: RespSocket,
  buffer: Buffer,
  onRead: (buffer: Buffer, bytes: number) => void,
): boolean {
  // The handle first: a socket that is not a TCP socket of this Node (the simulator's) must not
  // decide, for the process, whether this Node's sockets have the fields (readSymbols caches it).
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (handle === undefined || handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const found = readSymbols(socket);
  if (found === null) return false;
  const fields = socket as unknown as Record<symbol, unknown>;
  // The Socket constructor sets all three (null when no onread was given): a socket without
  // them is not the Socket this code was written against.
  if (!(found.buffer in fields) || !(found.callback in fields)) return false;
  fields[found.buffer] = buffer;
  // net.js stops reading when the callback returns false; undefined keeps it going.
  fields[found.callback] = (bytes: number, buf: Buffer): void => onRead(buf, bytes);
  if (found.generator !== undefined) fields[found.generator] = null;
  handle.useUserBuffer(buffer);
  return true;
}
