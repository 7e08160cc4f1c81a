// The group commit's parts (group-commit.ts, Part): writes queued in one event-loop turn share one
// promise, which resolves only when every write in it is durable and applied; a part never spans
// a data file, a barrier or an append that failed, so a write is never reported durable when it
// is not, nor failed when it was applied.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import type { File, FileSystem } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { assert } from '../../stdx/assert.js';
import { DATA_FILE_BYTES_MIN } from '../limits.js';
import { type CaskEngine, openCask } from './cask-engine.js';

const VALUE = Buffer.alloc(300, 0x61);

/** putAt queues a put of key `k` (one write, commit timestamp `ts`). */
function putAt(db: CaskEngine, ts: number, k: string): Promise<void> {
  return db.write(ts, [{ type: 'put', key: Buffer.from(k), value: VALUE, create: ts, version: 1 }]);
}

/** outcome: 'ok' or the error's class name, once the promise settles. */
function outcome(p: Promise<void>): Promise<string> {
  return p.then(
    () => 'ok',
    (err: unknown) => (err as Error).constructor.name,
  );
}

/**
 * GatedSyncs: a file system whose data files' fdatasyncs wait until the test lets each through,
 * so a test can queue writes while a group's fdatasync is under way.
 */
class GatedSyncs {
  /** armed: data-file fdatasyncs wait for release (not while the store opens or closes). */
  armed = false;
  /** started: data-file fdatasyncs begun while armed. */
  started = 0;
  private readonly waiting: (() => void)[] = [];
  readonly fs: FileSystem;

  constructor(inner: FileSystem) {
    const wrapFile = (file: File, path: string): File =>
      new Proxy(file, {
        get: (target, prop, receiver) => {
          if (prop !== 'datasync' || !path.endsWith('.data')) return Reflect.get(target, prop, receiver);
          return async () => {
            if (!this.armed) return target.datasync();
            this.started++;
            await new Promise<void>((resolve) => this.waiting.push(resolve));
            await target.datasync();
          };
        },
      });
    this.fs = new Proxy(inner, {
      get: (target, prop, receiver) => {
        if (prop !== 'open') return Reflect.get(target, prop, receiver);
        return async (path: string, mode: Parameters<FileSystem['open']>[1]) =>
          wrapFile(await target.open(path, mode), path);
      },
    });
  }

  /** began waits until `n` fdatasyncs have begun. */
  async began(n: number): Promise<void> {
    while (this.started < n) await new Promise((resolve) => setImmediate(resolve));
  }

  /** release lets the oldest waiting fdatasync through. */
  release(): void {
    const next = this.waiting.shift();
    assert(next !== undefined, 'no fdatasync is waiting');
    next();
  }
}

/** openGated opens an `always` store whose data-file fdatasyncs wait for the test (GatedSyncs, armed). */
async function openGated(): Promise<{ dir: string; gated: GatedSyncs; db: CaskEngine }> {
  const dir = tmpDir('gc-chain');
  const gated = new GatedSyncs(nodeFileSystem);
  const db = await openCask(dir, { fs: gated.fs, durability: 'always' });
  gated.armed = true;
  return { dir, gated, db };
}

describe('group commit parts', () => {
  it('writes queued together share a promise and are all durable when it resolves', async () => {
    const dir = tmpDir('gc-parts');
    const db = await openCask(dir);
    const ps = Array.from({ length: 20 }, (_, i) => putAt(db, i + 1, `k${i}`));
    expect(new Set(ps).size).toBe(1);
    await ps[0];
    // Resolved means applied: every key reads back now, not only the first.
    for (let i = 0; i < 20; i++) expect(db.getSync(Buffer.from(`k${i}`))).toEqual(VALUE);
    // A write queued after the part was taken gets a promise of its own.
    const later = putAt(db, 21, 'later');
    expect(later).not.toBe(ps[0]);
    await later;
    await db.close();
  });

  it("a part's writes share one buffer that grows as they come: every record reads back, before and after a reopen", async () => {
    const dir = tmpDir('gc-parts');
    let db = await openCask(dir, { durability: 'never' });
    // One turn: small writes (the part's first buffer), one larger than anything before it (a
    // growth past doubling), a batch with a duplicate key, then small ones again, twice (the
    // second part's buffer is sized after the first).
    const expected = new Map<string, Buffer>();
    let ts = 0;
    for (let round = 0; round < 2; round++) {
      const ps: Promise<void>[] = [];
      const put = (k: string, value: Buffer): void => {
        ts++;
        expected.set(k, value);
        ps.push(db.write(ts, [{ type: 'put', key: Buffer.from(k), value, create: ts, version: 1 }]));
      };
      for (let i = 0; i < 30; i++) put(`r${round}-small-${i}`, Buffer.alloc(10 + i * 7, 65 + i));
      put(`r${round}-large`, Buffer.alloc(100_000 + round, 0x7a));
      ts++;
      const batch = [
        {
          type: 'put' as const,
          key: Buffer.from(`r${round}-b`),
          value: Buffer.from('one'),
          create: ts,
          version: 1,
        },
        {
          type: 'put' as const,
          key: Buffer.from(`r${round}-c`),
          value: Buffer.from('two'),
          create: ts,
          version: 1,
        },
        {
          type: 'put' as const,
          key: Buffer.from(`r${round}-b`),
          value: Buffer.from('three'),
          create: ts,
          version: 1,
        },
      ];
      expected.set(`r${round}-b`, Buffer.from('three'));
      expected.set(`r${round}-c`, Buffer.from('two'));
      ps.push(db.write(ts, batch));
      for (let i = 0; i < 30; i++) put(`r${round}-after-${i}`, Buffer.alloc(200 + i, 48 + i));
      expect(new Set(ps).size).toBe(1);
      await Promise.all(ps);
    }
    for (const [k, v] of expected) expect(db.getSync(Buffer.from(k))).toEqual(v);
    await db.close();
    db = await openCask(dir);
    for (const [k, v] of expected) expect(db.getSync(Buffer.from(k))).toEqual(v);
    expect(db.stats().keys).toBe(expected.size);
    await db.close();
  });

  it('a barrier (flush) between writes starts a new part', async () => {
    const dir = tmpDir('gc-parts');
    const db = await openCask(dir, { durability: 'never' });
    const a = putAt(db, 1, 'a');
    const flushed = db.flush();
    const b = putAt(db, 2, 'b');
    expect(b).not.toBe(a);
    await Promise.all([a, flushed, b]);
    await db.close();
  });

  it('parts never span data files: when the next file cannot be started, the writes before stay acknowledged', async () => {
    const dir = tmpDir('gc-parts');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    // Small files: 50 writes of ~330 bytes need about four of them.
    const db = await openCask(dir, { fs: faulty, dataFileBytes: DATA_FILE_BYTES_MIN });
    await putAt(db, 1, 'first');
    // The next data file cannot be created: writes that fit the active file must succeed and
    // every later one fail, each exactly as it happened on disk. The flush between the first 10
    // and the rest ends a part, so the first part fits and a later one needs the next file.
    faulty.inject({ op: 'open', code: 'ENOSPC', path: /\.data$/ });
    const name = (i: number) => `k${String(i).padStart(2, '0')}`;
    const ps: Promise<void>[] = [];
    for (let i = 0; i < 10; i++) ps.push(putAt(db, i + 2, name(i)));
    const flushed = db.flush();
    for (let i = 10; i < 50; i++) ps.push(putAt(db, i + 2, name(i)));
    const outcomes = await Promise.all(ps.map(outcome));
    await flushed.catch(() => undefined);
    const ok = outcomes.filter((o) => o === 'ok').length;
    expect(ok).toBeGreaterThanOrEqual(10);
    expect(ok).toBeLessThan(50);
    // Acknowledged writes are a prefix of the queue, and exactly those read back.
    expect(outcomes.slice(0, ok).every((o) => o === 'ok')).toBe(true);
    expect(outcomes.slice(ok).every((o) => o === 'IoError')).toBe(true);
    for (let i = 0; i < 50; i++) {
      const got = db.getSync(Buffer.from(name(i)));
      if (i < ok) expect(got).toEqual(VALUE);
      else expect(got).toBeUndefined();
    }
    faulty.clearFaults();
    await db.close();
    const again = await openCask(dir, { dataFileBytes: DATA_FILE_BYTES_MIN });
    expect(again.recovery.problems).toEqual([]);
    for (let i = 0; i < 50; i++) {
      const got = again.getSync(Buffer.from(name(i)));
      if (i < ok) expect(got).toEqual(VALUE);
      else expect(got).toBeUndefined();
    }
    await again.close();
  });

  it('an append that fails fails its whole part and nothing else', async () => {
    const dir = tmpDir('gc-parts');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await openCask(dir, { fs: faulty });
    const first = Array.from({ length: 5 }, (_, i) => putAt(db, i + 1, `a${i}`));
    await Promise.all(first);
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/ });
    const failed = Array.from({ length: 5 }, (_, i) => putAt(db, i + 10, `b${i}`));
    expect(await Promise.all(failed.map(outcome))).toEqual(Array(5).fill('IoError'));
    const after = Array.from({ length: 5 }, (_, i) => putAt(db, i + 20, `c${i}`));
    await Promise.all(after);
    await db.close();
    const again = await openCask(dir);
    for (let i = 0; i < 5; i++) {
      expect(again.getSync(Buffer.from(`a${i}`))).toEqual(VALUE);
      expect(again.getSync(Buffer.from(`b${i}`))).toBeUndefined();
      expect(again.getSync(Buffer.from(`c${i}`))).toEqual(VALUE);
    }
    await again.close();
  });

  for (const durability of ['interval', 'never'] as const) {
    it(`a failed fsync of unsynced writes (${durability}) fails the store: no later fsync may claim them`, async () => {
      const dir = tmpDir('gc-parts');
      const faulty = new FaultyFileSystem(nodeFileSystem);
      const db = await openCask(dir, { fs: faulty, durability });
      await Promise.all(Array.from({ length: 5 }, (_, i) => putAt(db, i + 1, `a${i}`)));
      faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/ });
      expect(await outcome(db.flush())).toBe('StoreFailedError');
      // Linux may have dropped the pages and the error: a later fsync's success would prove
      // nothing, so the store refuses writes (and flushes) until a reopen runs recovery.
      faulty.clearFaults();
      expect(await outcome(putAt(db, 10, 'b'))).toBe('StoreFailedError');
      expect(await outcome(db.flush())).toBe('StoreFailedError');
      expect(db.getSync(Buffer.from('a0'))).toEqual(VALUE);
      await db.close();
      const again = await openCask(dir);
      for (let i = 0; i < 5; i++) expect(again.getSync(Buffer.from(`a${i}`))).toEqual(VALUE);
      expect(again.getSync(Buffer.from('b'))).toBeUndefined();
      await putAt(again, 20, 'c');
      await again.close();
    });
  }

  it("always: writes queued during a group's fdatasync start theirs before that group's callbacks run", async () => {
    const { dir, gated, db } = await openGated();
    const first = putAt(db, 1, 'a');
    await gated.began(1);
    // Queued while the first group's fdatasync is under way: the next group.
    const second = Array.from({ length: 5 }, (_, i) => putAt(db, i + 2, `b${i}`));
    const seen: number[] = [];
    const done = first.then(() => seen.push(gated.started));
    gated.release();
    await done;
    // The second group's fdatasync had begun when the first group's callbacks ran.
    expect(seen).toEqual([2]);
    expect(db.getSync(Buffer.from('b0'))).toBeUndefined(); // not durable yet: not visible
    gated.release();
    await Promise.all(second);
    for (let i = 0; i < 5; i++) expect(db.getSync(Buffer.from(`b${i}`))).toEqual(VALUE);
    // A barrier queued behind a chained group waits for it, in queue order.
    const third = putAt(db, 10, 'c');
    await gated.began(3);
    const fourth = putAt(db, 11, 'd');
    const flushed = db.flush();
    let flushedFirst = false;
    void flushed.then(() => {
      flushedFirst = db.getSync(Buffer.from('d')) === undefined;
    });
    gated.release();
    await gated.began(4);
    gated.release();
    await Promise.all([third, fourth, flushed]);
    expect(flushedFirst).toBe(false);
    gated.armed = false;
    await db.close();
    const again = await openCask(dir);
    expect(again.getSync(Buffer.from('a'))).toEqual(VALUE);
    for (let i = 0; i < 5; i++) expect(again.getSync(Buffer.from(`b${i}`))).toEqual(VALUE);
    expect(again.getSync(Buffer.from('d'))).toEqual(VALUE);
    await again.close();
  });

  it('always: close waits for a chained group', async () => {
    const { dir, gated, db } = await openGated();
    const first = putAt(db, 1, 'a');
    await gated.began(1);
    const second = putAt(db, 2, 'b'); // chained once the first publishes
    let closed = false;
    const closing = db.close().then(() => {
      closed = true;
    });
    gated.release();
    await first;
    await gated.began(2);
    expect(closed).toBe(false);
    gated.armed = false;
    gated.release();
    await second;
    await closing;
    const again = await openCask(dir);
    expect(again.getSync(Buffer.from('a'))).toEqual(VALUE);
    expect(again.getSync(Buffer.from('b'))).toEqual(VALUE);
    await again.close();
  });

  it('always: a chained group whose fdatasync fails fails alone', async () => {
    const dir = tmpDir('gc-chain');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await openCask(dir, { fs: faulty, durability: 'always' });
    await putAt(db, 1, 'warm');
    // The first group's fdatasync is under way while the second is queued (and chained); the
    // third is queued by the first's callbacks, while the second's fdatasync is under way.
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/, skip: 1 });
    const before = faulty.mutations;
    const a = putAt(db, 2, 'a');
    while (faulty.mutations === before) await new Promise((resolve) => setImmediate(resolve));
    const b = putAt(db, 3, 'b');
    const c = a.then(() => putAt(db, 4, 'c'));
    expect(await outcome(a)).toBe('ok');
    expect(await outcome(b)).toBe('IoError');
    expect(await outcome(c)).toBe('ok');
    await db.close();
    const again = await openCask(dir);
    expect(again.getSync(Buffer.from('a'))).toEqual(VALUE);
    expect(again.getSync(Buffer.from('b'))).toBeUndefined();
    expect(again.getSync(Buffer.from('c'))).toEqual(VALUE);
    await again.close();
  });

  it('commitAfterCall: the writes of one call are one group, visible before the turn ends', async () => {
    for (const commitAfterCall of [false, true]) {
      const dir = tmpDir('gc-after-call');
      const db = await openCask(dir, { durability: 'interval', commitAfterCall });
      const before = db.stats().groupCommits;
      const order: string[] = [];
      // A callback queued before the writes: with the default it runs first (the flush loop
      // waits for the check phase); with commitAfterCall the writes are applied before it.
      setImmediate(() =>
        order.push(`immediate, ${db.getSync(Buffer.from('k0')) === undefined ? 'absent' : 'present'}`),
      );
      const ps = Array.from({ length: 10 }, (_, i) => putAt(db, i + 1, `k${i}`));
      void Promise.all(ps).then(() => order.push('written'));
      await Promise.all(ps);
      await new Promise((resolve) => setImmediate(resolve));
      expect(order).toEqual(
        commitAfterCall ? ['written', 'immediate, present'] : ['immediate, absent', 'written'],
      );
      expect(db.stats().groupCommits - before).toBe(1);
      await db.close();
    }
  });
});
