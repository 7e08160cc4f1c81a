import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes, prefixEnd, toBytes } from './bytes.js';

describe('bytes', () => {
  it('compareBytes agrees with Buffer.compare', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
        expect(Math.sign(compareBytes(a, b))).toBe(Buffer.compare(Buffer.from(a), Buffer.from(b)));
      }),
    );
  });
  it('prefixEnd bounds every key with the prefix', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 6 }),
        fc.uint8Array({ maxLength: 6 }),
        (p, tail) => {
          const end = prefixEnd(p);
          const key = new Uint8Array([...p, ...tail]);
          if (end === undefined) expect(p.every((b) => b === 0xff)).toBe(true);
          else expect(compareBytes(key, end)).toBeLessThan(0);
        },
      ),
    );
    expect(prefixEnd(new Uint8Array([1, 0xff]))).toEqual(new Uint8Array([2]));
    // Never modifies its argument, also when it is a Buffer (whose slice is a view).
    const prefix = Buffer.from('user:');
    expect(Buffer.from(prefixEnd(prefix)!).toString()).toBe('user;');
    expect(prefix.toString()).toBe('user:');
  });
  it('toBytes encodes strings as UTF-8', () => {
    expect([...toBytes('é')]).toEqual([0xc3, 0xa9]);
  });
});
