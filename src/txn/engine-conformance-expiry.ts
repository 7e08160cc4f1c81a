import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../io/manual-clock.js';
import type { Entry, Engine as StorageEngine } from '../storage/engine.js';
import type { EngineOptions } from '../storage/engine-options.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { EXPIRY_CYCLE_INTERVAL_MS } from '../storage/expiry-index.js';
import { engineHarness } from './engine-conformance-harness.js';
import type { PipelinedEngine as Engine } from './pipelined-engine.js';
import type { BatchOp } from './write-pipeline.js';

export type OpenEngineForExpiry = (dir: string, options?: EngineOptions) => Promise<StorageEngine>;

/** EXPIRY_PROPERTY_RUNS: sized so the property test stays within a few seconds per engine. */
const EXPIRY_PROPERTY_RUNS = 25;

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

async function keysOf(iter: AsyncIterableIterator<Entry>): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of iter) out.push(str(k) as string);
  return out;
}

export function describeExpiryConformance(name: string, open: OpenEngineForExpiry): void {
  describe(`Engine conformance, expiry: ${name}`, () => {
    const harness = engineHarness(open, 'cairn-ttl-');
    const tempDir = harness.tempDir;
    const openTracked = (dir: string, clock: ManualClock): Promise<Engine> =>
      harness.openTracked(dir, { clock });

    it('reads an expired key as absent everywhere, and alive up to its expiresAt inclusive', async () => {
      const clock = new ManualClock();
      const db = await openTracked(tempDir(), clock);
      const t0 = clock.nowMs();
      await db.put(utf8('a'), utf8('1'), { expiresAt: t0 + 50 });
      await db.put(utf8('b'), utf8('2'));
      await db.put(utf8('c'), utf8('3'), { expiresAt: t0 + 10_000 });
      expect(str(await db.get(utf8('a')))).toBe('1');
      expect(await db.expiry(utf8('a'))).toBe(t0 + 50);
      expect(await db.expiry(utf8('b'))).toBeNull();
      expect(await db.expiry(utf8('zz'))).toBeUndefined();
      const stored = await db.getStored(utf8('c'));
      expect(str(stored?.value)).toBe('3');
      expect(stored?.expiresAt).toBe(t0 + 10_000);
      expect((await db.getStored(utf8('b')))?.expiresAt).toBeUndefined();
      expect(db.stats().keys).toBe(3);
      expect(db.stats().expires).toBe(2);

      clock.set(t0 + 50); // Redis: a key expires once now > expiresAt
      expect(await db.has(utf8('a'))).toBe(true);

      clock.set(t0 + 51); // set, not advance: no timer fires, so this is lazy expiry alone
      expect(await db.get(utf8('a'))).toBeUndefined();
      expect(await db.has(utf8('a'))).toBe(false);
      expect(await db.getStored(utf8('a'))).toBeUndefined();
      expect(await db.expiry(utf8('a'))).toBeUndefined();
      expect(await keysOf(db.scan())).toEqual(['b', 'c']);
      expect(await keysOf(db.scan({ reverse: true }))).toEqual(['c', 'b']);
      expect(await keysOf(db.scan({ limit: 1 }))).toEqual(['b']);
      expect(db.stats().keys).toBe(2);
      expect(db.stats().expires).toBe(1);
      expect(await db.delete(utf8('a'))).toBe(false);
    });

    it('clears the expiry on an overwrite without one, and replaces it on an overwrite with one', async () => {
      const clock = new ManualClock();
      const db = await openTracked(tempDir(), clock);
      const t0 = clock.nowMs();
      await db.put(utf8('k'), utf8('1'), { expiresAt: t0 + 10 });
      await db.put(utf8('k'), utf8('2'));
      expect(await db.expiry(utf8('k'))).toBeNull();
      await db.put(utf8('j'), utf8('1'), { expiresAt: t0 + 10 });
      await db.put(utf8('j'), utf8('2'), { expiresAt: t0 + 1000 });
      clock.advance(500);
      expect(str(await db.get(utf8('k')))).toBe('2');
      expect(str(await db.get(utf8('j')))).toBe('2');
      expect(await db.expiry(utf8('j'))).toBe(t0 + 1000);
      // A put that lands after a key expired brings it back with the new value.
      await db.put(utf8('x'), utf8('old'), { expiresAt: t0 + 600 });
      clock.set(t0 + 700);
      expect(await db.has(utf8('x'))).toBe(false);
      await db.put(utf8('x'), utf8('new'));
      expect(str(await db.get(utf8('x')))).toBe('new');
      expect(db.stats().keys).toBe(3);
    });

    it('applies expiry in batches and deletes with expiry in the same batch', async () => {
      const clock = new ManualClock();
      const db = await openTracked(tempDir(), clock);
      const t0 = clock.nowMs();
      await db.put(utf8('gone'), utf8('0'), { expiresAt: t0 + 5 });
      await db.batch([
        { type: 'put', key: utf8('a'), value: utf8('1'), expiresAt: t0 + 10 },
        { type: 'put', key: utf8('b'), value: utf8('2') },
        { type: 'delete', key: utf8('gone') },
        { type: 'put', key: utf8('c'), value: utf8('3'), expiresAt: t0 + 20 },
      ]);
      expect(await db.expiry(utf8('a'))).toBe(t0 + 10);
      expect(await db.expiry(utf8('c'))).toBe(t0 + 20);
      expect(await db.expiry(utf8('gone'))).toBeUndefined();
      clock.set(t0 + 15);
      expect(await keysOf(db.scan())).toEqual(['b', 'c']);
      clock.set(t0 + 25);
      expect(await keysOf(db.scan())).toEqual(['b']);
      expect(db.stats().keys).toBe(1);
    });

    it('applies writes with and without expiry in call order when issued together', async () => {
      const clock = new ManualClock();
      const db = await openTracked(tempDir(), clock);
      const far = clock.nowMs() + 60_000;
      const writes = [
        db.put(utf8('k'), utf8('1'), { expiresAt: far }),
        db.delete(utf8('k')),
        db.put(utf8('j'), utf8('2'), { expiresAt: far }),
        db.put(utf8('j'), utf8('3')),
        db.batch([{ type: 'put', key: utf8('m'), value: utf8('4'), expiresAt: far }]),
        db.delete(utf8('m')),
        db.put(utf8('n'), utf8('5')),
        db.put(utf8('n'), utf8('6'), { expiresAt: far }),
      ];
      const results = await Promise.all(writes);
      expect(results[1]).toBe(true);
      expect(results[5]).toBe(true);
      expect(await db.has(utf8('k'))).toBe(false);
      expect(str(await db.get(utf8('j')))).toBe('3');
      expect(await db.expiry(utf8('j'))).toBeNull();
      expect(await db.has(utf8('m'))).toBe(false);
      expect(await db.expiry(utf8('n'))).toBe(far);
      expect(db.stats().keys).toBe(2);
      expect(db.stats().expires).toBe(1);
    });

    it('scans past long runs of expired keys, forward and reverse', async () => {
      const clock = new ManualClock();
      const t0 = clock.nowMs();
      const db = await openTracked(tempDir(), clock);
      const n = 6000;
      await db.batch(
        Array.from({ length: n }, (_, i) => ({
          type: 'put' as const,
          key: utf8(`k${String(i).padStart(5, '0')}`),
          value: utf8('v'),
          expiresAt: i % 2000 === 1999 ? undefined : t0 + 1,
        })),
      );
      clock.set(t0 + 2);
      const alive = ['k01999', 'k03999', 'k05999'];
      expect(await keysOf(db.scan())).toEqual(alive);
      expect(await keysOf(db.scan({ reverse: true }))).toEqual([...alive].reverse());
      expect(await keysOf(db.scan({ start: utf8('k02000'), limit: 1 }))).toEqual(['k03999']);
      expect(db.stats().keys).toBe(3);
    });

    it('rejects an expiresAt that is not a non-negative safe integer', async () => {
      const db = await openTracked(tempDir(), new ManualClock());
      for (const bad of [-1, 1.5, Number.NaN, 2 ** 53]) {
        await expect(db.put(utf8('k'), utf8('v'), { expiresAt: bad })).rejects.toBeInstanceOf(
          InvalidArgumentError,
        );
        await expect(
          db.batch([{ type: 'put', key: utf8('k'), value: utf8('v'), expiresAt: bad }]),
        ).rejects.toBeInstanceOf(InvalidArgumentError);
      }
      expect(await db.has(utf8('k'))).toBe(false);
    });

    it('keeps expiry times across close and reopen', async () => {
      const dir = tempDir();
      const clock = new ManualClock();
      const t0 = clock.nowMs();
      const db = await openTracked(dir, clock);
      await db.put(utf8('a'), utf8('1'), { expiresAt: t0 + 100 });
      await db.batch([{ type: 'put', key: utf8('b'), value: utf8('2'), expiresAt: t0 + 200 }]);
      await db.put(utf8('c'), utf8('3'), { expiresAt: t0 + 300 });
      await db.put(utf8('c'), utf8('3'));
      await db.close();
      const again = await openTracked(dir, clock);
      expect(await again.expiry(utf8('a'))).toBe(t0 + 100);
      expect(await again.expiry(utf8('b'))).toBe(t0 + 200);
      expect(await again.expiry(utf8('c'))).toBeNull();
      expect(again.stats().expires).toBe(2);
      clock.set(t0 + 150);
      expect(await keysOf(again.scan())).toEqual(['b', 'c']);
    });

    it('deletes expired keys with tombstones in the active cycle, so they stay gone', async () => {
      const dir = tempDir();
      const clock = new ManualClock();
      const t0 = clock.nowMs();
      const db = await openTracked(dir, clock);
      await db.put(utf8('short'), utf8('1'), { expiresAt: t0 + 10 });
      await db.put(utf8('long'), utf8('2'), { expiresAt: t0 + 60_000 });
      await db.put(utf8('plain'), utf8('3'));
      clock.advance(EXPIRY_CYCLE_INTERVAL_MS); // the cycle runs once, 'short' is due
      await db.close(); // waits for the cycle's write
      // Back before any expiry: only a tombstone can keep 'short' from reading as alive.
      clock.set(t0);
      const again = await openTracked(dir, clock);
      expect(await keysOf(again.scan())).toEqual(['long', 'plain']);
      expect(await again.expiry(utf8('long'))).toBe(t0 + 60_000);
      expect(again.stats().keys).toBe(2);
    });

    it('never lets the cycle delete a value written while it runs', async () => {
      const dir = tempDir();
      const clock = new ManualClock();
      const t0 = clock.nowMs();
      const db = await openTracked(dir, clock);
      await db.put(utf8('k'), utf8('old'), { expiresAt: t0 + 10 });
      await db.put(utf8('j'), utf8('old'), { expiresAt: t0 + 10 });
      const write = db.put(utf8('k'), utf8('new')); // queued, not committed yet
      clock.advance(EXPIRY_CYCLE_INTERVAL_MS); // the cycle runs with the write in flight
      const after = db.put(utf8('j'), utf8('new'), { expiresAt: t0 + 60_000 }); // queued after the cycle
      await Promise.all([write, after]);
      expect(str(await db.get(utf8('k')))).toBe('new');
      expect(str(await db.get(utf8('j')))).toBe('new');
      await db.close();
      clock.set(t0);
      const again = await openTracked(dir, clock);
      expect(str(await again.get(utf8('k')))).toBe('new');
      expect(await again.expiry(utf8('k'))).toBeNull();
      expect(await again.expiry(utf8('j'))).toBe(t0 + 60_000);
    });

    it('leaves an expired key alone until the cycle runs (lazy expiry writes nothing)', async () => {
      const dir = tempDir();
      const clock = new ManualClock();
      const t0 = clock.nowMs();
      const db = await openTracked(dir, clock);
      await db.put(utf8('short'), utf8('1'), { expiresAt: t0 + 10 });
      clock.set(t0 + 20);
      expect(await db.get(utf8('short'))).toBeUndefined();
      await db.close();
      clock.set(t0);
      const again = await openTracked(dir, clock);
      expect(str(await again.get(utf8('short')))).toBe('1');
    });

    it('matches a model with expiry under random writes, batches, clock moves, cycles, compactions and reopens', async () => {
      const keyArb = fc.constantFrom('a', 'b', 'c', 'd');
      const ttlArb = fc.option(fc.integer({ min: 0, max: 300 }), { nil: undefined });
      const opArb = fc.oneof(
        fc.record({
          t: fc.constant('put' as const),
          key: keyArb,
          value: fc.string({ maxLength: 3 }),
          ttl: ttlArb,
        }),
        fc.record({ t: fc.constant('delete' as const), key: keyArb }),
        fc.record({ t: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 250 }) }),
        fc.record({ t: fc.constant('reopen' as const) }),
        fc.record({ t: fc.constant('compact' as const) }),
        fc.record({
          t: fc.constant('batch' as const),
          puts: fc.array(fc.record({ key: keyArb, value: fc.string({ maxLength: 3 }), ttl: ttlArb }), {
            maxLength: 3,
          }),
          del: fc.option(keyArb, { nil: undefined }),
        }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { maxLength: 30 }), async (ops) => {
          const dir = tempDir();
          const clock = new ManualClock();
          let db = await openTracked(dir, clock);
          const model = new Map<string, { value: string; expiresAt: number | undefined }>();
          const alive = (k: string) => {
            const e = model.get(k);
            return e !== undefined && (e.expiresAt === undefined || clock.nowMs() <= e.expiresAt);
          };
          for (const op of ops) {
            if (op.t === 'put') {
              const expiresAt = op.ttl === undefined ? undefined : clock.nowMs() + op.ttl;
              await db.put(utf8(op.key), utf8(op.value), { expiresAt });
              model.set(op.key, { value: op.value, expiresAt });
            } else if (op.t === 'delete') {
              const existed = alive(op.key);
              expect(await db.delete(utf8(op.key))).toBe(existed);
              model.delete(op.key);
            } else if (op.t === 'tick') {
              clock.advance(op.ms);
            } else if (op.t === 'compact') {
              await db.compact();
            } else if (op.t === 'batch') {
              const nowMs = clock.nowMs();
              const ops: BatchOp[] = op.puts.map((p) => ({
                type: 'put',
                key: utf8(p.key),
                value: utf8(p.value),
                expiresAt: p.ttl === undefined ? undefined : nowMs + p.ttl,
              }));
              if (op.del !== undefined) ops.push({ type: 'delete', key: utf8(op.del) });
              await db.batch(ops);
              for (const o of ops) {
                const k = str(o.key) as string;
                if (o.type === 'put') model.set(k, { value: str(o.value) as string, expiresAt: o.expiresAt });
                else model.delete(k);
              }
            } else {
              await db.close();
              db = await openTracked(dir, clock);
            }
            const expected = [...model.keys()].filter(alive).sort();
            expect(await keysOf(db.scan())).toEqual(expected);
            expect(db.stats().keys).toBe(expected.length);
            for (const k of ['a', 'b', 'c', 'd']) {
              const e = model.get(k);
              expect(str(await db.get(utf8(k)))).toBe(alive(k) ? e?.value : undefined);
              expect(await db.expiry(utf8(k))).toBe(alive(k) ? (e?.expiresAt ?? null) : undefined);
            }
          }
          await db.close();
        }),
        { numRuns: EXPIRY_PROPERTY_RUNS },
      );
    });
  });
}
