import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hash32 } from './hash32.js';

const text = (s: string) => Buffer.from(s, 'latin1');

describe('hash32', () => {
  it('is MurmurHash3 x86_32 with seed 0x9747b28c (published vectors)', () => {
    expect(hash32(text('test'))).toBe(0x704b81dc);
    expect(hash32(text('Hello, world!'))).toBe(0x24884cba);
    expect(hash32(text('The quick brown fox jumps over the lazy dog'))).toBe(0x2fa826cd);
  });

  it('hashes a range in place as it hashes a copy of the range', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(), fc.nat(), (bytes, a, b) => {
        const start = bytes.length === 0 ? 0 : a % (bytes.length + 1);
        const end = start + (b % (bytes.length - start + 1));
        expect(hash32(bytes, start, end)).toBe(hash32(bytes.slice(start, end)));
      }),
    );
  });

  it('spreads keys that share a prefix over the low and the high bits', () => {
    const n = 1 << 16;
    const low = new Uint32Array(256);
    const high = new Uint32Array(256);
    for (let i = 0; i < n; i++) {
      const h = hash32(text(`user:${i}`));
      (low[h & 0xff] as number)++;
      (high[h >>> 24] as number)++;
    }
    // 256 expected per bucket; a bad mix leaves buckets empty or several times too full.
    for (const buckets of [low, high]) {
      expect(Math.min(...buckets)).toBeGreaterThan(150);
      expect(Math.max(...buckets)).toBeLessThan(370);
    }
  });
});
