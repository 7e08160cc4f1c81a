// "fsyncgate" at open: a process whose fdatasync of the active file failed leaves the bytes in
// the page cache, readable but clean (Linux marks the pages clean after the failed writeback;
// FaultyFileSystem models it, src/io/lost-writeback.ts). The next process (no reboot) reads them
// at open, so it shows the write and counts it in lastTs (a cluster member then skips it in
// replay and snapshots past it); its own fdatasync returns success and writes nothing, and a
// power cut takes the write away. The open must make what it trusts durable by writing it again
// (docs/format.md, "Recovery"): what an open shows never vanishes at a later power cut.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import type { WriteOp } from '../engine.js';
import { StoreFailedError } from '../errors.js';
import { type CaskEngine, openCask } from './cask-engine.js';
import type { CaskOptions } from './cask-options.js';

const b = (s: string) => Buffer.from(s);
const put = (key: string, value: string, ts: number): WriteOp => ({
  type: 'put',
  key: b(key),
  value: b(value),
  create: ts,
  version: 1,
});
const text = (v: Uint8Array | undefined) => (v === undefined ? undefined : Buffer.from(v).toString());

/**
 * reopenThenCutPower: a restart on the same disk (the failed process closed: a crash without a
 * power cut, the page cache kept), what it reads, then a power cut and what the next open reads.
 */
async function reopenThenCutPower(
  dir: string,
  faulty: FaultyFileSystem,
  options: CaskOptions,
): Promise<{ shown: string | undefined; shownTs: number; after: string | undefined; afterTs: number }> {
  const restarted = await openCask(dir, { ...options, fs: faulty });
  const shown = text(await restarted.get(b('k')));
  const shownTs = restarted.lastTs();
  // A cluster member flushes before a snapshot: the barrier syncs nothing that is not dirty.
  await restarted.flush();
  await restarted.close();
  await faulty.powerLoss();
  const final = await openCask(dir, options);
  const after = text(await final.get(b('k')));
  const afterTs = final.lastTs();
  await final.close();
  return { shown, shownTs, after, afterTs };
}

async function written(dir: string, faulty: FaultyFileSystem, options: CaskOptions): Promise<CaskEngine> {
  const db = await openCask(dir, { ...options, fs: faulty });
  await db.write(1, [put('base', 'durable', 1)]);
  await db.flush();
  return db;
}

describe('an open after a failed fdatasync', () => {
  it("'interval' (a cluster member's engine): an acknowledged write shown at the restart survives a power cut", async () => {
    const dir = tmpDir('fsyncgate-interval');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const options: CaskOptions = { durability: 'interval', syncIntervalMs: 60_000, autoCompact: false };
    const db = await written(dir, faulty, options);
    await db.write(2, [put('k', 'acknowledged', 2)]); // acknowledged before it is synced
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/ });
    await expect(db.flush()).rejects.toBeInstanceOf(StoreFailedError);
    await db.close();
    const r = await reopenThenCutPower(dir, faulty, options);
    expect(r.shown).toBe('acknowledged');
    expect(r.shownTs).toBe(2);
    expect(r.after).toBe(r.shown);
    expect(r.afterTs).toBe(r.shownTs);
  });

  it("'always': a write whose fdatasync failed and could not be cut off, shown at the restart, survives a power cut", async () => {
    const dir = tmpDir('fsyncgate-always');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const options: CaskOptions = { autoCompact: false };
    const db = await written(dir, faulty, options);
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/ });
    faulty.inject({ op: 'truncate', code: 'EIO', path: /\.data$/ });
    expect(db.writeFailure()).toBeUndefined();
    await expect(db.write(2, [put('k', 'never acknowledged', 2)])).rejects.toBeInstanceOf(StoreFailedError);
    // What /healthz reports, whichever protocol's write met the failure.
    expect(db.writeFailure()).toBeInstanceOf(StoreFailedError);
    await db.close();
    const r = await reopenThenCutPower(dir, faulty, options);
    // Never acknowledged, so the open may drop it or keep it; once shown, it must stay.
    expect(r.shown).toBe('never acknowledged');
    expect(r.after).toBe(r.shown);
    expect(r.afterTs).toBe(r.shownTs);
  });

  it('after a second failure the restart still saves what it shows', async () => {
    const dir = tmpDir('fsyncgate-twice');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const options: CaskOptions = { durability: 'interval', syncIntervalMs: 60_000, autoCompact: false };
    const db = await written(dir, faulty, options);
    await db.write(2, [put('k', 'first', 2)]);
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/ });
    await expect(db.flush()).rejects.toBeInstanceOf(StoreFailedError);
    await db.close();
    // The first restart's own rewrite fails too: the open fails, and shows nothing.
    faulty.inject({ op: 'datasync', code: 'EIO', path: /\.data$/ });
    await expect(openCask(dir, { ...options, fs: faulty })).rejects.toThrow(/EIO/);
    const r = await reopenThenCutPower(dir, faulty, options);
    expect(r.shown).toBe('first');
    expect(r.after).toBe('first');
  });

  it('after a clean close the open rewrites nothing', async () => {
    const dir = tmpDir('fsyncgate-clean');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const options: CaskOptions = { autoCompact: false };
    const db = await written(dir, faulty, options);
    await db.write(2, [put('k', 'v', 2)]);
    await db.close();
    // Any write to a data file during the open would fail it.
    faulty.inject({ op: 'write', code: 'EIO', path: /\.data$/ });
    const again = await openCask(dir, { ...options, fs: faulty });
    expect(faulty.fired).toBe(0);
    expect(text(await again.get(b('k')))).toBe('v');
    faulty.clearFaults();
    await again.close();
  });
});
