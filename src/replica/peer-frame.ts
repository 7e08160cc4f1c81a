// Frames on a peer connection (docs/peer-protocol.md, "Frames"):
//
//   frame := length u32 | crc u32 | kind u8 | payload (length bytes)
//
// little-endian; crc is the CRC32C of kind and payload (the kind byte is covered too, so a flipped
// kind cannot turn a raft frame into a refusal). TCP already checksums segments, but only with a
// 16-bit sum that lets through a damaged segment now and then on a busy link; a frame that fails
// its CRC is a protocol error and the connection is dropped.
import { assert } from '../stdx/assert.js';
import { crc32cRange } from '../stdx/crc32c.js';
import { readU32LE } from '../stdx/u64.js';
import { PeerProtocolError } from './errors.js';

/** FRAME_HEADER_BYTES: length u32, crc u32, kind u8. */
export const FRAME_HEADER_BYTES = 9;

/**
 * MAX_PEER_FRAME_PAYLOAD_BYTES bounds one frame's payload, and so what a peer can make us buffer
 * for one frame. 16 MiB holds sixteen 1 MiB MsgApps (CLUSTER.md item 29) plus their headers; a
 * sender splits a larger batch over several frames. Snapshots travel in chunks of their own.
 */
export const MAX_PEER_FRAME_PAYLOAD_BYTES = 16 * 1024 * 1024 + 64 * 1024;

/** MAX_PEER_FRAME_BYTES: the largest frame on the wire, header included. */
export const MAX_PEER_FRAME_BYTES = FRAME_HEADER_BYTES + MAX_PEER_FRAME_PAYLOAD_BYTES;

/**
 * FrameKind says what a payload holds. Codes are stable wire values; 'snapshot' frames carry a
 * snapshot stream and its ack on a connection of their own (snapshot-frame.ts); 'status-request'
 * and 'status' or 'start-answer' are the start check's question and answer, one each on a
 * connection of their own (start-check.ts; 'status' answers askers built before 'start-answer');
 * 'ping' and 'pong' are the round-trip probes of a probe connection (peer-probe.ts).
 */
export type FrameKind =
  | 'hello'
  | 'welcome'
  | 'refuse'
  | 'raft'
  | 'snapshot'
  | 'status-request'
  | 'status'
  | 'start-answer'
  | 'ping'
  | 'pong';

const KIND_CODES: Readonly<Record<FrameKind, number>> = {
  hello: 1,
  welcome: 2,
  refuse: 3,
  raft: 4,
  snapshot: 5,
  'status-request': 6,
  status: 7,
  'start-answer': 8,
  ping: 9,
  pong: 10,
};

const KINDS_BY_CODE: ReadonlyMap<number, FrameKind> = new Map(
  (Object.entries(KIND_CODES) as [FrameKind, number][]).map(([kind, code]) => [code, kind]),
);

export interface PeerFrame {
  readonly kind: FrameKind;
  /** payload is a view of the reader's buffer: decode it (copying what is kept) before the next push. */
  readonly payload: Buffer;
}

/** encodeFrame returns the frame for `payload` as one fresh buffer (header and a copy of payload). */
export function encodeFrame(kind: FrameKind, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  sealFrame(out, kind);
  return out;
}

/**
 * sealFrame writes the header of a frame whose payload the caller has already written at
 * out[FRAME_HEADER_BYTES..]: this lets an encoder write the payload in place, with no copy.
 */
export function sealFrame(out: Buffer, kind: FrameKind): void {
  const length = out.length - FRAME_HEADER_BYTES;
  assert(length >= 0 && length <= MAX_PEER_FRAME_PAYLOAD_BYTES, `frame payload of ${length} bytes`);
  out.writeUInt32LE(length, 0);
  out[8] = KIND_CODES[kind];
  out.writeUInt32LE(crc32cRange(out, 8, out.length), 4);
}

/**
 * FrameReader reassembles frames from the chunks of a byte stream. push() adds a chunk; next()
 * returns the next complete frame, or undefined until more bytes arrive. It throws
 * PeerProtocolError for a frame announcing more than the current limit (checked as soon as its
 * header is in, before its payload is buffered), an unknown kind, or a failed CRC; after that the
 * stream is unusable and the connection should be dropped.
 *
 * The limit can change between frames (setMaxPayload): a connection accepts only small frames
 * until its handshake is done, so an unauthenticated peer cannot make us buffer 16 MiB.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  private failed = false;

  constructor(private maxPayloadBytes: number = MAX_PEER_FRAME_PAYLOAD_BYTES) {
    assert(maxPayloadBytes <= MAX_PEER_FRAME_PAYLOAD_BYTES, 'frame limit above MAX_PEER_FRAME_PAYLOAD_BYTES');
  }

  setMaxPayload(bytes: number): void {
    assert(bytes <= MAX_PEER_FRAME_PAYLOAD_BYTES, 'frame limit above MAX_PEER_FRAME_PAYLOAD_BYTES');
    this.maxPayloadBytes = bytes;
  }

  /** buffered is the number of bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.bufferedBytes;
  }

  /**
   * push adds a chunk. The reader keeps it by reference until its frames are returned: net.Socket
   * hands every 'data' event a Buffer of its own and never reuses it, so nothing is borrowed
   * here that could change; a caller that reuses its buffers must push copies.
   */
  push(chunk: Uint8Array): void {
    assert(!this.failed, 'FrameReader used after a protocol error');
    if (chunk.length === 0) return;
    this.chunks.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    );
    this.bufferedBytes += chunk.length;
  }

  next(): PeerFrame | undefined {
    assert(!this.failed, 'FrameReader used after a protocol error');
    if (this.bufferedBytes < FRAME_HEADER_BYTES) return undefined;
    const head = this.coalesce(FRAME_HEADER_BYTES);
    const length = readU32LE(head, 0);
    if (length > this.maxPayloadBytes) {
      this.failed = true;
      throw new PeerProtocolError(`frame of ${length} bytes exceeds the limit of ${this.maxPayloadBytes}`);
    }
    const code = head[8] as number;
    const kind = KINDS_BY_CODE.get(code);
    if (kind === undefined) {
      this.failed = true;
      throw new PeerProtocolError(`unknown frame kind ${code}`);
    }
    const total = FRAME_HEADER_BYTES + length;
    if (this.bufferedBytes < total) return undefined;
    const frame = this.take(total);
    const crc = readU32LE(frame, 4);
    if (crc32cRange(frame, 8, total) !== crc) {
      this.failed = true;
      throw new PeerProtocolError(`frame of kind ${kind} and ${length} bytes fails its CRC`);
    }
    return { kind, payload: frame.subarray(FRAME_HEADER_BYTES) };
  }

  /** coalesce makes the first chunk at least n bytes long (n <= bufferedBytes) and returns it. */
  private coalesce(n: number): Buffer {
    let first = this.chunks[0] as Buffer;
    if (first.length >= n) return first;
    let count = 0;
    let size = 0;
    while (size < n) size += (this.chunks[count++] as Buffer).length;
    first = Buffer.concat(this.chunks.slice(0, count), size);
    this.chunks.splice(0, count, first);
    return first;
  }

  /** take removes and returns the first n bytes (n <= bufferedBytes). */
  private take(n: number): Buffer {
    const first = this.coalesce(n);
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.bufferedBytes -= n;
    return out;
  }
}
