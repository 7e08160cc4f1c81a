// MVCC mechanics with an engine whose writes become durable only when the test says so
// (ManualEngine): snapshots never show non-durable or failed writes, versions are captured at
// enqueue and pruned after, time travel stops at the horizon, scans merge history correctly.
import { describe, expect, it } from 'vitest';
import { Db } from '../db/db.js';
import type { Clock } from '../io/clock.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { SnapshotTooOldError, TxnConflictError, TxnFinishedError, TxnManagedError } from './errors.js';
import { ManualEngine } from './manual-engine.js';

const b = (s: string) => Buffer.from(s);
const tick = () => new Promise((r) => setImmediate(r));

function manualClock(): Clock & { advance(ms: number): void } {
  let now = 1_700_000_000_000;
  return {
    nowMs: () => now,
    monotonicMs: () => now,
    every: () => ({ cancel() {} }),
    after: () => ({ cancel() {} }),
    advance(ms: number) {
      now += ms;
    },
  };
}

/** commitNow makes a queued write durable and waits for its acknowledgement. */
async function commitNow(engine: ManualEngine, write: Promise<void>): Promise<void> {
  engine.commit();
  await write;
}

function setup(options: { versionRetentionMs?: number } = {}) {
  const engine = new ManualEngine();
  const clock = manualClock();
  const db = new Db('/nonexistent', engine, { clock, ...options });
  return { engine, db, clock };
}

async function entries(it: AsyncIterable<[Buffer, Buffer]>): Promise<string[]> {
  const out: string[] = [];
  for await (const [k, v] of it) out.push(`${k}=${v}`);
  return out;
}

describe('Mvcc', () => {
  it('commit timestamps increase strictly, even when the clock stands still or goes back', () => {
    const { db, clock } = setup();
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      void db.set('k', String(i));
      seen.push(db.pipeline.mvcc.lastTs);
      if (i === 2) clock.advance(-1000);
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);
  });

  it('a snapshot waits for earlier writes to settle and then shows them; later writes stay invisible', async () => {
    const { engine, db } = setup();
    const w1 = db.set('a', '1');
    let opened = false;
    const snap = db.snapshot().then((s) => {
      opened = true;
      return s;
    });
    await tick();
    expect(opened).toBe(false);
    const w2 = db.set('a', '2'); // after the snapshot's start: captured, invisible to it
    engine.commit();
    await Promise.all([w1, w2]);
    const s = await snap;
    expect((await s.get('a'))?.toString()).toBe('1');
    expect(db.txnStats().versionsRetained).toBe(1);
    s.release();
    expect(db.txnStats().versionsRetained).toBe(0);
    expect(db.txnStats().readers).toBe(0);
  });

  it('while readers are open, a new transaction starts at the settled watermark without waiting', async () => {
    const { engine, db } = setup();
    await commitNow(engine, db.set('a', '0'));
    const pin = await db.snapshot(); // keeps every later write tracked and captured
    const pending = db.set('a', '1'); // not durable yet
    let started = false;
    const txp = db.begin().then((t) => {
      started = true;
      return t;
    });
    await tick();
    expect(started).toBe(true); // no group commit was waited for
    const tx = await txp;
    expect((await tx.get('a'))?.toString()).toBe('0'); // the durable state only
    tx.set('a', '2');
    engine.commit();
    await pending;
    // The pending write (after the snapshot) conflicts with the transaction's read and write.
    await expect(tx.commit()).rejects.toBeInstanceOf(TxnConflictError);
    pin.release();
  });

  it('a write refused at once does not move the watermark past writes still in flight', async () => {
    const { engine, db } = setup();
    const refuse = engine.write.bind(engine);
    engine.write = (ts, ops) =>
      ops.some((op) => Buffer.from(op.key).toString() === 'bad')
        ? Promise.reject(new Error('refused'))
        : refuse(ts, ops);
    await commitNow(engine, db.set('a', '0'));
    const pin = await db.snapshot();
    const inFlight = db.set('a', '1');
    await expect(db.set('bad', 'x')).rejects.toThrow('refused');
    // A snapshot (no read cache, unlike a transaction) opened while 'a' = '1' is in flight.
    const snapp = db.snapshot();
    await tick();
    let first: string | undefined;
    void snapp.then(async (t) => {
      first = (await t.get('a'))?.toString(); // before 'a' = '1' is durable, if it started
    });
    await tick();
    engine.commit();
    await inFlight;
    const snap = await snapp;
    first ??= (await snap.get('a'))?.toString();
    await commitNow(engine, db.set('a', '2'));
    // Whatever its timestamp, it is a snapshot: the same read gives the same answer.
    expect((await snap.get('a'))?.toString()).toBe(first);
    const s2 = await db.snapshot();
    expect((await s2.get('a'))?.toString()).toBe('2');
    snap.release();
    s2.release();
    pin.release();
  });

  it('a failed write is never visible, also through the versions captured after it', async () => {
    const { engine, db } = setup();
    await commitNow(engine, db.set('k', 'base'));
    const failing = db.set('k', 'lost'); // ts1, will fail
    const reader = db.snapshot(); // s >= ts1: wants k as of after the failed write
    const later = db.set('k', 'newer'); // captures prior = 'lost' (pending)
    engine.failNext();
    await expect(failing).rejects.toThrow('EIO');
    engine.commit();
    await later;
    const s = await reader;
    expect((await s.get('k'))?.toString()).toBe('base');
    s.release();
  });

  it('read-only snapshots never abort and never block writers', async () => {
    const { engine, db } = setup();
    await commitNow(engine, db.set('x', '1'));
    const s = await db.snapshot();
    const w = db.set('x', '2');
    engine.commit();
    await w; // the writer finished while the snapshot is open
    expect((await s.get('x'))?.toString()).toBe('1');
    s.release();
  });

  it('scans at a snapshot see deleted keys, skip created ones and merge own writes', async () => {
    const { engine, db } = setup();
    const w = db.batch([
      { type: 'set', key: 'a', value: '1' },
      { type: 'set', key: 'b', value: '2' },
      { type: 'set', key: 'c', value: '3' },
    ]);
    engine.commit();
    await w;
    const tx = await db.begin({ isolation: 'snapshot' });
    const changes = Promise.all([db.delete('b'), db.set('bb', 'new'), db.set('c', '33')]);
    await tick();
    engine.commit();
    await changes;
    tx.set('d', '4');
    tx.delete('a');
    expect(await entries(tx.scan())).toEqual(['b=2', 'c=3', 'd=4']);
    expect(await entries(tx.scan({ reverse: true }))).toEqual(['d=4', 'c=3', 'b=2']);
    expect(await entries(tx.scan({ start: 'b', end: 'c' }))).toEqual(['b=2']);
    expect(await entries(tx.scan({ limit: 2 }))).toEqual(['b=2', 'c=3']);
    tx.rollback();
  });

  it('a key deleted while a scan is running is still returned by it', async () => {
    const { engine, db } = setup();
    const w = db.batch(['a', 'b', 'c', 'd'].map((k) => ({ type: 'set' as const, key: k, value: k })));
    engine.commit();
    await w;
    const s = await db.snapshot();
    const seen: string[] = [];
    for await (const [k] of s.scan()) {
      seen.push(k.toString());
      if (k.toString() === 'a') {
        const del = db.batch([
          { type: 'delete', key: 'b' },
          { type: 'delete', key: 'c' },
        ]);
        engine.commit();
        await del;
      }
    }
    expect(seen).toEqual(['a', 'b', 'c', 'd']);
    s.release();
  });

  it('time travel reads an earlier timestamp within the retention window, and refuses one beyond', async () => {
    const { engine, db, clock } = setup({ versionRetentionMs: 60_000 });
    await commitNow(engine, db.set('k', 'v1'));
    const t1 = db.pipeline.mvcc.lastTs;
    clock.advance(10);
    await commitNow(engine, db.set('k', 'v2'));
    const s = await db.snapshot({ at: t1 });
    expect((await s.get('k'))?.toString()).toBe('v1');
    s.release();
    clock.advance(120_000);
    db.pipeline.mvcc.prune();
    await expect(db.snapshot({ at: t1 })).rejects.toBeInstanceOf(SnapshotTooOldError);
    await expect(db.snapshot({ at: db.pipeline.mvcc.lastTs + 1 })).rejects.toThrow(/newest commit/);
  });

  it('without retention, time travel is refused below the last write no reader pinned', async () => {
    const { engine, db } = setup();
    await commitNow(engine, db.set('k', 'v1'));
    const before = db.pipeline.mvcc.lastTs - 1;
    await expect(db.snapshot({ at: before })).rejects.toBeInstanceOf(SnapshotTooOldError);
  });

  it('a long-lived snapshot retains one version per key it can see, and frees them on release', async () => {
    const { engine, db } = setup();
    await commitNow(engine, db.set('k', 'v0'));
    const s = await db.snapshot();
    for (let i = 1; i <= 50; i++) {
      const w = db.set('k', `v${i}`);
      engine.commit();
      await w;
    }
    expect((await s.get('k'))?.toString()).toBe('v0');
    // Versions only later transactions could read are pruned when they finish.
    const tx = await db.begin();
    tx.rollback();
    s.release();
    expect(db.txnStats().versionsRetained).toBe(0);
  });

  it('a long-lived snapshot under heavy overwrites keeps bounded versions and reads right', async () => {
    const { engine, db } = setup();
    engine.autoCommit = true;
    await db.set('hot', 'v0');
    const s = await db.snapshot();
    for (let i = 1; i <= 100_000; i++) void db.set('hot', `v${i}`);
    await db.set('cold', 'x');
    // The full prune keeps only what some reader can see: one version of 'hot' for `s`.
    expect(db.txnStats().versionsRetained).toBeLessThan(70_000);
    expect((await s.get('hot'))?.toString()).toBe('v0');
    expect(await s.get('cold')).toBeUndefined();
    s.release();
    expect(db.txnStats().versionsRetained).toBe(0);
  });

  it('first committer wins, and a finished transaction refuses further use', async () => {
    const { engine, db } = setup();
    const t1 = await db.begin({ isolation: 'snapshot' });
    const t2 = await db.begin({ isolation: 'snapshot' });
    t1.set('k', '1');
    t2.set('k', '2');
    const c1 = t1.commit();
    engine.commit();
    await c1;
    await expect(t2.commit()).rejects.toBeInstanceOf(TxnConflictError);
    expect(() => t1.set('k', '3')).toThrow(TxnFinishedError);
    await expect(t1.get('k')).rejects.toBeInstanceOf(TxnFinishedError);
    await expect(t1.commit()).rejects.toBeInstanceOf(TxnFinishedError);
    expect(db.txnStats().conflicts).toBe(1);
  });

  it('non-transactional writes conflict with transactions that read the key', async () => {
    const { engine, db } = setup();
    const tx = await db.begin();
    await tx.get('k');
    tx.set('other', 'x');
    const w = db.set('k', 'blind');
    engine.commit();
    await w;
    await expect(tx.commit()).rejects.toBeInstanceOf(TxnConflictError);
  });

  it('db.transaction retries conflicts and runs the callback again on a fresh snapshot', async () => {
    const { engine, db } = setup();
    const auto = setInterval(() => engine.commit(), 1);
    try {
      await db.set('n', '0');
      let runs = 0;
      const result = await db.transaction(async (tx) => {
        runs++;
        const n = Number((await tx.get('n'))?.toString());
        if (runs === 1) await db.set('n', '100'); // a concurrent writer gets in first
        tx.set('n', String(n + 1));
        return n;
      });
      expect(runs).toBe(2);
      expect(result).toBe(100);
      expect(await db.getString('n')).toBe('101');
      await expect(
        db.transaction(
          async (tx) => {
            await tx.get('n');
            await db.set('n', 'x');
            tx.set('n', 'y');
          },
          { maxAttempts: 3 },
        ),
      ).rejects.toBeInstanceOf(TxnConflictError);
    } finally {
      clearInterval(auto);
    }
  });

  it('a rolled-back or thrown transaction writes nothing', async () => {
    const { engine, db } = setup();
    const auto = setInterval(() => engine.commit(), 1);
    try {
      await expect(
        db.transaction(async (tx) => {
          tx.set('k', 'v');
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await db.get('k')).toBeUndefined();
      expect(db.txnStats().readers).toBe(0);
    } finally {
      clearInterval(auto);
    }
  });

  it('db.transaction refuses a commit() inside its callback before anything is written', async () => {
    const { engine, db } = setup();
    const auto = setInterval(() => engine.commit(), 1);
    try {
      // The wrapper commits when the callback returns: an inner commit would take effect and then
      // make the wrapper's own commit fail (TXN_FINISHED), inviting a retry that applies it twice.
      let runs = 0;
      const err = await db
        .transaction(async (tx) => {
          runs++;
          tx.set('k', 'v');
          await tx.commit();
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TxnManagedError);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as TxnManagedError).code).toBe('INVALID_ARGUMENT');
      expect(runs).toBe(1);
      expect(await db.get('k')).toBeUndefined();
      expect(db.txnStats().readers).toBe(0);
      // Refused up front, so a callback that catches it goes on, and the wrapper commits once.
      const { ts } = await db.runTransaction(async (tx) => {
        tx.set('k', 'v');
        await expect(tx.commit()).rejects.toBeInstanceOf(TxnManagedError);
        expect(tx.finished).toBe(false);
      });
      expect(await db.getString('k')).toBe('v');
      expect((await db.revision('k'))?.mod).toBe(ts);
      // A rollback inside the callback commits nothing, and says so (found from outside: the
      // wrapper failed with a bare "already finished").
      const rolled = await db
        .transaction(async (tx) => {
          tx.set('r', 'x');
          tx.rollback();
          return 'returned';
        })
        .catch((e: unknown) => e);
      expect(rolled).toBeInstanceOf(TxnFinishedError);
      expect((rolled as Error).message).toMatch(
        /rolled back inside db.transaction\(fn\): nothing was committed/,
      );
      expect(await db.get('r')).toBeUndefined();
      // A transaction from begin() is the caller's to commit.
      const manual = await db.begin();
      manual.set('m', '1');
      await manual.commit();
      expect(await db.getString('m')).toBe('1');
    } finally {
      clearInterval(auto);
    }
  });

  it('compare-and-swap picks the branch atomically on the newest state', async () => {
    const { engine, db } = setup();
    const auto = setInterval(() => engine.commit(), 1);
    try {
      await db.set('lock', 'free');
      const take = () =>
        db.compareAndSwap({
          compare: [{ key: 'lock', target: 'value', op: '=', value: 'free' }],
          success: [
            { type: 'set', key: 'lock', value: 'taken' },
            { type: 'get', key: 'lock' },
          ],
          failure: [{ type: 'get', key: 'lock' }],
        });
      const [a, c] = await Promise.all([take(), take()]);
      expect([a.succeeded, c.succeeded].sort()).toEqual([false, true]);
      const winner = a.succeeded ? a : c;
      const created = (await db.revision('lock'))!.create;
      expect(winner.results).toEqual([
        { type: 'set' },
        { type: 'get', value: b('taken'), revision: { mod: winner.ts, create: created, version: 2 } },
      ]);
      const missing = await db.compareAndSwap({
        compare: [{ key: 'nope', target: 'exists', exists: false }],
        success: [{ type: 'delete', key: 'lock' }],
      });
      expect(missing.succeeded).toBe(true);
      expect(await db.get('lock')).toBeUndefined();
      await expect(
        db.compareAndSwap({ compare: [{ key: 'k', target: 'value', op: '~' as '=', value: 'x' }] }),
      ).rejects.toThrow(/unknown comparison/);
    } finally {
      clearInterval(auto);
    }
  });
});
