import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../io/manual-clock.js';
import type { Revision, Engine as StorageEngine, WriteOp } from '../storage/engine.js';
import type { EngineOptions } from '../storage/engine-options.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { EXPIRY_CYCLE_INTERVAL_MS } from '../storage/expiry-index.js';
import { engineHarness } from './engine-conformance-harness.js';

export type OpenEngineForRevision = (dir: string, options?: EngineOptions) => Promise<StorageEngine>;

/** REVISION_PROPERTY_RUNS: sized so the property test stays within a few seconds per engine. */
const REVISION_PROPERTY_RUNS = 25;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

export function describeRevisionConformance(name: string, open: OpenEngineForRevision): void {
  describe(`Engine conformance, revisions: ${name}`, () => {
    const { tempDir, openTracked } = engineHarness(open, 'cairn-rev-');

    it('assigns increasing timestamps and counts versions from creation', async () => {
      const db = await openTracked(tempDir());
      const t0 = db.lastTs();
      await db.put(utf8('a'), utf8('1'));
      const first = db.revisionSync(utf8('a'))!;
      expect(first.mod).toBeGreaterThan(t0);
      expect(first).toEqual({ mod: first.mod, create: first.mod, version: 1 });
      expect(db.lastTs()).toBe(first.mod);

      await db.put(utf8('a'), utf8('2'));
      const second = db.revisionSync(utf8('a'))!;
      expect(second.mod).toBeGreaterThan(first.mod);
      expect(second).toEqual({ mod: second.mod, create: first.mod, version: 2 });
      expect((await db.getStored(utf8('a')))?.revision).toEqual(second);

      expect(await db.delete(utf8('a'))).toBe(true);
      expect(db.revisionSync(utf8('a'))).toBeUndefined();
      const afterDelete = db.lastTs();
      expect(afterDelete).toBeGreaterThan(second.mod);
      await db.put(utf8('a'), utf8('3'));
      const again = db.revisionSync(utf8('a'))!;
      expect(again.mod).toBeGreaterThan(afterDelete);
      expect(again).toEqual({ mod: again.mod, create: again.mod, version: 1 });
      expect(db.revisionSync(utf8('never'))).toBeUndefined();
    });

    it('derives revisions from writes still queued, not only durable ones', async () => {
      // A clock that stands still: the pipeline's timestamps are then consecutive.
      const db = await openTracked(tempDir(), { clock: new ManualClock() });
      const writes = [
        db.put(utf8('q'), utf8('1')),
        db.put(utf8('q'), utf8('2')),
        db.put(utf8('q'), utf8('3')),
      ];
      const queuedTs = db.lastTs();
      await Promise.all(writes);
      const rev = db.revisionSync(utf8('q'))!;
      expect(rev.version).toBe(3);
      expect(rev.mod).toBe(queuedTs);
      expect(rev.create).toBe(queuedTs - 2);
    });

    it('gives every member of a batch the batch timestamp', async () => {
      const db = await openTracked(tempDir());
      await db.put(utf8('b'), utf8('0'));
      const created = db.revisionSync(utf8('b'))!.mod;
      await db.batch([
        { type: 'put', key: utf8('a'), value: utf8('1') },
        { type: 'put', key: utf8('b'), value: utf8('1') },
        { type: 'delete', key: utf8('c') },
      ]);
      const ts = db.lastTs();
      expect(db.revisionSync(utf8('a'))).toEqual({ mod: ts, create: ts, version: 1 });
      expect(db.revisionSync(utf8('b'))).toEqual({ mod: ts, create: created, version: 2 });
    });

    it('stores the timestamps, creation and version it is given, and refuses bad ones', async () => {
      const db = await openTracked(tempDir());
      const e = db.engine;
      // A refusal may be thrown or rejected; either way nothing changes.
      const write = (ts: number, ops: readonly WriteOp[]): Promise<void> =>
        Promise.resolve().then(() => e.write(ts, ops));
      const put = (key: string, value: string, create: number, version: number): WriteOp => ({
        type: 'put',
        key: utf8(key),
        value: utf8(value),
        create,
        version,
      });
      const base = db.lastTs() + 1_000;
      await write(base, [put('k', 'v', base - 500, 7)]);
      expect(db.revisionSync(utf8('k'))).toEqual({ mod: base, create: base - 500, version: 7 });
      expect(db.lastTs()).toBe(base);
      await write(base + 10, [put('k', 'w', base - 500, 8), put('m', 'w', base + 10, 1)]);
      expect(db.revisionSync(utf8('k'))).toEqual({ mod: base + 10, create: base - 500, version: 8 });
      expect(db.revisionSync(utf8('m'))).toEqual({ mod: base + 10, create: base + 10, version: 1 });
      await write(base + 20, [{ type: 'delete', key: utf8('m') }]);
      expect(db.revisionSync(utf8('m'))).toBeUndefined();
      expect(db.lastTs()).toBe(base + 20);

      await expect(write(base + 20, [put('k', 'x', 1, 1)])).rejects.toThrow(InvalidArgumentError);
      await expect(write(1.5 + base * 2, [put('k', 'x', 1, 1)])).rejects.toThrow(InvalidArgumentError);
      await expect(write(base, [{ type: 'delete', key: utf8('k') }])).rejects.toThrow(InvalidArgumentError);
      // A put without its version (a JavaScript caller can omit it).
      const partial = { type: 'put', key: utf8('k'), value: utf8('x'), create: 5 } as unknown as WriteOp;
      await expect(write(base + 30, [partial])).rejects.toThrow(InvalidArgumentError);
      await expect(write(base + 30, [put('k', 'x', base + 31, 1)])).rejects.toThrow(InvalidArgumentError);
      await expect(write(base + 30, [put('k', 'x', 1, 0)])).rejects.toThrow(InvalidArgumentError);
      await expect(write(base + 30, [])).rejects.toThrow(InvalidArgumentError);
      // Nothing refused changed anything.
      expect(db.revisionSync(utf8('k'))).toEqual({ mod: base + 10, create: base - 500, version: 8 });
      expect(db.lastTs()).toBe(base + 20);
    });

    it('keeps revisions and the last timestamp across a reopen', async () => {
      const dir = tempDir();
      const db = await openTracked(dir);
      await db.put(utf8('a'), utf8('1'));
      await db.put(utf8('a'), utf8('2'));
      await db.put(utf8('b'), utf8('1'), { expiresAt: Date.now() + 3_600_000 });
      await db.put(utf8('gone'), utf8('1'));
      await db.delete(utf8('gone'));
      const revA = db.revisionSync(utf8('a'));
      const revB = db.revisionSync(utf8('b'));
      const last = db.lastTs();
      await db.close();
      const again = await openTracked(dir);
      expect(again.revisionSync(utf8('a'))).toEqual(revA);
      expect(again.revisionSync(utf8('b'))).toEqual(revB);
      expect(again.lastTs()).toBeGreaterThanOrEqual(last);
      await again.put(utf8('a'), utf8('3'));
      expect(again.revisionSync(utf8('a'))).toEqual({
        mod: again.lastTs(),
        create: revA!.create,
        version: 3,
      });
      expect(again.lastTs()).toBeGreaterThan(last);
    });

    it('keeps revisions through compaction', async () => {
      const dir = tempDir();
      const db = await openTracked(dir);
      for (let i = 0; i < 5; i++) await db.put(utf8('x'), utf8(`v${i}`));
      await db.put(utf8('y'), utf8('1'), { expiresAt: Date.now() + 3_600_000 });
      for (let i = 0; i < 3; i++)
        await db.put(utf8('y'), utf8(`w${i}`), { expiresAt: Date.now() + 3_600_000 });
      const revX = db.revisionSync(utf8('x'));
      const revY = db.revisionSync(utf8('y'));
      await db.compact();
      expect(db.revisionSync(utf8('x'))).toEqual(revX);
      expect(db.revisionSync(utf8('y'))).toEqual(revY);
      await db.close();
      const again = await openTracked(dir);
      expect(again.revisionSync(utf8('x'))).toEqual(revX);
      expect(again.revisionSync(utf8('y'))).toEqual(revY);
      expect(revY?.version).toBe(4);
    });

    it('starts a key over once it expired, and orders the expiry tombstones before later writes', async () => {
      const clock = new ManualClock();
      const db = await openTracked(tempDir(), { clock });
      await db.put(utf8('t'), utf8('1'), { expiresAt: clock.nowMs() + 10 });
      await db.put(utf8('t'), utf8('2'), { expiresAt: clock.nowMs() + 10 });
      expect(db.revisionSync(utf8('t'))?.version).toBe(2);
      clock.set(clock.nowMs() + 11);
      expect(db.revisionSync(utf8('t'))).toBeUndefined();
      await db.put(utf8('t'), utf8('3'));
      const fresh = db.revisionSync(utf8('t'))!;
      expect(fresh).toEqual({ mod: fresh.mod, create: fresh.mod, version: 1 });

      // The expiry cycle's tombstones take timestamps too: a later write is still above them.
      await db.put(utf8('u'), utf8('1'), { expiresAt: clock.nowMs() + 5 });
      clock.advance(EXPIRY_CYCLE_INTERVAL_MS * 3);
      await db.flush();
      const before = db.lastTs();
      await db.engine.write(before + 1, [
        { type: 'put', key: utf8('w'), value: utf8('1'), create: before + 1, version: 1 },
      ]);
      expect(db.revisionSync(utf8('w'))?.mod).toBe(before + 1);
    });

    it('matches a model of revisions over random puts, deletes, batches, reopens and compactions', async () => {
      const keys = ['a', 'b', 'c', 'd'];
      const key = fc.constantFrom(...keys);
      const op = fc.oneof(
        fc.record({ type: fc.constant('put' as const), key }),
        fc.record({ type: fc.constant('delete' as const), key }),
        fc.record({
          type: fc.constant('batch' as const),
          puts: fc.uniqueArray(key, { maxLength: 3 }),
          dels: fc.uniqueArray(key, { maxLength: 2 }),
        }),
        fc.constant({ type: 'reopen' as const }),
        fc.constant({ type: 'compact' as const }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(op, { maxLength: 30 }), async (ops) => {
          const dir = tempDir();
          let db = await openTracked(dir);
          const model = new Map<string, Revision>();
          let last = db.lastTs();
          for (const o of ops) {
            if (o.type === 'put') {
              await db.put(utf8(o.key), utf8('v'));
              const ts = db.lastTs();
              expect(ts).toBeGreaterThan(last);
              last = ts;
              const prior = model.get(o.key);
              model.set(
                o.key,
                prior === undefined
                  ? { mod: ts, create: ts, version: 1 }
                  : { mod: ts, create: prior.create, version: prior.version + 1 },
              );
            } else if (o.type === 'delete') {
              const existed = await db.delete(utf8(o.key));
              expect(existed).toBe(model.has(o.key));
              if (existed) {
                expect(db.lastTs()).toBeGreaterThan(last);
                last = db.lastTs();
              }
              model.delete(o.key);
            } else if (o.type === 'batch') {
              const dels = o.dels.filter((k) => !o.puts.includes(k));
              const batch = [
                ...dels.map((k) => ({ type: 'delete' as const, key: utf8(k) })),
                ...o.puts.map((k) => ({ type: 'put' as const, key: utf8(k), value: utf8('b') })),
              ];
              if (batch.length === 0) continue;
              await db.batch(batch);
              const ts = db.lastTs();
              expect(ts).toBeGreaterThan(last);
              last = ts;
              for (const k of dels) model.delete(k);
              for (const k of o.puts) {
                const prior = model.get(k);
                model.set(
                  k,
                  prior === undefined
                    ? { mod: ts, create: ts, version: 1 }
                    : { mod: ts, create: prior.create, version: prior.version + 1 },
                );
              }
            } else if (o.type === 'reopen') {
              await db.close();
              db = await openTracked(dir);
              expect(db.lastTs()).toBeGreaterThanOrEqual(last);
              last = db.lastTs();
            } else {
              await db.compact();
            }
            for (const k of keys) expect(db.revisionSync(utf8(k))).toEqual(model.get(k));
          }
          await db.close();
        }),
        { numRuns: REVISION_PROPERTY_RUNS },
      );
    });
  });
}
