// A transaction's scan reads the transaction's own writes as get() does, including writes made
// while the scan is in progress (between two next() calls) to keys still ahead of it: a key the
// transaction deleted is never yielded, a key it wrote ahead is, with the value written last.
// Keys behind the scan's position stay behind (the scan does not go back). It yielded a key the
// transaction had just deleted, and missed keys it had just written ahead (found in review).
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { type Db, open } from '../db/db.js';

let db: Db;

beforeAll(async () => {
  db = await open(tmpDir('scan-own-writes'), { durability: 'never' });
});

afterAll(async () => {
  await db.close();
});

const text = (b: Buffer): string => b.toString();

describe('a scan and the writes its transaction makes while it runs', () => {
  it('sees deletes, inserts and updates ahead of it, forward and in reverse', async () => {
    await db.batch(['a1', 'a3', 'a5', 'a7'].map((key) => ({ type: 'set' as const, key, value: 'old' })));
    const tx = await db.begin();
    try {
      const seen: string[] = [];
      for await (const [k, v] of tx.scan({ prefix: 'a' })) {
        seen.push(`${text(k)}=${text(v)}`);
        if (text(k) === 'a3') {
          tx.delete('a5'); // ahead: gone
          tx.set('a4', 'new'); // ahead: appears
          tx.set('a7', 'updated'); // ahead: new value
          tx.set('a2', 'behind'); // behind: not revisited
          tx.delete('a1'); // behind: already yielded
        }
      }
      expect(seen).toEqual(['a1=old', 'a3=old', 'a4=new', 'a7=updated']);
      const after: string[] = [];
      for await (const [k] of tx.scan({ prefix: 'a' })) after.push(text(k));
      expect(after).toEqual(['a2', 'a3', 'a4', 'a7']);
    } finally {
      tx.rollback();
    }
    const rev = await db.begin();
    try {
      const tx = rev;
      const seen: string[] = [];
      for await (const [k] of tx.scan({ prefix: 'a', reverse: true })) {
        seen.push(text(k));
        if (text(k) === 'a5') {
          tx.delete('a3');
          tx.set('a2', 'new');
          tx.set('a6', 'behind');
        }
      }
      expect(seen).toEqual(['a7', 'a5', 'a2', 'a1']);
    } finally {
      rev.rollback();
    }
  });

  it('agrees with get() at every step, whatever is written during the scan (random model)', async () => {
    const keys = Array.from({ length: 12 }, (_, i) => `m${String(i).padStart(2, '0')}`);
    const step = fc.record({
      key: fc.constantFrom(...keys),
      del: fc.boolean(),
      value: fc.stringMatching(/^[a-z]{1,4}$/),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.subarray(keys),
        fc.array(fc.array(step, { maxLength: 3 }), { minLength: 12, maxLength: 12 }),
        fc.boolean(),
        async (present, writesAtStep, reverse) => {
          await db.batch(keys.map((key) => ({ type: 'delete' as const, key })));
          if (present.length > 0)
            await db.batch(present.map((key) => ({ type: 'set' as const, key, value: 'base' })));
          const tx = await db.begin();
          try {
            let n = 0;
            let last: string | undefined;
            for await (const [k, v] of tx.scan({ prefix: 'm', reverse })) {
              const key = text(k);
              // In scan order, and what the transaction reads for the key now.
              if (last !== undefined) expect(reverse ? key < last : key > last).toBe(true);
              expect(text((await tx.get(key)) ?? Buffer.from('<absent>'))).toBe(text(v));
              // Nothing skipped: every key between the last one and this one reads absent.
              for (const other of keys)
                if (
                  last === undefined
                    ? reverse
                      ? other > key
                      : other < key
                    : reverse
                      ? other < last && other > key
                      : other > last && other < key
                )
                  expect(await tx.get(other)).toBeUndefined();
              last = key;
              for (const w of writesAtStep[n++ % writesAtStep.length] ?? [])
                if (w.del) tx.delete(w.key);
                else tx.set(w.key, w.value);
            }
            // Nothing missed after the last key either.
            for (const other of keys)
              if (last === undefined || (reverse ? other < last : other > last))
                expect(await tx.get(other)).toBeUndefined();
          } finally {
            tx.rollback();
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
