// The payloads of `snapshot` frames (docs/peer-protocol.md, "Snapshots"). A snapshot travels on a
// connection of its own, after the usual handshake:
//
//   snapshot := part u8 | body
//   begin    := 1 | messages          (exactly one MsgSnap, the `raft` batch encoding)
//   chunk    := 2 | u8*n              (1 <= n <= SNAPSHOT_CHUNK_BYTES archive bytes)
//   end      := 3                     (the archive is complete)
//   ack      := 4 | status u8 | reason str   (receiver to sender: 0 staged, 1 failed)
//
// The sender writes begin, chunk*, end; the receiver answers one ack and closes.
import type { Message } from '../raft/types.js';
import { assert } from '../stdx/assert.js';
import { PeerProtocolError } from './errors.js';
import { decodeRefuse, encodeRefuse } from './handshake.js';
import { decodeMessages, encodeMessages } from './message-codec.js';
import { encodeFrame, FRAME_HEADER_BYTES, sealFrame } from './peer-frame.js';

/**
 * SNAPSHOT_CHUNK_BYTES bounds the archive bytes of one chunk frame, and so what one frame of a
 * snapshot stream makes either side hold: small enough to keep the receiver's buffer low, large
 * enough that the 10 bytes of framing per chunk are noise.
 */
export const SNAPSHOT_CHUNK_BYTES = 256 * 1024;

/** SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES: the frame limit of a snapshot stream after its begin frame. */
export const SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES = 1 + SNAPSHOT_CHUNK_BYTES;

const PART_BEGIN = 1;
const PART_CHUNK = 2;
const PART_END = 3;
const PART_ACK = 4;

const ACK_OK = 0;
const ACK_FAILED = 1;

export type SnapshotPart =
  | { readonly part: 'begin'; readonly message: Message }
  /** bytes is a copy: the caller may keep it past the next frame. */
  | { readonly part: 'chunk'; readonly bytes: Buffer }
  | { readonly part: 'end' }
  | { readonly part: 'ack'; readonly ok: boolean; readonly reason: string };

/** encodeSnapshotBegin returns the begin frame announcing MsgSnap `m`. */
export function encodeSnapshotBegin(m: Message): Buffer {
  assert(m.type === 'MsgSnap', `a snapshot stream begins with a MsgSnap, not ${m.type}`);
  const batch = encodeMessages([m]);
  return withPart(PART_BEGIN, batch);
}

/**
 * encodeSnapshotChunks returns the chunk frames carrying `bytes` (split at SNAPSHOT_CHUNK_BYTES),
 * each a fresh buffer: `bytes` is not referenced afterwards.
 */
export function encodeSnapshotChunks(bytes: Uint8Array): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += SNAPSHOT_CHUNK_BYTES) {
    const n = Math.min(SNAPSHOT_CHUNK_BYTES, bytes.length - at);
    const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + n);
    frame[FRAME_HEADER_BYTES] = PART_CHUNK;
    frame.set(bytes.subarray(at, at + n), FRAME_HEADER_BYTES + 1);
    sealFrame(frame, 'snapshot');
    frames.push(frame);
  }
  return frames;
}

export function encodeSnapshotEnd(): Buffer {
  return encodeFrame('snapshot', Uint8Array.of(PART_END));
}

/** encodeSnapshotAck: the receiver's answer; a reason longer than a handshake string is cut short. */
export function encodeSnapshotAck(ok: boolean, reason: string): Buffer {
  return withPart(PART_ACK, Buffer.concat([Uint8Array.of(ok ? ACK_OK : ACK_FAILED), encodeRefuse(reason)]));
}

/** decodeSnapshotPart decodes a snapshot frame's payload; anything malformed is a PeerProtocolError. */
export function decodeSnapshotPart(payload: Uint8Array): SnapshotPart {
  if (payload.length === 0) throw new PeerProtocolError('empty snapshot frame');
  const part = payload[0] as number;
  const body = payload.subarray(1);
  switch (part) {
    case PART_BEGIN: {
      const msgs = decodeMessages(body);
      const m = msgs[0];
      if (msgs.length !== 1 || m === undefined || m.type !== 'MsgSnap') {
        throw new PeerProtocolError(
          `a snapshot stream must begin with one MsgSnap (got ${msgs.map((x) => x.type).join(', ') || 'nothing'})`,
        );
      }
      return { part: 'begin', message: m };
    }
    case PART_CHUNK:
      if (body.length === 0 || body.length > SNAPSHOT_CHUNK_BYTES)
        throw new PeerProtocolError(`a snapshot chunk of ${body.length} bytes`);
      return { part: 'chunk', bytes: Buffer.from(body) }; // a copy: the frame is a view of the reader's buffer
    case PART_END:
      if (body.length !== 0) throw new PeerProtocolError(`${body.length} bytes after a snapshot end`);
      return { part: 'end' };
    case PART_ACK: {
      const status = body[0];
      if (status !== ACK_OK && status !== ACK_FAILED)
        throw new PeerProtocolError(`a snapshot ack with status ${String(status)}`);
      return { part: 'ack', ok: status === ACK_OK, reason: decodeRefuse(body.subarray(1)).reason };
    }
    default:
      throw new PeerProtocolError(`unknown snapshot frame part ${part}`);
  }
}

function withPart(part: number, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + body.length);
  frame[FRAME_HEADER_BYTES] = part;
  frame.set(body, FRAME_HEADER_BYTES + 1);
  sealFrame(frame, 'snapshot');
  return frame;
}
