// Read-only opens (defects-2026-12.md entry 16): a store that may not be written (a read-only
// file system, a backup) can still be read, and nothing in its directory changes. The real
// read-only file system is in test/storage/tmpfs.test.ts; here the option itself.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { open } from '../../db/db.js';
import { CorruptionError, InvalidArgumentError, LockedError, ReadOnlyError } from '../errors.js';

const b = (s: string) => Buffer.from(s);

/** listing: every file under `dir` with its size and modification time. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      const st = fs.statSync(p);
      if (st.isDirectory()) walk(p);
      else out.push(`${path.relative(dir, p)} ${st.size} ${st.mtimeMs}`);
    }
  };
  walk(dir);
  return out;
}

describe('readOnly', () => {
  it('reads a store, refuses every write, and changes nothing in the directory', async () => {
    const dir = tmpDir('ro');
    const w = await open(dir, { dataFileBytes: 4096 });
    for (let i = 0; i < 100; i++)
      await w.set(`k${i}`, `v${i}`.padEnd(60, '.'), i % 10 === 0 ? { ttlMs: 3_600_000 } : {});
    await w.close();
    // What a crash leaves: a torn tail that a repairing open would cut.
    const files = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.data'))
      .sort();
    fs.appendFileSync(path.join(dir, files.at(-1)!), 'torn');
    const before = listing(dir);

    const db = await open(dir, { readOnly: true });
    expect((await db.get('k7'))?.toString()).toBe('v7'.padEnd(60, '.'));
    expect(await db.ttl('k10')).toBeGreaterThan(0);
    let n = 0;
    for await (const _ of db.scan()) n++;
    expect(n).toBe(100);
    expect(db.stats().keys).toBe(100);
    const recovery = (
      db.pipeline.engine as unknown as { recovery: { problems: { kind: string; action: string }[] } }
    ).recovery;
    expect(recovery.problems.map((p) => p.kind)).toEqual(['torn-tail']);
    expect(recovery.problems[0]?.action).toMatch(/^would /);
    const tx = await db.begin();
    tx.set('x', 'y');
    for (const attempt of [
      () => db.set('k1', 'new'),
      () => db.delete('k1'),
      () => db.batch([{ type: 'set', key: 'a', value: 'b' }]),
      () => db.expire('k1', { ttlMs: 5 }),
      () => db.compact(),
      () => tx.commit(),
    ]) {
      await expect(attempt()).rejects.toBeInstanceOf(ReadOnlyError);
    }
    await db.flush();
    await db.close();
    expect(listing(dir)).toEqual(before);
  });

  it('holds the kernel lock: a writer cannot open the store meanwhile', async () => {
    const dir = tmpDir('ro-lock');
    await (await openCaskPipelined(dir)).close();
    const ro = await openCaskPipelined(dir, { readOnly: true });
    const err = await openCaskPipelined(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as Error).message).toMatch(/already open in this process/);
    await ro.close();
    await (await openCaskPipelined(dir)).close();
  });

  it('refuses what is not an existing store, and the lmdb engine', async () => {
    const dir = tmpDir('ro-none');
    await expect(open(path.join(dir, 'missing'), { readOnly: true })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(fs.existsSync(path.join(dir, 'missing'))).toBe(false);
    await expect(open(dir, { readOnly: true, engine: 'cask' })).rejects.toBeInstanceOf(CorruptionError);
    await expect(open(dir, { readOnly: true, engine: 'lmdb' })).rejects.toThrow(
      /readOnly is supported by the cask engine only/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('opens an empty store (no data files) read-only', async () => {
    const dir = tmpDir('ro-empty');
    const w = await openCaskPipelined(dir);
    await w.close();
    for (const name of fs.readdirSync(dir)) if (name.endsWith('.data')) fs.rmSync(path.join(dir, name));
    const ro = await openCaskPipelined(dir, { readOnly: true });
    expect(await ro.get(b('k'))).toBeUndefined();
    await expect(ro.put(b('k'), b('v'))).rejects.toBeInstanceOf(ReadOnlyError);
    await ro.close();
  });
});
