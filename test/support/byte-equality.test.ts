// The byte-array equality tester (byte-equality.ts) decides exactly as the default would: equal
// bytes and lengths pass, any differing byte or length fails, and pairs of other classes keep
// the default rules.
import { describe, expect, it } from 'vitest';

describe('byte-array equality in tests', () => {
  it('passes equal bytes and fails a differing byte, length or class, at any size', () => {
    for (const size of [0, 1, 300_000]) {
      const a = Buffer.alloc(size, 7);
      expect(Buffer.from(a)).toEqual(a);
      expect({ value: Buffer.from(a) }).toStrictEqual({ value: a });
      expect(new Uint8Array(a)).toEqual(new Uint8Array(a));
      if (size > 0) {
        const b = Buffer.from(a);
        b[size - 1] = 8;
        expect(b).not.toEqual(a);
        expect([b]).not.toEqual([a]);
      }
      expect(Buffer.alloc(size + 1, 7)).not.toEqual(a);
    }
    // Views into larger buffers compare their own bytes only.
    const big = Buffer.from('xxabcxx');
    expect(big.subarray(2, 5)).toEqual(Buffer.from('abc'));
    expect(big.subarray(2, 5)).not.toEqual(Buffer.from('abd'));
    // Other classes: the default rules (a Buffer is not strictly equal to a Uint8Array).
    expect(Buffer.from('abc')).not.toStrictEqual(new Uint8Array(Buffer.from('abc')));
  });
});
