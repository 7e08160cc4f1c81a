// The record codec of the cask engine's data files. The grammar is in docs/format.md:
//
//   record := crc32c u32 | seq u64 | kind u8 | keyLen u32 | valueLen u32 | [expiresAt u64]
//             | [create u64 | version u32] | key | value
//
// all little-endian, the CRC covering every byte after itself. A batch is a BATCH record whose
// value is the member count (u32), followed by that many PUT/DELETE records with the batch's
// seq and the BATCH_MEMBER flag set. Every record, batch members included, is verifiable on its
// own, so a point read checks the CRC of exactly the bytes it returns.
//
// A PUT whose kind carries the EXPIRES flag has an `expiresAt u64` (ms since the Unix epoch)
// between the header and the key, covered by the CRC like everything else. Records without the
// flag are exactly the original format, so files written before TTLs existed read unchanged.
//
// A PUT whose kind carries the REVISION flag has `create u64 | version u32` next (after the
// expiry, if any): the commit timestamp that created the key and its version count; the seq is
// the key's mod timestamp (engine.ts, "Revisions"). Every PUT this build writes has it.
//
// A PUT whose kind carries the TYPED flag (format 4) holds a value of another type than a
// string (storage/value-type.ts): its value field starts with a `valueType u8`, counted in
// valueLen, then the payload. Keeping the type inside the value field means every offset and
// length the key directory, hint files, compaction and live-byte accounting compute stays what
// it was; only the readers that hand the value out (StoreState.readValue, the value cache) skip
// the byte. String PUTs never carry the flag, so their records are byte for byte format 3.
import { assert } from '../../stdx/assert.js';
import { crc32c, crc32cRange } from '../../stdx/crc32c.js';
import { readSafeU64LE, readU32LE, writeU32LE, writeU64LE } from '../../stdx/u64.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from '../limits.js';

export const RECORD_HEADER_BYTES = 21;
/**
 * KIND_OFFSET: where a record's kind byte lies in its header (after crc32c and seq). Every valid
 * kind is non-zero, so no record starts KIND_OFFSET bytes before a zero byte (recovery skips runs
 * of zeros with this).
 */
export const KIND_OFFSET = 12;

export const Kind = {
  PUT: 1,
  DELETE: 2,
  BATCH: 3,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

/** BATCH_MEMBER: flag on the kind byte of records that belong to the preceding BATCH record. */
export const BATCH_MEMBER = 0x80;
/** EXPIRES: flag on the kind byte of a PUT followed by its expiresAt u64 (docs/format.md). */
export const EXPIRES = 0x40;
/** EXPIRY_BYTES: the size of the expiresAt field of an EXPIRES record. */
export const EXPIRY_BYTES = 8;
/** REVISION: flag on the kind byte of a PUT followed by its create u64 and version u32. */
export const REVISION = 0x20;
/** REVISION_BYTES: the size of the create and version fields of a REVISION record. */
export const REVISION_BYTES = 12;
/** TYPED: flag on the kind byte of a PUT whose value field starts with a valueType u8 (format 4). */
export const TYPED = 0x10;
/** VALUE_TYPE_BYTES: the size of the valueType field of a TYPED record. */
export const VALUE_TYPE_BYTES = 1;
const KIND_MASK = 0x0f;
/** SEQ_MAX: sequence numbers are JS numbers, so they stay below 2^53. */
export const SEQ_MAX = Number.MAX_SAFE_INTEGER;

/** recordBytes is the encoded size of a record with these key and value lengths. */
export function recordBytes(keyLen: number, valueLen: number, expires = false, revision = false): number {
  return extraBytes(expires, revision) + RECORD_HEADER_BYTES + keyLen + valueLen;
}

/**
 * recordStart: where a record starts, from where its value starts (the key directory's and the
 * hint files' offsets point at values).
 */
export function recordStart(
  valueOffset: number,
  keyLen: number,
  expires: boolean,
  revision: boolean,
): number {
  return valueOffset - keyLen - RECORD_HEADER_BYTES - extraBytes(expires, revision);
}

/** extraBytes: the optional fields between the fixed header and the key. */
export function extraBytes(expires: boolean, revision: boolean): number {
  return (expires ? EXPIRY_BYTES : 0) + (revision ? REVISION_BYTES : 0);
}

/** recordBytesAt is the size the record header at `buf[pos..]` claims (the header must be there). */
export function recordBytesAt(buf: Buffer, pos: number): number {
  const kind = buf[pos + KIND_OFFSET] as number;
  // A TYPED record's type byte is counted in valueLen already.
  return recordBytes(
    readU32LE(buf, pos + 13),
    readU32LE(buf, pos + 17),
    (kind & EXPIRES) !== 0,
    (kind & REVISION) !== 0,
  );
}

/**
 * encodeRecord writes one record into `out` at `pos` and returns the position after it.
 * `kind` may carry the BATCH_MEMBER flag; a PUT with `expiresAt` gets the EXPIRES flag and field,
 * one with `version` (>= 1) the REVISION flag and the create and version fields.
 */
export function encodeRecord(
  out: Buffer,
  pos: number,
  seq: number,
  kind: number,
  key: Uint8Array,
  value: Uint8Array | undefined,
  expiresAt?: number,
  create = 0,
  version = 0,
  valueType = 0,
): number {
  assert(Number.isSafeInteger(seq) && seq >= 0, 'seq must be a safe non-negative integer');
  const typeBytes = valueType === 0 ? 0 : VALUE_TYPE_BYTES;
  const valueLen = (value === undefined ? 0 : value.length) + typeBytes;
  let header = RECORD_HEADER_BYTES;
  let rawKind = kind;
  if (expiresAt !== undefined) {
    assert((kind & KIND_MASK) === Kind.PUT, 'only a PUT carries an expiry');
    assert(
      Number.isSafeInteger(expiresAt) && expiresAt >= 0,
      'expiresAt must be a safe non-negative integer',
    );
    rawKind |= EXPIRES;
    writeU64LE(out, expiresAt, pos + RECORD_HEADER_BYTES);
    header += EXPIRY_BYTES;
  }
  if (version !== 0) {
    assert((kind & KIND_MASK) === Kind.PUT, 'only a PUT carries a revision');
    assert(
      Number.isSafeInteger(create) && create >= 1 && create <= seq && version >= 1 && version <= 0xffff_ffff,
      'revision out of range',
    );
    rawKind |= REVISION;
    writeU64LE(out, create, pos + header);
    writeU32LE(out, version, pos + header + 8);
    header += REVISION_BYTES;
  }
  if (typeBytes !== 0) {
    assert((kind & KIND_MASK) === Kind.PUT, 'only a PUT carries a value type');
    assert(Number.isInteger(valueType) && valueType > 0 && valueType <= 0xff, 'value type out of range');
    rawKind |= TYPED;
    out[pos + header + key.length] = valueType;
  }
  writeU64LE(out, seq, pos + 4);
  out[pos + KIND_OFFSET] = rawKind;
  writeU32LE(out, key.length, pos + 13);
  writeU32LE(out, valueLen, pos + 17);
  out.set(key, pos + header);
  if (value !== undefined) out.set(value, pos + header + key.length + typeBytes);
  const end = pos + header + key.length + valueLen;
  // writeU32LE does not check bounds (set above does): a short `out` is a caller's bug.
  assert(end <= out.length, 'record encoded past the end of its buffer');
  writeU32LE(out, crc32cRange(out, pos + 4, end), pos);
  return end;
}

/** Decoded is one parsed record: offsets are into the buffer it was parsed from. */
export interface Decoded {
  seq: number;
  /** kind: without the BATCH_MEMBER flag. */
  kind: Kind;
  member: boolean;
  /** expiresAt: the PUT's expiry time, undefined without the EXPIRES flag. */
  expiresAt: number | undefined;
  /** create, version: the PUT's revision fields; both 0 without the REVISION flag. */
  create: number;
  version: number;
  /** valueType: the TYPED PUT's type byte, 0 (a string) without the flag. */
  valueType: number;
  keyStart: number;
  keyLen: number;
  /**
   * valueStart, valueLen: the whole value field, the type byte of a TYPED record included (the
   * key directory's offsets point here); the payload starts VALUE_TYPE_BYTES later.
   */
  valueStart: number;
  valueLen: number;
  /** end: the offset just past the record. */
  end: number;
}

/** Parse outcomes other than a record. */
export const NEED_MORE = 'need-more' as const;
export const INVALID = 'invalid' as const;

/**
 * decodeRecord parses the record at `buf[pos..]`, looking no further than `limit`.
 * It returns NEED_MORE when the header or body runs past `limit` (the caller may read more, or
 * treat it as a torn tail at end of file), INVALID when the bytes cannot be a record (bad kind,
 * lengths over the limits, CRC mismatch), or the record. `verify` false skips only the CRC:
 * recovery reads what a damaged record's framing says (recovery.ts, markDamaged); nothing else
 * may use a record so read.
 */
export function decodeRecord(
  buf: Buffer,
  pos: number,
  limit: number,
  into?: Decoded,
  verify = true,
): Decoded | typeof NEED_MORE | typeof INVALID {
  if (limit - pos < RECORD_HEADER_BYTES) return NEED_MORE;
  const rawKind = buf[pos + KIND_OFFSET] as number;
  const kind = rawKind & KIND_MASK;
  const member = (rawKind & BATCH_MEMBER) !== 0;
  const expires = (rawKind & EXPIRES) !== 0;
  const revision = (rawKind & REVISION) !== 0;
  const typed = (rawKind & TYPED) !== 0;
  if (kind !== Kind.PUT && kind !== Kind.DELETE && kind !== Kind.BATCH) return INVALID;
  if (
    (rawKind & ~(KIND_MASK | BATCH_MEMBER | EXPIRES | REVISION | TYPED)) !== 0 ||
    (member && kind === Kind.BATCH)
  )
    return INVALID;
  if ((expires || revision || typed) && kind !== Kind.PUT) return INVALID;
  const keyLen = readU32LE(buf, pos + 13);
  const valueLen = readU32LE(buf, pos + 17);
  if (keyLen > KEY_BYTES_MAX || valueLen > VALUE_BYTES_MAX + (typed ? VALUE_TYPE_BYTES : 0)) return INVALID;
  if (kind === Kind.DELETE && valueLen !== 0) return INVALID;
  if (typed && valueLen < VALUE_TYPE_BYTES) return INVALID;
  if (kind === Kind.BATCH && (keyLen !== 0 || valueLen !== 4)) return INVALID;
  const header = RECORD_HEADER_BYTES + extraBytes(expires, revision);
  const end = pos + header + keyLen + valueLen;
  if (end > limit) return NEED_MORE;
  if (verify && crc32cRange(buf, pos + 4, end) !== readU32LE(buf, pos)) return INVALID;
  const seq = readSafeU64LE(buf, pos + 4);
  if (seq === undefined) return INVALID;
  let expiresAt: number | undefined;
  if (expires) {
    expiresAt = readSafeU64LE(buf, pos + RECORD_HEADER_BYTES);
    if (expiresAt === undefined) return INVALID;
  }
  let create = 0;
  let version = 0;
  if (revision) {
    const at = pos + RECORD_HEADER_BYTES + (expires ? EXPIRY_BYTES : 0);
    const safeCreate = readSafeU64LE(buf, at);
    if (safeCreate === undefined) return INVALID;
    create = safeCreate;
    version = readU32LE(buf, at + 8);
    if (version === 0 || create === 0) return INVALID;
  }
  let valueType = 0;
  if (typed) {
    // 0 would be a string, which is never written with the flag: such a byte is damage.
    valueType = buf[pos + header + keyLen] as number;
    if (valueType === 0) return INVALID;
  }
  const out = into ?? ({} as Decoded);
  out.seq = seq;
  out.kind = kind as Kind;
  out.member = member;
  out.expiresAt = expiresAt;
  out.create = create;
  out.version = version;
  out.valueType = valueType;
  out.keyStart = pos + header;
  out.keyLen = keyLen;
  out.valueStart = pos + header + keyLen;
  out.valueLen = valueLen;
  out.end = end;
  return out;
}

/** batchCount reads the member count from a decoded BATCH record. */
export function batchCount(buf: Buffer, rec: Decoded): number {
  assert(rec.kind === Kind.BATCH, 'not a batch record');
  return buf.readUInt32LE(rec.valueStart);
}

// Data file header: magic "CAIRNDAT" | format u32 | fileId u32 | crc32c u32 (over the first 16).
export const DATA_MAGIC = Buffer.from('CAIRNDAT', 'latin1');
export const DATA_HEADER_BYTES = 20;

export function encodeDataHeader(format: number, fileId: number): Buffer {
  const out = Buffer.alloc(DATA_HEADER_BYTES);
  DATA_MAGIC.copy(out, 0);
  out.writeUInt32LE(format, 8);
  out.writeUInt32LE(fileId, 12);
  out.writeUInt32LE(crc32c(out.subarray(0, 16)), 16);
  return out;
}

/** decodeDataHeader returns the header's fields or a reason it is not a valid header. */
export function decodeDataHeader(buf: Buffer): { format: number; fileId: number } | string {
  if (buf.length < DATA_HEADER_BYTES) return 'file shorter than its header';
  if (!buf.subarray(0, 8).equals(DATA_MAGIC)) return 'bad magic';
  if (crc32c(buf.subarray(0, 16)) !== buf.readUInt32LE(16)) return 'header checksum mismatch';
  return { format: buf.readUInt32LE(8), fileId: buf.readUInt32LE(12) };
}
