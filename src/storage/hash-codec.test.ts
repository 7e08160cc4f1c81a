import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptionError, LimitError } from './errors.js';
import {
  checkHashLimits,
  decodeHash,
  encodedHashBytes,
  encodeHash,
  HASH_BYTES_MAX,
  HASH_FIELDS_MAX,
  type Hash,
  sortedFields,
} from './hash-codec.js';

const bytes = fc.uint8Array({ maxLength: 24 }).map((a) => Buffer.from(a));
/** hashes: field names as latin1 strings of arbitrary bytes, values arbitrary bytes. */
const hashes = fc
  .array(fc.tuple(bytes, bytes), { maxLength: 30 })
  .map((pairs) => new Map(pairs.map(([f, v]) => [f.toString('latin1'), v])) as Hash);

function plain(hash: Hash): [string, string][] {
  return sortedFields(hash).map((f) => [
    Buffer.from(f, 'latin1').toString('hex'),
    hash.get(f)!.toString('hex'),
  ]);
}

describe('hash codec', () => {
  it('round-trips any hash, fields in byte order', () => {
    fc.assert(
      fc.property(hashes, (hash) => {
        const encoded = encodeHash(hash);
        expect(encoded.length).toBe(encodedHashBytes(hash));
        const decoded = decodeHash(encoded);
        expect(plain(decoded)).toEqual(plain(hash));
        const order = [...decoded.keys()].map((f) => Buffer.from(f, 'latin1'));
        for (let i = 1; i < order.length; i++)
          expect(Buffer.compare(order[i - 1]!, order[i]!)).toBeLessThan(0);
        // The same hash always encodes to the same bytes (replicas compare digests of values).
        expect(encodeHash(decoded).equals(encoded)).toBe(true);
      }),
    );
  });

  it('keeps nothing of a borrowed buffer: decoded fields and values survive the caller reusing it', () => {
    fc.assert(
      fc.property(hashes, (hash) => {
        const borrowed = encodeHash(hash);
        const decoded = decodeHash(borrowed);
        const before = plain(decoded);
        borrowed.fill(0xa5);
        expect(plain(decoded)).toEqual(before);
      }),
    );
    // And encodeHash copies the values it is given (argument views into a socket chunk).
    const value = Buffer.from('value');
    const encoded = encodeHash(new Map([['f', value]]));
    value.fill(0);
    expect(decodeHash(encoded).get('f')?.toString()).toBe('value');
  });

  it('refuses damaged payloads with CorruptionError, never a crash or a huge allocation', () => {
    fc.assert(
      fc.property(hashes, fc.nat(), fc.integer({ min: 0, max: 255 }), (hash, at, byte) => {
        const encoded = encodeHash(hash);
        const damaged = Buffer.from(encoded);
        damaged[at % damaged.length] = byte;
        try {
          decodeHash(damaged);
        } catch (err) {
          expect(err).toBeInstanceOf(CorruptionError);
        }
        for (const cut of [0, 1, encoded.length - 1]) {
          if (cut >= encoded.length) continue;
          expect(() => decodeHash(encoded.subarray(0, cut))).toThrow(CorruptionError);
        }
      }),
    );
    const huge = Buffer.alloc(4);
    huge.writeUInt32LE(0xffff_ffff, 0);
    expect(() => decodeHash(huge)).toThrow('cannot fit');
    // Two fields out of order: a hash this codec never writes.
    const a = encodeHash(new Map([['a', Buffer.from('1')]]));
    const b = encodeHash(new Map([['b', Buffer.from('2')]]));
    const swapped = Buffer.concat([Buffer.from([2, 0, 0, 0]), b.subarray(4), a.subarray(4)]);
    expect(() => decodeHash(swapped)).toThrow('out of order');
    expect(() => decodeHash(Buffer.concat([a, Buffer.from([0])]))).toThrow('trailing');
  });

  it('enforces HASH_FIELDS_MAX and HASH_BYTES_MAX by name', () => {
    const many: Hash = new Map();
    for (let i = 0; i <= HASH_FIELDS_MAX; i++) many.set(String(i), Buffer.alloc(0));
    expect(() => checkHashLimits(many)).toThrow(LimitError);
    expect(() => checkHashLimits(many)).toThrow('HASH_FIELDS_MAX');
    const big: Hash = new Map([['f', Buffer.alloc(HASH_BYTES_MAX)]]);
    expect(() => checkHashLimits(big)).toThrow('HASH_BYTES_MAX');
    expect(checkHashLimits(new Map([['f', Buffer.from('v')]]))).toBe(4 + 4 + 1 + 4 + 1);
  });
});
