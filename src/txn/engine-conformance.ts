// One vitest suite for every Engine implementation: each engine's test file calls
// describeEngineConformance with its open function, so that all engines keep exactly the
// semantics documented in engine.ts (Kysely/Hono style: one suite, many dialects).
//
// Tests compare bytes as hex strings: engines may hand back Buffers or plain Uint8Arrays, and the
// interface promises bytes, not a class.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nodeFileSystem } from '../io/node-file-system.js';
import { compareBytes } from '../stdx/bytes.js';
import type { Entry, ScanRange, Engine as StorageEngine } from '../storage/engine.js';
import type { EngineOptions } from '../storage/engine-options.js';
import {
  ClosedError,
  CorruptionError,
  IncompatibleError,
  LimitError,
  LockedError,
} from '../storage/errors.js';
import { BATCH_BYTES_MAX, BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX } from '../storage/limits.js';
import { loadOrCreateMeta } from '../storage/meta.js';
import { describeExpiryConformance } from './engine-conformance-expiry.js';
import { engineHarness } from './engine-conformance-harness.js';
import { describeRevisionConformance } from './engine-conformance-revision.js';
import { type PipelinedEngine as Engine, pipelined } from './pipelined-engine.js';
import type { BatchOp } from './write-pipeline.js';

export type OpenEngine = (dir: string, options?: EngineOptions) => Promise<StorageEngine>;

export interface ConformanceOptions {
  /**
   * keyBytesMax: the longest key the engine takes, when it is below KEY_BYTES_MAX (the lmdb
   * adapter's is, see LMDB_KEY_BYTES_MAX). Longer keys must fail with LimitError.
   */
  readonly keyBytesMax?: number;
  /**
   * variant: names a second run of the suites over a wrapped engine (e.g. one whose callers'
   * buffers are poisoned after each call); `name` stays the engine's own name.
   */
  readonly variant?: string;
}

/** PROPERTY_RUNS, PROPERTY_OPS_MAX: sized so the property test stays within a few seconds. */
const PROPERTY_RUNS = 60;
const PROPERTY_OPS_MAX = 60;
/** CONCURRENT_WRITERS, CONCURRENT_PUTS_PER_WRITER: the many-promises test. */
const CONCURRENT_WRITERS = 32;
const CONCURRENT_PUTS_PER_WRITER = 16;

const encoder = new TextEncoder();
const utf8 = (s: string): Uint8Array => encoder.encode(s);
const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);
const hex = (b: Uint8Array | undefined): string | undefined =>
  b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

async function collect(iter: AsyncIterableIterator<Entry>): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const [k, v] of iter) out.push([hex(k) as string, hex(v) as string]);
  return out;
}

/** modelScan is the reference for scan(): [start, end), ascending or descending, at most `limit`. */
function modelScan(model: ReadonlyMap<string, Uint8Array>, range: ScanRange): [string, string][] {
  const keys = [...model.keys()]
    .map((k) => Buffer.from(k, 'hex'))
    .filter((k) => range.start === undefined || compareBytes(k, range.start) >= 0)
    .filter((k) => range.end === undefined || compareBytes(k, range.end) < 0)
    .sort(compareBytes);
  if (range.reverse === true) keys.reverse();
  const limited = range.limit === undefined ? keys : keys.slice(0, range.limit);
  return limited.map((k) => [hex(k) as string, hex(model.get(hex(k) as string)) as string]);
}

export function describeEngineConformance(
  name: string,
  open: OpenEngine,
  conformance: ConformanceOptions = {},
): void {
  const keyBytesMax = conformance.keyBytesMax ?? KEY_BYTES_MAX;
  const title = conformance.variant === undefined ? name : `${name}, ${conformance.variant}`;

  describe(`Engine conformance: ${title}`, () => {
    const { tempDir, openTracked } = engineHarness(open, 'cairn-');

    async function fresh(options?: EngineOptions): Promise<Engine> {
      return openTracked(tempDir(), options);
    }

    it('reports its name', async () => {
      const db = await fresh();
      expect(db.name).toBe(name);
      expect(db.stats().engine).toBe(name);
    });

    it('gets, puts, overwrites and deletes', async () => {
      const db = await fresh();
      expect(await db.get(utf8('a'))).toBeUndefined();
      expect(await db.has(utf8('a'))).toBe(false);
      await db.put(utf8('a'), utf8('1'));
      expect(hex(await db.get(utf8('a')))).toBe(hex(utf8('1')));
      expect(await db.has(utf8('a'))).toBe(true);
      await db.put(utf8('a'), utf8('22'));
      expect(hex(await db.get(utf8('a')))).toBe(hex(utf8('22')));
      expect(await db.delete(utf8('a'))).toBe(true);
      expect(await db.delete(utf8('a'))).toBe(false);
      expect(await db.delete(utf8('never'))).toBe(false);
      expect(await db.get(utf8('a'))).toBeUndefined();
      expect(await db.has(utf8('a'))).toBe(false);
    });

    it('stores binary keys, the empty key and empty values, ordered by unsigned bytes', async () => {
      const db = await fresh();
      const keys = [
        bytes(),
        bytes(0x00),
        bytes(0x00, 0x00),
        bytes(0x00, 0xff),
        bytes(0x01),
        bytes(0x7f),
        bytes(0x80),
        bytes(0xff),
        bytes(0xff, 0x00),
        bytes(0xff, 0xff),
      ];
      // Write in a scrambled order so that ordering comes from the engine, not from insertion.
      for (const [i, key] of [...keys.entries()].reverse()) await db.put(key, bytes(i, 0x00, 0xff));
      await db.put(utf8('empty-value'), bytes());
      for (const [i, key] of keys.entries()) expect(hex(await db.get(key))).toBe(hex(bytes(i, 0x00, 0xff)));
      expect(hex(await db.get(utf8('empty-value')))).toBe('');
      expect(await db.has(bytes())).toBe(true);
      const scanned = (await collect(db.scan())).map(([k]) => k);
      const expected = [...keys, utf8('empty-value')].sort(compareBytes).map((k) => hex(k));
      expect(scanned).toEqual(expected);
      expect(await db.delete(bytes())).toBe(true);
      expect(await db.has(bytes())).toBe(false);
    });

    it('keeps its own copies of keys and values', async () => {
      const db = await fresh();
      const key = utf8('key');
      const value = utf8('value');
      const written = db.put(key, value);
      // A caller reusing its buffers right after the call must not change what is stored.
      key.fill(0x41);
      value.fill(0x42);
      await written;
      const got = await db.get(utf8('key'));
      expect(hex(got)).toBe(hex(utf8('value')));
      got?.fill(0x43);
      expect(hex(await db.get(utf8('key')))).toBe(hex(utf8('value')));
    });

    it('scans every combination of start, end, limit and reverse like the model', async () => {
      const db = await fresh();
      const model = new Map<string, Uint8Array>();
      for (let i = 0; i < 20; i += 2) {
        const key = utf8(`k${String(i).padStart(2, '0')}`);
        const value = utf8(`v${i}`);
        await db.put(key, value);
        model.set(hex(key) as string, value);
      }
      const bounds = [
        undefined,
        bytes(),
        utf8('a'),
        utf8('k00'),
        utf8('k05'),
        utf8('k10'),
        utf8('k18'),
        utf8('z'),
      ];
      for (const start of bounds) {
        for (const end of bounds) {
          for (const limit of [undefined, 0, 1, 3, 100]) {
            for (const reverse of [false, true]) {
              const range: ScanRange = { start, end, limit, reverse };
              expect(
                await collect(db.scan(range)),
                JSON.stringify({ start: hex(start), end: hex(end), limit, reverse }),
              ).toEqual(modelScan(model, range));
            }
          }
        }
      }
    });

    it('scans with bounds longer than any key, as the model orders them', async () => {
      // A bound is not a key: a listing resuming after the longest key, or a range over long
      // keys, passes bounds past the key limit (cask refused them as keys before).
      const db = await fresh();
      const model = new Map<string, Uint8Array>();
      const long = (fill: number, extra: number, last?: number) => {
        const b = new Uint8Array(keyBytesMax + extra).fill(fill);
        if (last !== undefined) b[b.length - 1] = last;
        return b;
      };
      for (const key of [utf8('a'), long(0x61, 0), long(0x61, -1, 0x62), long(0x62, 0), utf8('c')]) {
        await db.put(key, utf8('v'));
        model.set(hex(key) as string, utf8('v'));
      }
      const bounds = [
        undefined,
        long(0x61, 1),
        long(0x61, 1000),
        long(0x61, 0, 0x62),
        long(0x62, 1),
        long(0x62, -1),
      ];
      for (const start of bounds) {
        for (const end of bounds) {
          for (const reverse of [false, true]) {
            const range: ScanRange = { start, end, reverse };
            expect(
              (await collect(db.scan(range))).map(([k]) => k),
              JSON.stringify({ start: start?.length, end: end?.length, reverse }),
            ).toEqual(modelScan(model, range).map(([k]) => k));
          }
        }
      }
    });

    it('scans see the latest value of keys not yet yielded', async () => {
      const db = await fresh();
      for (const k of ['a', 'b', 'c']) await db.put(utf8(k), utf8('old'));
      const seen: [string, string][] = [];
      for await (const [k, v] of db.scan()) {
        seen.push([Buffer.from(k).toString(), Buffer.from(v).toString()]);
        if (seen.length === 1) await db.put(utf8('b'), utf8('new'));
      }
      expect(seen).toEqual([
        ['a', 'old'],
        ['b', 'new'],
        ['c', 'old'],
      ]);
    });

    it('applies a batch in order, puts and deletes of the same key included', async () => {
      const db = await fresh();
      await db.put(utf8('c'), utf8('old'));
      await db.batch([
        { type: 'put', key: utf8('a'), value: utf8('1') },
        { type: 'delete', key: utf8('a') },
        { type: 'put', key: utf8('b'), value: utf8('1') },
        { type: 'put', key: utf8('b'), value: utf8('2') },
        { type: 'delete', key: utf8('c') },
        { type: 'put', key: utf8('c'), value: utf8('3') },
        { type: 'put', key: utf8('d'), value: utf8('1') },
        { type: 'delete', key: utf8('d') },
        { type: 'delete', key: utf8('never') },
      ]);
      expect(await collect(db.scan())).toEqual([
        [hex(utf8('b')), hex(utf8('2'))],
        [hex(utf8('c')), hex(utf8('3'))],
      ]);
      await db.batch([]);
      expect(db.stats().keys).toBe(2);
    });

    it('makes a batch visible all at once', async () => {
      const db = await fresh();
      const keys = Array.from({ length: 200 }, (_, i) => utf8(`batch-${String(i).padStart(3, '0')}`));
      let resolved = false;
      const done = db.batch(keys.map((key) => ({ type: 'put', key, value: key }))).then(() => {
        resolved = true;
      });
      // Visibility only grows (nothing is deleted), so reading the keys in order during the batch
      // must never find a key present and a later one missing: that would be a torn batch.
      let polls = 0;
      while (!resolved || polls === 0) {
        let seenPresent = false;
        for (const key of keys) {
          const present = await db.has(key);
          if (seenPresent) expect(present).toBe(true);
          seenPresent ||= present;
        }
        polls++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      await done;
      for (const key of keys) expect(await db.has(key)).toBe(true);
    });

    it('rejects keys, values and batches over the limits and leaves the store unchanged', async () => {
      const db = await fresh();
      await db.put(utf8('keep'), utf8('v'));
      const longest = new Uint8Array(keyBytesMax).fill(0x61);
      await db.put(longest, utf8('longest'));
      expect(hex(await db.get(longest))).toBe(hex(utf8('longest')));

      const tooLongKey = new Uint8Array(keyBytesMax + 1).fill(0x62);
      await expect(db.put(tooLongKey, utf8('x'))).rejects.toBeInstanceOf(LimitError);
      await expect(db.put(new Uint8Array(KEY_BYTES_MAX + 1), utf8('x'))).rejects.toBeInstanceOf(LimitError);
      await expect(db.put(utf8('big'), new Uint8Array(VALUE_BYTES_MAX + 1))).rejects.toBeInstanceOf(
        LimitError,
      );

      const tooManyOps: BatchOp[] = Array.from({ length: BATCH_OPS_MAX + 1 }, (_, i) => ({
        type: 'put',
        key: utf8(`many-${i}`),
        value: bytes(),
      }));
      await expect(db.batch(tooManyOps)).rejects.toBeInstanceOf(LimitError);

      // One shared buffer: every value is under VALUE_BYTES_MAX, the sum is over BATCH_BYTES_MAX.
      const chunk = new Uint8Array(Math.floor(VALUE_BYTES_MAX * 0.9));
      const chunks = Math.floor(BATCH_BYTES_MAX / chunk.length) + 1;
      const tooManyBytes: BatchOp[] = Array.from({ length: chunks }, (_, i) => ({
        type: 'put',
        key: utf8(`heavy-${i}`),
        value: chunk,
      }));
      await expect(db.batch(tooManyBytes)).rejects.toBeInstanceOf(LimitError);

      // A bad operation anywhere in a batch keeps all of it out.
      await expect(
        db.batch([
          { type: 'put', key: utf8('first'), value: utf8('1') },
          { type: 'delete', key: utf8('keep') },
          { type: 'put', key: tooLongKey, value: utf8('1') },
        ]),
      ).rejects.toBeInstanceOf(LimitError);

      expect(db.stats().keys).toBe(2);
      expect(await db.has(utf8('first'))).toBe(false);
      expect(await db.has(utf8('keep'))).toBe(true);
      expect(await db.has(utf8('many-0'))).toBe(false);
      expect(await db.has(utf8('heavy-0'))).toBe(false);
    });

    it('fails every call after close with ClosedError', async () => {
      const db = await fresh();
      await db.put(utf8('a'), utf8('1'));
      await db.close();
      const k = utf8('a');
      await expect(db.get(k)).rejects.toBeInstanceOf(ClosedError);
      await expect(db.has(k)).rejects.toBeInstanceOf(ClosedError);
      await expect(db.put(k, k)).rejects.toBeInstanceOf(ClosedError);
      await expect(db.delete(k)).rejects.toBeInstanceOf(ClosedError);
      await expect(db.batch([{ type: 'delete', key: k }])).rejects.toBeInstanceOf(ClosedError);
      await expect(collect(db.scan())).rejects.toBeInstanceOf(ClosedError);
      await expect(db.flush()).rejects.toBeInstanceOf(ClosedError);
      await expect(db.compact()).rejects.toBeInstanceOf(ClosedError);
      expect(() => db.stats()).toThrow(ClosedError);
      await expect(db.close()).resolves.toBeUndefined();
    });

    it('fails a scan in progress when the store closes', async () => {
      const db = await fresh();
      for (const k of ['a', 'b', 'c']) await db.put(utf8(k), utf8('v'));
      const iter = db.scan();
      expect((await iter.next()).done).toBe(false);
      await db.close();
      await expect(iter.next()).rejects.toBeInstanceOf(ClosedError);
    });

    for (const durability of ['always', 'interval', 'never'] as const) {
      it(`keeps everything across close and reopen (${durability})`, async () => {
        const dir = tempDir();
        const options: EngineOptions = { durability, syncIntervalMs: 5 };
        const db = await openTracked(dir, options);
        const model = new Map<string, Uint8Array>();
        for (let i = 0; i < 100; i++) {
          const key = utf8(`key-${i}`);
          await db.put(key, utf8(`value-${i}`));
          model.set(hex(key) as string, utf8(`value-${i}`));
        }
        for (let i = 0; i < 100; i += 3) {
          await db.delete(utf8(`key-${i}`));
          model.delete(hex(utf8(`key-${i}`)) as string);
        }
        await db.batch([{ type: 'put', key: bytes(), value: utf8('empty') }]);
        model.set('', utf8('empty'));
        await db.flush();
        await db.close();
        const again = await openTracked(dir, options);
        expect(await collect(again.scan())).toEqual(modelScan(model, {}));
        expect(again.stats().keys).toBe(model.size);
      });
    }

    it('refuses a second open of a directory in use with LockedError', async () => {
      const dir = tempDir();
      await openTracked(dir);
      await expect(openTracked(dir)).rejects.toBeInstanceOf(LockedError);
    });

    it("refuses another engine's directory with IncompatibleError, and leaves it unlocked", async () => {
      const dir = tempDir();
      await loadOrCreateMeta(nodeFileSystem, dir, `not-${name}`, Date.now(), true);
      await expect(openTracked(dir)).rejects.toBeInstanceOf(IncompatibleError);
      await expect(openTracked(dir)).rejects.toBeInstanceOf(IncompatibleError);
    });

    it('refuses a directory holding store files but no metadata with CorruptionError', async () => {
      const dir = tempDir();
      const db = await openTracked(dir);
      await db.put(utf8('k'), utf8('v'));
      await db.close();
      for (const copy of ['META-1', 'META-2']) fs.rmSync(path.join(dir, copy));
      await expect(open(dir)).rejects.toBeInstanceOf(CorruptionError);
    });

    it('creates a store in a directory that holds only unrelated files', async () => {
      const dir = tempDir();
      fs.writeFileSync(path.join(dir, 'somebody-elses-file'), 'data');
      const db = await openTracked(dir);
      await db.put(utf8('k'), utf8('v'));
      await db.close();
      expect(fs.readFileSync(path.join(dir, 'somebody-elses-file'), 'utf8')).toBe('data');
    });

    it('lands every write from many concurrent writers', async () => {
      const db = await fresh();
      await Promise.all(
        Array.from({ length: CONCURRENT_WRITERS }, async (_, w) => {
          for (let i = 0; i < CONCURRENT_PUTS_PER_WRITER; i++) {
            await db.put(utf8(`w${w}-${i}`), utf8(`${w}:${i}`));
          }
        }),
      );
      expect(db.stats().keys).toBe(CONCURRENT_WRITERS * CONCURRENT_PUTS_PER_WRITER);
      for (let w = 0; w < CONCURRENT_WRITERS; w++) {
        expect(hex(await db.get(utf8(`w${w}-7`)))).toBe(hex(utf8(`${w}:7`)));
      }
    });

    it('counts queued writes when deleting', async () => {
      const db = await fresh();
      // Issued together, not awaited in between: each result reflects the writes before it.
      const results = await Promise.all([
        db.delete(utf8('k')),
        db.put(utf8('k'), utf8('1')).then(() => 'put'),
        db.delete(utf8('k')),
        db.delete(utf8('k')),
        db.batch([{ type: 'put', key: utf8('k'), value: utf8('2') }]).then(() => 'batch'),
        db.delete(utf8('k')),
      ]);
      expect(results).toEqual([false, 'put', true, false, 'batch', true]);
      expect(db.stats().keys).toBe(0);
    });

    it('counts keys in stats()', async () => {
      const db = await fresh();
      expect(db.stats().keys).toBe(0);
      await db.put(utf8('a'), utf8('1'));
      await db.put(utf8('b'), utf8('1'));
      await db.put(utf8('a'), utf8('2'));
      expect(db.stats().keys).toBe(2);
      await db.delete(utf8('a'));
      await db.delete(utf8('zzz'));
      expect(db.stats().keys).toBe(1);
      expect(db.stats().diskBytes).toBeGreaterThan(0);
    });

    it('matches a Map model under random puts, deletes, batches, scans and reopens', async () => {
      // Few distinct bytes and short keys, so that operations collide on the same keys.
      const keyArb = fc
        .uint8Array({ minLength: 0, maxLength: 3 })
        .map((k) => k.map((b) => [0x00, 0x01, 0x7f, 0x80, 0xff][b % 5] as number));
      const valueArb = fc.uint8Array({ minLength: 0, maxLength: 8 });
      const opArb = fc.oneof(
        fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb }),
        fc.record({ type: fc.constant('delete' as const), key: keyArb }),
      );
      const commandArb = fc.oneof(
        { weight: 4, arbitrary: opArb.map((op) => ({ kind: 'op' as const, op })) },
        {
          weight: 2,
          arbitrary: fc.array(opArb, { maxLength: 6 }).map((ops) => ({ kind: 'batch' as const, ops })),
        },
        {
          weight: 2,
          arbitrary: fc
            .array(opArb, { minLength: 1, maxLength: 6 })
            .map((ops) => ({ kind: 'concurrent' as const, ops })),
        },
        {
          weight: 2,
          arbitrary: fc
            .record({
              start: fc.option(keyArb, { nil: undefined }),
              end: fc.option(keyArb, { nil: undefined }),
              limit: fc.option(fc.nat(5), { nil: undefined }),
              reverse: fc.boolean(),
            })
            .map((range) => ({ kind: 'scan' as const, range })),
        },
        { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      );

      await fc.assert(
        fc.asyncProperty(fc.array(commandArb, { maxLength: PROPERTY_OPS_MAX }), async (commands) => {
          const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-'));
          // 'never' keeps the runs fast; close() still flushes, so reopen must find everything.
          const options: EngineOptions = { durability: 'never' };
          let db = pipelined(await open(dir, options));
          const model = new Map<string, Uint8Array>();
          const apply = (op: BatchOp): boolean => {
            const k = hex(op.key) as string;
            const existed = model.has(k);
            if (op.type === 'put') model.set(k, op.value);
            else model.delete(k);
            return existed;
          };
          try {
            for (const command of commands) {
              switch (command.kind) {
                case 'op': {
                  const existed = apply(command.op);
                  if (command.op.type === 'put') await db.put(command.op.key, command.op.value);
                  else expect(await db.delete(command.op.key)).toBe(existed);
                  break;
                }
                case 'batch':
                  await db.batch(command.ops);
                  for (const op of command.ops) apply(op);
                  break;
                case 'concurrent': {
                  const expected: (boolean | undefined)[] = [];
                  const pending: Promise<boolean | undefined>[] = [];
                  for (const op of command.ops) {
                    const existed = apply(op);
                    expected.push(op.type === 'put' ? undefined : existed);
                    pending.push(
                      op.type === 'put' ? db.put(op.key, op.value).then(() => undefined) : db.delete(op.key),
                    );
                  }
                  expect(await Promise.all(pending)).toEqual(expected);
                  break;
                }
                case 'scan':
                  expect(await collect(db.scan(command.range))).toEqual(modelScan(model, command.range));
                  break;
                case 'reopen':
                  await db.close();
                  db = pipelined(await open(dir, options));
                  break;
              }
            }
            expect(await collect(db.scan())).toEqual(modelScan(model, {}));
            expect(db.stats().keys).toBe(model.size);
            for (const [k, v] of model) expect(hex(await db.get(Buffer.from(k, 'hex')))).toBe(hex(v));
          } finally {
            await db.close().catch(() => {});
            fs.rmSync(dir, { recursive: true, force: true });
          }
        }),
        { numRuns: PROPERTY_RUNS },
      );
    });
  });

  describeExpiryConformance(title, open);
  describeRevisionConformance(title, open);
}
