import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from './assert.js';
import {
  encodeU64LE,
  readSafeU64LE,
  readU32LE,
  readU64LE,
  U64_SAFE_HI_LIMIT,
  u64FromHalves,
  u64Hi,
  u64Lo,
  writeU64LE,
} from './u64.js';

// The oracle is Node's own BigInt codec, independent of the code under test.
function oracle(n: number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(BigInt(n));
  return out;
}

const EDGES = [0, 1, 0xff, 0xffff_ffff, 2 ** 32, 2 ** 32 + 1, 2 ** 52, 2 ** 53 - 1];

describe('u64', () => {
  it('writes the little-endian bytes of 0, 2^32, 2^53-1 and the edges between', () => {
    expect([...encodeU64LE(0)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    expect([...encodeU64LE(2 ** 32)]).toEqual([0, 0, 0, 0, 1, 0, 0, 0]);
    expect([...encodeU64LE(2 ** 53 - 1)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f, 0]);
    for (const n of EDGES) expect(encodeU64LE(n).equals(oracle(n)), String(n)).toBe(true);
  });

  it('round-trips every safe non-negative integer, at any offset, in a Buffer or a plain Uint8Array', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(...EDGES), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
        fc.nat(16),
        fc.boolean(),
        (n, at, plain) => {
          const out = plain ? new Uint8Array(at + 8) : Buffer.alloc(at + 8);
          writeU64LE(out, n, at);
          expect(Buffer.from(out.subarray(at)).equals(oracle(n))).toBe(true);
          expect(readU64LE(out, at)).toBe(n);
          expect(readSafeU64LE(out, at)).toBe(n);
          expect(u64FromHalves(u64Hi(n), u64Lo(n))).toBe(n);
          expect(u64Hi(n)).toBeLessThan(U64_SAFE_HI_LIMIT);
          expect(readU32LE(out, at)).toBe(u64Lo(n));
          expect(readU32LE(out, at + 4)).toBe(u64Hi(n));
        },
      ),
    );
  });

  it('refuses to write what is not a safe non-negative integer', () => {
    const out = Buffer.alloc(8);
    for (const n of [-1, 0.5, 2 ** 53, 2 ** 64, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => writeU64LE(out, n, 0), String(n)).toThrow(AssertionError);
      expect(() => encodeU64LE(n), String(n)).toThrow(AssertionError);
    }
    expect(() => writeU64LE(out, 1, 1)).toThrow(AssertionError);
  });

  it('readSafeU64LE refuses values of 2^53 and more; readU64LE reads them inexactly', () => {
    const buf = Buffer.alloc(8);
    buf.writeBigUInt64LE(2n ** 53n);
    expect(readSafeU64LE(buf, 0)).toBeUndefined();
    expect(readU64LE(buf, 0)).toBe(2 ** 53);
    buf.writeBigUInt64LE(2n ** 64n - 1n);
    expect(readSafeU64LE(buf, 0)).toBeUndefined();
  });
});
