import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

describe('crc32c', () => {
  it('matches the standard check value', () => {
    // RFC 3720 (iSCSI) check value for "123456789".
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });
  it('is chainable over split input', () => {
    const all = Buffer.from('hello, cairn');
    const split = crc32c(all.subarray(5), crc32c(all.subarray(0, 5)));
    expect(split).toBe(crc32c(all));
  });
  it('accepts plain Uint8Array views', () => {
    const bytes = new Uint8Array([0, 1, 2, 3, 4, 5]).subarray(1, 4);
    expect(crc32c(bytes)).toBe(crc32c(Buffer.from([1, 2, 3])));
  });
});

describe('crc32c implementations', () => {
  it('JS and native agree on every length around the switch-over', async () => {
    const { crc32c: native } = await import('@node-rs/crc32');
    const { crc32cRange, CRC_NATIVE_MIN_BYTES } = await import('./crc32c.js');
    const data = Buffer.from(
      Array.from({ length: CRC_NATIVE_MIN_BYTES + 50 }, (_, i) => (i * 131 + 7) & 0xff),
    );
    for (let len = 0; len <= data.length; len += len < 40 ? 1 : 37) {
      for (const start of [0, 1, 3]) {
        if (start + len > data.length) continue;
        const want = native(data.subarray(start, start + len), 0) >>> 0;
        expect(crc32cRange(data, start, start + len)).toBe(want);
        expect(crc32cRange(data, start, start + len, 0x1234)).toBe(
          native(data.subarray(start, start + len), 0x1234) >>> 0,
        );
      }
    }
  });

  it('JS and native agree on random bytes, offsets and seeds (property)', async () => {
    const { crc32c: native } = await import('@node-rs/crc32');
    const { crc32cRange, CRC_NATIVE_MIN_BYTES } = await import('./crc32c.js');
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: CRC_NATIVE_MIN_BYTES + 64 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        (bytes, a, b, seed) => {
          const start = bytes.length === 0 ? 0 : a % bytes.length;
          const end = start + (bytes.length === 0 ? 0 : b % (bytes.length - start + 1));
          const want = native(Buffer.from(bytes.subarray(start, end)), seed) >>> 0;
          expect(crc32cRange(bytes, start, end, seed)).toBe(want);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
