// How the lmdb engine lays out what it stores in lmdb (docs/format.md, "lmdb store"): user keys
// behind a one-byte prefix (storedKey), values behind their revision (encodeStoredValue,
// decodeRevision, userValue), expiry times and the meta database's lastTs as u64s. The engine
// (lmdb-engine.ts) and the migration of older stores (migration.ts) share these codecs; the
// header of lmdb-engine.ts says why keys and values take these prefixes.

import { encodeU64LE, readU32LE, readU64LE, writeU64LE } from '../../stdx/u64.js';
import type { Revision } from '../engine.js';
import { CorruptionError } from '../errors.js';

/** KEY_PREFIX: the byte stored before every key (lmdb-engine.ts, header: makes the empty key storable). */
export const KEY_PREFIX = 0x01;
/** Stored keys run from [KEY_PREFIX] (the empty user key) up to, excluding, [KEY_PREFIX + 1]. */
export const STORED_KEYS_START = Buffer.from([KEY_PREFIX]);
export const STORED_KEYS_END = Buffer.from([KEY_PREFIX + 1]);
/** LAST_TS_KEY: the meta database's entry holding lastTs, a u64. */
export const LAST_TS_KEY = Buffer.from('lastTs');
/** VALUE_PREFIX_BYTES: the revision before every stored value, mod u64 | create u64 | version u32. */
export const VALUE_PREFIX_BYTES = 20;
const sliceBytes = Uint8Array.prototype.slice;
/**
 * VALUE_TYPE_AT: the byte of the prefix that holds a value's type (format 4): the top byte of
 * `mod`. A mod stays below 2^53, so that byte is 0 in every format-3 value, which reads as a
 * string; a typed value costs no extra byte. A format-3 build would read a typed value's mod as a
 * huge number, which is why the store is raised to format 4 first.
 */
const VALUE_TYPE_AT = 7;

export function encodeExpiry(expiresAt: number): Buffer {
  return encodeU64LE(expiresAt);
}

export function decodeExpiry(raw: Uint8Array): number {
  return readU64LE(raw, 0);
}

/**
 * encodeStoredValue is what lmdb stores for a value: its revision, mod u64 | create u64 |
 * version u32 (VALUE_PREFIX_BYTES), then the value. It is also the private copy lmdb-js needs:
 * it reads a value's bytes by address on its write thread after put() returns, so a caller
 * reusing its buffer must not change what is written.
 */
export function encodeStoredValue(revision: Revision, value: Uint8Array, valueType = 0): Buffer {
  const out = Buffer.allocUnsafe(VALUE_PREFIX_BYTES + value.length);
  writeU64LE(out, revision.mod, 0);
  out[VALUE_TYPE_AT] = valueType;
  writeU64LE(out, revision.create, 8);
  out.writeUInt32LE(revision.version, 16);
  out.set(value, VALUE_PREFIX_BYTES);
  return out;
}

function checkStoredValue(raw: Uint8Array): void {
  if (raw.length < VALUE_PREFIX_BYTES) {
    throw new CorruptionError(
      `lmdb value is ${raw.length} bytes, shorter than its ${VALUE_PREFIX_BYTES}-byte revision`,
    );
  }
}

/**
 * decodeRevision reads a stored value's revision prefix. `raw` may be a plain Uint8Array: lmdb-js
 * returns a value of 16 MiB or more (SHARED_BUFFER_THRESHOLD) from getBinaryFast as a view of its
 * memory map, not a Buffer (stdx/u64.ts reads both).
 */
export function decodeRevision(raw: Uint8Array): Revision {
  checkStoredValue(raw);
  // mod without its top byte, which holds the value type (VALUE_TYPE_AT).
  const mod = readU32LE(raw, 0) + (readU32LE(raw, 4) & 0x00ff_ffff) * 2 ** 32;
  return { mod, create: readU64LE(raw, 8), version: readU32LE(raw, 16) };
}

/** decodeValueType reads a stored value's type (storage/value-type.ts; 0: a string). */
export function decodeValueType(raw: Uint8Array): number {
  checkStoredValue(raw);
  return raw[VALUE_TYPE_AT] as number;
}

/**
 * userValue copies a stored value past its revision prefix out of what getBinaryFast returned
 * (lmdb-js's reused read buffer, whose `length` it sets to the value's, or a view of its memory
 * map): one copy of the user's bytes, as lmdb-js's own `get` makes of the whole value.
 */
export function userValue(raw: Uint8Array): Buffer {
  checkStoredValue(raw);
  if (raw instanceof Buffer) return sliceBytes.call(raw, VALUE_PREFIX_BYTES, raw.length) as Buffer;
  return Buffer.from(raw.subarray(VALUE_PREFIX_BYTES));
}

/** userValueView is a stored value past its prefix, a view: for values that are fresh copies. */
export function userValueView(raw: Buffer): Buffer {
  checkStoredValue(raw);
  return raw.subarray(VALUE_PREFIX_BYTES);
}

/** storedKey is `key` behind KEY_PREFIX, in a buffer of its own (so also a copy of the borrowed key). */
export function storedKey(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(key.length + 1);
  out[0] = KEY_PREFIX;
  out.set(key, 1);
  return out;
}
