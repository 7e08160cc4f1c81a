// The anomaly catalogue (Adya's phenomena as Hermitage tests them), run against both isolation
// levels on a real cask store. Each test interleaves transactions step by step, like the
// Hermitage sessions, and states what `snapshot` allows and what `serializable` prevents.
// Hermitage's setup: keys 1 and 2 with values 10 and 20 (here `x` = 1, `y` = 2).
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { type Db, type EngineName, open } from '../db/db.js';
import { TxnConflictError } from './errors.js';
import type { Isolation } from './mvcc.js';
import type { Transaction } from './transaction.js';

let db: Db;
let engine: EngineName = 'cask';

beforeEach(async () => {
  db = await open(tmpDir('anomaly'), { durability: 'never', engine });
  expect(db.engineName).toBe(engine);
  await db.batch([
    { type: 'set', key: 'x', value: '10' },
    { type: 'set', key: 'y', value: '20' },
  ]);
});

afterEach(async () => {
  await db.close();
});

const str = async (tx: Transaction, key: string) => (await tx.get(key))?.toString();
const values = async (tx: Transaction, predicate: (v: number) => boolean) => {
  const out: string[] = [];
  for await (const [k, v] of tx.scan()) if (predicate(Number(v.toString()))) out.push(`${k}=${v}`);
  return out;
};
const committed = async (tx: Transaction): Promise<boolean> => {
  try {
    await tx.commit();
    return true;
  } catch (err) {
    if (err instanceof TxnConflictError) return false;
    throw err;
  }
};
const state = async () => ({ x: await db.getString('x'), y: await db.getString('y') });

for (const [engineName, isolation] of [
  ['cask', 'snapshot'],
  ['cask', 'serializable'],
  ['lmdb', 'snapshot'],
  ['lmdb', 'serializable'],
] as [EngineName, Isolation][]) {
  describe(`anomalies under ${isolation} isolation (${engineName})`, () => {
    beforeAll(() => {
      engine = engineName;
    });
    const begin = () => db.begin({ isolation });

    it('G0 (write cycles): the second writer of overlapping keys aborts', async () => {
      const t1 = await begin();
      const t2 = await begin();
      t1.set('x', '11');
      t2.set('x', '12');
      t1.set('y', '21');
      t2.set('y', '22');
      expect(await committed(t1)).toBe(true);
      expect(await committed(t2)).toBe(false);
      expect(await state()).toEqual({ x: '11', y: '21' });
    });

    it('G1a (aborted reads): a rolled-back write is never read', async () => {
      const t1 = await begin();
      const t2 = await begin();
      t1.set('x', '101');
      expect(await str(t2, 'x')).toBe('10');
      t1.rollback();
      expect(await str(t2, 'x')).toBe('10');
      expect(await committed(t2)).toBe(true);
    });

    it('G1b (intermediate reads): only final committed values are read', async () => {
      const t1 = await begin();
      const t2 = await begin();
      t1.set('x', '101');
      expect(await str(t2, 'x')).toBe('10');
      t1.set('x', '11');
      expect(await committed(t1)).toBe(true);
      expect(await str(t2, 'x')).toBe('10');
      const t3 = await begin();
      expect(await str(t3, 'x')).toBe('11');
    });

    it('G1c (circular information flow): neither sees the other; serializable aborts one', async () => {
      const t1 = await begin();
      const t2 = await begin();
      t1.set('x', '11');
      t2.set('y', '22');
      expect(await str(t1, 'y')).toBe('20');
      expect(await str(t2, 'x')).toBe('10');
      expect(await committed(t1)).toBe(true);
      // T2 read x, which T1 (committed first) wrote: serializable orders T2 before T1, but T1 read
      // y, which T2 writes; the cycle is broken by aborting T2. Snapshot isolation lets it commit.
      expect(await committed(t2)).toBe(isolation === 'snapshot');
    });

    it('OTV (observed transaction vanishes): a reader sees all of a commit or none of it', async () => {
      const t1 = await begin();
      const t2 = await begin();
      const t3 = await begin();
      t1.set('x', '11');
      t1.set('y', '19');
      t2.set('x', '12');
      expect(await committed(t1)).toBe(true);
      expect(await str(t3, 'x')).toBe('10');
      t2.set('y', '18');
      expect(await str(t3, 'y')).toBe('20');
      expect(await committed(t2)).toBe(false);
      expect(await str(t3, 'x')).toBe('10');
      expect(await str(t3, 'y')).toBe('20');
      expect(await committed(t3)).toBe(true);
    });

    it('PMP (predicate-many-preceders): a predicate read is repeatable', async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect(await values(t1, (v) => v === 30)).toEqual([]);
      t2.set('z', '30');
      expect(await committed(t2)).toBe(true);
      expect(await values(t1, (v) => v === 30)).toEqual([]);
      expect(await committed(t1)).toBe(true);
    });

    it('PMP with a write predicate: a delete by predicate conflicts with a concurrent update', async () => {
      const t1 = await begin();
      const t2 = await begin();
      for await (const [k, v] of t1.scan()) t1.set(k, String(Number(v.toString()) + 10));
      for await (const [k, v] of t2.scan()) if (v.toString() === '20') t2.delete(k);
      expect(await committed(t1)).toBe(true);
      expect(await committed(t2)).toBe(false);
      expect(await state()).toEqual({ x: '20', y: '30' });
    });

    it('P4 (lost update): the second read-modify-write aborts', async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect(await str(t1, 'x')).toBe('10');
      expect(await str(t2, 'x')).toBe('10');
      t1.set('x', '11');
      t2.set('x', '11');
      expect(await committed(t1)).toBe(true);
      expect(await committed(t2)).toBe(false);
    });

    it('G-single (read skew): a snapshot reads x and y from the same point in time', async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect(await str(t1, 'x')).toBe('10');
      expect(await str(t2, 'x')).toBe('10');
      expect(await str(t2, 'y')).toBe('20');
      t2.set('x', '12');
      t2.set('y', '18');
      expect(await committed(t2)).toBe(true);
      expect(await str(t1, 'y')).toBe('20');
      expect(await committed(t1)).toBe(true);
    });

    it('G-single with a write: the skewed writer aborts', async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect(await str(t1, 'x')).toBe('10');
      t2.set('x', '12');
      t2.set('y', '18');
      expect(await committed(t2)).toBe(true);
      t1.delete('y');
      expect(await committed(t1)).toBe(false);
    });

    it('G-single with predicate dependencies: a predicate read after a commit still sees the snapshot', async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect(await values(t1, (v) => v % 5 === 0)).toEqual(['x=10', 'y=20']);
      for await (const [k, v] of t2.scan()) if (v.toString() === '10') t2.set(k, '12');
      expect(await committed(t2)).toBe(true);
      expect(await values(t1, (v) => v % 3 === 0)).toEqual([]);
      expect(await committed(t1)).toBe(true);
    });

    it('G-single with a write predicate: deleting by a stale predicate aborts', async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect(await str(t1, 'x')).toBe('10');
      expect(await values(t2, () => true)).toEqual(['x=10', 'y=20']);
      t2.set('x', '12');
      t2.set('y', '18');
      expect(await committed(t2)).toBe(true);
      for await (const [k, v] of t1.scan()) if (v.toString() === '20') t1.delete(k);
      expect(await committed(t1)).toBe(false);
      expect(await state()).toEqual({ x: '12', y: '18' });
    });

    it(`G2-item (write skew): ${isolation === 'snapshot' ? 'allowed' : 'prevented'}`, async () => {
      const t1 = await begin();
      const t2 = await begin();
      expect([await str(t1, 'x'), await str(t1, 'y')]).toEqual(['10', '20']);
      expect([await str(t2, 'x'), await str(t2, 'y')]).toEqual(['10', '20']);
      t1.set('x', '11');
      t2.set('y', '21');
      expect(await committed(t1)).toBe(true);
      expect(await committed(t2)).toBe(isolation === 'snapshot');
    });

    it(`G2 (anti-dependency cycle on a predicate): ${isolation === 'snapshot' ? 'allowed' : 'prevented'}`, async () => {
      const t1 = await begin();
      const t2 = await begin();
      const multipleOf3 = (v: number) => v % 3 === 0;
      expect(await values(t1, multipleOf3)).toEqual([]);
      expect(await values(t2, multipleOf3)).toEqual([]);
      t1.set('z1', '30');
      t2.set('z2', '42');
      expect(await committed(t1)).toBe(true);
      expect(await committed(t2)).toBe(isolation === 'snapshot');
    });

    it('G2 with two anti-dependency edges and a read-only observer', async () => {
      const t1 = await begin();
      expect(await values(t1, (v) => v % 3 === 0)).toEqual([]);
      const t2 = await begin();
      expect(await values(t2, (v) => v % 3 === 0)).toEqual([]);
      t2.set('y', '12');
      expect(await committed(t2)).toBe(true);
      const t3 = await begin();
      expect(await values(t3, (v) => v % 3 === 0)).toEqual(['y=12']);
      expect(await committed(t3)).toBe(true);
      t1.set('z', '0');
      // T1's predicate read missed T2's y=12: serializable aborts T1 (its scan range saw a change).
      expect(await committed(t1)).toBe(isolation === 'snapshot');
    });
  });
}
