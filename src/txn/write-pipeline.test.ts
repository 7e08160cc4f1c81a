import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { open } from '../db/db.js';
import { ManualClock } from '../io/manual-clock.js';
import { ClusterDownError, LimitError } from '../storage/errors.js';
import { VALUE_BYTES_MAX } from '../storage/limits.js';
import { legacyRevision } from '../storage/revision.js';
import { ManualEngine } from './manual-engine.js';
import { WritePipeline } from './write-pipeline.js';

const b = (s: string) => Buffer.from(s);

const tick = () => new Promise((r) => setImmediate(r));

/** BarrierEngine: a ManualEngine with a read barrier the test confirms or refuses. */
class BarrierEngine extends ManualEngine {
  barriers = 0;
  private waiting: { resolve: () => void; reject: (err: Error) => void }[] = [];
  readBarrier(): Promise<void> {
    this.barriers++;
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
  confirm(): void {
    for (const w of this.waiting.splice(0)) w.resolve();
  }
  refuse(err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }
}

const incr = (view: WritePipeline, key: string) =>
  view.update(b(key), (cur) => {
    const n = cur === undefined ? 1 : Number(cur.toString()) + 1;
    return { result: n, write: b(String(n)) };
  });

describe('WritePipeline', () => {
  it('reads see queued writes, with the durability to wait for', async () => {
    const engine = new ManualEngine();
    const view = new WritePipeline(engine);
    const put = view.put(b('k'), b('v1'));
    const latest = view.readLatest(b('k'));
    expect(latest.value).toEqual(b('v1'));
    expect(latest.durable).toBe(put);
    expect(await engine.get(b('k'))).toBeUndefined();
    engine.commit();
    await put;
    await tick();
    const after = view.readLatest(b('k'));
    const ts = engine.lastTs();
    expect(after).toEqual({
      value: b('v1'),
      valueType: 0,
      revision: { mod: ts, create: ts, version: 1 },
      durable: undefined,
    });
    expect(view.trackedKeys).toBe(0);
  });

  it('sees a delete queued after a put as a missing key', async () => {
    const engine = new ManualEngine();
    const view = new WritePipeline(engine);
    void view.put(b('k'), b('v'));
    const deleted = view.delete(b('k'));
    expect(view.readLatest(b('k')).value).toBeUndefined();
    engine.commit();
    engine.commit();
    await tick();
    engine.commit();
    expect(await deleted).toBe(true);
    expect(await view.delete(b('k'))).toBe(false);
  });

  it('never loses an increment, whatever the interleaving of reads, writes and commits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('incr', 'commit', 'tick'), { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 0, max: 3 }),
        async (steps, getDelay) => {
          const engine = new ManualEngine();
          engine.getDelay = getDelay;
          const view = new WritePipeline(engine);
          const results: Promise<number>[] = [];
          for (const step of steps) {
            if (step === 'incr') {
              results.push(
                Promise.resolve(incr(view, 'n')).then(async (u) => {
                  await u.durable;
                  return u.result;
                }),
              );
            } else if (step === 'commit') engine.commit();
            else await Promise.resolve();
          }
          // Let every pending update enqueue, then make everything durable.
          for (let i = 0; i < 20 + getDelay * 4; i++) {
            await Promise.resolve();
            engine.commit();
          }
          const values = await Promise.all(results);
          const n = results.length;
          expect([...values].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
          expect(engine.data.get('n')?.toString()).toBe(n === 0 ? undefined : String(n));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('reads the newest state at the instant of the call, even while the engine is slow to answer', async () => {
    // The pipeline reads the engine synchronously (one lookup, no await), so there is no window
    // in which a write can be queued between the read and its answer: a read before a write
    // sees the state before it, a read after it sees it, pending.
    const engine = new ManualEngine();
    engine.getDelay = 2;
    engine.data.set('k', b('old'));
    const view = new WritePipeline(engine);
    const before = view.readLatest(b('k'));
    const put = view.put(b('k'), b('new'));
    const after = view.readLatest(b('k'));
    expect(before.value).toEqual(b('old'));
    expect(before.durable).toBeUndefined();
    expect(after.value).toEqual(b('new'));
    expect(after.durable).toBe(put);
  });

  it('rolls a failed write back from the overlay; a value computed from it fails too', async () => {
    const engine = new ManualEngine();
    const view = new WritePipeline(engine);
    engine.data.set('n', b('5'));
    const first = incr(view, 'n');
    const second = incr(view, 'n');
    expect(second.result).toBe(7);
    engine.failNext();
    await expect(first.durable).rejects.toThrow('EIO');
    // The overlay still holds the second (pending) write; its durability includes the failed one.
    await expect(second.durable).rejects.toThrow('EIO');
    engine.failNext();
    await tick();
    expect(view.readLatest(b('n'))).toEqual({
      value: b('5'),
      valueType: 0,
      revision: legacyRevision(1),
      durable: undefined,
    });
    expect(view.trackedKeys).toBe(0);
  });

  it('a failed newest write exposes the older pending value again', async () => {
    const engine = new ManualEngine();
    const view = new WritePipeline(engine);
    const p1 = view.put(b('k'), b('one'));
    const p2 = view.put(b('k'), b('two'));
    p2.catch(() => {});
    // Fail the second write while the first is still queued.
    engine.queue[1]!.reject(new Error('EIO'));
    await tick();
    const latest = view.readLatest(b('k'));
    expect(latest.value).toEqual(b('one'));
    expect(latest.durable).toBe(p1);
    engine.commit();
    await p1;
  });

  it('refuses oversized values before they reach the overlay', async () => {
    const engine = new ManualEngine();
    const view = new WritePipeline(engine);
    const big = Buffer.alloc(VALUE_BYTES_MAX + 1);
    await expect(view.put(b('k'), big)).rejects.toBeInstanceOf(LimitError);
    // update is synchronous (one step from lookup to enqueue): it throws rather than rejects.
    expect(() => view.update(b('k'), () => ({ result: 0, write: big }))).toThrow(LimitError);
    expect(view.trackedKeys).toBe(0);
    expect(engine.queue).toHaveLength(0);
  });

  it('updateMany applies its writes atomically and settled() waits for queued writes', async () => {
    const engine = new ManualEngine();
    const view = new WritePipeline(engine);
    void view.put(b('a'), b('1'));
    const u = view.updateMany([b('a'), b('b')], (vals) => ({
      result: vals.map((v) => v?.toString() ?? null),
      writes: [{ key: b('b'), value: b('2') }],
    }));
    expect(u.result).toEqual(['1', null]);
    expect(engine.queue).toHaveLength(2);
    let settled = false;
    void view.settled().then(() => (settled = true));
    engine.commit(1);
    await tick();
    expect(settled).toBe(false);
    engine.commit();
    await u.durable;
    await tick();
    expect(settled).toBe(true);
  });

  it('queues writes in call order, read-modify-writes included (a delete then a put leaves the put)', async () => {
    // The pipeline reads synchronously, so a delete (which reads to answer "did it exist") is
    // queued before a put called after it. (Before issue 12 the delete awaited an engine read,
    // so the put called after it reached the engine first and the delete removed it.)
    const engine = new ManualEngine();
    engine.data.set('k', b('old'));
    const view = new WritePipeline(engine);
    const deleted = view.delete(b('k'));
    const put = view.put(b('k'), b('new'));
    expect(view.readLatest(b('k')).value).toEqual(b('new'));
    engine.commit();
    await Promise.all([deleted, put]);
    expect(await deleted).toBe(true);
    expect(engine.data.get('k')).toEqual(b('new'));
    expect(engine.queue).toHaveLength(0);
  });

  it('settled() waits for every earlier write, also when a later one is refused first', async () => {
    const engine = new ManualEngine();
    const refuse = engine.write.bind(engine);
    // The engine refuses writes to 'bad' at once, ahead of the writes in its queue.
    engine.write = (ts, ops) =>
      ops.some((op) => Buffer.from(op.key).toString() === 'bad')
        ? Promise.reject(new Error('refused'))
        : refuse(ts, ops);
    const view = new WritePipeline(engine);
    const first = view.put(b('k'), b('1'));
    let settled = false;
    const waiting = view.settled().then(() => {
      settled = true;
    });
    await expect(view.put(b('bad'), b('x'))).rejects.toThrow('refused');
    await tick();
    expect(settled).toBe(false);
    expect(view.readLatest(b('k')).durable).toBe(first);
    engine.commit();
    await waiting;
    expect(settled).toBe(true);
    expect(view.trackedKeys).toBe(0);
  });

  it('reports no commit timestamp for an update refused before it got one', () => {
    const engine = new ManualEngine();
    const lookup = engine.revisionSync.bind(engine);
    // The store becomes unreadable between the update's read and its write's revision lookup.
    let failing = false;
    engine.revisionSync = (key) => {
      if (failing) throw new Error('unreadable');
      return lookup(key);
    };
    const view = new WritePipeline(engine);
    void view.put(b('ok'), b('1'));
    const refused = view.updateMany([b('bad')], () => {
      failing = true;
      return { result: 0, writes: [{ key: b('bad'), value: b('x') }] };
    });
    expect(refused.ts).toBeUndefined();
    return expect(refused.durable).rejects.toThrow('unreadable');
  });

  it('runs on the real engine: 2000 concurrent increments give the exact total', async () => {
    const db = await open(tmpDir('latest'));
    const updates = Array.from({ length: 2000 }, async () => {
      const u = incr(db.pipeline, 'counter');
      await u.durable;
    });
    await Promise.all(updates);
    expect(await db.getString('counter')).toBe('2000');
    await db.close();
  });

  // On a cluster member the newest state may be stale (a deposed leader): an update that writes
  // nothing answers from a read, so it waits for the engine's read barrier (Engine.readBarrier).
  it('an update that writes nothing waits for the read barrier; one that writes does not ask for it', async () => {
    const engine = new BarrierEngine();
    const view = new WritePipeline(engine);
    const absent = view.delete(b('k'));
    const cas = view.updateMany([b('k'), b('j')], () => ({ result: 'unchanged' }));
    expect(engine.barriers).toBe(2);
    engine.refuse(new ClusterDownError('not confirmed'));
    await expect(absent).rejects.toBeInstanceOf(ClusterDownError);
    await expect(cas.durable).rejects.toBeInstanceOf(ClusterDownError);
    const put = view.put(b('k'), b('v'));
    const deleted = view.delete(b('k'));
    expect(engine.barriers).toBe(2);
    engine.commit();
    engine.commit();
    await put;
    await tick();
    engine.commit();
    expect(await deleted).toBe(true);
    const again = view.delete(b('k'));
    expect(engine.barriers).toBe(3);
    engine.confirm();
    expect(await again).toBe(false);
    // An engine without a barrier (a single store is its own truth) answers at once.
    const plain = new WritePipeline(new ManualEngine());
    expect(plain.update(b('x'), () => ({ result: 1 })).durable).toBeUndefined();
  });
});

describe('WritePipeline expiry', () => {
  it('carries the expiry of pending values and reads them as absent once it passes', async () => {
    const engine = new ManualEngine();
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    const view = new WritePipeline(engine, clock);
    const put = view.put(b('k'), b('v'), t0 + 100);
    expect(engine.queue[0]?.ops[0]).toMatchObject({ type: 'put', expiresAt: t0 + 100 });
    expect(view.readLatest(b('k'))).toMatchObject({ value: b('v'), expiresAt: t0 + 100, durable: put });
    clock.set(t0 + 101);
    const expired = view.readLatest(b('k'));
    expect(expired.value).toBeUndefined();
    expect(expired.expiresAt).toBeUndefined();
    // An update sees the expired pending value as absent too.
    const { result } = view.update(b('k'), (current, expiresAt) => ({ result: [current, expiresAt] }));
    expect(result).toEqual([undefined, undefined]);
    engine.commit();
    await put;
  });

  it('hands update functions the current expiry, and stores what they return with the write', async () => {
    const engine = new ManualEngine();
    const clock = new ManualClock();
    const t0 = clock.nowMs();
    const view = new WritePipeline(engine, clock);
    engine.data.set('k', b('1'));
    engine.expiries.set('k', t0 + 500);
    // Keep the expiry (as INCR does): the pending value and the engine write both carry it.
    const kept = view.update(b('k'), (current, expiresAt) => ({
      result: expiresAt,
      write: b(String(Number(current) + 1)),
      expiresAt,
    }));
    expect(kept.result).toBe(t0 + 500);
    expect(view.readLatest(b('k')).expiresAt).toBe(t0 + 500);
    // Write without one (as SET does): cleared.
    const cleared = view.update(b('k'), () => ({ result: null, write: b('x') }));
    expect(view.readLatest(b('k')).expiresAt).toBeUndefined();
    const many = view.updateMany([b('a'), b('k')], (_values, expiries) => ({
      result: expiries,
      writes: [{ key: b('a'), value: b('1'), expiresAt: t0 + 900 }],
    }));
    expect(many.result).toEqual([undefined, undefined]);
    expect(view.readLatest(b('a')).expiresAt).toBe(t0 + 900);
    engine.commit();
    await Promise.all([kept.durable, cleared.durable, many.durable]);
    expect(engine.expiries.get('k')).toBeUndefined();
    expect(engine.expiries.get('a')).toBe(t0 + 900);
  });
});
