// Version-1 hint files (written by builds before the compact format of issue 14; hint.ts reads
// them still, and writes version 2). Grammar (docs/format.md, "Hint files, version 1"):
//
//   hint_file := magic "CAIRNHNT" | format u32 | dataFileId u32 | entry* | [tombstones] | trailer
//   entry     := seq u64 | valueOffset u32 | valueLen u32 | keyLenAndFlag u32 | [expiresAt u64]
//                | [create u64 | version u32] | key
//   tombstones := TOMBSTONES_MARK u32 | count u32 | (seq u64 | keyLen u32 | key)*
//   trailer   := entryCount u32 | dataFileBytes u32 | crc32c u32
//
// keyLenAndFlag is the key length, with bit 31 (HINT_EXPIRES) set when an expiresAt follows:
// key lengths stay far below 2^30, so hint files written before TTLs existed read unchanged.
// Bit 30 (HINT_REVISION) says the record's create and version follow (records of format 3).
// The CRC covers every byte before it. 48 bytes an entry for a 16-byte key with a revision.
import { crc32c } from '../../stdx/crc32c.js';
import { readSafeU64LE, readU64LE, writeU64LE } from '../../stdx/u64.js';
import type { HintVisitor } from './hint.js';

/** HINT_V1_MAGIC: the first 8 bytes of a version-1 hint file. */
export const HINT_V1_MAGIC = Buffer.from('CAIRNHNT', 'latin1');
const HINT_HEADER_BYTES = 16;
const HINT_ENTRY_HEADER_BYTES = 20;
const HINT_TRAILER_BYTES = 12;
/** HINT_EXPIRES: bit of keyLenAndFlag saying an expiresAt u64 follows. */
const HINT_EXPIRES = 0x8000_0000;
const HINT_EXPIRY_BYTES = 8;
/** HINT_REVISION: bit of keyLenAndFlag saying create u64 and version u32 follow. */
const HINT_REVISION = 0x4000_0000;
const HINT_REVISION_BYTES = 12;
const HINT_KEY_LEN_MASK = 0x3fff_ffff;
/**
 * TOMBSTONES_MARK opens the tombstone section: the deletes a sealed data file holds, which
 * recovery needs (an older put of the key may live in an older file). A compaction output has
 * the section when it carries tombstones of its inputs (docs/compaction.md).
 */
const TOMBSTONES_MARK = 0x544f_4d42; // the bytes "BMOT" on disk
const TOMBSTONE_HEADER_BYTES = 12;

/**
 * HintWriterV1 writes a version-1 hint file. This build writes version 2 (hint.ts); the old
 * writer stays for the tests that check that stores written by earlier builds still open, and
 * that the new format decodes to what the old one did.
 */
export class HintWriterV1 {
  private readonly chunks: Buffer[] = [];
  private count = 0;
  private readonly tombstones: Buffer[] = [];

  constructor(format: number, dataFileId: number) {
    const header = Buffer.alloc(HINT_HEADER_BYTES);
    HINT_V1_MAGIC.copy(header, 0);
    header.writeUInt32LE(format, 8);
    header.writeUInt32LE(dataFileId, 12);
    this.chunks.push(header);
  }

  add(
    key: Uint8Array,
    seq: number,
    valueOffset: number,
    valueLen: number,
    expiresAt: number | undefined,
    create: number,
    version: number,
  ): void {
    const revision = version !== 0;
    const extra = (expiresAt === undefined ? 0 : HINT_EXPIRY_BYTES) + (revision ? HINT_REVISION_BYTES : 0);
    const entry = Buffer.allocUnsafe(HINT_ENTRY_HEADER_BYTES + extra + key.length);
    writeU64LE(entry, seq, 0);
    entry.writeUInt32LE(valueOffset, 8);
    entry.writeUInt32LE(valueLen, 12);
    const flags = (expiresAt === undefined ? 0 : HINT_EXPIRES) | (revision ? HINT_REVISION : 0);
    entry.writeUInt32LE((key.length | flags) >>> 0, 16);
    let at = HINT_ENTRY_HEADER_BYTES;
    if (expiresAt !== undefined) {
      writeU64LE(entry, expiresAt, at);
      at += HINT_EXPIRY_BYTES;
    }
    if (revision) {
      writeU64LE(entry, create, at);
      entry.writeUInt32LE(version, at + 8);
      at += HINT_REVISION_BYTES;
    }
    entry.set(key, at);
    this.chunks.push(entry);
    this.count++;
  }

  /** addTombstone notes a DELETE record of the data file (its key is copied). */
  addTombstone(key: Uint8Array, seq: number): void {
    const entry = Buffer.allocUnsafe(TOMBSTONE_HEADER_BYTES + key.length);
    writeU64LE(entry, seq, 0);
    entry.writeUInt32LE(key.length, 8);
    entry.set(key, TOMBSTONE_HEADER_BYTES);
    this.tombstones.push(entry);
  }

  /** finish returns the whole hint file for a data file of `dataFileBytes` bytes. */
  finish(dataFileBytes: number): Buffer {
    const trailer = Buffer.alloc(HINT_TRAILER_BYTES);
    trailer.writeUInt32LE(this.count, 0);
    trailer.writeUInt32LE(dataFileBytes, 4);
    const section: Buffer[] = [];
    if (this.tombstones.length > 0) {
      const head = Buffer.alloc(8);
      head.writeUInt32LE(TOMBSTONES_MARK, 0);
      head.writeUInt32LE(this.tombstones.length, 4);
      section.push(head, ...this.tombstones);
    }
    const body = Buffer.concat([...this.chunks, ...section, trailer]);
    body.writeUInt32LE(crc32c(body.subarray(0, body.length - 4)), body.length - 4);
    return body;
  }
}

/**
 * hintEntryCount: the entry count a hint file's trailer claims (0 for a file too short to have
 * one). Unchecked: a size hint for the reader's arrays; decodeHintAt checks it.
 */
export function hintEntryCountV1(bytes: Uint8Array): number {
  if (bytes.length < HINT_HEADER_BYTES + HINT_TRAILER_BYTES) return 0;
  const at = bytes.length - HINT_TRAILER_BYTES;
  const count =
    ((bytes[at] as number) | ((bytes[at + 1] as number) << 8) | ((bytes[at + 2] as number) << 16)) +
    (bytes[at + 3] as number) * 2 ** 24;
  // Never more entries than the smallest entry could fill.
  return Math.min(count, Math.floor(bytes.length / HINT_ENTRY_HEADER_BYTES));
}

/** hintRecordedSizeV1: hint.ts's hintRecordedSize for a version-1 file (magic already checked). */
export function hintRecordedSizeV1(bytes: Uint8Array): number | undefined {
  if (bytes.length < HINT_HEADER_BYTES + HINT_TRAILER_BYTES) return undefined;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return buf.readUInt32LE(buf.length - HINT_TRAILER_BYTES + 4);
}

/**
 * decodeHintV1At decodes a version-1 hint file for hint.ts's decodeHintAt (same contract); the
 * keys are in `bytes` itself.
 */
export function decodeHintV1At(
  bytes: Uint8Array,
  dataFileId: number,
  dataFileBytes: number,
  visit: HintVisitor,
  visitTombstone?: (key: Uint8Array, seq: number) => void,
  onePass = false,
): string | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < HINT_HEADER_BYTES + HINT_TRAILER_BYTES) return 'too short';
  if (!buf.subarray(0, 8).equals(HINT_V1_MAGIC)) return 'bad magic';
  if (crc32c(buf.subarray(0, buf.length - 4)) !== buf.readUInt32LE(buf.length - 4))
    return 'checksum mismatch';
  if (buf.readUInt32LE(12) !== dataFileId) return 'written for another data file';
  const trailer = buf.length - HINT_TRAILER_BYTES;
  if (buf.readUInt32LE(trailer + 4) !== dataFileBytes) return 'data file size differs from the hint';
  const count = buf.readUInt32LE(trailer);
  // Validate the structure fully before visiting (unless onePass), so a bad file visits nothing.
  const end = walkEntries(buf, count, trailer, onePass ? visit : undefined);
  if (typeof end === 'string') return end;
  let pos = end;
  const entriesEnd = pos;
  let tombstones = 0;
  if (pos !== trailer) {
    if (visitTombstone === undefined || pos + 8 > trailer || buf.readUInt32LE(pos) !== TOMBSTONES_MARK)
      return 'entry count does not match';
    tombstones = buf.readUInt32LE(pos + 4);
    pos += 8;
    for (let i = 0; i < tombstones; i++) {
      if (pos + TOMBSTONE_HEADER_BYTES > trailer) return 'tombstones overrun the trailer';
      if (readSafeU64LE(buf, pos) === undefined) return 'tombstone seq out of range';
      pos += TOMBSTONE_HEADER_BYTES + buf.readUInt32LE(pos + 8);
    }
    if (pos !== trailer) return 'tombstone count does not match';
  }
  if (!onePass) walkEntries(buf, count, trailer, visit);
  if (tombstones > 0 && visitTombstone !== undefined) {
    pos = entriesEnd + 8;
    for (let i = 0; i < tombstones; i++) {
      const keyLen = buf.readUInt32LE(pos + 8);
      const keyStart = pos + TOMBSTONE_HEADER_BYTES;
      visitTombstone(buf.subarray(keyStart, keyStart + keyLen), readU64LE(buf, pos));
      pos = keyStart + keyLen;
    }
  }
  return undefined;
}

/**
 * walkEntries checks `count` entries from the header on (none may pass `trailer`, expiries and
 * revisions in range) and visits each when `visit` is given. It returns where the entries end,
 * or why they are bad.
 */
function walkEntries(
  buf: Buffer,
  count: number,
  trailer: number,
  visit: HintVisitor | undefined,
): number | string {
  let pos = HINT_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (pos + HINT_ENTRY_HEADER_BYTES > trailer) return 'entries overrun the trailer';
    const word = buf.readUInt32LE(pos + 16);
    const keyLen = word & HINT_KEY_LEN_MASK;
    let keyStart = pos + HINT_ENTRY_HEADER_BYTES;
    let expiresAt: number | undefined;
    if ((word & HINT_EXPIRES) !== 0) {
      if (keyStart + HINT_EXPIRY_BYTES > trailer) return 'entries overrun the trailer';
      expiresAt = readSafeU64LE(buf, keyStart);
      if (expiresAt === undefined) return 'expiry out of range';
      keyStart += HINT_EXPIRY_BYTES;
    }
    let create = 0;
    let version = 0;
    if ((word & HINT_REVISION) !== 0) {
      if (keyStart + HINT_REVISION_BYTES > trailer) return 'entries overrun the trailer';
      const at = readSafeU64LE(buf, keyStart);
      version = buf.readUInt32LE(keyStart + 8);
      if (at === undefined || version === 0) return 'revision out of range';
      create = at;
      keyStart += HINT_REVISION_BYTES;
    }
    if (visit !== undefined) {
      // The key must lie before the trailer before anyone sees it.
      if (keyStart + keyLen > trailer) return 'entries overrun the trailer';
      visit(
        buf,
        keyStart,
        keyLen,
        readU64LE(buf, pos),
        buf.readUInt32LE(pos + 8),
        buf.readUInt32LE(pos + 12),
        expiresAt,
        create,
        version,
      );
    }
    pos = keyStart + keyLen;
  }
  return pos > trailer ? 'entries overrun the trailer' : pos;
}
