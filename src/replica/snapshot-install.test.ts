import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem as fs } from '../io/node-file-system.js';
import { RAFT_DIR } from './identity.js';
import { finishInstall, INSTALL_MARKER, installEngineFiles } from './snapshot-install.js';

const OLD = {
  '0000000001.data': 'old-1',
  '0000000002.data': 'old-2',
  '0000000001.hint': 'old-h',
  'META-1': 'old-m',
};
const NEW = { '0000000001.data': 'new-1', '0000000003.data': 'new-3', 'META-2': 'new-m' };

async function write(file: string, text: string): Promise<void> {
  await fs.unlink(file);
  const f = await fs.open(file, 'create');
  await f.write(Buffer.from(text), 0);
  await f.datasync();
  await f.close();
}

/** setup: a member directory with an old engine, its raft/ files, a set-aside directory and a staged snapshot. */
async function setup(): Promise<{ dir: string; stage: string }> {
  const dir = tmpDir('install');
  await fs.mkdir(path.join(dir, RAFT_DIR, 'wal'));
  await write(path.join(dir, RAFT_DIR, 'member.json'), '{}');
  await fs.mkdir(path.join(dir, 'engine-set-aside-x'));
  await write(path.join(dir, 'engine-set-aside-x', 'keep.data'), 'aside');
  for (const [name, text] of Object.entries(OLD)) await write(path.join(dir, name), text);
  const stage = path.join(dir, RAFT_DIR, 'snap', 'incoming-1');
  await fs.mkdir(stage);
  for (const [name, text] of Object.entries(NEW)) await write(path.join(stage, name), text);
  return { dir, stage };
}

async function engineFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await fs.readdir(dir)).sort()) {
    if (name === RAFT_DIR || name.startsWith('engine-set-aside-')) continue;
    out[name] = Buffer.from(await fs.readFile(path.join(dir, name))).toString();
  }
  return out;
}

describe('snapshot install', () => {
  it("replaces the engine's files with the staged ones and leaves the member's own files alone", async () => {
    const { dir, stage } = await setup();
    await installEngineFiles(fs, dir, stage);
    expect(await engineFiles(dir)).toEqual(NEW);
    expect(await fs.readdir(stage)).toEqual([]);
    expect(await fs.exists(path.join(dir, RAFT_DIR, INSTALL_MARKER))).toBe(false);
    expect(await fs.exists(path.join(dir, RAFT_DIR, 'member.json'))).toBe(true);
    expect(await fs.exists(path.join(dir, 'engine-set-aside-x', 'keep.data'))).toBe(true);
    expect(await finishInstall(fs, dir)).toBeUndefined();
  });

  // A process crash (kill -9) after each file-system step. Power loss is not modelled here:
  // FaultyFileSystem.powerLoss drops a renamed file whose directory was not fsynced instead of
  // putting back the name it replaced, which no journaling file system does; every phase of the
  // install fsyncs its directories before the next begins.
  it('a crash at every step leaves the old engine whole or an install that finishInstall completes', async () => {
    const probe = await setup();
    const counting = new FaultyFileSystem(fs);
    await installEngineFiles(counting, probe.dir, probe.stage);
    const steps = counting.mutations;
    expect(steps).toBeGreaterThan(5);
    for (let k = 0; k < steps; k++) {
      const { dir, stage } = await setup();
      const faulty = new FaultyFileSystem(fs);
      faulty.dieAfter = k;
      await expect(installEngineFiles(faulty, dir, stage)).rejects.toThrow();
      const finished = await finishInstall(fs, dir);
      const files = await engineFiles(dir);
      // No marker: the crash came before it was written (old engine) or after it was removed.
      if (finished === undefined)
        expect([OLD, NEW], `crash after ${k} steps, no marker`).toContainEqual(files);
      else {
        expect(finished.installed).toBe(true);
        expect(files, `crash after ${k} steps, finished`).toEqual(NEW);
      }
      // Whatever happened, a second install of the same stage (when it survived) converges.
      expect(await finishInstall(fs, dir)).toBeUndefined();
    }
  });

  it('an install whose staged files were lost leaves the old engine and drops the marker', async () => {
    const { dir } = await setup();
    await write(path.join(dir, RAFT_DIR, INSTALL_MARKER), '{"stage":"raft/snap/gone","phase":"clear"}');
    expect(await finishInstall(fs, dir)).toEqual({ stage: 'raft/snap/gone', installed: false });
    expect(await engineFiles(dir)).toEqual(OLD);
    expect(await fs.exists(path.join(dir, RAFT_DIR, INSTALL_MARKER))).toBe(false);
    await fs.mkdir(path.join(dir, RAFT_DIR, 'snap', 'empty'));
    await expect(installEngineFiles(fs, dir, path.join(dir, RAFT_DIR, 'snap', 'empty'))).rejects.toThrow(
      /no snapshot files/,
    );
    expect(await engineFiles(dir)).toEqual(OLD);
  });

  it('refuses a staging directory outside DIR/raft and a malformed marker', async () => {
    const { dir } = await setup();
    await expect(installEngineFiles(fs, dir, path.join(dir, '..', 'elsewhere'))).rejects.toThrow(/inside/);
    await write(path.join(dir, RAFT_DIR, INSTALL_MARKER), '{"stage":"../../etc","phase":"move"}');
    await expect(finishInstall(fs, dir)).rejects.toThrow(/malformed/);
    await write(path.join(dir, RAFT_DIR, INSTALL_MARKER), 'not json');
    await expect(finishInstall(fs, dir)).rejects.toThrow(/not valid JSON/);
    expect(await engineFiles(dir)).toEqual(OLD);
  });
});
