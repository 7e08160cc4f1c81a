// CRC32C (Castagnoli), the checksum on every record, hint entry and metadata copy.
//
// Two implementations: a slicing-by-16 table loop in JS for short inputs, and the native one
// (@node-rs/crc32, SSE4.2) for long ones. Measured here, a native call costs ~300 ns of overhead
// before it reads a byte (N-API transition plus a Buffer view), which is more than the whole JS
// loop takes for a typical record; from CRC_NATIVE_MIN_BYTES up the native code wins.
//
// The tables are an Int32Array: a Uint32Array's entries of 2^31 and up are not small integers,
// and V8 converted them on every load. With signed entries and 16 bytes a round, a 149-byte
// record's CRC took 142 ns against 200 for slicing-by-8 over unsigned tables (issue 14; node 20,
// `node` micro-benchmark, three rounds each).
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/** CRC_NATIVE_MIN_BYTES: inputs this long or longer go to the native implementation. */
export const CRC_NATIVE_MIN_BYTES = 1024;

const POLY = 0x82f63b78; // CRC32C, reflected
/** SLICES: the tables of slicing-by-16, table k advancing a byte by k more zero bytes. */
const SLICES = 16;
const TABLES = buildTables();

function buildTables(): Int32Array {
  const t = new Int32Array(SLICES * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = (t[n] as number) >>> 0;
    for (let k = 1; k < SLICES; k++) {
      c = ((t[c & 0xff] as number) ^ (c >>> 8)) >>> 0;
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/** crc32cRange returns the CRC32C of bytes[start..end), continuing from `seed` (0 starts fresh). */
export function crc32cRange(bytes: Uint8Array, start: number, end: number, seed = 0): number {
  if (end - start >= CRC_NATIVE_MIN_BYTES) {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
    return nativeCrc32c(buf, seed) >>> 0;
  }
  const t = TABLES;
  let crc = ~seed;
  let i = start;
  for (; i + 16 <= end; i += 16) {
    const lo =
      crc ^
      ((bytes[i] as number) |
        ((bytes[i + 1] as number) << 8) |
        ((bytes[i + 2] as number) << 16) |
        ((bytes[i + 3] as number) << 24));
    crc =
      (t[3840 + (lo & 0xff)] as number) ^
      (t[3584 + ((lo >>> 8) & 0xff)] as number) ^
      (t[3328 + ((lo >>> 16) & 0xff)] as number) ^
      (t[3072 + (lo >>> 24)] as number) ^
      (t[2816 + (bytes[i + 4] as number)] as number) ^
      (t[2560 + (bytes[i + 5] as number)] as number) ^
      (t[2304 + (bytes[i + 6] as number)] as number) ^
      (t[2048 + (bytes[i + 7] as number)] as number) ^
      (t[1792 + (bytes[i + 8] as number)] as number) ^
      (t[1536 + (bytes[i + 9] as number)] as number) ^
      (t[1280 + (bytes[i + 10] as number)] as number) ^
      (t[1024 + (bytes[i + 11] as number)] as number) ^
      (t[768 + (bytes[i + 12] as number)] as number) ^
      (t[512 + (bytes[i + 13] as number)] as number) ^
      (t[256 + (bytes[i + 14] as number)] as number) ^
      (t[bytes[i + 15] as number] as number);
  }
  for (; i < end; i++) crc = (t[(crc ^ (bytes[i] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** crc32c returns the CRC32C of `bytes`, continuing from `seed` when given (0 starts fresh). */
export function crc32c(bytes: Uint8Array, seed = 0): number {
  return crc32cRange(bytes, 0, bytes.length, seed);
}
