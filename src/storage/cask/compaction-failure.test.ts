// A failing compaction and a failing preallocation (defects-2026-12.md entries 1 and 8): the
// process stays up, the error is a typed IoError (or an event, for background runs), the
// unfinished output is deleted rather than left for the next open to call damage, and a full
// disk does not stop small writes.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { trackUnhandledRejections } from '../../../test/support/unhandled.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { IoError } from '../errors.js';
import type { CaskEvent } from './cask-options.js';

const b = (s: string) => Buffer.from(s);

/** unhandled: rejections nobody handled in the current test (each would end a server). */
const unhandled = trackUnhandledRejections();

async function contents(db: PipelinedCask): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  for await (const [k, v] of db.scan()) seen.set(Buffer.from(k).toString(), Buffer.from(v).toString());
  return seen;
}

async function fillWithGarbage(db: PipelinedCask, model: Map<string, string>): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const key = `k${i % 40}`;
    const value = `v${i}`.padEnd(200, '.');
    await db.put(b(key), b(value));
    model.set(key, value);
  }
}

const settle = () => new Promise((r) => setTimeout(r, 50));
/** WAIT_MS_MAX: how long a background step may take on a loaded machine before a test fails. */
const WAIT_MS_MAX = 10_000;
/** waitFor polls `done` until it holds (or WAIT_MS_MAX passes), for a background step to finish. */
async function waitFor(done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!done() && Date.now() < deadline) await settle();
}

describe('a compaction that fails', () => {
  for (const code of ['ENOSPC', 'EIO'] as const) {
    it(`explicit: rejects with IoError (${code}), deletes its unfinished output, loses nothing`, async () => {
      const dir = tmpDir('compact-fail');
      const faulty = new FaultyFileSystem(nodeFileSystem);
      const db = await openCaskPipelined(dir, { fs: faulty, dataFileBytes: 4096, autoCompact: false });
      const model = new Map<string, string>();
      await fillWithGarbage(db, model);
      faulty.inject({ op: 'write', code, path: /\.compacting$/, skip: 2 });
      const err = await db.compact().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(IoError);
      expect((err as IoError).code).toBe('IO');
      expect(String((err as Error).message)).toContain(code);
      expect(fs.readdirSync(dir).filter((n) => n.endsWith('.compacting'))).toEqual([]);
      expect(await contents(db)).toEqual(model);
      // The store goes on: writes, and a compaction once the disk is well again.
      await db.put(b('after'), b('1'));
      model.set('after', '1');
      await db.compact();
      expect(await contents(db)).toEqual(model);
      await db.close();
      const again = await openCaskPipelined(dir, { dataFileBytes: 4096 });
      expect(again.engine.recovery.problems).toEqual([]);
      expect(await contents(again)).toEqual(model);
      await again.close();
      expect(unhandled()).toEqual([]);
    });
  }

  it('fails after finishing an output: the finished output is undone too, leaving the disk as it was', async () => {
    const dir = tmpDir('compact-fail-late');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await openCaskPipelined(dir, { fs: faulty, dataFileBytes: 4096, autoCompact: false });
    const model = new Map<string, string>();
    await fillWithGarbage(db, model);
    for (let i = 40; i < 100; i++) {
      await db.put(b(`k${i}`), b(`v${i}`.padEnd(200, '.')));
      model.set(`k${i}`, `v${i}`.padEnd(200, '.'));
    }
    // Renames to a .data name: the rotation's new file, then each output as it is finished.
    // The second output's fails: the first is finished, hinted and in use.
    faulty.inject({ op: 'rename', code: 'EIO', path: /\.data$/, skip: 2 });
    const before = fs.readdirSync(dir).filter((n) => n.endsWith('.data'));
    await expect(db.compact()).rejects.toBeInstanceOf(IoError);
    // The inputs, and the data file the compaction's rotation started: nothing else. Hint files
    // only of those (sealed files have them), none of an output.
    const after = fs.readdirSync(dir).filter((n) => n.endsWith('.data'));
    const stems = after.map((n) => n.slice(0, -'.data'.length));
    expect(
      fs
        .readdirSync(dir)
        .filter((n) => n.endsWith('.compacting') || (n.endsWith('.hint') && !stems.includes(n.slice(0, -5)))),
    ).toEqual([]);
    expect(after.filter((n) => !before.includes(n))).toHaveLength(1);
    expect(db.stats().dataFiles).toBe(after.length);
    expect(await contents(db)).toEqual(model);
    await db.close();
    const again = await openCaskPipelined(dir, { dataFileBytes: 4096 });
    expect(again.engine.recovery.problems).toEqual([]);
    expect(await contents(again)).toEqual(model);
    await again.compact();
    expect(await contents(again)).toEqual(model);
    await again.close();
  });

  it('background: reports compaction-failed, keeps the process and the store up, retries after a back-off', async () => {
    const dir = tmpDir('compact-bg');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const clock = new ManualClock();
    const events: CaskEvent[] = [];
    const db = await openCaskPipelined(dir, {
      fs: faulty,
      clock,
      dataFileBytes: 4096,
      compactionMinDeadBytes: 1,
      compactionDeadRatio: 0.2,
      onEvent: (e) => events.push(e),
    });
    faulty.inject({ op: 'write', code: 'ENOSPC', path: /\.compacting$/, times: 1_000_000 });
    const model = new Map<string, string>();
    await fillWithGarbage(db, model);
    const failures = () => events.filter((e) => e.type === 'compaction-failed').length;
    await waitFor(() => failures() >= 1);
    await settle();
    expect(failures()).toBe(1);
    expect(String(events.find((e) => e.type === 'compaction-failed')?.detail.error)).toContain('ENOSPC');
    // Within the back-off no new attempt, however much garbage piles up.
    await fillWithGarbage(db, model);
    await settle();
    expect(failures()).toBe(1);
    // After it, one more (failing again: the back-off doubles).
    clock.advance(1_000);
    await db.put(b('tick'), b('1'));
    model.set('tick', '1');
    await waitFor(() => failures() >= 2);
    await waitFor(() => failures() >= 2);
    await settle();
    expect(failures()).toBe(2);
    clock.advance(1_000);
    await db.put(b('tick'), b('2'));
    model.set('tick', '2');
    await settle();
    expect(failures()).toBe(2);
    // The disk recovers: the next attempt after the back-off succeeds.
    faulty.clearFaults();
    clock.advance(1_000);
    await db.put(b('tick'), b('3'));
    model.set('tick', '3');
    const done = () => events.filter((e) => e.type === 'compaction-done').length;
    await waitFor(() => done() > 0);
    expect(done()).toBeGreaterThan(0);
    expect(await contents(db)).toEqual(model);
    await db.close();
    expect(unhandled()).toEqual([]);
  });
});

describe('preallocation on a nearly full disk', () => {
  it('a write succeeds when only the zeros ahead of it do not fit, and the file stays sound', async () => {
    const dir = tmpDir('prealloc');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await openCaskPipelined(dir, { fs: faulty });
    // Every write past the data itself fails: the zeros written ahead of the appends.
    faulty.inject({ op: 'write', code: 'ENOSPC', path: /\.data$/, skip: 1, times: 1 });
    await db.put(b('small'), b('x'));
    for (let i = 0; i < 20; i++) await db.put(b(`k${i}`), b(`v${i}`));
    expect(fs.statSync(db.engine.active.file.path).size).toBe(db.engine.active.size);
    await db.close();
    const again = await openCaskPipelined(dir);
    expect(again.engine.recovery.problems).toEqual([]);
    expect(String(await again.get(b('small')))).toBe('x');
    expect(String(await again.get(b('k19')))).toBe('v19');
    await again.close();
  });
});
