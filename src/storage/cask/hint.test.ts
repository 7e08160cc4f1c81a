// decodeHintAt's two modes: validate then visit (nothing visited from a bad file), and one pass
// (the open's: visits as it validates, and the caller drops what it collected on failure).
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../stdx/crc32c.js';
import { decodeHintAt, HintWriter, hintEntryCount } from './hint.js';

function sample(): Buffer {
  const w = new HintWriter(3, 9);
  w.add(Buffer.from('alpha'), 10, 100, 5, undefined, 0, 0);
  w.add(Buffer.from('beta'), 11, 200, 6, 1_700_000_000_000, 4, 2);
  w.add(Buffer.from('gamma'), 12, 300, 7, undefined, 12, 1);
  w.addTombstone(Buffer.from('zeta'), 13);
  return w.finish(4096);
}

/** withCount rewrites the trailer's entry count (and the CRC, so only the structure is wrong). */
function withCount(bytes: Buffer, count: number): Buffer {
  const copy = Buffer.from(bytes);
  copy.writeUInt32LE(count, copy.length - 12);
  copy.writeUInt32LE(crc32c(copy.subarray(0, copy.length - 4)), copy.length - 4);
  return copy;
}

function decode(
  bytes: Buffer,
  onePass: boolean,
): { reason: string | undefined; keys: string[]; tombstones: string[] } {
  const keys: string[] = [];
  const tombstones: string[] = [];
  const reason = decodeHintAt(
    bytes,
    9,
    4096,
    (keyAt, keyLen, seq, off, len, exp, create, version) =>
      keys.push(
        `${bytes.toString('latin1', keyAt, keyAt + keyLen)}/${seq}/${off}/${len}/${exp}/${create}/${version}`,
      ),
    (key, seq) => tombstones.push(`${Buffer.from(key).toString()}/${seq}`),
    onePass,
  );
  return { reason, keys, tombstones };
}

describe('decodeHintAt', () => {
  it('visits the same entries and tombstones in one pass as in two', () => {
    const bytes = sample();
    expect(hintEntryCount(bytes)).toBe(3);
    const two = decode(bytes, false);
    expect(two.reason).toBeUndefined();
    expect(two.keys).toEqual([
      'alpha/10/100/5/undefined/0/0',
      'beta/11/200/6/1700000000000/4/2',
      'gamma/12/300/7/undefined/12/1',
    ]);
    expect(two.tombstones).toEqual(['zeta/13']);
    expect(decode(bytes, true)).toEqual(two);
  });

  it('refuses a file whose structure is wrong under a valid checksum; only one pass visits before it knows', () => {
    for (const count of [2, 5, 1000]) {
      const bad = withCount(sample(), count);
      const two = decode(bad, false);
      expect(two.reason, `count ${count}`).toBeDefined();
      expect(two.keys).toEqual([]);
      expect(two.tombstones).toEqual([]);
      const one = decode(bad, true);
      expect(one.reason, `count ${count}`).toBeDefined();
      expect(one.tombstones).toEqual([]); // tombstones only ever after the whole file is checked
    }
  });
});
