// Serializable validation of scans: what a scan has yielded so far is a predicate read, covered
// by validation whether or not its iterator was finished or closed (docs/transactions.md,
// "Isolation and validation"). A scan covers its range from the start (in scan order) up to and
// including the last key it yielded, and the whole range once exhausted: a write the caller could
// have seen conflicts, one past where the scan stopped does not.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { type Db, type EngineName, open } from '../db/db.js';
import { ClosedError } from '../storage/errors.js';
import { TxnConflictError } from './errors.js';
import type { Transaction } from './transaction.js';

let db: Db;
let engine: EngineName = 'cask';

beforeEach(async () => {
  db = await open(tmpDir('scan-validation'), { durability: 'never', engine });
  expect(db.engineName).toBe(engine);
});

afterEach(async () => {
  await db.close();
});

const committed = async (tx: Transaction): Promise<boolean> => {
  try {
    await tx.commit();
    return true;
  } catch (err) {
    if (err instanceof TxnConflictError) return false;
    throw err;
  }
};

/** firstKey peeks at a scan's first entry and leaves its iterator open (the peek idiom). */
const firstKey = async (it: AsyncIterableIterator<[Buffer, Buffer]>): Promise<string | undefined> => {
  const first = await it.next();
  return first.done === true ? undefined : first.value[0].toString();
};

for (const engineName of ['cask', 'lmdb'] as EngineName[]) {
  describe(`serializable scans left open (${engineName})`, () => {
    beforeAll(() => {
      engine = engineName;
    });
    const begin = () => db.begin({ isolation: 'serializable' });

    it('the peek idiom (limit 1, next() once) conflicts with a phantom before the key it returned', async () => {
      await db.set('q:5', 'job5');
      const t1 = await begin();
      const claimed = await firstKey(t1.scan({ prefix: 'q:', limit: 1 }));
      expect(claimed).toBe('q:5');
      // T2 reads what T1 writes and inserts what T1's scan would have returned first: a cycle.
      await db.transaction(async (t2) => {
        if ((await t2.get('claimed')) === undefined) t2.set('q:1', 'job1');
      });
      t1.set('claimed', claimed!);
      expect(await committed(t1)).toBe(false);
    });

    it('a value yielded by an iterator left open is validated like a read', async () => {
      await db.set('acct:a', '100');
      const t1 = await begin();
      const it = t1.scan({ prefix: 'acct:' });
      const { value } = await it.next();
      const [k, v] = value as [Buffer, Buffer];
      await db.set('acct:a', '0');
      t1.set('report', `${k}=${v}`);
      expect(await committed(t1)).toBe(false);
    });

    it('a deletion of a yielded key conflicts', async () => {
      await db.batch([
        { type: 'set', key: 'r:1', value: '1' },
        { type: 'set', key: 'r:2', value: '2' },
      ]);
      const t1 = await begin();
      expect(await firstKey(t1.scan({ prefix: 'r:' }))).toBe('r:1');
      await db.delete('r:1');
      t1.set('out', 'x');
      expect(await committed(t1)).toBe(false);
    });

    it('a phantom past the last yielded key does not conflict: the scan never saw past it', async () => {
      await db.batch([
        { type: 'set', key: 'r:1', value: '1' },
        { type: 'set', key: 'r:5', value: '5' },
      ]);
      const t1 = await begin();
      const it = t1.scan({ prefix: 'r:' });
      expect(await firstKey(it)).toBe('r:1');
      await db.set('r:3', '3');
      await db.set('r:5', '55');
      t1.set('out', 'x');
      expect(await committed(t1)).toBe(true);
    });

    it('reverse: a phantom above the last yielded key conflicts, one below it does not', async () => {
      await db.batch([
        { type: 'set', key: 'r:1', value: '1' },
        { type: 'set', key: 'r:5', value: '5' },
      ]);
      const above = await begin();
      expect(await firstKey(above.scan({ prefix: 'r:', reverse: true }))).toBe('r:5');
      await db.set('r:9', '9');
      above.set('out', 'x');
      expect(await committed(above)).toBe(false);

      const below = await begin();
      expect(await firstKey(below.scan({ prefix: 'r:', reverse: true, limit: 1 }))).toBe('r:9');
      await db.set('r:3', '3');
      await db.set('r:1', '11');
      below.set('out', 'x');
      expect(await committed(below)).toBe(true);
    });

    it('an exhausted scan covers its whole range even if never closed', async () => {
      await db.set('r:1', '1');
      const t1 = await begin();
      const it = t1.scan({ prefix: 'r:' });
      expect(await firstKey(it)).toBe('r:1');
      expect((await it.next()).done).toBe(true);
      await db.set('r:9', '9');
      t1.set('out', 'x');
      expect(await committed(t1)).toBe(false);
    });

    it('an empty peek covers the whole range', async () => {
      const t1 = await begin();
      expect(await firstKey(t1.scan({ prefix: 'q:', limit: 1 }))).toBeUndefined();
      await db.set('q:7', 'job7');
      t1.set('out', 'x');
      expect(await committed(t1)).toBe(false);
    });

    it('a scan never started, or with limit 0, covers nothing', async () => {
      await db.set('r:1', '1');
      const t1 = await begin();
      t1.scan({ prefix: 'r:' });
      expect(await firstKey(t1.scan({ prefix: 'r:', limit: 0 }))).toBeUndefined();
      await db.set('r:1', '11');
      await db.set('r:2', '2');
      t1.set('out', 'x');
      expect(await committed(t1)).toBe(true);
    });

    it('a scan that throws covers only what it yielded: the commit reports the real error', async () => {
      await db.set('r:1', '1');
      const t1 = await begin();
      await db.set('r:2', '2');
      await db.close();
      await expect(t1.scan({ prefix: 'r:' }).next()).rejects.toBeInstanceOf(ClosedError);
      t1.set('out', 'x');
      await expect(t1.commit()).rejects.toBeInstanceOf(ClosedError);
    });
  });
}
