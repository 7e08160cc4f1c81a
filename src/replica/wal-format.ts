// The on-disk format of the Raft log (the WAL): segment file names, the segment header and the
// frames, with their encoders and decoders. docs/wal.md gives the grammar; this file is its code.
//
// Every number is little-endian. Every frame starts 8-byte aligned and is padded with zeros to a
// multiple of 8, so that a frame header never straddles a 512-byte sector boundary and a zeroed
// (never written) region reads as the "end of data" frame. Decoders trust nothing: each length is
// checked against a named limit and against the bytes that are actually there before anything is
// sliced, and payloads are returned as views of the buffer read from the file (no allocation
// follows from a length field).
import type { ConfState, Entry, EntryType, HardState, NodeId, Snapshot } from '../raft/types.js';
import { assert } from '../stdx/assert.js';
import { crc32cRange } from '../stdx/crc32c.js';
import { readSafeU64LE, readU32LE, writeU64LE } from '../stdx/u64.js';

/** SEGMENT_MAGIC opens every segment file: "CairnWAL" in ASCII. */
export const SEGMENT_MAGIC = new Uint8Array([0x43, 0x61, 0x69, 0x72, 0x6e, 0x57, 0x41, 0x4c]);
/** WAL_FORMAT_VERSION: bumped on any incompatible change; a reader refuses other versions. */
export const WAL_FORMAT_VERSION = 1;
/** SEGMENT_HEADER_BYTES: magic 8 | version u32 | 0 u32 | seq u64 | firstIndex u64 | crc u32 | 0 u32. */
export const SEGMENT_HEADER_BYTES = 40;
/** FRAME_ALIGN: frames start at, and are padded to, multiples of this. */
export const FRAME_ALIGN = 8;
/** FRAME_HEADER_BYTES: crc32c u32 | type u8 | 0 u8[3] | payload length u32 | 0 u32. */
export const FRAME_HEADER_BYTES = 16;
/** MAX_ENTRY_BYTES bounds one entry's data (a proposal); larger ones are refused at save. */
export const MAX_ENTRY_BYTES = 64 * 1024 * 1024;
/** MAX_SNAPSHOT_DATA_BYTES bounds a snapshot marker's data: it names a manifest, it is not the state. */
export const MAX_SNAPSHOT_DATA_BYTES = 1024 * 1024;
/** MAX_CONF_NODES bounds each node list of a ConfState (Raft groups have a handful of members). */
export const MAX_CONF_NODES = 1024;
/** ENTRY_FIXED_BYTES: index u64 | term u64 | entry type u8, before the entry's data. */
export const ENTRY_FIXED_BYTES = 17;
/** HARD_STATE_BYTES: term u64 | vote u64 | commit u64. */
export const HARD_STATE_BYTES = 24;
/** COMMIT_BYTES: batch crc32c u32 | 0 u32. */
export const COMMIT_BYTES = 8;
/** SNAPSHOT_FIXED_BYTES: the snapshot marker before its node ids and data (see encodeMarker). */
export const SNAPSHOT_FIXED_BYTES = 56;
/** MAX_FRAME_PAYLOAD_BYTES: no frame payload is longer (an entry frame with the largest data). */
export const MAX_FRAME_PAYLOAD_BYTES = ENTRY_FIXED_BYTES + MAX_ENTRY_BYTES;

/** FRAME_TYPE codes as stored; 0 is never used, so a zeroed header is not a frame. */
const FRAME_TYPE = { entry: 1, hardState: 2, snapshot: 3, commit: 4 } as const;
const ENTRY_TYPE: Record<EntryType, number> = { normal: 0, confChange: 1 };
/** MARKER_RESET: the marker replaces the whole log (a snapshot installed from the leader). */
const MARKER_RESET = 1;

/** LogPosition is an (index, term) pair. */
export interface LogPosition {
  readonly index: number;
  readonly term: number;
}

/**
 * SnapshotMarker records the latest snapshot and where the retained log starts (logStart, the
 * "dummy" entry: firstIndex() - 1). reset says the log was replaced (MemoryStorage.applySnapshot);
 * otherwise entries after logStart are kept (createSnapshot, compact).
 */
export interface SnapshotMarker {
  readonly snapshot: Snapshot;
  readonly logStart: LogPosition;
  readonly reset: boolean;
}

export type WalFrame =
  | { readonly type: 'entry'; readonly entry: Entry }
  | { readonly type: 'hardState'; readonly hardState: HardState }
  | { readonly type: 'snapshot'; readonly marker: SnapshotMarker }
  | { readonly type: 'commit'; readonly batchCrc: number };

// ---- segment names and headers ----

const SEGMENT_NAME = /^([0-9a-f]{16})-([0-9]{20})\.wal$/;

/** segmentName is `<seq:016x>-<firstIndex:020>.wal`; the names sort in sequence order. */
export function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${String(firstIndex).padStart(20, '0')}.wal`;
}

/** parseSegmentName reads a segment file name, or undefined for any other name. */
export function parseSegmentName(name: string): { seq: number; firstIndex: number } | undefined {
  const m = SEGMENT_NAME.exec(name);
  if (m === null) return undefined;
  const seq = Number.parseInt(m[1] as string, 16);
  const firstIndex = Number(m[2]);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { seq, firstIndex };
}

/** encodeSegmentHeader returns a new segment's header. */
export function encodeSegmentHeader(seq: number, firstIndex: number): Uint8Array {
  const out = new Uint8Array(SEGMENT_HEADER_BYTES);
  out.set(SEGMENT_MAGIC, 0);
  writeU32(out, WAL_FORMAT_VERSION, 8);
  writeU64LE(out, seq, 16);
  writeU64LE(out, firstIndex, 24);
  writeU32(out, crc32cRange(out, 0, 32), 32);
  return out;
}

/** decodeSegmentHeader checks a segment header; it returns why it is bad as a string. */
export function decodeSegmentHeader(buf: Uint8Array): { seq: number; firstIndex: number } | string {
  if (buf.length < SEGMENT_HEADER_BYTES) return `short header (${buf.length} bytes)`;
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) if (buf[i] !== SEGMENT_MAGIC[i]) return 'bad magic';
  if (readU32LE(buf, 32) !== crc32cRange(buf, 0, 32)) return 'header checksum mismatch';
  const version = readU32LE(buf, 8);
  if (version !== WAL_FORMAT_VERSION) return `unknown format version ${version}`;
  if (readU32LE(buf, 12) !== 0 || readU32LE(buf, 36) !== 0) return 'nonzero reserved header field';
  const seq = readSafeU64LE(buf, 16);
  const firstIndex = readSafeU64LE(buf, 24);
  if (seq === undefined || firstIndex === undefined) return 'header number out of range';
  return { seq, firstIndex };
}

// ---- frames ----

/** padded rounds a payload length up to FRAME_ALIGN. */
export function padded(n: number): number {
  return Math.ceil(n / FRAME_ALIGN) * FRAME_ALIGN;
}

function payloadBytes(frame: WalFrame): number {
  switch (frame.type) {
    case 'entry':
      return ENTRY_FIXED_BYTES + frame.entry.data.length;
    case 'hardState':
      return HARD_STATE_BYTES;
    case 'commit':
      return COMMIT_BYTES;
    case 'snapshot': {
      const cs = frame.marker.snapshot.metadata.confState;
      const nodes = cs.voters.length + cs.learners.length + cs.votersOutgoing.length + cs.learnersNext.length;
      return SNAPSHOT_FIXED_BYTES + 8 * nodes + frame.marker.snapshot.data.length;
    }
  }
}

/** frameBytes is the size of a frame on disk, header and padding included. */
export function frameBytes(frame: WalFrame): number {
  return FRAME_HEADER_BYTES + padded(payloadBytes(frame));
}

/**
 * checkFrameLimits asserts what the encoder relies on; the caller (DiskLog.save) turns a
 * too-large entry into a typed error before it gets here.
 */
function checkFrameLimits(frame: WalFrame): void {
  if (frame.type === 'entry') {
    assert(frame.entry.data.length <= MAX_ENTRY_BYTES, `entry ${frame.entry.index} exceeds MAX_ENTRY_BYTES`);
  } else if (frame.type === 'snapshot') {
    const { snapshot } = frame.marker;
    const cs = snapshot.metadata.confState;
    assert(snapshot.data.length <= MAX_SNAPSHOT_DATA_BYTES, 'snapshot data exceeds MAX_SNAPSHOT_DATA_BYTES');
    for (const list of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) {
      assert(list.length <= MAX_CONF_NODES, 'conf state exceeds MAX_CONF_NODES');
    }
  }
}

/**
 * encodeBatch returns the frames followed by a commit frame whose crc32c covers every byte of the
 * frames before it, as one buffer to be written with one File.write. The bytes are copied in.
 */
export function encodeBatch(frames: readonly WalFrame[]): Uint8Array {
  let size = FRAME_HEADER_BYTES + padded(COMMIT_BYTES);
  for (const f of frames) {
    checkFrameLimits(f);
    size += frameBytes(f);
  }
  const out = new Uint8Array(size); // zero-filled: padding and reserved fields are zeros
  let at = 0;
  for (const f of frames) at = writeFrame(out, at, f);
  const batchCrc = crc32cRange(out, 0, at);
  at = writeFrame(out, at, { type: 'commit', batchCrc });
  assert(at === size, 'encodeBatch: size mismatch');
  return out;
}

/** writeFrame encodes one frame at out[at..] (zeroed) and returns where the next one starts. */
function writeFrame(out: Uint8Array, at: number, frame: WalFrame): number {
  const len = payloadBytes(frame);
  const p = at + FRAME_HEADER_BYTES;
  out[at + 4] = FRAME_TYPE[frame.type];
  writeU32(out, len, at + 8);
  switch (frame.type) {
    case 'entry': {
      const e = frame.entry;
      writeU64LE(out, e.index, p);
      writeU64LE(out, e.term, p + 8);
      out[p + 16] = ENTRY_TYPE[e.type];
      out.set(e.data, p + ENTRY_FIXED_BYTES);
      break;
    }
    case 'hardState':
      writeU64LE(out, frame.hardState.term, p);
      writeU64LE(out, frame.hardState.vote, p + 8);
      writeU64LE(out, frame.hardState.commit, p + 16);
      break;
    case 'commit':
      writeU32(out, frame.batchCrc, p);
      break;
    case 'snapshot':
      encodeMarker(out, p, frame.marker);
      break;
  }
  const end = p + padded(len);
  writeU32(out, crc32cRange(out, at + 4, end), at);
  return end;
}

/**
 * encodeMarker: index u64 | term u64 | logStart index u64 | logStart term u64 | flags u8 |
 * autoLeave u8 | 0 u16 | data length u32 | voters, learners, votersOutgoing, learnersNext counts
 * u32 each | the node ids, u64 each, in that order | data.
 */
function encodeMarker(out: Uint8Array, p: number, m: SnapshotMarker): void {
  const { metadata, data } = m.snapshot;
  const cs = metadata.confState;
  writeU64LE(out, metadata.index, p);
  writeU64LE(out, metadata.term, p + 8);
  writeU64LE(out, m.logStart.index, p + 16);
  writeU64LE(out, m.logStart.term, p + 24);
  out[p + 32] = m.reset ? MARKER_RESET : 0;
  out[p + 33] = cs.autoLeave ? 1 : 0;
  writeU32(out, data.length, p + 36);
  const lists = [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext];
  let at = p + 40;
  for (const list of lists) {
    writeU32(out, list.length, at);
    at += 4;
  }
  for (const list of lists) {
    for (const id of list) {
      writeU64LE(out, id, at);
      at += 8;
    }
  }
  out.set(data, at);
}

/** DecodedFrame is what decodeFrame found at an offset. */
export type DecodedFrame =
  | { readonly kind: 'frame'; readonly frame: WalFrame; readonly end: number }
  /** end: a zeroed frame header, the end of written data. */
  | { readonly kind: 'end' }
  /** bad: the bytes do not form a valid frame (torn, or damaged); reason says how. */
  | { readonly kind: 'bad'; readonly reason: string };

/**
 * decodeFrame decodes the frame at buf[at..limit). Payload bytes (entry and snapshot data) are
 * views of `buf`, not copies. It never allocates from a length field: a length is checked against
 * the frame type's limit and against limit - at before anything is read.
 */
export function decodeFrame(buf: Uint8Array, at: number, limit: number): DecodedFrame {
  assert(at % FRAME_ALIGN === 0 && limit <= buf.length, 'decodeFrame: bad position');
  if (limit - at < FRAME_HEADER_BYTES) return { kind: 'bad', reason: 'frame header cut short' };
  let zero = true;
  for (let i = at; i < at + FRAME_HEADER_BYTES; i++) {
    if (buf[i] !== 0) {
      zero = false;
      break;
    }
  }
  if (zero) return { kind: 'end' };
  const type = buf[at + 4] as number;
  const len = readU32LE(buf, at + 8);
  if (buf[at + 5] !== 0 || buf[at + 6] !== 0 || buf[at + 7] !== 0 || readU32LE(buf, at + 12) !== 0) {
    return { kind: 'bad', reason: 'nonzero reserved frame field' };
  }
  if (len > MAX_FRAME_PAYLOAD_BYTES) return { kind: 'bad', reason: `frame length ${len} over the limit` };
  const p = at + FRAME_HEADER_BYTES;
  const end = p + padded(len);
  if (end > limit) return { kind: 'bad', reason: `frame length ${len} runs past the end of the file` };
  if (readU32LE(buf, at) !== crc32cRange(buf, at + 4, end))
    return { kind: 'bad', reason: 'frame checksum mismatch' };
  for (let i = p + len; i < end; i++)
    if (buf[i] !== 0) return { kind: 'bad', reason: 'nonzero frame padding' };
  const frame = decodePayload(buf, type, p, len);
  if (typeof frame === 'string') return { kind: 'bad', reason: frame };
  return { kind: 'frame', frame, end };
}

function decodePayload(buf: Uint8Array, type: number, p: number, len: number): WalFrame | string {
  switch (type) {
    case FRAME_TYPE.entry: {
      if (len < ENTRY_FIXED_BYTES || len - ENTRY_FIXED_BYTES > MAX_ENTRY_BYTES) return 'bad entry length';
      const index = readSafeU64LE(buf, p);
      const term = readSafeU64LE(buf, p + 8);
      const t = buf[p + 16];
      if (index === undefined || term === undefined || index === 0) return 'entry index or term out of range';
      if (t !== ENTRY_TYPE.normal && t !== ENTRY_TYPE.confChange) return `unknown entry type ${t}`;
      // A view of the segment's buffer: the entry keeps the buffer read at open alive (no copy).
      const data = new Uint8Array(
        buf.buffer,
        buf.byteOffset + p + ENTRY_FIXED_BYTES,
        len - ENTRY_FIXED_BYTES,
      );
      const entryType: EntryType = t === ENTRY_TYPE.normal ? 'normal' : 'confChange';
      return { type: 'entry', entry: { index, term, type: entryType, data } };
    }
    case FRAME_TYPE.hardState: {
      if (len !== HARD_STATE_BYTES) return 'bad hard state length';
      const term = readSafeU64LE(buf, p);
      const vote = readSafeU64LE(buf, p + 8);
      const commit = readSafeU64LE(buf, p + 16);
      if (term === undefined || vote === undefined || commit === undefined) return 'hard state out of range';
      return { type: 'hardState', hardState: { term, vote, commit } };
    }
    case FRAME_TYPE.commit:
      if (len !== COMMIT_BYTES || readU32LE(buf, p + 4) !== 0) return 'bad commit frame';
      return { type: 'commit', batchCrc: readU32LE(buf, p) };
    case FRAME_TYPE.snapshot:
      return decodeMarker(buf, p, len);
    default:
      return `unknown frame type ${type}`;
  }
}

function decodeMarker(buf: Uint8Array, p: number, len: number): WalFrame | string {
  if (len < SNAPSHOT_FIXED_BYTES) return 'snapshot marker cut short';
  const index = readSafeU64LE(buf, p);
  const term = readSafeU64LE(buf, p + 8);
  const startIndex = readSafeU64LE(buf, p + 16);
  const startTerm = readSafeU64LE(buf, p + 24);
  if (index === undefined || term === undefined || startIndex === undefined || startTerm === undefined) {
    return 'snapshot marker out of range';
  }
  const flags = buf[p + 32] as number;
  const autoLeave = buf[p + 33] as number;
  if ((flags & ~MARKER_RESET) !== 0 || autoLeave > 1 || buf[p + 34] !== 0 || buf[p + 35] !== 0) {
    return 'bad snapshot marker flags';
  }
  const dataLen = readU32LE(buf, p + 36);
  const counts: number[] = [];
  let nodes = 0;
  for (let i = 0; i < 4; i++) {
    const n = readU32LE(buf, p + 40 + 4 * i);
    if (n > MAX_CONF_NODES) return 'conf state over MAX_CONF_NODES';
    counts.push(n);
    nodes += n;
  }
  // Both lengths are bounded above, so this sum is exact; it must match the payload exactly,
  // which bounds the node lists (allocated below) by the bytes actually present.
  if (dataLen > MAX_SNAPSHOT_DATA_BYTES || SNAPSHOT_FIXED_BYTES + 8 * nodes + dataLen !== len) {
    return 'snapshot marker lengths do not add up';
  }
  let at = p + SNAPSHOT_FIXED_BYTES;
  const lists: NodeId[][] = [];
  for (const n of counts) {
    const list: NodeId[] = [];
    for (let i = 0; i < n; i++) {
      const id = readSafeU64LE(buf, at);
      if (id === undefined) return 'node id out of range';
      list.push(id);
      at += 8;
    }
    lists.push(list);
  }
  const confState: ConfState = {
    voters: lists[0] as NodeId[],
    learners: lists[1] as NodeId[],
    votersOutgoing: lists[2] as NodeId[],
    learnersNext: lists[3] as NodeId[],
    autoLeave: autoLeave === 1,
  };
  const data = new Uint8Array(buf.buffer, buf.byteOffset + at, dataLen); // a view, as for entries
  return {
    type: 'snapshot',
    marker: {
      snapshot: { metadata: { index, term, confState }, data },
      logStart: { index: startIndex, term: startTerm },
      reset: (flags & MARKER_RESET) !== 0,
    },
  };
}

function writeU32(out: Uint8Array, n: number, at: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = (n >>> 24) & 0xff;
}
