import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  BATCH_MEMBER,
  DATA_HEADER_BYTES,
  type Decoded,
  decodeDataHeader,
  decodeRecord,
  encodeDataHeader,
  encodeRecord,
  INVALID,
  Kind,
  NEED_MORE,
  recordBytes,
} from './record.js';

function encode(seq: number, kind: number, key: Uint8Array, value?: Uint8Array): Buffer {
  const buf = Buffer.alloc(recordBytes(key.length, value?.length ?? 0));
  expect(encodeRecord(buf, 0, seq, kind, key, value)).toBe(buf.length);
  return buf;
}

describe('record codec', () => {
  it('round-trips any put', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 256 }),
        fc.boolean(),
        (seq, key, value, member) => {
          const buf = encode(seq, Kind.PUT | (member ? BATCH_MEMBER : 0), key, value);
          const rec = decodeRecord(buf, 0, buf.length) as Decoded;
          expect(rec).not.toBe(INVALID);
          expect(rec.seq).toBe(seq);
          expect(rec.kind).toBe(Kind.PUT);
          expect(rec.member).toBe(member);
          expect(buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen)).toEqual(Buffer.from(key));
          expect(buf.subarray(rec.valueStart, rec.valueStart + rec.valueLen)).toEqual(Buffer.from(value));
          expect(rec.end).toBe(buf.length);
        },
      ),
    );
  });

  it('asks for more bytes when truncated anywhere', () => {
    const buf = encode(7, Kind.PUT, Buffer.from('key'), Buffer.from('value'));
    for (let cut = 0; cut < buf.length; cut++) expect(decodeRecord(buf, 0, cut)).toBe(NEED_MORE);
  });

  it('rejects any single flipped bit', () => {
    const buf = encode(9, Kind.DELETE, Buffer.from('some-key'));
    for (let bit = 0; bit < buf.length * 8; bit++) {
      const copy = Buffer.from(buf);
      copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
      const result = decodeRecord(copy, 0, copy.length);
      // A flip in a length field may also make the record look longer than the buffer.
      expect(result === INVALID || result === NEED_MORE).toBe(true);
    }
  });

  it('rejects a delete with a value and an unknown kind', () => {
    const buf = encode(1, Kind.PUT, Buffer.from('k'), Buffer.from('v'));
    buf[12] = 9;
    expect(decodeRecord(buf, 0, buf.length)).toBe(INVALID);
  });

  it('round-trips the data file header and detects damage', () => {
    const header = encodeDataHeader(1, 42);
    expect(header.length).toBe(DATA_HEADER_BYTES);
    expect(decodeDataHeader(header)).toEqual({ format: 1, fileId: 42 });
    header[13] = 1;
    expect(typeof decodeDataHeader(header)).toBe('string');
  });
});
