// Online backup (backup.ts, docs/backup.md): under concurrent writes (keys in order, reverse and
// random), batches and compaction, a backup opens as a store that holds exactly a prefix of the
// writes in commit order, including every write acknowledged before the call; a power cut at
// every file-system step of a backup leaves the source intact and the target refused or whole.
import * as fsSync from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { Prng } from '../../stdx/prng.js';
import { CorruptionError, InvalidArgumentError, IoError } from '../errors.js';
import { CaskEngine } from './cask-engine.js';

/** Op: one write of the workload: a set, a delete, or a batch of sets and deletes. */
type Op =
  | { readonly kind: 'set'; readonly key: string; readonly value: string }
  | { readonly kind: 'del'; readonly key: string };
type Write = readonly Op[];

async function contents(db: Db): Promise<Map<string, string>> {
  const seen = new Map<string, string>();
  for await (const [k, v] of db.scan()) seen.set(k.toString(), v.toString());
  return seen;
}

function applyWrite(model: Map<string, string>, write: Write): void {
  for (const op of write) {
    if (op.kind === 'set') model.set(op.key, op.value);
    else model.delete(op.key);
  }
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/**
 * prefixLength returns m such that `state` is the model after writes[0..m), searching from
 * `atLeast`; -1 when no prefix matches.
 */
function prefixLength(writes: readonly Write[], state: Map<string, string>, atLeast: number): number {
  const model = new Map<string, string>();
  for (let i = 0; i < atLeast; i++) applyWrite(model, writes[i] as Write);
  for (let m = atLeast; m <= writes.length; m++) {
    if (sameMap(model, state)) return m;
    if (m < writes.length) applyWrite(model, writes[m] as Write);
  }
  return -1;
}

function keyOrder(order: 'ascending' | 'reverse' | 'random', n: number, rng: Prng): string[] {
  const keys = Array.from({ length: n }, (_, i) => `key-${String(i).padStart(5, '0')}`);
  if (order === 'reverse') keys.reverse();
  if (order === 'random') {
    for (let i = keys.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
    }
  }
  return keys;
}

/** workload: writes over `keys` in their order: sets, overwrites, deletes and 3-key batches. */
function workload(keys: readonly string[], count: number, rng: Prng): Write[] {
  const writes: Write[] = [];
  for (let i = 0; i < count; i++) {
    const key = keys[i % keys.length] as string;
    const r = rng.int(10);
    if (r < 6) writes.push([{ kind: 'set', key, value: `v${i}-${'x'.repeat(rng.int(200))}` }]);
    else if (r < 8) writes.push([{ kind: 'del', key: keys[rng.int(keys.length)] as string }]);
    else {
      writes.push(
        [0, 1, 2].map((j) => ({
          kind: 'set' as const,
          key: keys[(i + j * 7) % keys.length] as string,
          value: `b${i}.${j}`,
        })),
      );
    }
  }
  return writes;
}

function issue(db: Db, write: Write): Promise<unknown> {
  const first = write[0] as Op;
  if (write.length === 1) return first.kind === 'set' ? db.set(first.key, first.value) : db.delete(first.key);
  return db.batch(
    write.map((op) =>
      op.kind === 'set' ? { type: 'set', key: op.key, value: op.value } : { type: 'delete', key: op.key },
    ),
  );
}

describe('db.backup under concurrent writes', () => {
  for (const order of ['ascending', 'reverse', 'random'] as const) {
    it(`keys in ${order} order: the backup is a prefix holding every write acknowledged before the call`, async () => {
      const rng = new Prng(order.length * 7919);
      const dir = tmpDir('backup-src');
      // Small files and an eager compaction trigger: the backup races rotations and compactions.
      const db = await open(dir, {
        dataFileBytes: 16 * 1024,
        compactionMinDeadBytes: 4096,
        compactionDeadRatio: 0.3,
      });
      const writes = workload(keyOrder(order, 300, rng), 3000, rng);
      const acked = new Array<boolean>(writes.length).fill(false);
      const pending: Promise<unknown>[] = [];
      const targets: { dir: string; ackedBefore: number; lastTs: number }[] = [];
      const CONCURRENCY = 16;
      let next = 0;
      const writer = async (): Promise<void> => {
        while (next < writes.length) {
          const i = next++;
          await issue(db, writes[i] as Write);
          acked[i] = true;
        }
      };
      for (let w = 0; w < CONCURRENCY; w++) pending.push(writer());
      // Backups at several moments, one with an explicit compaction racing it.
      for (const at of [500, 1500, 2500]) {
        while (next < at) await new Promise((r) => setImmediate(r));
        // The highest index such that every write up to it was acknowledged before the call.
        let ackedBefore = 0;
        while (ackedBefore < writes.length && acked[ackedBefore]) ackedBefore++;
        const target = path.join(tmpDir('backup-dst'), 'copy');
        // At 1500 a compaction races the cut; at 2500 one has just committed before it.
        if (at === 2500) await db.compact();
        const compaction = at === 1500 ? db.compact() : Promise.resolve();
        const info = await db.backup(target);
        await compaction;
        expect(info.engine).toBe('cask');
        expect(info.files).toBe(info.linked + info.copied);
        expect(info.linked).toBeGreaterThan(0);
        targets.push({ dir: target, ackedBefore, lastTs: info.lastTs });
      }
      await Promise.all(pending);
      const final = await contents(db);
      await db.close();
      const model = new Map<string, string>();
      for (const w of writes) applyWrite(model, w);
      expect(sameMap(final, model)).toBe(true);

      for (const t of targets) {
        const copy = await open(t.dir);
        const state = await contents(copy);
        const m = prefixLength(writes, state, t.ackedBefore);
        expect(
          m,
          `backup taken after ${t.ackedBefore} acknowledged writes is no prefix`,
        ).toBeGreaterThanOrEqual(t.ackedBefore);
        // The copy is an ordinary store: writable, and its clock starts above the cut.
        expect(copy.stats().keys).toBe(state.size);
        await copy.set('after-restore', 'yes');
        expect((await copy.revision('after-restore'))?.mod).toBeGreaterThan(t.lastTs);
        await copy.close();
      }
    });
  }
});

describe('a hint file written after the cut', () => {
  // Found from outside: a backup taken under concurrent transactions held one account of a
  // transfer new and the other old. The file the cut sealed got its hint file a moment after the
  // cut, built from the key directory then: it left out the records that writes after the cut had
  // replaced. The backup copied that hint (it existed when the backup listed the files), so the
  // copy lost what the cut held of those keys. Made certain here: an earlier file's hint job is
  // held at its rename (hint jobs run one at a time), so the sealed file's walk comes after the
  // writes that follow the cut, and the backup's listing waits until that hint exists.
  it('is not copied: the copy holds the batch the cut held, whole', async () => {
    const gates = {
      rename: undefined as Promise<void> | undefined,
      kind: undefined as Promise<void> | undefined,
    };
    class GatedFileSystem extends FaultyFileSystem {
      override async rename(from: string, to: string): Promise<void> {
        if (to.endsWith('.hint')) await gates.rename;
        return super.rename(from, to);
      }
      override async kind(file: string) {
        if (file.endsWith('.hint')) await gates.kind;
        return super.kind(file);
      }
    }
    const gate = (): { wait: Promise<void>; open: () => void } => {
      let open = (): void => {};
      const wait = new Promise<void>((resolve) => {
        open = resolve;
      });
      return { wait, open };
    };
    const fs = new GatedFileSystem(nodeFileSystem);
    const dir = tmpDir('backup-late-hint');
    const dataFiles = (): string[] =>
      fsSync
        .readdirSync(dir)
        .filter((f) => f.endsWith('.data'))
        .sort();
    const db = await open(dir, { fs, dataFileBytes: 4096, autoCompact: false });
    const renames = gate();
    gates.rename = renames.wait;
    // Until a rotation: the sealed file's hint job is held at its rename.
    const before = dataFiles().length;
    for (let i = 0; dataFiles().length === before; i++) await db.set(`filler${i}`, 'f'.repeat(100));
    await db.batch([
      { type: 'set', key: 'acct:a', value: '100' },
      { type: 'set', key: 'acct:b', value: '100' },
    ]);
    const listing = gate();
    gates.kind = listing.wait;
    const target = path.join(tmpDir('backup-late-hint-dst'), 'copy');
    const backup = db.backup(target);
    // Queued after the backup's seal: in the new file, not in the copy.
    await db.batch([
      { type: 'set', key: 'acct:a', value: '97' },
      { type: 'set', key: 'acct:b', value: '103' },
    ]);
    const sealed = dataFiles().at(-2) as string;
    const hint = path.join(dir, sealed.replace('.data', '.hint'));
    renames.open();
    gates.rename = undefined;
    for (let i = 0; i < 500 && !fsSync.existsSync(hint); i++) await new Promise((r) => setTimeout(r, 10));
    expect(fsSync.existsSync(hint)).toBe(true);
    listing.open();
    gates.kind = undefined;
    await backup;
    await db.close();
    const copy = await open(target);
    expect([await copy.getString('acct:a'), await copy.getString('acct:b')]).toEqual(['100', '100']);
    expect(await copy.getString('filler0')).toBe('f'.repeat(100));
    await copy.close();
  });
});

describe('db.backup targets', () => {
  it('refuses a non-empty directory or a file, and makes a missing one', async () => {
    const db = await open(tmpDir('backup-src'));
    await db.set('a', '1');
    const full = tmpDir('backup-full');
    fsSync.writeFileSync(path.join(full, 'unrelated'), 'x');
    await expect(db.backup(full)).rejects.toThrow(/not empty/);
    await expect(db.backup(path.join(full, 'unrelated'))).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(fsSync.readdirSync(full)).toEqual(['unrelated']);
    const fresh = path.join(tmpDir('backup-dst'), 'a', 'b');
    const info = await db.backup(fresh);
    expect(info.keys).toBe(1);
    await db.close();
    const copy = await open(fresh);
    expect(await copy.getString('a')).toBe('1');
    await copy.close();
  });

  it('copies instead of linking across file systems (EXDEV)', async () => {
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await open(tmpDir('backup-src'), { fs: faulty, dataFileBytes: 4096 });
    for (let i = 0; i < 200; i++) await db.set(`k${i}`, `v${i}`.repeat(20));
    faulty.inject({ op: 'link', code: 'EXDEV', times: Number.POSITIVE_INFINITY });
    const target = path.join(tmpDir('backup-dst'), 'copy');
    const info = await db.backup(target);
    expect(info.linked).toBe(0);
    expect(info.copied).toBe(info.files);
    const expected = await contents(db);
    await db.close();
    for (const name of fsSync.readdirSync(target))
      expect(fsSync.statSync(path.join(target, name)).nlink).toBe(1);
    const copy = await open(target);
    expect(sameMap(await contents(copy), expected)).toBe(true);
    await copy.close();
  });

  // Found from outside: these came out as bare Node errors (Error ENOSPC, Error ENOTDIR), not
  // the CairnError every embedded call promises.
  it('a file-system failure of the copy is an IoError naming the target', async () => {
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await open(tmpDir('backup-src'), { fs: faulty });
    try {
      await db.set('a', '1');
      const file = path.join(tmpDir('backup-dst'), 'plain-file');
      fsSync.writeFileSync(file, 'x');
      const under = path.join(file, 'copy');
      const notDir = await db.backup(under).catch((e: unknown) => e);
      expect(notDir).toBeInstanceOf(IoError);
      expect((notDir as Error).message).toMatch(new RegExp(`the backup into ${under} failed: ENOTDIR`));
      faulty.inject({ op: 'link', code: 'EXDEV', times: Number.POSITIVE_INFINITY });
      faulty.inject({ op: 'write', code: 'ENOSPC', path: /backup-dst/ });
      const target = path.join(tmpDir('backup-dst'), 'copy');
      const full = await db.backup(target).catch((e: unknown) => e);
      expect(full).toBeInstanceOf(IoError);
      expect((full as Error).message).toMatch(/the backup into .* failed: ENOSPC/);
      // The store goes on, and a retry into the same (now empty) target works.
      faulty.clearFaults();
      await db.set('b', '2');
      expect((await db.backup(target)).keys).toBe(2);
    } finally {
      await db.close();
    }
  });

  it('an empty store backs up to an empty store', async () => {
    const db = await open(tmpDir('backup-src'));
    const target = path.join(tmpDir('backup-dst'), 'copy');
    const info = await db.backup(target);
    expect(info.keys).toBe(0);
    await db.close();
    const copy = await open(target);
    expect(copy.stats().keys).toBe(0);
    await copy.close();
  });

  it('the lmdb engine refuses clearly', async () => {
    const db = await open(tmpDir('backup-lmdb'), { engine: 'lmdb' });
    await expect(db.backup(path.join(tmpDir('backup-dst'), 'x'))).rejects.toThrow(
      /lmdb engine cannot be backed up online/,
    );
    await db.close();
  });
});

describe('a linked backup shares its files with the source', () => {
  it('a write to the opened copy reaches neither the source nor another backup', async () => {
    const dir = tmpDir('backup-src');
    const db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    for (let i = 0; i < 100; i++) await db.set(`k${i % 20}`, `v${i}`);
    const first = path.join(tmpDir('backup-dst'), 'first');
    expect((await db.backup(first)).linked).toBeGreaterThan(0);
    await db.set('k0', 'between');
    // The second backup links every file the first one did (nothing was compacted).
    const second = path.join(tmpDir('backup-dst'), 'second');
    await db.backup(second);
    const expected = await contents(db);
    await db.close();
    const copy = await open(first);
    await copy.set('written-to-copy', 'yes');
    await copy.close();
    for (const other of [second, dir]) {
      const reopened = await open(other);
      expect(sameMap(await contents(reopened), expected), other).toBe(true);
      await reopened.close();
    }
  });
});

describe('compaction during a backup', () => {
  it('waits for the backup before deleting its inputs', async () => {
    const dir = tmpDir('backup-src');
    const engine = await CaskEngine.open(dir, { dataFileBytes: 4096, autoCompact: false });
    let ts = 0;
    for (let i = 0; i < 300; i++) {
      ts++;
      const value = Buffer.from(`v${i}-${'z'.repeat(100)}`);
      await engine.write(ts, [
        { type: 'put', key: Buffer.from(`k${i % 50}`), value, create: ts, version: 1 },
      ]);
    }
    const source = await engine.backupSource();
    const listed = source.files.filter((f) => f.name.endsWith('.data')).map((f) => f.name);
    expect(listed.length).toBeGreaterThan(3);
    let compacted = false;
    const compaction = engine.compact().then(() => {
      compacted = true;
    });
    for (let i = 0; i < 50 && !compacted; i++) await new Promise((r) => setTimeout(r, 2));
    expect(compacted).toBe(false);
    for (const name of listed) expect(fsSync.existsSync(path.join(dir, name))).toBe(true);
    // The pinned files are still readable through the source, whole.
    const target = path.join(tmpDir('backup-dst'), 'copy');
    fsSync.mkdirSync(target);
    for (const f of source.files) {
      const buf = Buffer.alloc(f.size);
      expect(await source.read(f.name, buf, 0, f.size, 0)).toBe(f.size);
      fsSync.writeFileSync(path.join(target, f.name), buf);
    }
    await source.close();
    await compaction;
    expect(compacted).toBe(true);
    for (const name of listed) expect(fsSync.existsSync(path.join(dir, name))).toBe(false);
    await engine.close();
    const copy = await open(target);
    expect(copy.stats().keys).toBe(50);
    expect(await copy.getString('k49')).toBe(`v299-${'z'.repeat(100)}`);
    await copy.close();
  });

  it('a backup cut after a compaction committed leaves its retired inputs out', async () => {
    const dir = tmpDir('backup-src');
    const db = await open(dir, { dataFileBytes: 4096, autoCompact: false });
    for (let i = 0; i < 300; i++) await db.set(`k${i % 50}`, `v${i}`);
    await db.compact();
    const target = path.join(tmpDir('backup-dst'), 'copy');
    const info = await db.backup(target);
    expect(info.keys).toBe(50);
    await db.close();
    const copy = await open(target);
    expect(await copy.getString('k0')).toBe('v250');
    expect(copy.stats().keys).toBe(50);
    await copy.close();
  });
});

describe('power loss during a backup', () => {
  for (const mode of ['link', 'copy'] as const) {
    it(`at every step (${mode}): the source keeps every write; the target is refused, empty or whole`, async () => {
      let finished = false;
      for (let step = 0; !finished; step++) {
        expect(step).toBeLessThan(500);
        const dir = tmpDir('backup-pl');
        const setup = await open(dir, { dataFileBytes: 4096 });
        const model = new Map<string, string>();
        for (let i = 0; i < 30; i++) {
          await setup.set(`k${i % 20}`, `v${i}-${'y'.repeat(300)}`);
          model.set(`k${i % 20}`, `v${i}-${'y'.repeat(300)}`);
        }
        await setup.close();

        const faulty = new FaultyFileSystem(nodeFileSystem);
        const db = await open(dir, { fs: faulty, dataFileBytes: 4096, autoCompact: false });
        if (mode === 'copy') faulty.inject({ op: 'link', code: 'EXDEV', times: Number.POSITIVE_INFINITY });
        const target = path.join(tmpDir('backup-pl-dst'), 'copy');
        faulty.dieAfter = faulty.mutations + step;
        const result = await db.backup(target).catch((e: unknown) => e);
        finished = !(result instanceof Error);
        await db.close().catch(() => {});
        await faulty.powerLoss();

        const source = await open(dir);
        expect(sameMap(await contents(source), model), `source after a power cut at step ${step}`).toBe(true);
        await source.close();
        if (!fsSync.existsSync(target) || fsSync.readdirSync(target).length === 0) {
          expect(finished).toBe(false);
          continue;
        }
        const reopened = await open(target).catch((e: unknown) => e);
        if (reopened instanceof Error) {
          expect(finished).toBe(false);
          expect(reopened).toBeInstanceOf(CorruptionError);
          continue;
        }
        expect(
          sameMap(await contents(reopened as Db), model),
          `target after a power cut at step ${step}`,
        ).toBe(true);
        await (reopened as Db).close();
        fsSync.rmSync(target, { recursive: true, force: true });
      }
    });
  }
});
