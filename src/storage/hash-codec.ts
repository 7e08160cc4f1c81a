// The payload of a hash value (ValueType.HASH, storage/value-type.ts), docs/format.md "Value
// types":
//
//   hash := count u32 | (field_len u32 | field | value_len u32 | value){count}
//
// little-endian, fields in strictly increasing byte order (so no field repeats, and HSCAN can
// resume after the last field it returned). The engines store it as an opaque value; the RESP
// hash commands (server/resp/commands/hashes.ts) decode, change and re-encode it whole. That is
// a whole-value layout: every HSET rewrites the whole hash, which is fine for the small hashes
// Node libraries keep (sessions, job records, rate-limit buckets) and is why a hash is bounded
// by HASH_FIELDS_MAX and HASH_BYTES_MAX (format.md says what a sub-key layout would need).
//
// Buffers: decodeHash copies its input once and hands out views into that copy, so the caller's
// buffer (a pipeline value, a socket chunk) may change afterwards; encodeHash writes one fresh
// buffer.
import { CorruptionError, LimitError } from './errors.js';

/** HASH_FIELDS_MAX: the most fields one hash may hold (each HSET rewrites the whole hash). */
export const HASH_FIELDS_MAX = 65_536;
/**
 * HASH_BYTES_MAX: the largest encoded hash. Every write rewrites it whole, so it is kept far
 * below VALUE_BYTES_MAX: at 8 MiB one HSET costs about as much as a large SET.
 */
export const HASH_BYTES_MAX = 8 * 1024 * 1024;

/** SMALL_COPY_BYTES: values shorter than this are copied by a loop, longer ones by `set`. */
const SMALL_COPY_BYTES = 64;
/** Bytes of the count and of each length field. */
const U32_BYTES = 4;

/**
 * Hash: a decoded hash, field (as a latin1 string: binary-safe, one UTF-16 unit per byte, so
 * string order is byte order) to value.
 */
export type Hash = Map<string, Buffer>;

/** sortedFields: the fields of `hash` in byte order (the order they are stored and scanned in). */
export function sortedFields(hash: Hash): string[] {
  // Default sort compares UTF-16 code units; latin1 strings hold one byte per unit: byte order.
  return [...hash.keys()].sort();
}

/** encodedHashBytes: the size encodeHash would give `hash`. */
export function encodedHashBytes(hash: Hash): number {
  let size = U32_BYTES;
  for (const [field, value] of hash) size += 2 * U32_BYTES + field.length + value.length;
  return size;
}

/**
 * checkHashLimits throws LimitError when `hash` exceeds HASH_FIELDS_MAX or HASH_BYTES_MAX
 * (the RESP layer answers `ERR hash too big ...`); it returns the encoded size.
 */
export function checkHashLimits(hash: Hash): number {
  if (hash.size > HASH_FIELDS_MAX) {
    throw new LimitError(
      `hash would have ${hash.size} fields; the limit is ${HASH_FIELDS_MAX} (HASH_FIELDS_MAX)`,
    );
  }
  const bytes = encodedHashBytes(hash);
  if (bytes > HASH_BYTES_MAX) {
    throw new LimitError(`hash would be ${bytes} bytes; the limit is ${HASH_BYTES_MAX} (HASH_BYTES_MAX)`);
  }
  return bytes;
}

/** encodeHash writes `hash` in the payload format, fields sorted, into a fresh buffer. */
export function encodeHash(hash: Hash): Buffer {
  const out = Buffer.allocUnsafe(encodedHashBytes(hash));
  out.writeUInt32LE(hash.size, 0);
  let at = U32_BYTES;
  for (const field of sortedFields(hash)) {
    const value = hash.get(field) as Buffer;
    out.writeUInt32LE(field.length, at);
    at += U32_BYTES;
    // Fields are short: a byte loop beats Buffer#write's per-call cost (a 1,000-field hash of
    // 100-byte values encoded in ~620 µs before, ~200-400 µs after, on a loaded machine). A
    // latin1 string holds one byte per unit.
    for (let j = 0; j < field.length; j++) out[at + j] = field.charCodeAt(j);
    at += field.length;
    out.writeUInt32LE(value.length, at);
    at += U32_BYTES;
    if (value.length < SMALL_COPY_BYTES)
      for (let j = 0; j < value.length; j++) out[at + j] = value[j] as number;
    else out.set(value, at);
    at += value.length;
  }
  return out;
}

/**
 * decodeHash reads a hash payload. Damage (a length past the end, fields out of order or
 * repeated, trailing bytes) is a CorruptionError: the engine's CRC passed, so such bytes were
 * written so, and answering from them would be a silent wrong answer.
 */
export function decodeHash(payload: Uint8Array): Hash {
  // One copy of the whole payload; fields are strings and values views into it (see header).
  return decodeHashFrom(Buffer.from(payload));
}

/**
 * decodeHashView is decodeHash without the copy: its values are views into `payload`, valid
 * only while nobody changes it. For a read-modify-write that re-encodes within the same call
 * (commands/hashes.ts, `modify`): the payload is the write pipeline's own read-only value, and
 * encodeHash copies every value before the call returns, so a large hash is not copied twice.
 */
export function decodeHashView(payload: Uint8Array): Hash {
  return decodeHashFrom(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
}

function decodeHashFrom(own: Buffer): Hash {
  const bad = (why: string): never => {
    throw new CorruptionError(`hash value (${own.length} bytes) is damaged: ${why}`);
  };
  if (own.length < U32_BYTES) bad('shorter than its count');
  const count = own.readUInt32LE(0);
  // Each field takes at least two lengths: a count beyond that cannot fit (no huge Map first).
  if (count > (own.length - U32_BYTES) / (2 * U32_BYTES)) bad(`count ${count} cannot fit`);
  const hash: Hash = new Map();
  let at = U32_BYTES;
  let previous: string | undefined;
  const take = (): Buffer => {
    if (own.length - at < U32_BYTES) bad('a length runs past the end');
    const len = own.readUInt32LE(at);
    at += U32_BYTES;
    if (len > own.length - at) bad('a field or value runs past the end');
    const view = own.subarray(at, at + len);
    at += len;
    return view;
  };
  for (let i = 0; i < count; i++) {
    const field = take().toString('latin1');
    const value = take();
    if (previous !== undefined && !(previous < field)) bad('fields out of order or repeated');
    previous = field;
    hash.set(field, value);
  }
  if (at !== own.length) bad(`${own.length - at} trailing bytes`);
  return hash;
}
