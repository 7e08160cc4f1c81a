import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes } from './bytes.js';
import { keyFromString, keyString } from './key-string.js';

describe('key strings', () => {
  it('round-trip any bytes, also from a view at an offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(8), (bytes, offset) => {
        const backing = new Uint8Array(bytes.length + offset + 3).fill(0xee);
        backing.set(bytes, offset);
        const view = backing.subarray(offset, offset + bytes.length);
        expect([...keyFromString(keyString(view))]).toEqual([...bytes]);
      }),
    );
  });

  it('order like the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 }), (a, b) => {
        const byBytes = Math.sign(compareBytes(a, b));
        const ka = keyString(a);
        const kb = keyString(b);
        expect(ka < kb ? -1 : ka > kb ? 1 : 0).toBe(byBytes);
      }),
    );
  });
});
