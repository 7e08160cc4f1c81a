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
