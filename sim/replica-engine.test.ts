// The replica simulator's disk, file system and engine: what survives a power loss, torn tails,
// injected failures, and the Engine contract SimEngine keeps (docs/replica-sim.md).
import { describe, expect, it } from 'vitest';
import { InjectedFault } from '../src/io/faulty-file-system.js';
import { Prng } from '../src/stdx/prng.js';
import { openCask } from '../src/storage/cask/cask-engine.js';
import { StoreFailedError } from '../src/storage/errors.js';
import { type Inode, SimDisk } from './replica-disk.js';
import { ENGINE_FILE, SimEngine } from './replica-engine.js';
import { type IoLatency, SimFileSystem } from './replica-fs.js';
import { SimClock, SimProcess, SimScheduler, simEventLoop } from './replica-scheduler.js';

const LATENCY: IoLatency = { writeMs: [0, 2], syncMs: [1, 5] };
/** SETTLE_MS: long enough for any operation above to complete. */
const SETTLE_MS = 1000;
/** SETTLE_ROUNDS: scheduler runs one settle may take (each op needs a few). */
const SETTLE_ROUNDS = 100;

function setup(disk = new SimDisk(['/data'])) {
  const sched = new SimScheduler();
  const proc = new SimProcess(sched, 'test');
  const fs = new SimFileSystem(disk, proc, new Prng(7), LATENCY);
  const clock = new SimClock(proc, 0);
  /** settle runs the scheduler while `p` is pending and returns its outcome. */
  const settle = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    const watched = p.finally(() => {
      done = true;
    });
    watched.catch(() => {});
    // A chain may not have scheduled its next I/O yet when the heap runs dry: yield and go on.
    for (let round = 0; !done && round < SETTLE_ROUNDS; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      await sched.runUntil(sched.now + SETTLE_MS, () => done);
    }
    return watched;
  };
  return { disk, sched, proc, fs, clock, settle };
}

const put = (key: string, value: string, create: number, version = 1) => ({
  type: 'put' as const,
  key: Buffer.from(key),
  value: Buffer.from(value),
  create,
  version,
});

describe('SimDisk and SimFileSystem', () => {
  it('power loss keeps synced bytes and fsynced directory entries only', async () => {
    const { disk, fs, settle } = setup();
    const a = await settle(fs.open('/data/a', 'create'));
    await settle(a.write(Buffer.from('hello'), 0));
    await settle(a.datasync());
    await settle(fs.syncDir('/data'));
    await settle(a.write(Buffer.from(' world'), 5));
    await settle(a.write(Buffer.from('J'), 0)); // overwrites a synced byte
    await settle(fs.open('/data/b', 'create')); // entry never synced
    disk.powerLoss(() => 0);
    const after = setup(disk);
    expect(Buffer.from(await after.settle(after.fs.readFile('/data/a'))).toString()).toBe('hello');
    expect(await after.settle(after.fs.exists('/data/b'))).toBe(false);
  });

  it('a torn tail keeps a prefix of the unsynced bytes', async () => {
    const { disk, fs, settle } = setup();
    const a = await settle(fs.open('/data/a', 'create'));
    await settle(fs.syncDir('/data'));
    await settle(a.write(Buffer.from('abcdef'), 0));
    disk.powerLoss((_file, unsynced) => unsynced - 2);
    const after = setup(disk);
    expect(Buffer.from(await after.settle(after.fs.readFile('/data/a'))).toString()).toBe('abcd');
  });

  it('a failed fdatasync loses its writeback: readable, not saved by a later sync, until rewritten', async () => {
    for (const rewrite of [false, true]) {
      const { disk, fs, settle } = setup();
      const a = await settle(fs.open('/data/a', 'create'));
      await settle(a.write(Buffer.from('durable|'), 0));
      await settle(a.datasync());
      await settle(fs.syncDir('/data'));
      await settle(a.write(Buffer.from('unsaved'), 8));
      fs.faults = { failRate: 1, tornRate: 0 };
      const failed = a.datasync();
      fs.faults = { failRate: 0, tornRate: 0 };
      await expect(settle(failed)).rejects.toThrow(/injected fault/);
      // The next process reads the bytes; its fdatasync succeeds and saves nothing.
      const next = setup(disk);
      expect(Buffer.from(await next.settle(next.fs.readFile('/data/a'))).toString()).toBe('durable|unsaved');
      const b = await next.settle(next.fs.open('/data/a', 'readwrite'));
      if (rewrite) await next.settle(b.write(Buffer.from('unsaved'), 8));
      await next.settle(b.datasync());
      // What the open-after-crash checker (durable-at-open.ts) asks.
      const inode = disk.entries.get('/data/a') as Inode;
      expect(inode.undurable(8)).toBeUndefined();
      expect(inode.undurable(15)).toBe(
        rewrite ? undefined : 'bytes whose writeback failed (readable, never written)',
      );
      disk.powerLoss(() => 0);
      const after = setup(disk);
      const text = Buffer.from(await after.settle(after.fs.readFile('/data/a'))).toString();
      expect(text).toBe(rewrite ? 'durable|unsaved' : `durable|${'\0'.repeat(7)}`);
    }
  });

  it('a dead process sees no completions', async () => {
    const { fs, proc, settle, sched } = setup();
    const a = await settle(fs.open('/data/a', 'create'));
    let settled = false;
    a.datasync().then(
      () => (settled = true),
      () => (settled = true),
    );
    proc.kill();
    await sched.runUntil(sched.now + SETTLE_MS);
    expect(settled).toBe(false);
  });
});

describe('SimEngine', () => {
  it('stores stamped writes with their revisions and expiry, visible once durable', async () => {
    const { fs, clock, settle } = setup();
    const e = await settle(SimEngine.open(fs, '/data/engine', clock));
    const far = clock.nowMs() + 60_000;
    const w = e.write(10, [put('a', '1', 10), { ...put('b', '2', 10), expiresAt: far }]);
    expect(e.lastTs()).toBe(10);
    expect(e.getSync(Buffer.from('a'))).toBeUndefined(); // not durable yet
    await settle(w);
    expect(Buffer.from(e.getSync(Buffer.from('a')) as Uint8Array).toString()).toBe('1');
    expect(await e.expiry(Buffer.from('b'))).toBe(far);
    await settle(e.write(11, [put('a', '3', 10, 2), { type: 'delete', key: Buffer.from('b') }]));
    expect(e.revisionSync(Buffer.from('a'))).toEqual({ mod: 11, create: 10, version: 2 });
    expect(e.getSync(Buffer.from('b'))).toBeUndefined();
    await expect(e.write(11, [put('c', '1', 11)])).rejects.toThrow(/above the last one/);
    const keys: string[] = [];
    for await (const [k] of e.scan()) keys.push(Buffer.from(k).toString());
    expect(keys).toEqual(['a']);
  });

  it('recovers acknowledged writes after power loss, and cuts a torn tail', async () => {
    const { disk, fs, clock, settle } = setup();
    const e = await settle(SimEngine.open(fs, '/data/engine', clock));
    await settle(e.write(1, [put('a', '1', 1)]));
    await settle(e.write(2, [put('b', '2', 2)]));
    // Unacknowledged: written to the page cache, never synced; a torn prefix survives.
    void e.write(3, [put('c', '3', 3)]).catch(() => {});
    disk.powerLoss((_file, unsynced) => Math.max(0, unsynced - 3));
    const after = setup(disk);
    const again = await after.settle(SimEngine.open(after.fs, '/data/engine', after.clock));
    expect(again.lastTs()).toBe(2);
    expect(again.getSync(Buffer.from('b'))).toBeDefined();
    expect(again.getSync(Buffer.from('c'))).toBeUndefined();
    await after.settle(again.write(3, [put('c', '3', 3)]));
    const size = (await after.settle(after.fs.readFile(`/data/engine/${ENGINE_FILE}`))).length;
    expect(again.stats().diskBytes).toBe(size);
  });

  it('an open makes durable what it shows, also what a failed fdatasync left readable', async () => {
    const { disk, fs, proc, clock, settle } = setup();
    const e = await settle(SimEngine.open(fs, '/data/engine', clock));
    await settle(e.write(1, [put('a', '1', 1)]));
    // The next fdatasync fails (its write landed): the writeback of write 2 is lost.
    let armed = true;
    const fault = fs.fault.bind(fs);
    fs.fault = (op, target) => {
      if (op === 'datasync' && armed) {
        armed = false;
        throw new InjectedFault('EIO', op, target);
      }
      fault(op, target);
    };
    await expect(settle(e.write(2, [put('b', '2', 2)]))).rejects.toThrow(/injected fault/);
    proc.kill(); // the member stops; no power loss: the page cache keeps write 2
    const next = setup(disk);
    const restarted = await next.settle(SimEngine.open(next.fs, '/data/engine', next.clock));
    expect(restarted.lastTs()).toBe(2);
    expect(restarted.getSync(Buffer.from('b'))).toBeDefined();
    await next.settle(restarted.flush()); // what a member does before a snapshot
    next.proc.kill();
    disk.powerLoss(() => 0);
    const after = setup(disk);
    const final = await after.settle(SimEngine.open(after.fs, '/data/engine', after.clock));
    expect(final.lastTs()).toBe(2);
    expect(final.getSync(Buffer.from('b'))).toBeDefined();
  });

  it('fails the store on an I/O error: that write and every later one reject', async () => {
    const { fs, clock, settle } = setup();
    const e = await settle(SimEngine.open(fs, '/data/engine', clock));
    fs.faults = { failRate: 1, tornRate: 0 };
    await expect(settle(e.write(1, [put('a', '1', 1)]))).rejects.toThrow(/injected fault/);
    fs.faults = { failRate: 0, tornRate: 0 };
    await expect(settle(e.write(2, [put('a', '1', 2)]))).rejects.toBeInstanceOf(StoreFailedError);
  });
});

describe('the cask engine on the simulated disk', () => {
  it('a store created in new directories keeps its acknowledged writes through a power loss', async () => {
    // Once a finding: cask created its directory without fsyncing the parent, so the whole
    // store could vanish, acknowledged writes and all (io/file-system.ts, mkdirDurable).
    const { disk, proc, fs, clock, settle } = setup();
    const options = { fs, clock, loop: simEventLoop(proc), durability: 'always' as const };
    const db = await settle(openCask('/data/new/store', options));
    await settle(db.write(1, [put('k', 'v', 1)]));
    proc.kill();
    disk.powerLoss(() => 0);
    const after = setup(disk);
    const reopened = await after.settle(
      openCask('/data/new/store', {
        ...options,
        fs: after.fs,
        clock: after.clock,
        loop: simEventLoop(after.proc),
      }),
    );
    expect(Buffer.from((await after.settle(reopened.get(Buffer.from('k')))) ?? []).toString()).toBe('v');
    await after.settle(reopened.close());
  });
});
