// A scan that reads values stops at a damaged record with CorruptionError (docs/hardening.md),
// after yielding every entry before it. Found from outside: the cask engine reads a scan in chunks
// of 256 entries and a damaged record anywhere in a chunk threw away the chunk's good entries
// ahead of it (a store whose 70th key was damaged scanned as nothing at all, and `cairn scan`
// printed nothing), and a snapshot's scan, which reads one entry ahead, lost one more.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { open } from '../../db/db.js';
import { CorruptionError } from '../errors.js';

const KEYS = 100;
const DAMAGED = 70;
const key = (i: number) => `key${String(i).padStart(3, '0')}`;
const value = (i: number) => `value-${i}-`.padEnd(60, 'v');

async function collect(scan: AsyncIterable<[Buffer, Buffer]>): Promise<{ keys: string[]; error: unknown }> {
  const keys: string[] = [];
  try {
    for await (const [k, v] of scan) {
      expect(v.toString()).toBe(value(Number(k.toString().slice(3))));
      keys.push(k.toString());
    }
  } catch (error) {
    return { keys, error };
  }
  return { keys, error: undefined };
}

describe('a scan over a damaged record', () => {
  it('yields every entry before it, forward and reverse, in Db, snapshot and transaction scans', async () => {
    const dir = tmpDir('damaged-scan-stop');
    let db = await open(dir);
    for (let i = 0; i < KEYS; i++) await db.set(key(i), value(i));
    await db.close();
    const name = fs.readdirSync(dir).find((n) => n.endsWith('.data'))!;
    const file = path.join(dir, name);
    const bytes = fs.readFileSync(file);
    const at = bytes.indexOf(value(DAMAGED));
    expect(at).toBeGreaterThan(0);
    bytes[at + 3] = (bytes[at + 3] as number) ^ 0x01;
    fs.writeFileSync(file, bytes);

    db = await open(dir);
    try {
      const before = Array.from({ length: DAMAGED }, (_, i) => key(i));
      const after = Array.from({ length: KEYS - DAMAGED - 1 }, (_, i) => key(KEYS - 1 - i));
      const snap = await db.snapshot();
      const tx = await db.begin();
      const scans: [string, () => AsyncIterable<[Buffer, Buffer]>, string[]][] = [
        ['db', () => db.scan(), before],
        ['db reverse', () => db.scan({ reverse: true }), after],
        ['snapshot', () => snap.scan(), before],
        ['snapshot reverse', () => snap.scan({ reverse: true }), after],
        ['transaction', () => tx.scan(), before],
      ];
      for (const [label, scan, expected] of scans) {
        const { keys, error } = await collect(scan());
        expect(error, label).toBeInstanceOf(CorruptionError);
        expect(keys, label).toEqual(expected);
      }
      // A limit that ends before the damaged key reads no further: no error.
      const limited = await collect(db.scan({ limit: DAMAGED }));
      expect(limited.error).toBeUndefined();
      expect(limited.keys).toEqual(before);
      snap.release();
      tx.rollback();
    } finally {
      await db.close();
    }
  });
});
