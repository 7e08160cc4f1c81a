// The embedded API keeps nothing it borrowed (docs/ARCHITECTURE.md, "Who owns a buffer"):
// first the reproductions of defects-2026-12.md entry 18 (a buffer reused after the call
// returned, before its promise settled, redirected the write), then a mixed workload of every
// write path, transactions, compare-and-swap and snapshots through poisoned() with keys in
// ascending, descending and random order, checked against a model, and again after a reopen.
import { afterEach, describe, expect, it } from 'vitest';
import { poisonCount, poisoned } from '../../test/support/poison.js';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { Prng } from '../stdx/prng.js';
import type { CaskEngine } from '../storage/cask/cask-engine.js';
import { Snapshot } from '../txn/transaction.js';
import { type Db, type EngineName, open } from './db.js';

const b = (s: string) => Buffer.from(s);
const opened: Db[] = [];

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close().catch(() => {});
});

async function fresh(engine: EngineName = 'cask'): Promise<Db> {
  const db = await open(tmpDir('borrow'), { engine });
  opened.push(db);
  return db;
}

describe.each(['cask', 'lmdb'] as const)('buffers reused after the call returns (%s)', (engine) => {
  it('delete removes the key it was given', async () => {
    const db = await fresh(engine);
    await db.set('a', 'value');
    await db.set('~', 'other');
    const k = b('a');
    const deleted = db.delete(k);
    k.fill(0x7e); // '~'
    expect(await deleted).toBe(true);
    expect(await db.get('a')).toBeUndefined();
    expect(await db.getString('~')).toBe('other');
  });

  it('tx.set and tx.delete write the keys they were given', async () => {
    const db = await fresh(engine);
    await db.set('txk-C', 'c');
    const tx = await db.begin();
    const k = b('txk-A');
    tx.set(k, 'x');
    k.write('txk-B');
    const d = b('txk-C');
    tx.delete(d);
    d.write('txk-D');
    await tx.commit();
    expect(await db.getString('txk-A')).toBe('x');
    expect(await db.get('txk-B')).toBeUndefined();
    expect(await db.get('txk-C')).toBeUndefined();
  });

  it('compareAndSwap compares and writes the keys and values it was given', async () => {
    const db = await fresh(engine);
    await db.set('cas-A', 'old');
    const key = b('cas-A');
    const expected = b('old');
    const value = b('new');
    const done = db.compareAndSwap({
      compare: [{ key, target: 'value', op: '=', value: expected }],
      success: [
        { type: 'set', key, value },
        { type: 'get', key },
      ],
    });
    key.write('cas-B');
    expected.write('xyz');
    value.write('bad');
    const result = await done;
    expect(result.succeeded).toBe(true);
    expect(await db.getString('cas-A')).toBe('new');
    expect(await db.get('cas-B')).toBeUndefined();
    // The value handed back is the caller's to keep and change.
    const got = result.results[1] as { value: Buffer };
    expect(got.value.toString()).toBe('new');
    got.value.fill(0);
    expect(await db.getString('cas-A')).toBe('new');
  });

  it('expire and persist change the key they were given', async () => {
    const db = await fresh(engine);
    await db.set('set-A', '1');
    await db.set('set-C', '3', { ttlMs: 60_000 });
    const e = b('set-A');
    const expired = db.expire(e, { ttlMs: 100_000 });
    e.write('set-B');
    expect(await expired).toBe(true);
    expect(await db.get('set-B')).toBeUndefined();
    expect(await db.ttl('set-A')).toBeGreaterThan(60_000);
    const p = b('set-C');
    const persisted = db.persist(p);
    p.write('set-D');
    expect(await persisted).toBe(true);
    expect(await db.ttl('set-C')).toBeNull();
    expect(await db.get('set-D')).toBeUndefined();
  });

  it('set and batch values are copied before readers see them', async () => {
    const db = await fresh(engine);
    const value = b('first');
    const written = db.set('k', value);
    value.write('XXXXX');
    // Read through the view while the write is still queued, then once durable.
    const { value: pending } = db.pipeline.readLatest(b('k'));
    expect(pending?.toString()).toBe('first');
    await written;
    expect(await db.getString('k')).toBe('first');
    const bv = b('batch');
    const bk = b('bk');
    const batch = db.batch([{ type: 'set', key: bk, value: bv }]);
    bv.fill(0);
    bk.fill(0);
    await batch;
    expect(await db.getString('bk')).toBe('batch');
  });

  it('scans use the bounds as they were at the call', async () => {
    const db = await fresh(engine);
    for (const k of ['a1', 'a2', 'b1', 'b2']) await db.set(k, k);
    const prefix = b('a');
    const iter = db.scan({ prefix });
    prefix.write('b');
    const keys: string[] = [];
    for await (const [k] of iter) keys.push(k.toString());
    expect(keys).toEqual(['a1', 'a2']);
    const snap = await db.snapshot();
    const start = b('b1');
    const snapIter = snap.scan({ start });
    start.write('a1');
    const snapKeys: string[] = [];
    for await (const [k] of snapIter) snapKeys.push(k.toString());
    expect(snapKeys).toEqual(['b1', 'b2']);
    snap.release();
  });

  it('snapshot reads hand out copies, not the version history', async () => {
    const db = await fresh(engine);
    await db.set('h', 'before');
    const snap = await db.snapshot();
    await db.set('h', 'after'); // 'before' now lives in the version history
    const got = (await snap.get('h'))!;
    expect(got.toString()).toBe('before');
    got.fill(0x21);
    expect((await snap.get('h'))?.toString()).toBe('before');
    snap.release();
  });
});

type Order = 'ascending' | 'descending' | 'random';

/** workload drives every write path of `db` (poisoned by the caller) and keeps `model` in step. */
async function workload(db: Db, model: Map<string, string>, order: Order, rng: Prng): Promise<void> {
  const n = 3000;
  const ids = Array.from({ length: n }, (_, i) => i);
  if (order === 'descending') ids.reverse();
  if (order === 'random') rng.shuffle(ids);
  const name = (i: number) => `key:${String(i).padStart(8, '0')}`;
  const CHUNK = 64;
  for (let from = 0; from < n; from += CHUNK) {
    const chunk = ids.slice(from, from + CHUNK);
    // Writes of one chunk are queued together: several are pending while others are queued.
    await Promise.all(
      chunk.map(async (i) => {
        const k = name(i);
        const v = `v${i}`;
        switch (i % 8) {
          case 0:
            await db.batch([
              { type: 'set', key: b(k), value: b(v) },
              { type: 'set', key: b(`${k}/b`), value: b(`${v}/b`) },
            ]);
            model.set(k, v);
            model.set(`${k}/b`, `${v}/b`);
            break;
          case 1:
            await db.set(b(k), b(v), { ttlMs: 3_600_000 });
            model.set(k, v);
            expect(await db.persist(b(k))).toBe(true);
            break;
          case 2: {
            await db.transaction(async (tx) => {
              const seen = await tx.get(b(k));
              expect(seen).toBeUndefined();
              tx.set(b(k), b(v));
              tx.set(b(`${k}/t`), b('t'));
              tx.delete(b(`${k}/t`));
            });
            model.set(k, v);
            break;
          }
          case 3: {
            const r = await db.compareAndSwap({
              compare: [{ key: b(k), target: 'exists', exists: false }],
              success: [{ type: 'set', key: b(k), value: b(v) }],
            });
            expect(r.succeeded).toBe(true);
            model.set(k, v);
            break;
          }
          case 4:
            await db.set(b(k), b(v));
            expect(await db.delete(b(k))).toBe(true);
            break;
          default:
            await db.set(b(k), b(v));
            expect(await db.expire(b(k), { ttlMs: 3_600_000 })).toBe(true);
            model.set(k, v);
        }
      }),
    );
  }
}

async function checkAgainst(db: Db, model: Map<string, string>, label: string): Promise<void> {
  for (const [k, v] of model) expect((await db.get(b(k)))?.toString(), `${label}: get ${k}`).toBe(v);
  const scanned: [string, string][] = [];
  for await (const [k, v] of db.scan()) scanned.push([k.toString(), v.toString()]);
  const expected = [...model.entries()].sort((x, y) => Buffer.compare(b(x[0]), b(y[0])));
  expect(scanned, `${label}: scan`).toEqual(expected);
  if (db.engineName === 'cask') (db.pipeline.engine as unknown as CaskEngine).keyDir.checkInvariants();
}

describe.each(['cask', 'lmdb'] as const)('Db under poisoned buffers (%s)', (engine) => {
  it.each(['ascending', 'descending', 'random'] as const)(
    'keeps every write with %s keys, through a reopen',
    async (order) => {
      const dir = tmpDir('poison-db');
      const db = await open(dir, { engine });
      opened.push(db);
      const wrap = (v: unknown): unknown => (v instanceof Snapshot ? poisoned(v, { wrap }) : v);
      const p = poisoned(db, { wrap });
      const model = new Map<string, string>();
      const before = poisonCount;
      // A snapshot open through the workload makes every write capture the value it replaces.
      const snap = await p.snapshot();
      await workload(p, model, order, new Prng(42));
      expect(await snap.get(b('key:00000000'))).toBeUndefined();
      snap.release();
      expect(poisonCount - before).toBeGreaterThan(10_000);
      await checkAgainst(p, model, 'before compaction');
      // Compaction walks and relocates every key (and runs the debug checks after it).
      await p.compact();
      await checkAgainst(p, model, 'after compaction');
      await db.close();
      const again = await open(dir);
      opened.push(again);
      await checkAgainst(again, model, 'after reopen');
    },
  );
});
