// Hint files: a compact index of one data file, so that start-up reads keys and locations without
// reading values (Bitcask paper, "hint file"). Written by compaction for its outputs and by the
// engine for sealed data files (seal-hint.ts). Version 2, the compact format (issue 14), grammar
// as in docs/format.md, "Hint files":
//
//   hint_file := header | entry{entry_count} | tombstone{tombstone_count} | trailer
//   header    := magic "CAIRNHT2" | format u32 | data_file_id u32 | entry_count u32
//                | tombstone_count u32 | key_bytes u32 | seq_base u64
//   entry     := head varint | suffix_len varint | suffix | seq - seq_base varint
//                | zigzag(value_offset - previous value_offset) varint | value_len varint
//                | [expires_at varint] | [|create - seq| varint | version varint]
//   head      := shared << 3 | EXPIRES 1 | REVISION 2 | CREATE_ABOVE_SEQ 4
//   tombstone := key_len varint | key | seq - seq_base varint
//   trailer   := data_file_bytes u32 | crc32c u32        -- crc over every byte before it
//
// Entries are written in key order (both writers walk the key directory), so a key shares most
// of its bytes with the one before it: an entry stores only the suffix after the shared prefix.
// Every number is a LEB128 varint relative to something close: the file's smallest seq, the
// previous entry's value offset, the entry's own seq for its create. A 16-byte key with a
// revision takes about 15 bytes instead of version 1's 48 (hint-v1.ts), so the open reads,
// checksums and decodes a third as much, and the directory holds less.
//
// Version-1 files (builds before this one) are still read (hint-v1.ts). A file of any other magic
// is refused, and recovery scans its data file (slower, never wrong); an older build refuses a
// version-2 file by its magic the same way. A hint file that is short, fails its CRC or any field
// check, or names another data file or size is refused likewise.
import { assert } from '../../stdx/assert.js';
import { crc32c } from '../../stdx/crc32c.js';
import type { TimeSlice } from '../../stdx/time-slice.js';
import { readSafeU64LE, writeU64LE } from '../../stdx/u64.js';
import { KEY_BYTES_MAX } from '../limits.js';
import { decodeHintV1At, HINT_V1_MAGIC, hintEntryCountV1, hintRecordedSizeV1 } from './hint-v1.js';
import { recordBytes } from './record.js';

/** HINT_MAGIC: the first 8 bytes of a version-2 hint file (version 1's were "CAIRNHNT"). */
export const HINT_MAGIC = Buffer.from('CAIRNHT2', 'latin1');
/** HINT_MAGIC_BYTES: the magic's length, the same in every version. */
const HINT_MAGIC_BYTES = 8;
const HINT_HEADER_BYTES = 36;
const HINT_TRAILER_BYTES = 8;
/** Header field offsets. */
const H_FORMAT = 8;
const H_FILE_ID = 12;
const H_ENTRY_COUNT = 16;
const H_TOMBSTONE_COUNT = 20;
const H_KEY_BYTES = 24;
const H_SEQ_BASE = 28;
/** Flags in an entry's head (below the shared prefix length). */
const F_EXPIRES = 1;
const F_REVISION = 2;
/** F_CREATE_ABOVE_SEQ: create - seq follows instead of seq - create (no record this build writes). */
const F_CREATE_ABOVE_SEQ = 4;
const F_BITS = 3;
const F_MASK = (1 << F_BITS) - 1;
/** HEAD_MAX: a head is below this (shared <= KEY_BYTES_MAX), so it decodes with bit operations. */
const HEAD_MAX = (KEY_BYTES_MAX + 1) << F_BITS;
/** ENTRY_BYTES_MIN: the shortest entry (head, suffix length, seq, offset, value length: a byte each). */
const ENTRY_BYTES_MIN = 5;
/** TOMBSTONE_BYTES_MIN: the shortest tombstone (key length and seq: a byte each). */
const TOMBSTONE_BYTES_MIN = 2;
/** VARINT_BYTES_MAX: a varint holds a safe integer (53 bits) in at most 8 bytes of 7 bits. */
const VARINT_BYTES_MAX = 8;
/**
 * ENTRY_FIELDS_BYTES_MAX: an entry's bytes besides its suffix at most: head (3), suffix length
 * (3), seq (8), offset (5), value length (5), expiry (8), create (8), version (5).
 */
const ENTRY_FIELDS_BYTES_MAX = 45;
/** TOMBSTONE_FIELDS_BYTES_MAX: a tombstone's bytes besides its key at most: key length (3), seq (8). */
const TOMBSTONE_FIELDS_BYTES_MAX = 11;
/** U32_MAX: value offsets and lengths, versions are u32 fields of records. */
const U32_MAX = 0xffff_ffff;
/** GROW_MIN: a writer's columns start this long and double. */
const GROW_MIN = 256;
/** SHARED_COPY_MAX: a shared prefix up to this long is copied byte by byte (a builtin call costs more). */
const SHARED_COPY_MAX = 32;

// A head takes at most 3 varint bytes and decodes in int32 arithmetic; ENTRY_FIELDS_BYTES_MAX
// counts 3 for it and for a suffix length, and 8 for every field that may reach 2^53.
assert(HEAD_MAX <= 2 ** 21 && KEY_BYTES_MAX < 2 ** 21, 'hint entry head sizes');
assert(Number.MAX_SAFE_INTEGER < 2 ** (7 * VARINT_BYTES_MAX), 'a varint holds every safe integer');
assert(ENTRY_FIELDS_BYTES_MAX === 3 + 3 + VARINT_BYTES_MAX * 3 + 5 + 5 + 5, 'entry fields bound');

export interface HintEntry {
  readonly key: Uint8Array;
  readonly seq: number;
  readonly valueOffset: number;
  readonly valueLen: number;
  readonly expiresAt: number | undefined;
  /** create, version: the record's revision fields, 0 for a record without them. */
  readonly create: number;
  readonly version: number;
}

/** ENCODE_CLOCK_EVERY: entries HintWriter.finishInSteps encodes between two looks at the clock. */
const ENCODE_CLOCK_EVERY = 1024;

/** Encoding: where an encoding of a HintWriter's file stands (finishInSteps). */
interface Encoding {
  readonly out: Buffer;
  pos: number;
  readonly seqBase: number;
  /** next: the entry to encode next. */
  next: number;
  prevStart: number;
  prevLen: number;
  prevOffset: number;
}

/**
 * HintWriter accumulates the entries and tombstones of one data file and encodes the hint file
 * at `finish` (the seq base is the smallest seq of all, known only then). Entries should come
 * in ascending key order, as both writers add them: any order decodes the same, only larger.
 */
export class HintWriter {
  private count = 0;
  /** keys: the entries' keys back to back (copies: add's key is borrowed); keyEnd[i] ends entry i's. */
  private keys = Buffer.allocUnsafe(GROW_MIN * 16);
  private keysUsed = 0;
  private keyEnd = new Uint32Array(GROW_MIN);
  /** u32s: valueOffset, valueLen, version per entry. */
  private u32s = new Uint32Array(GROW_MIN * 3);
  /** f64s: seq, create, expiresAt (NaN: none) per entry. */
  private f64s = new Float64Array(GROW_MIN * 3);
  private readonly tombstones: { key: Buffer; seq: number }[] = [];

  constructor(
    private readonly format: number,
    private readonly dataFileId: number,
  ) {}

  add(
    key: Uint8Array,
    seq: number,
    valueOffset: number,
    valueLen: number,
    expiresAt: number | undefined,
    create: number,
    version: number,
  ): void {
    // Every number becomes a varint: a value out of range would be written wrongly, a bug.
    assert(
      isU53(seq) && isU53(create) && (expiresAt === undefined || isU53(expiresAt)),
      'hint entry field out of range',
    );
    if (this.count === this.keyEnd.length) this.grow();
    if (this.keysUsed + key.length > this.keys.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.keys.length * 2, this.keysUsed + key.length));
      this.keys.copy(grown, 0, 0, this.keysUsed);
      this.keys = grown;
    }
    this.keys.set(key, this.keysUsed);
    this.keysUsed += key.length;
    const i = this.count++;
    this.keyEnd[i] = this.keysUsed;
    this.u32s[i * 3] = valueOffset;
    this.u32s[i * 3 + 1] = valueLen;
    this.u32s[i * 3 + 2] = version;
    this.f64s[i * 3] = seq;
    this.f64s[i * 3 + 1] = create;
    this.f64s[i * 3 + 2] = expiresAt ?? Number.NaN;
  }

  /** entries: the entries added so far (tombstones apart). */
  get entries(): number {
    return this.count;
  }

  /** entryKey: entry i's key, a view of the writer's copy, valid until the next add. */
  entryKey(i: number): Uint8Array {
    assert(i >= 0 && i < this.count, 'hint entry out of range');
    return this.keys.subarray(i === 0 ? 0 : (this.keyEnd[i - 1] as number), this.keyEnd[i] as number);
  }

  /** entryValueOffset: entry i's value offset in the data file. */
  entryValueOffset(i: number): number {
    return this.u32s[i * 3] as number;
  }

  /** entryRecordBytes: the size of entry i's record in the data file. */
  entryRecordBytes(i: number): number {
    const keyLen = (this.keyEnd[i] as number) - (i === 0 ? 0 : (this.keyEnd[i - 1] as number));
    const expires = !Number.isNaN(this.f64s[i * 3 + 2] as number);
    return recordBytes(
      keyLen,
      this.u32s[i * 3 + 1] as number,
      expires,
      (this.u32s[i * 3 + 2] as number) !== 0,
    );
  }

  /** addTombstone notes a DELETE record of the data file (its key is copied). */
  addTombstone(key: Uint8Array, seq: number): void {
    assert(isU53(seq), 'tombstone seq out of range');
    this.tombstones.push({ key: Buffer.from(key), seq });
  }

  /** finish returns the whole hint file for a data file of `dataFileBytes` bytes. */
  finish(dataFileBytes: number): Buffer {
    const e = this.beginEncoding();
    this.encodeEntries(e, () => false);
    return this.endEncoding(e, dataFileBytes);
  }

  /**
   * finishInSteps is finish for a caller on a shared event loop: it encodes entries until
   * `slice` is spent (asked every ENCODE_CLOCK_EVERY entries), then awaits `pause()` and goes on
   * with a new slice (a compaction output's 500,000 entries took 20-30 ms to encode in one
   * step). No entry may be added meanwhile.
   */
  async finishInSteps(dataFileBytes: number, slice: TimeSlice, pause: () => Promise<void>): Promise<Buffer> {
    const e = this.beginEncoding();
    const count = this.count;
    const tombstones = this.tombstones.length;
    slice.start();
    while (!this.encodeEntries(e, slice.over)) {
      await pause();
      // The output was sized for these: one more would overrun it.
      assert(
        this.count === count && this.tombstones.length === tombstones,
        'hint entry added while the hint was being encoded',
      );
      slice.start();
    }
    return this.endEncoding(e, dataFileBytes);
  }

  /** beginEncoding sizes the output and writes the header (the seq base needs every entry). */
  private beginEncoding(): Encoding {
    const n = this.count;
    const f64s = this.f64s;
    let seqBase = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) seqBase = Math.min(seqBase, f64s[i * 3] as number);
    let tombstoneKeyBytes = 0;
    for (const t of this.tombstones) {
      seqBase = Math.min(seqBase, t.seq);
      tombstoneKeyBytes += t.key.length;
    }
    if (seqBase === Number.POSITIVE_INFINITY) seqBase = 0;
    const bound =
      HINT_HEADER_BYTES +
      this.keysUsed +
      n * ENTRY_FIELDS_BYTES_MAX +
      tombstoneKeyBytes +
      this.tombstones.length * TOMBSTONE_FIELDS_BYTES_MAX +
      HINT_TRAILER_BYTES;
    const out = Buffer.allocUnsafe(bound);
    HINT_MAGIC.copy(out, 0);
    out.writeUInt32LE(this.format, H_FORMAT);
    out.writeUInt32LE(this.dataFileId, H_FILE_ID);
    out.writeUInt32LE(n, H_ENTRY_COUNT);
    out.writeUInt32LE(this.tombstones.length, H_TOMBSTONE_COUNT);
    out.writeUInt32LE(this.keysUsed, H_KEY_BYTES);
    writeU64LE(out, seqBase, H_SEQ_BASE);
    return { out, pos: HINT_HEADER_BYTES, seqBase, next: 0, prevStart: 0, prevLen: 0, prevOffset: 0 };
  }

  /** encodeEntries encodes entries from e.next on; false when `over()` stopped it before the last. */
  private encodeEntries(e: Encoding, over: () => boolean): boolean {
    const n = this.count;
    const f64s = this.f64s;
    const u32s = this.u32s;
    const keys = this.keys;
    const out = e.out;
    const seqBase = e.seqBase;
    let pos = e.pos;
    let prevStart = e.prevStart;
    let prevLen = e.prevLen;
    let prevOffset = e.prevOffset;
    let i = e.next;
    for (; i < n; i++) {
      if (i > e.next && i % ENCODE_CLOCK_EVERY === 0 && over()) break;
      const start = i === 0 ? 0 : (this.keyEnd[i - 1] as number);
      const len = (this.keyEnd[i] as number) - start;
      const most = Math.min(len, prevLen);
      let shared = 0;
      while (shared < most && keys[prevStart + shared] === keys[start + shared]) shared++;
      const seq = f64s[i * 3] as number;
      const create = f64s[i * 3 + 1] as number;
      const expiresAt = f64s[i * 3 + 2] as number;
      const version = u32s[i * 3 + 2] as number;
      const valueOffset = u32s[i * 3] as number;
      let flags = 0;
      if (!Number.isNaN(expiresAt)) flags |= F_EXPIRES;
      if (version !== 0) flags |= F_REVISION | (create > seq ? F_CREATE_ABOVE_SEQ : 0);
      pos = writeVarint(out, pos, shared * (1 << F_BITS) + flags);
      pos = writeVarint(out, pos, len - shared);
      // A short suffix byte by byte: Buffer#copy from an offset makes a view per call on Node 20
      // (an allocation per hint entry; issue 14), as the decoder below does for its copies.
      const suffixLen = len - shared;
      if (suffixLen <= SHARED_COPY_MAX)
        for (let k = 0; k < suffixLen; k++) out[pos + k] = keys[start + shared + k] as number;
      else keys.copy(out, pos, start + shared, start + len);
      pos += suffixLen;
      pos = writeVarint(out, pos, seq - seqBase);
      const delta = valueOffset - prevOffset;
      pos = writeVarint(out, pos, delta >= 0 ? delta * 2 : -delta * 2 - 1);
      pos = writeVarint(out, pos, u32s[i * 3 + 1] as number);
      if ((flags & F_EXPIRES) !== 0) pos = writeVarint(out, pos, expiresAt);
      if ((flags & F_REVISION) !== 0) {
        pos = writeVarint(out, pos, Math.abs(create - seq));
        pos = writeVarint(out, pos, version);
      }
      prevStart = start;
      prevLen = len;
      prevOffset = valueOffset;
    }
    e.pos = pos;
    e.next = i;
    e.prevStart = prevStart;
    e.prevLen = prevLen;
    e.prevOffset = prevOffset;
    return i === n;
  }

  /** endEncoding writes the tombstones and the trailer, and returns the file's bytes. */
  private endEncoding(e: Encoding, dataFileBytes: number): Buffer {
    const out = e.out;
    let pos = e.pos;
    for (const t of this.tombstones) {
      pos = writeVarint(out, pos, t.key.length);
      t.key.copy(out, pos);
      pos += t.key.length;
      pos = writeVarint(out, pos, t.seq - e.seqBase);
    }
    out.writeUInt32LE(dataFileBytes, pos);
    pos += 4;
    out.writeUInt32LE(crc32c(out.subarray(0, pos)), pos);
    pos += 4;
    // A copy of the used part, so that the bound's slack is not kept alive with the file.
    return Buffer.from(out.subarray(0, pos));
  }

  private grow(): void {
    const n = this.keyEnd.length * 2;
    const keyEnd = new Uint32Array(n);
    keyEnd.set(this.keyEnd);
    this.keyEnd = keyEnd;
    const u32s = new Uint32Array(n * 3);
    u32s.set(this.u32s);
    this.u32s = u32s;
    const f64s = new Float64Array(n * 3);
    f64s.set(this.f64s);
    this.f64s = f64s;
  }
}

/** isU53: a safe non-negative integer, what a varint holds. */
function isU53(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/**
 * writeVarint writes `n` (a safe non-negative integer) as LEB128 at `out[pos..]` and returns the
 * position after it. The caller has made room (ENTRY_FIELDS_BYTES_MAX).
 */
function writeVarint(out: Buffer, pos: number, n: number): number {
  let at = pos;
  let v = n;
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

/** cursor: where readVarint reads next (a module variable: no tuple allocated per field). */
let cursor = 0;

/**
 * readVarint reads a LEB128 varint at `cursor` that ends at or before `end`, and moves the
 * cursor past it. It returns -1 for one that runs past `end` or past VARINT_BYTES_MAX bytes, or
 * whose value is not a safe integer. `end` is at most the trailer's offset, so the 8 bytes from
 * any position before it are inside the buffer: the bytes are read unrolled, without a check
 * each, and where the varint ends is checked once. (An open decodes millions of them, and one
 * function without calls or loops is what the optimizer keeps optimized.)
 */
function readVarint(buf: Uint8Array, end: number): number {
  const pos = cursor;
  if (pos >= end) return -1;
  let b = buf[pos] as number;
  if (b < 0x80) {
    cursor = pos + 1;
    return b;
  }
  let n = b & 0x7f;
  let len = 2;
  b = buf[pos + 1] as number;
  n |= (b & 0x7f) << 7;
  if (b >= 0x80) {
    len = 3;
    b = buf[pos + 2] as number;
    n |= (b & 0x7f) << 14;
    if (b >= 0x80) {
      len = 4;
      b = buf[pos + 3] as number;
      n |= (b & 0x7f) << 21;
      if (b >= 0x80) {
        // Past 28 bits: by multiplication (int32 arithmetic would overflow).
        let weight = 2 ** 28;
        for (;;) {
          if (len === VARINT_BYTES_MAX) return -1;
          b = buf[pos + len] as number;
          len++;
          n += (b & 0x7f) * weight;
          weight *= 0x80;
          if (b < 0x80) break;
        }
        if (n > Number.MAX_SAFE_INTEGER) return -1;
      }
    }
  }
  if (pos + len > end) return -1;
  cursor = pos + len;
  return n;
}

/**
 * hintEntryCount: the entry count a hint file claims (0 for a file too short or of an unknown
 * version). Unchecked: a size hint for the reader's arrays; decodeHintAt checks it.
 */
export function hintEntryCount(bytes: Uint8Array): number {
  if (hasMagic(bytes, HINT_V1_MAGIC)) return hintEntryCountV1(bytes);
  if (!hasMagic(bytes, HINT_MAGIC) || bytes.length < HINT_HEADER_BYTES + HINT_TRAILER_BYTES) return 0;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // Never more entries than the smallest entry could fill.
  return Math.min(buf.readUInt32LE(H_ENTRY_COUNT), Math.floor(bytes.length / ENTRY_BYTES_MIN));
}

function hasMagic(bytes: Uint8Array, magic: Buffer): boolean {
  if (bytes.length < HINT_MAGIC_BYTES) return false;
  for (let i = 0; i < HINT_MAGIC_BYTES; i++) if (bytes[i] !== magic[i]) return false;
  return true;
}

/**
 * HintVisitor: one hint entry; the key is `keys[keyAt, keyAt + keyLen)`. `keys` is the hint
 * file's bytes (version 1) or the keys the decoder rebuilt from their shared prefixes (version 2,
 * one buffer per file, the same at every entry); it belongs to the caller once the decode has
 * succeeded (the open and compaction keep offsets into it), but may be reused by nothing else.
 */
export type HintVisitor = (
  keys: Buffer,
  keyAt: number,
  keyLen: number,
  seq: number,
  valueOffset: number,
  valueLen: number,
  expiresAt: number | undefined,
  create: number,
  version: number,
) => void;

/**
 * decodeHint validates a hint file against its data file and calls `visit` for each entry
 * (the key is a view, lent for the call: `visit` copies what it keeps). It returns
 * undefined on success or the reason it is unusable; on failure no entry has been visited.
 */
export function decodeHint(
  bytes: Uint8Array,
  dataFileId: number,
  dataFileBytes: number,
  visit: (
    key: Uint8Array,
    seq: number,
    valueOffset: number,
    valueLen: number,
    expiresAt: number | undefined,
    create: number,
    version: number,
  ) => void,
  /** visitTombstone: receives each tombstone (the key lent for the call), after every entry. */
  visitTombstone?: (key: Uint8Array, seq: number) => void,
): string | undefined {
  return decodeHintAt(
    bytes,
    dataFileId,
    dataFileBytes,
    (keys, keyAt, keyLen, seq, valueOffset, valueLen, expiresAt, create, version) =>
      visit(keys.subarray(keyAt, keyAt + keyLen), seq, valueOffset, valueLen, expiresAt, create, version),
    visitTombstone,
  );
}

/**
 * decodeHintAt is decodeHint giving each entry's key as its offset and length in a buffer of
 * keys: the open and compaction keep offsets, and a view per entry was a visible share of an
 * open of a million keys. With `onePass` the entries are validated as they are visited, so a
 * file found bad part way has had some entries visited (the open, which drops the run it was
 * filling then, saves a pass over a million entries that way); tombstones are visited only once
 * the whole file is validated either way. A reader that passes no `visitTombstone` refuses a
 * file that lists tombstones rather than miss its deletes.
 */
export function decodeHintAt(
  bytes: Uint8Array,
  dataFileId: number,
  dataFileBytes: number,
  visit: HintVisitor,
  visitTombstone?: (key: Uint8Array, seq: number) => void,
  onePass = false,
): string | undefined {
  if (hasMagic(bytes, HINT_V1_MAGIC))
    return decodeHintV1At(bytes, dataFileId, dataFileBytes, visit, visitTombstone, onePass);
  const header = checkHeader(bytes, dataFileId, dataFileBytes, visitTombstone !== undefined);
  if (typeof header === 'string') return header;
  const { buf, count, tombstones, keyBytes, seqBase, trailer } = header;
  const keys = Buffer.allocUnsafe(keyBytes);
  const fields = { keys, keyBytes, seqBase, dataFileBytes, count, end: trailer };
  // Validate the structure fully before visiting (unless onePass), so a bad file visits nothing.
  const entriesEnd = walkEntries(buf, fields, onePass ? visit : undefined);
  if (typeof entriesEnd === 'string') return entriesEnd;
  const tombstonesEnd = walkTombstones(buf, entriesEnd, tombstones, seqBase, trailer, undefined);
  if (typeof tombstonesEnd === 'string') return tombstonesEnd;
  if (tombstonesEnd !== trailer) return 'bytes between the tombstones and the trailer';
  if (!onePass) walkEntries(buf, fields, visit);
  if (visitTombstone !== undefined)
    walkTombstones(buf, entriesEnd, tombstones, seqBase, trailer, visitTombstone);
  return undefined;
}

/**
 * hintRecordedSize: the size of the data file a hint file was written for (its trailer), not
 * checked; undefined for bytes that are no hint file of a known version or too short. Recovery
 * decodes a hint file at that size when its data file no longer has it (the file lost its tail),
 * to name the records lost (recovery.ts, describingHint).
 */
export function hintRecordedSize(bytes: Uint8Array): number | undefined {
  if (hasMagic(bytes, HINT_V1_MAGIC)) return hintRecordedSizeV1(bytes);
  if (!hasMagic(bytes, HINT_MAGIC) || bytes.length < HINT_HEADER_BYTES + HINT_TRAILER_BYTES) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buf.readUInt32LE(buf.length - HINT_TRAILER_BYTES);
}

interface Header {
  readonly buf: Buffer;
  readonly count: number;
  readonly tombstones: number;
  readonly keyBytes: number;
  readonly seqBase: number;
  readonly trailer: number;
}

/** checkHeader checks a version-2 file's magic, CRC, data file and counts; the reason if bad. */
function checkHeader(
  bytes: Uint8Array,
  dataFileId: number,
  dataFileBytes: number,
  takesTombstones: boolean,
): Header | string {
  if (bytes.length < HINT_HEADER_BYTES + HINT_TRAILER_BYTES) return 'too short';
  if (!hasMagic(bytes, HINT_MAGIC)) return 'bad magic (not a hint file of a version this build reads)';
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (crc32c(buf.subarray(0, buf.length - 4)) !== buf.readUInt32LE(buf.length - 4))
    return 'checksum mismatch';
  if (buf.readUInt32LE(H_FILE_ID) !== dataFileId) return 'written for another data file';
  const trailer = buf.length - HINT_TRAILER_BYTES;
  if (buf.readUInt32LE(trailer) !== dataFileBytes) return 'data file size differs from the hint';
  const count = buf.readUInt32LE(H_ENTRY_COUNT);
  const tombstones = buf.readUInt32LE(H_TOMBSTONE_COUNT);
  const keyBytes = buf.readUInt32LE(H_KEY_BYTES);
  const seqBase = readSafeU64LE(buf, H_SEQ_BASE);
  if (seqBase === undefined) return 'seq base out of range';
  const room = trailer - HINT_HEADER_BYTES;
  if (count * ENTRY_BYTES_MIN + tombstones * TOMBSTONE_BYTES_MIN > room) return 'counts overrun the file';
  if (keyBytes > count * KEY_BYTES_MAX) return 'key bytes out of range';
  if (tombstones > 0 && !takesTombstones) return 'tombstones listed, and this reader takes none';
  return { buf, count, tombstones, keyBytes, seqBase, trailer };
}

/** minShared: the shortest shared prefix walkEntries saw (after the first entry): the keys' common prefix. */
let minShared = Number.POSITIVE_INFINITY;

/**
 * openHintCursor is the open's way to read a version-2 hint file: it validates the whole file
 * as decodeHintAt does (without rebuilding any key), visits its tombstones, and returns a
 * cursor over its entries, which the merge decodes once more in step with the other files
 * (hint-run.ts: a million entries are never stored in columns first). It returns the reason
 * when the file is unusable (nothing visited), or undefined for a file that is not version 2
 * (read it with decodeHintAt).
 */
export function openHintCursor(
  bytes: Uint8Array,
  dataFileId: number,
  dataFileBytes: number,
  visitTombstone: (key: Uint8Array, seq: number) => void,
): HintCursor | string | undefined {
  if (!hasMagic(bytes, HINT_MAGIC))
    return hasMagic(bytes, HINT_V1_MAGIC)
      ? undefined
      : 'bad magic (not a hint file of a version this build reads)';
  const header = checkHeader(bytes, dataFileId, dataFileBytes, true);
  if (typeof header === 'string') return header;
  const { buf, count, tombstones, keyBytes, seqBase, trailer } = header;
  const fields = { keys: undefined, keyBytes, seqBase, dataFileBytes, count, end: trailer };
  const entriesEnd = walkEntries(buf, fields, undefined);
  if (typeof entriesEnd === 'string') return entriesEnd;
  const prefix = minShared;
  const tombstonesEnd = walkTombstones(buf, entriesEnd, tombstones, seqBase, trailer, undefined);
  if (typeof tombstonesEnd === 'string') return tombstonesEnd;
  if (tombstonesEnd !== trailer) return 'bytes between the tombstones and the trailer';
  walkTombstones(buf, entriesEnd, tombstones, seqBase, trailer, visitTombstone);
  // The seq base of a file listing nothing is 0, which as a minSeq would say "unknown" (the data
  // file's first record decides then, as for a version-1 file without entries).
  const minSeq = count === 0 && tombstones === 0 ? Number.POSITIVE_INFINITY : seqBase;
  return new HintCursor(dataFileId, buf, count, seqBase, minSeq, trailer, prefix);
}

/**
 * HintCursor steps through the entries of a version-2 hint file that openHintCursor validated,
 * one entry at a time; the current entry's fields are its properties, its key `key()`, rebuilt
 * in place over the previous one (a key shares its prefix with the one before it).
 */
export class HintCursor {
  keyLen = 0;
  seq = 0;
  valueOffset = 0;
  valueLen = 0;
  /** expiresAt: NaN for an entry without an expiry. */
  expiresAt = Number.NaN;
  create = 0;
  version = 0;
  /** keys: the current key at [0, keyLen) (KeyCursor's contract; keyAt is always 0). */
  readonly keys = new Uint8Array(KEY_BYTES_MAX);
  readonly keyAt = 0;
  private readonly views: Uint8Array[] = [];
  private pos = HINT_HEADER_BYTES;
  private left: number;

  constructor(
    readonly id: number,
    private readonly buf: Buffer,
    count: number,
    /** seqBase: every entry's seq is relative to it (the header's seq_base). */
    private readonly seqBase: number,
    /** minSeq: the smallest seq of the file's entries and tombstones (Infinity: it lists none). */
    readonly minSeq: number,
    private readonly end: number,
    /** prefix: every entry's key starts with the same this many bytes. */
    readonly prefix: number,
  ) {
    this.left = count;
  }

  /** next moves to the next entry; false when there is none. */
  next(): boolean {
    if (this.left === 0) return false;
    this.left--;
    const buf = this.buf;
    const end = this.end;
    cursor = this.pos;
    // Validated by openHintCursor: a field that does not decode now is a bug (or the buffer changed).
    const head = readVarint(buf, end);
    const suffixLen = readVarint(buf, end);
    assert(head >= 0 && suffixLen >= 0, 'a validated hint file does not decode');
    const shared = head >>> F_BITS;
    const flags = head & F_MASK;
    const suffixAt = cursor;
    const keys = this.keys;
    if (suffixLen <= SHARED_COPY_MAX)
      for (let k = 0; k < suffixLen; k++) keys[shared + k] = buf[suffixAt + k] as number;
    else keys.set(buf.subarray(suffixAt, suffixAt + suffixLen), shared);
    this.keyLen = shared + suffixLen;
    cursor = suffixAt + suffixLen;
    const seq = this.seqBase + readVarint(buf, end);
    const offsetZigzag = readVarint(buf, end);
    this.valueOffset += offsetZigzag % 2 === 0 ? offsetZigzag / 2 : -(offsetZigzag + 1) / 2;
    this.valueLen = readVarint(buf, end);
    this.seq = seq;
    this.expiresAt = (flags & F_EXPIRES) !== 0 ? readVarint(buf, end) : Number.NaN;
    if ((flags & F_REVISION) !== 0) {
      const distance = readVarint(buf, end);
      this.create = (flags & F_CREATE_ABOVE_SEQ) !== 0 ? seq + distance : seq - distance;
      this.version = readVarint(buf, end);
    } else {
      this.create = 0;
      this.version = 0;
    }
    this.pos = cursor;
    return true;
  }

  /** key: the current entry's key, lent until the next call to next(). */
  key(): Uint8Array {
    const len = this.keyLen;
    let view = this.views[len];
    if (view === undefined) {
      view = this.keys.subarray(0, len);
      this.views[len] = view;
    }
    return view;
  }
}

interface EntryFields {
  /** keys: where the keys are rebuilt; undefined to check the entries only. */
  readonly keys: Buffer | undefined;
  readonly keyBytes: number;
  readonly seqBase: number;
  readonly dataFileBytes: number;
  readonly count: number;
  /** end: the trailer's offset; no entry byte may reach it. */
  readonly end: number;
}

/**
 * walkEntries checks the entries (varints within the file, prefixes within the previous key,
 * keys within key_bytes, every field in range, values within the data file), rebuilds the keys
 * into `f.keys` and visits each entry when `visit` is given. It returns where the entries end,
 * or why they are bad.
 */
function walkEntries(buf: Buffer, f: EntryFields, visit: HintVisitor | undefined): number | string {
  const { keys, keyBytes, seqBase, dataFileBytes, count, end } = f;
  cursor = HINT_HEADER_BYTES;
  let keyAt = 0;
  let prevAt = 0;
  let prevLen = 0;
  let offset = 0;
  minShared = Number.POSITIVE_INFINITY;
  for (let i = 0; i < count; i++) {
    const head = readVarint(buf, end);
    const suffixLen = readVarint(buf, end);
    if (head < 0 || suffixLen < 0) return 'entries overrun the trailer';
    if (head >= HEAD_MAX) return 'shared prefix out of range';
    const shared = head >>> F_BITS;
    const flags = head & F_MASK;
    if (shared > prevLen) return 'shared prefix longer than the key before it';
    if (i > 0 && shared < minShared) minShared = shared;
    const keyLen = shared + suffixLen;
    if (keyLen > KEY_BYTES_MAX) return 'key too long';
    if (keyAt + keyLen > keyBytes) return 'keys overrun key_bytes';
    const suffixAt = cursor;
    if (suffixAt + suffixLen > end) return 'entries overrun the trailer';
    if (keys !== undefined) {
      if (shared <= SHARED_COPY_MAX)
        for (let k = 0; k < shared; k++) keys[keyAt + k] = keys[prevAt + k] as number;
      else keys.copyWithin(keyAt, prevAt, prevAt + shared);
      if (suffixLen <= SHARED_COPY_MAX)
        for (let k = 0; k < suffixLen; k++) keys[keyAt + shared + k] = buf[suffixAt + k] as number;
      else buf.copy(keys, keyAt + shared, suffixAt, suffixAt + suffixLen);
    }
    cursor = suffixAt + suffixLen;
    const seqDelta = readVarint(buf, end);
    const offsetZigzag = readVarint(buf, end);
    const valueLen = readVarint(buf, end);
    if (seqDelta < 0 || offsetZigzag < 0 || valueLen < 0) return 'entries overrun the trailer';
    const seq = seqBase + seqDelta;
    if (seq > Number.MAX_SAFE_INTEGER) return 'seq out of range';
    offset += offsetZigzag % 2 === 0 ? offsetZigzag / 2 : -(offsetZigzag + 1) / 2;
    if (offset < 0 || offset > U32_MAX || valueLen > U32_MAX) return 'value location out of range';
    if (offset + valueLen > dataFileBytes) return 'value past the end of the data file';
    let expiresAt: number | undefined;
    if ((flags & F_EXPIRES) !== 0) {
      expiresAt = readVarint(buf, end);
      if (expiresAt < 0) return 'expiry out of range';
    }
    let create = 0;
    let version = 0;
    if ((flags & F_REVISION) !== 0) {
      const distance = readVarint(buf, end);
      version = readVarint(buf, end);
      create = (flags & F_CREATE_ABOVE_SEQ) !== 0 ? seq + distance : seq - distance;
      if (distance < 0 || version <= 0 || version > U32_MAX || create < 0 || create > Number.MAX_SAFE_INTEGER)
        return 'revision out of range';
    } else if ((flags & F_CREATE_ABOVE_SEQ) !== 0) return 'create without a revision';
    if (visit !== undefined && keys !== undefined) {
      const after = cursor;
      visit(keys, keyAt, keyLen, seq, offset, valueLen, expiresAt, create, version);
      cursor = after; // the visitor may decode another file meanwhile
    }
    prevAt = keyAt;
    prevLen = keyLen;
    keyAt += keyLen;
  }
  if (keyAt !== keyBytes) return 'key bytes do not match the entries';
  return cursor;
}

/**
 * walkTombstones checks the `count` tombstones from `from` on (keys and varints before `end`,
 * seqs in range) and visits each when `visit` is given (the key a view into `buf`). It returns
 * where they end, or why they are bad.
 */
function walkTombstones(
  buf: Buffer,
  from: number,
  count: number,
  seqBase: number,
  end: number,
  visit: ((key: Uint8Array, seq: number) => void) | undefined,
): number | string {
  cursor = from;
  for (let i = 0; i < count; i++) {
    const keyLen = readVarint(buf, end);
    if (keyLen < 0 || keyLen > KEY_BYTES_MAX || cursor + keyLen > end)
      return 'tombstones overrun the trailer';
    const keyAt = cursor;
    cursor += keyLen;
    const seqDelta = readVarint(buf, end);
    if (seqDelta < 0) return 'tombstones overrun the trailer';
    const seq = seqBase + seqDelta;
    if (seq > Number.MAX_SAFE_INTEGER) return 'tombstone seq out of range';
    if (visit !== undefined) {
      const after = cursor;
      visit(buf.subarray(keyAt, keyAt + keyLen), seq);
      cursor = after; // the visitor may decode another file meanwhile
    }
  }
  return cursor;
}
