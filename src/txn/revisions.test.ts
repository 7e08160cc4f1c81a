// Revisions through the Db: commit timestamps are the revisions the engine stores (a
// transaction's commit ts is the `mod` of every key it wrote), they persist and keep increasing
// across a restart even when the clock goes back, pending writes show the revision they will
// store, and compare-and-swap decides on version, create and mod as etcd's Txn does.
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { type Db, Db as DbClass, open } from '../db/db.js';
import { ManualClock } from '../io/manual-clock.js';
import type { Revision } from '../storage/engine.js';
import { ManualEngine } from './manual-engine.js';

const b = (s: string) => Buffer.from(s);

const opened: Db[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.close().catch(() => {});
});

async function openTracked(dir: string, options: Parameters<typeof open>[1] = {}): Promise<Db> {
  const db = await open(dir, options);
  opened.push(db);
  return db;
}

describe.each(['cask', 'lmdb'] as const)('revisions through the Db (%s)', (engine) => {
  it("makes a transaction's commit timestamp the mod of every key it wrote", async () => {
    const db = await openTracked(tmpDir('rev'), { engine });
    await db.set('a', '0');
    const created = (await db.revision('a'))!;
    expect(created).toEqual({ mod: created.mod, create: created.mod, version: 1 });
    const { ts } = await db.runTransaction(async (tx) => {
      tx.set('a', '1');
      tx.set('b', '1');
      tx.delete('c');
    });
    expect(await db.revision('a')).toEqual({ mod: ts, create: created.mod, version: 2 });
    expect(await db.revision('b')).toEqual({ mod: ts, create: ts, version: 1 });
    expect(await db.revision('c')).toBeUndefined();
    expect((await db.getWithExpiry('b'))?.revision).toEqual({ mod: ts, create: ts, version: 1 });
    // Timestamps order commits: a later plain write has a larger one.
    await db.set('b', '2');
    expect((await db.revision('b'))!.mod).toBeGreaterThan(ts);
  });

  it('counts on from what a read-modify-write transaction read, and starts over for a key that expired meanwhile', async () => {
    const clock = new ManualClock();
    const db = await openTracked(tmpDir('rev'), { engine, clock });
    await db.set('n', '1');
    await db.set('n', '2');
    const { ts } = await db.runTransaction(async (tx) => {
      tx.set('n', String(Number(await tx.getString('n')) + 1));
      tx.set('fresh', String(await tx.getString('missing')));
    });
    const created = (await db.revision('n'))!.create;
    expect(await db.revision('n')).toEqual({ mod: ts, create: created, version: 3 });
    expect(await db.revision('fresh')).toEqual({ mod: ts, create: ts, version: 1 });
    // The transaction reads a key with a TTL that lapses before it commits: the key it writes is
    // a new one (version 1), not the expired one's next version.
    await db.set('lease', 'a', { ttlMs: 1000 });
    await db.set('lease', 'b', { ttlMs: 1000 });
    const tx = await db.begin();
    expect(await tx.getString('lease')).toBe('b');
    tx.set('lease', 'c');
    clock.advance(2000);
    const { ts: ts2 } = await tx.commit();
    expect(await db.revision('lease')).toEqual({ mod: ts2, create: ts2, version: 1 });
  });

  it('keeps revisions across a restart and commits above them even when the clock went back', async () => {
    const dir = tmpDir('rev');
    const clock = new ManualClock();
    let db = await openTracked(dir, { engine, clock });
    await db.set('k', 'v1');
    await db.set('k', 'v2');
    const before = (await db.revision('k'))!;
    await db.close();
    clock.set(clock.nowMs() - 3_600_000); // an hour back
    db = await openTracked(dir, { engine, clock });
    expect(await db.revision('k')).toEqual(before);
    const { ts } = await db.runTransaction(async (tx) => {
      tx.set('k', `${String(await tx.get('k'))}+`);
    });
    expect(ts).toBeGreaterThan(before.mod);
    expect(await db.revision('k')).toEqual({ mod: ts, create: before.create, version: 3 });
  });

  it('compare-and-swap on create, mod and version: a lock and an optimistic update', async () => {
    const db = await openTracked(tmpDir('rev'), { engine });
    // etcd's lock recipe: take the key only if it was never created (create = 0).
    const acquire = (owner: string) =>
      db.compareAndSwap({
        compare: [{ key: 'lock', target: 'create', op: '=', value: 0 }],
        success: [
          { type: 'set', key: 'lock', value: owner },
          { type: 'get', key: 'lock' },
        ],
        failure: [{ type: 'get', key: 'lock' }],
      });
    const results = await Promise.all(['p1', 'p2', 'p3', 'p4'].map(acquire));
    const winners = results.filter((r) => r.succeeded);
    expect(winners).toHaveLength(1);
    const won = winners[0]!;
    expect(won.ts).toBeDefined();
    const owner = (won.results[1] as { value: Buffer }).value.toString();
    expect(won.results[1]).toEqual({
      type: 'get',
      value: b(owner),
      revision: { mod: won.ts, create: won.ts, version: 1 },
    });
    for (const lost of results.filter((r) => !r.succeeded)) {
      expect(lost.ts).toBeUndefined();
      expect(lost.results).toEqual([
        { type: 'get', value: b(owner), revision: { mod: won.ts, create: won.ts, version: 1 } },
      ]);
    }

    // Optimistic update: read the mod, write only if nobody wrote since.
    const seen = (await db.revision('lock'))!;
    const update = (value: string, rev: Revision) =>
      db.compareAndSwap({
        compare: [{ key: 'lock', target: 'mod', op: '=', value: rev.mod }],
        success: [{ type: 'set', key: 'lock', value }],
      });
    const first = await update('renewed', seen);
    expect(first.succeeded).toBe(true);
    const stale = await update('stale', seen);
    expect(stale.succeeded).toBe(false);
    expect(String(await db.get('lock'))).toBe('renewed');
    const now = (await db.revision('lock'))!;
    expect(now).toEqual({ mod: first.ts, create: seen.create, version: 2 });

    // Orderings on each field; an absent key has 0 for all three.
    const check = async (target: 'version' | 'create' | 'mod', op: '=' | '!=' | '<' | '>', value: number) =>
      (await db.compareAndSwap({ compare: [{ key: 'lock', target, op, value }] })).succeeded;
    expect(await check('version', '=', 2)).toBe(true);
    expect(await check('version', '>', 1)).toBe(true);
    expect(await check('version', '<', 2)).toBe(false);
    expect(await check('create', '<', now.mod)).toBe(true);
    expect(await check('mod', '!=', now.mod)).toBe(false);
    expect(
      (await db.compareAndSwap({ compare: [{ key: 'absent', target: 'version', op: '=', value: 0 }] }))
        .succeeded,
    ).toBe(true);
    await db.delete('lock');
    expect(await check('create', '=', 0)).toBe(true);
    await expect(
      db.compareAndSwap({ compare: [{ key: 'k', target: 'version', op: '=', value: -1 }] }),
    ).rejects.toThrow(/non-negative integer/);
    await expect(
      db.compareAndSwap({ compare: [{ key: 'k', target: 'mod', op: '=', value: 1.5 }] }),
    ).rejects.toThrow(/non-negative integer/);
  });

  it('counts versions exactly under concurrent optimistic increments', async () => {
    const db = await openTracked(tmpDir('rev'), { engine });
    await db.set('n', '0');
    const writers = 20;
    const perWriter = 10;
    let retries = 0;
    const increment = async () => {
      for (;;) {
        const cur = await db.compareAndSwap({ compare: [], success: [{ type: 'get', key: 'n' }] });
        const got = cur.results[0] as { value: Buffer; revision: Revision };
        const next = String(Number(got.value) + 1);
        const res = await db.compareAndSwap({
          compare: [{ key: 'n', target: 'version', op: '=', value: got.revision.version }],
          success: [{ type: 'set', key: 'n', value: next }],
        });
        if (res.succeeded) return;
        retries++;
      }
    };
    await Promise.all(
      Array.from({ length: writers }, async () => {
        for (let i = 0; i < perWriter; i++) await increment();
      }),
    );
    expect(String(await db.get('n'))).toBe(String(writers * perWriter));
    expect((await db.revision('n'))?.version).toBe(writers * perWriter + 1);
    expect(retries).toBeGreaterThan(0); // the writers did race
  });
});

describe('revisions of pending writes', () => {
  it('compare-and-swap sees the revision a queued write will store', async () => {
    const engine = new ManualEngine();
    const db = new DbClass('/nonexistent', engine, { clock: new ManualClock() });
    const w1 = db.set('k', 'a');
    const w2 = db.set('k', 'b');
    const cas = db.compareAndSwap({
      compare: [{ key: 'k', target: 'version', op: '=', value: 2 }],
      success: [{ type: 'get', key: 'k' }],
    });
    // Nothing is durable yet: the CAS reads the overlay, and its reply waits for the writes.
    let done = false;
    void cas.then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(done).toBe(false);
    expect(engine.revisionSync(b('k'))).toBeUndefined();
    engine.commit();
    await Promise.all([w1, w2]);
    const result = await cas;
    expect(result.succeeded).toBe(true);
    const stored = engine.revisionSync(b('k'))!;
    expect(stored.version).toBe(2);
    expect(result.results).toEqual([{ type: 'get', value: b('b'), revision: stored }]);
    expect(stored.mod).toBe(db.pipeline.mvcc.lastTs);
  });
});
