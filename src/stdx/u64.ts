// u64 fields as JS numbers. Every u64 Cairn stores (seqs, commit timestamps, expiry times) is a
// JS number, so it stays a safe integer (below 2^53) and is written as two u32 halves, low half
// first: little-endian, the byte order of every format in docs/format.md (cask records and hint
// files, lmdb's stored values, expiries and lastTs). No format is big-endian, so no big-endian
// variant is offered. Numbers, not BigInts: a BigInt per field would allocate on every record
// read, and the values never pass 2^53 anyway.
//
// The readers take a plain Uint8Array as well as a Buffer: lmdb-js hands out values of 16 MiB
// or more as views of its memory map, which lack Buffer's readUInt32LE.
import { assert } from './assert.js';

/** U32: 2^32, the weight of a u64's high half. */
const U32 = 0x1_0000_0000;
/**
 * U64_SAFE_HI_LIMIT: a u64 is a safe integer exactly when its high half is below 2^21
 * (2^21 * 2^32 = 2^53). Decoders compare against it to refuse damaged or foreign values.
 */
export const U64_SAFE_HI_LIMIT = 2 ** 21;

/** u64Lo is the low u32 half of a safe non-negative integer. */
export function u64Lo(n: number): number {
  return n % U32;
}

/** u64Hi is the high u32 half of a safe non-negative integer. */
export function u64Hi(n: number): number {
  return Math.floor(n / U32);
}

/** u64FromHalves joins a high and a low u32 half (exact while hi < U64_SAFE_HI_LIMIT). */
export function u64FromHalves(hi: number, lo: number): number {
  return hi * U32 + lo;
}

/**
 * writeU64LE writes `n` at `out[at..at+8]`, little-endian. `n` must be a safe non-negative
 * integer: anything else would be written wrongly (a fraction truncated, 2^53 + 1 rounded), so it
 * is a programmer error, as is writing past the end of `out`.
 */
export function writeU64LE(out: Uint8Array, n: number, at: number): void {
  assert(Number.isSafeInteger(n) && n >= 0, 'u64 must be a safe non-negative integer');
  assert(at >= 0 && at + 8 <= out.length, 'u64 written past the end of its buffer');
  writeU32LE(out, n % U32, at);
  writeU32LE(out, Math.floor(n / U32), at + 4);
}

/** encodeU64LE is `n` as a fresh 8-byte buffer (writeU64LE's rules). */
export function encodeU64LE(n: number): Buffer {
  const out = Buffer.allocUnsafe(8);
  writeU64LE(out, n, 0);
  return out;
}

/**
 * readU64LE reads the u64 at `buf[at..at+8]`. It is exact only below 2^53: a decoder of bytes
 * that may be damaged uses readSafeU64LE instead (or checks the high half itself).
 */
export function readU64LE(buf: Uint8Array, at: number): number {
  return readU32LE(buf, at + 4) * U32 + readU32LE(buf, at);
}

/** readSafeU64LE reads the u64 at `buf[at..at+8]`, or undefined when it is not a safe integer. */
export function readSafeU64LE(buf: Uint8Array, at: number): number | undefined {
  const hi = readU32LE(buf, at + 4);
  if (hi >= U64_SAFE_HI_LIMIT) return undefined;
  return hi * U32 + readU32LE(buf, at);
}

/**
 * readU32LE reads the u32 at `buf[at..at+4]` (of a Buffer or a plain Uint8Array). Like the
 * readers above it does not check bounds: every caller has checked the length of what it decodes
 * (record and hint headers, lmdb's checkStoredValue), and the check would cost every record read.
 */
export function readU32LE(buf: Uint8Array, at: number): number {
  return (
    ((buf[at] as number) | ((buf[at + 1] as number) << 8) | ((buf[at + 2] as number) << 16)) +
    (buf[at + 3] as number) * 0x100_0000
  );
}

/**
 * writeU32LE writes the u32 `n` at `out[at..at+4]`, little-endian, unchecked as readU32LE reads:
 * Buffer#writeUInt32LE validates its value and offset on every call (about 40 ns through
 * Node's argument checks), which every record encoded paid four times.
 */
export function writeU32LE(out: Uint8Array, n: number, at: number): void {
  out[at] = n & 0xff;
  out[at + 1] = (n >>> 8) & 0xff;
  out[at + 2] = (n >>> 16) & 0xff;
  out[at + 3] = n >>> 24;
}
