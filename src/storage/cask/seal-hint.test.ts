// Hint files of sealed data files (seal-hint.ts): written at rotation, at a clean close and for
// sealed files an open had to scan; read back as sorted runs (hint-run.ts). What must hold: an
// open through them shows exactly what a scan of the data files shows, deletes included, and a
// crash or power cut at any step of writing one loses nothing and brings nothing back.
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../../io/faulty-file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { Prng } from '../../stdx/prng.js';
import { checkStore } from './check.js';
import { decodeHint, decodeHintAt, HintWriter } from './hint.js';
import { HintRun, mergeRuns } from './hint-run.js';
import { decodeHintV1At, HintWriterV1 } from './hint-v1.js';
import { CLOSE_HINT_MIN_BYTES } from './seal-hint.js';

const b = (s: string) => Buffer.from(s);

function hintNames(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.hint'))
    .sort();
}

function dataNames(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.data'))
    .sort();
}

async function contents(db: PipelinedCask): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const [k, v] of db.scan()) out.set(Buffer.from(k).toString(), Buffer.from(v).toString());
  return out;
}

describe('hint files of sealed data files', () => {
  it('a hint file round-trips its entries and tombstones; an older reader refuses one with tombstones', () => {
    const w = new HintWriter(3, 7);
    w.add(b('a'), 5, 40, 3, undefined, 1, 2);
    w.add(b('c'), 6, 90, 4, 1234, 6, 1);
    w.addTombstone(b('b'), 9);
    const bytes = w.finish(200);
    const seen: string[] = [];
    const gone: string[] = [];
    expect(
      decodeHint(
        bytes,
        7,
        200,
        (key, seq, off, len, exp, create, version) =>
          seen.push(`${Buffer.from(key)}:${seq}:${off}:${len}:${exp}:${create}:${version}`),
        (key, seq) => gone.push(`${Buffer.from(key)}:${seq}`),
      ),
    ).toBeUndefined();
    expect(seen).toEqual(['a:5:40:3:undefined:1:2', 'c:6:90:4:1234:6:1']);
    expect(gone).toEqual(['b:9']);
    // A reader that knows no tombstones refuses it whole, visiting nothing, rather than miss the
    // deletes: the data file is scanned instead.
    let visited = 0;
    expect(decodeHint(bytes, 7, 200, () => visited++)).toBe('tombstones listed, and this reader takes none');
    expect(visited).toBe(0);
    // A build before tombstones read version 1 only, and refused a version-1 file with them by its
    // entry count; every build before version 2 refuses a version-2 file by its magic.
    const v1 = new HintWriterV1(3, 7);
    v1.add(b('a'), 5, 40, 3, undefined, 1, 2);
    v1.addTombstone(b('b'), 9);
    expect(decodeHint(v1.finish(200), 7, 200, () => visited++)).toBe('entry count does not match');
    expect(visited).toBe(0);
    expect(
      decodeHintV1At(
        bytes,
        7,
        200,
        () => visited++,
        () => visited++,
      ),
    ).toBe('bad magic');
    expect(visited).toBe(0);
    // Damage anywhere is refused.
    for (let at = 0; at < bytes.length; at += 7) {
      const bad = Buffer.from(bytes);
      bad[at] = (bad[at] as number) ^ 0x40;
      expect(
        decodeHint(
          bad,
          7,
          200,
          () => {},
          () => {},
        ),
      ).toBeDefined();
    }
  });

  it('mergeRuns yields the keys of sorted runs in ascending order, duplicates included', () => {
    const prng = new Prng(7);
    const runs: HintRun[] = [];
    for (let r = 0; r < 12; r++) {
      const keys = Array.from(
        { length: 1 + prng.int(50) },
        () => `k${String(prng.int(200)).padStart(3, '0')}`,
      );
      const sorted = [...new Set(keys)].sort();
      const w = new HintWriter(3, r + 1);
      for (const k of sorted) w.add(b(k), r + 1, 0, 0, undefined, 0, 0);
      const run = new HintRun(r + 1, w.finish(0));
      decodeHintAt(run.bytes, r + 1, 0, (keys, keyAt, keyLen, seq, off, len, exp, create, version) => {
        run.bytes = keys;
        run.push(keyAt, keyLen, seq, off, len, exp, create, version);
      });
      runs.push(run);
    }
    // Twelve runs take the heap; the first five the linear merge.
    for (const some of [runs, runs.slice(0, 5)]) {
      const merged: string[] = [];
      mergeRuns(some, (_run, key) => merged.push(Buffer.from(key).toString()));
      const expected: string[] = [];
      for (const run of some)
        for (let i = 0; i < run.count; i++) {
          const at = run.keyAt[i] as number;
          expected.push(run.bytes.subarray(at, at + (run.keyLen[i] as number)).toString());
        }
      expect(merged).toEqual(expected.sort());
    }
  });

  it('mergeRuns agrees with a byte comparison on any keys, through the linear merge and the heap (property)', () => {
    // Keys that share long prefixes, end inside another's merge word, hold zero bytes, or are
    // digit counters that differ only in their last bytes: where merge words tie or mislead.
    const keyArb = fc.oneof(
      fc.uint8Array({ maxLength: 14 }).map((k) => k.map((x) => [0, 1, 255][x % 3] as number)),
      fc
        .tuple(fc.constantFrom('', 'key:', '0000000000'), fc.nat({ max: 99_999 }))
        .map(([p, n]) => Buffer.from(`${p}${String(n).padStart(6, '0')}`, 'latin1')),
      fc.nat({ max: 9 }).map((n) => Buffer.from('0000000000'.slice(0, n), 'latin1')),
    );
    fc.assert(
      fc.property(fc.array(fc.array(keyArb, { maxLength: 40 }), { minLength: 1, maxLength: 14 }), (lists) => {
        const runs = lists.map((keys, r) => {
          const run = new HintRun(r + 1, Buffer.alloc(0));
          keys.forEach((k, i) => {
            run.pushCopy(k, i, 0, 0, undefined, 0, 0);
          });
          run.sort();
          return run;
        });
        const got: [string, number][] = [];
        mergeRuns(runs, (run, key, i) => got.push([Buffer.from(key).toString('hex'), run.id * 1000 + i]));
        // Equal keys: the older file (smaller id) first, each run's own entries in its order.
        const want: [string, number][] = [];
        for (const run of runs)
          for (let i = 0; i < run.count; i++) {
            const at = run.keyAt[i] as number;
            want.push([
              run.bytes.subarray(at, at + (run.keyLen[i] as number)).toString('hex'),
              run.id * 1000 + i,
            ]);
          }
        want.sort(
          (x, y) => Buffer.compare(Buffer.from(x[0], 'hex'), Buffer.from(y[0], 'hex')) || x[1] - y[1],
        );
        expect(got).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('HintRun.sort orders copied keys as bytes compare, entries of one key in their order', () => {
    const prng = new Prng(21);
    for (const shape of ['shared-prefix', 'mixed', 'short']) {
      const run = new HintRun(1, Buffer.alloc(0));
      const keys: string[] = [];
      for (let i = 0; i < 3000; i++) {
        const key =
          shape === 'shared-prefix'
            ? `prefix-${String(prng.int(5000)).padStart(6, '0')}`
            : shape === 'short'
              ? 'abc'.slice(0, prng.int(4))
              : Array.from({ length: prng.int(12) }, () => String.fromCharCode(prng.int(256))).join('');
        keys.push(key);
        run.pushCopy(Buffer.from(key, 'latin1'), i, 0, 0, undefined, 0, 0);
      }
      run.sort();
      const got: [string, number][] = [];
      for (let i = 0; i < run.count; i++) {
        const at = run.keyAt[i] as number;
        got.push([
          run.bytes.subarray(at, at + (run.keyLen[i] as number)).toString('latin1'),
          run.seq[i] as number,
        ]);
      }
      const want = keys
        .map((k, i): [string, number] => [k, i])
        .sort(
          (a, b) => Buffer.compare(Buffer.from(a[0], 'latin1'), Buffer.from(b[0], 'latin1')) || a[1] - b[1],
        );
      expect(got, shape).toEqual(want);
    }
  });

  it('HintRun.sort agrees with a byte comparison on any keys: zeros, prefixes, long ties (property)', () => {
    // Keys from a tiny alphabet with a zero byte, so that prefixes, keys that differ only past
    // another's end, equal keys and long runs of equal 4-byte windows are all common.
    const keyArb = fc.oneof(
      fc.uint8Array({ maxLength: 12 }).map((k) => k.map((x) => [0, 1, 255][x % 3] as number)),
      fc
        .tuple(fc.constantFrom('', 'shared-prefix-', 'abcdabcd'), fc.nat({ max: 200 }))
        .map(([p, n]) => Buffer.from(`${p}${String(n).padStart(3, '0')}`, 'latin1')),
    );
    fc.assert(
      fc.property(fc.array(keyArb, { minLength: 0, maxLength: 300 }), (keys) => {
        const run = new HintRun(1, Buffer.alloc(0));
        keys.forEach((k, i) => {
          run.pushCopy(k, i, 0, 0, undefined, 0, 0);
        });
        run.sort();
        const got: [string, number][] = [];
        for (let i = 0; i < run.count; i++) {
          const at = run.keyAt[i] as number;
          got.push([
            run.bytes.subarray(at, at + (run.keyLen[i] as number)).toString('hex'),
            run.seq[i] as number,
          ]);
        }
        const want = keys
          .map((k, i): [Uint8Array, number] => [k, i])
          .sort((a, b) => Buffer.compare(a[0], b[0]) || a[1] - b[1])
          .map(([k, i]): [string, number] => [Buffer.from(k).toString('hex'), i]);
        expect(got).toEqual(want);
      }),
      { numRuns: 500 },
    );
  });

  it('a crash leaves a large active file without a hint: its scan, sorted, shows the model', async () => {
    const dir = tmpDir('seal-crash-scan');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    // Mode never: the writes reach the OS (a process crash keeps them) without an fsync each.
    const db = await openCaskPipelined(dir, { fs: faulty, autoCompact: false, durability: 'never' });
    const model = new Map<string, string>();
    const prng = new Prng(5);
    for (let i = 0; i < 9000; i++) {
      const key = `k${prng.int(3000)}`;
      if (i % 11 === 0) {
        await db.delete(b(key));
        model.delete(key);
      } else if (i % 13 === 0) {
        const other = `k${prng.int(3000)}`;
        if (other === key) continue;
        await db.batch([
          { type: 'put', key: b(key), value: b(`batch${i}`.padEnd(150, '.')) },
          { type: 'delete', key: b(other) },
        ]);
        model.set(key, `batch${i}`.padEnd(150, '.'));
        model.delete(other);
      } else {
        await db.put(b(key), b(`v${i}`.padEnd(150, '.')));
        model.set(key, `v${i}`.padEnd(150, '.'));
      }
    }
    expect(db.engine.active.size).toBeGreaterThan(1024 * 1024);
    faulty.dieAfter = faulty.mutations; // SIGKILL: no close, no hint for the active file
    await db.close().catch(() => {});
    const again = await openCaskPipelined(dir, { autoCompact: false });
    expect(again.engine.recovery.hintFilesUsed).toBe(0);
    expect(await contents(again)).toEqual(model);
    await again.close();
  });

  it('rotation writes them; an open reads every sealed file through its hint, deletes included', async () => {
    const dir = tmpDir('seal-hint');
    const db = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    const model = new Map<string, string>();
    for (let i = 0; i < 300; i++) {
      await db.put(b(`k${i % 70}`), b(`v${i}`.padEnd(40, '.')));
      model.set(`k${i % 70}`, `v${i}`.padEnd(40, '.'));
      if (i % 9 === 0) {
        // A delete whose key has older puts in older files: the tombstone must be in the hint.
        await db.delete(b(`k${(i * 7) % 70}`));
        model.delete(`k${(i * 7) % 70}`);
      }
    }
    await db.batch([
      { type: 'delete', key: b('k1') },
      { type: 'put', key: b('batch'), value: b('member') },
    ]);
    model.delete('k1');
    model.set('batch', 'member');
    await db.engine.rotate();
    await db.engine.hintsSettled();
    expect(db.engine.hintsWritten).toBeGreaterThan(3);
    await db.close();
    // Every data file but the active one has a hint file.
    const data = dataNames(dir);
    expect(hintNames(dir).length).toBe(data.length - 1);
    const again = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    expect(again.engine.recovery.hintFilesUsed).toBe(data.length - 1);
    expect(again.engine.recovery.problems).toEqual([]);
    expect(await contents(again)).toEqual(model);
    await again.close();
    // A full check reads every record instead and agrees.
    const check = await checkStore(dir);
    expect(check.ok).toBe(true);
  });

  it('a clean close seals a large active file with a hint; the next open starts a new file', async () => {
    const dir = tmpDir('seal-close');
    const db = await openCaskPipelined(dir, { autoCompact: false });
    const value = Buffer.alloc(4096, 1);
    const n = Math.ceil(CLOSE_HINT_MIN_BYTES / 4096) + 2;
    for (let i = 0; i < n; i++) await db.put(b(`k${i}`), value);
    await db.delete(b('k0'));
    await db.close();
    expect(hintNames(dir)).toEqual(['0000000001.hint']);
    const again = await openCaskPipelined(dir, { autoCompact: false });
    expect(again.engine.recovery.hintFilesUsed).toBe(1);
    expect(again.engine.active.id).toBe(2);
    expect(again.engine.keyDir.size).toBe(n - 1);
    expect(await again.get(b('k0'))).toBeUndefined();
    await again.put(b('k0'), b('back'));
    await again.close();
    const third = await openCaskPipelined(dir, { autoCompact: false });
    expect(String(await third.get(b('k0')))).toBe('back');
    expect(third.engine.keyDir.size).toBe(n);
    await third.close();
  });

  it('an open gives scanned sealed files a hint file, so the next open reads them fast', async () => {
    const dir = tmpDir('seal-backfill');
    const db = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    for (let i = 0; i < 200; i++) await db.put(b(`k${i % 50}`), b(`v${i}`.padEnd(40, '.')));
    for (let i = 0; i < 50; i += 3) await db.delete(b(`k${i}`));
    await db.close();
    const model = await (async () => {
      const d = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
      const m = await contents(d);
      await d.close();
      return m;
    })();
    // As a store written before sealed files had hint files.
    for (const name of hintNames(dir)) fs.rmSync(path.join(dir, name));
    const scanned = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    expect(scanned.engine.recovery.hintFilesUsed).toBe(0);
    await scanned.engine.hintsSettled();
    await scanned.close();
    const fast = await openCaskPipelined(dir, { dataFileBytes: 4096, autoCompact: false });
    expect(fast.engine.recovery.hintFilesUsed).toBe(dataNames(dir).length - 1);
    expect(await contents(fast)).toEqual(model);
    await fast.close();
  });

  it('a hint file left out of a key a newer write replaced: that write is durable first (mode never)', async () => {
    const dir = tmpDir('seal-never');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const db = await openCaskPipelined(dir, { fs: faulty, durability: 'never', autoCompact: false });
    await db.put(b('k'), b('old'));
    await db.put(b('other'), b('x'));
    await db.engine.rotate(); // seals the file with k=old; its hint is written in the background
    await db.put(b('k'), b('new')); // in the active file, written but not fdatasynced
    await db.engine.hintsSettled();
    // The hint of the sealed file leaves k out (it lives in the active file now): so the hint
    // may exist only once k=new is durable. Power is cut without a close.
    faulty.dieAfter = faulty.mutations;
    await db.close().catch(() => {});
    faulty.clearFaults();
    await faulty.powerLoss();
    const again = await openCaskPipelined(dir, { autoCompact: false });
    expect(String(await again.get(b('k')))).toBe('new');
    expect(String(await again.get(b('other')))).toBe('x');
    await again.close();
  });

  it('a power cut at every step of writing a sealed hint loses nothing and revives nothing', async () => {
    for (let step = 0; ; step++) {
      const dir = tmpDir('seal-cut');
      const faulty = new FaultyFileSystem(nodeFileSystem);
      const db = await openCaskPipelined(dir, { fs: faulty, dataFileBytes: 1 << 20, autoCompact: false });
      const model = new Map<string, string>();
      for (let i = 0; i < 60; i++) {
        await db.put(b(`k${i % 20}`), b(`v${i}`));
        model.set(`k${i % 20}`, `v${i}`);
      }
      await db.delete(b('k3'));
      model.delete('k3');
      // The rotation, then the hint file's steps; die after `step` of them.
      faulty.dieAfter = faulty.mutations + step;
      let finished = true;
      try {
        await db.engine.rotate();
        await db.engine.hintsSettled();
        finished = db.engine.hintsWritten === 1;
      } catch {
        finished = false;
      }
      await db.close().catch(() => {});
      faulty.clearFaults();
      await faulty.powerLoss();
      const again = await openCaskPipelined(dir, { autoCompact: false });
      expect(await contents(again), `power cut after step ${step}`).toEqual(model);
      // A rotation now writes the metadata (its `files`): a cut during that write can take one
      // copy, which the open rewrites from the other and reports (meta.ts); nothing else.
      expect(
        again.engine.recovery.problems.filter(
          (p) => p.kind !== 'leftover-temp' && !p.file.startsWith('META'),
        ),
      ).toEqual([]);
      await again.close();
      if (finished && faulty.mutations < (faulty.dieAfter ?? Number.POSITIVE_INFINITY)) break;
      if (step > 40) throw new Error('the rotation and hint took more steps than expected');
    }
  });

  it('random writes, deletes, batches, rotations, compactions and reopens: every open shows the model', async () => {
    const prng = new Prng(0x14);
    const dir = tmpDir('seal-model');
    const options = { dataFileBytes: 4096, autoCompact: false };
    const model = new Map<string, string>();
    let db = await openCaskPipelined(dir, options);
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 150; i++) {
        const key = `k${prng.int(60)}`;
        const roll = prng.int(10);
        if (roll < 6) {
          const value = `r${round}-${i}`.padEnd(prng.int(160) + 1, '.');
          await db.put(b(key), b(value));
          model.set(key, value);
        } else if (roll < 8) {
          await db.delete(b(key));
          model.delete(key);
        } else {
          const other = `k${prng.int(60)}`;
          if (other === key) continue;
          await db.batch([
            { type: 'put', key: b(key), value: b(`batch${i}`) },
            { type: 'delete', key: b(other) },
          ]);
          model.set(key, `batch${i}`);
          model.delete(other);
        }
        if (prng.int(40) === 0) await db.engine.rotate();
        if (prng.int(150) === 0) await db.compact();
      }
      if (round % 2 === 0) await db.engine.hintsSettled();
      await db.close();
      db = await openCaskPipelined(dir, options);
      expect(await contents(db), `round ${round}`).toEqual(model);
      expect(db.engine.recovery.problems).toEqual([]);
    }
    await db.close();
    expect((await checkStore(dir)).ok).toBe(true);
  });
});
