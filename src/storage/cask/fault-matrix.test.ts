// The fault-injection matrix of docs/hardening.md: every background and recovery step of the
// cask engine (group commit, rotation, preallocation, compaction output, hint file, metadata
// replacement, recovery's quarantine copy, the expiry cycle) with ENOSPC, EIO and a crash (that
// operation and every later one fail, then the power goes) injected at it through
// io/FaultyFileSystem. For each, the rules hold:
// 1. the process stays up (no unhandled rejection);
// 2. the error reaches the caller or the event stream as a typed Cairn error;
// 3. nothing acknowledged is lost;
// 4. the next open succeeds without help, finding nothing worse than what a crash leaves.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { trackUnhandledRejections } from '../../../test/support/unhandled.js';
import { type FaultOp, FaultyFileSystem } from '../../io/faulty-file-system.js';
import { ManualClock } from '../../io/manual-clock.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { CairnError } from '../errors.js';
import { EXPIRY_CYCLE_INTERVAL_MS } from '../expiry-index.js';
import type { CaskEvent, CaskOptions } from './cask-options.js';

const b = (s: string) => Buffer.from(s);
/** TOLERATED: what recovery may find after a crash (never damage to acknowledged data). */
const TOLERATED = new Set(['torn-tail', 'torn-batch', 'leftover-temp', 'retired-file', 'orphan-hint']);
const FILE_BYTES = 4096;
const settle = () => new Promise((r) => setTimeout(r, 30));
/** WAIT_MS_MAX: how long background work may take on a loaded machine before a test fails. */
const WAIT_MS_MAX = 10_000;
/** settleUntil waits for background work: until `done` holds (or WAIT_MS_MAX passes), then a settle. */
async function settleUntil(done: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS_MAX;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await settle();
}

type Fault = 'ENOSPC' | 'EIO' | 'crash';

/** Ctx: one run of one step: the store, its model of acknowledged writes, what it saw. */
interface Ctx {
  readonly dir: string;
  readonly faulty: FaultyFileSystem;
  readonly clock: ManualClock;
  readonly events: CaskEvent[];
  /** acked: every acknowledged write, key to value (undefined: deleted). */
  readonly acked: Map<string, string | undefined>;
  db: PipelinedCask;
  options: CaskOptions;
}

/** Surface: where a failure of the step shows: a rejected call, an event, or nowhere (absorbed). */
type Surface = 'caller' | 'event' | 'absorbed';

interface Step {
  readonly name: string;
  readonly op: FaultOp;
  readonly path: RegExp;
  readonly skip?: number;
  readonly surface: Surface;
  readonly options?: CaskOptions;
  /** prepare: brings the store to just before the step; the fault is armed after it. */
  readonly prepare?: (ctx: Ctx) => Promise<void>;
  /** run: performs the step; a 'caller' step returns the call that must fail. */
  readonly run: (ctx: Ctx) => Promise<unknown>;
}

async function put(ctx: Ctx, key: string, value: string): Promise<void> {
  await ctx.db.put(b(key), b(value));
  ctx.acked.set(key, value);
}

/** garbage: overwrites that leave dead bytes over several sealed files. */
async function garbage(ctx: Ctx): Promise<void> {
  for (let i = 0; i < 120; i++) await put(ctx, `g${i % 15}`, `v${i}`.padEnd(150, '.'));
}

const STEPS: Step[] = [
  {
    name: 'group commit: append',
    op: 'write',
    path: /\.data$/,
    surface: 'caller',
    run: (ctx) => ctx.db.put(b('x'), b('1')),
  },
  {
    name: 'group commit: fdatasync',
    op: 'datasync',
    path: /\.data$/,
    surface: 'caller',
    run: (ctx) => ctx.db.put(b('x'), b('1')),
  },
  {
    name: 'rotation: the next data file',
    op: 'open',
    path: /\.data\.tmp$/,
    surface: 'caller',
    prepare: async (ctx) => {
      while (ctx.db.engine.active.size < FILE_BYTES - 1500)
        await put(ctx, `r${ctx.acked.size}`, 'x'.repeat(100));
    },
    run: (ctx) => ctx.db.put(b('big'), b('y'.repeat(2000))),
  },
  {
    name: 'preallocation',
    op: 'write',
    path: /\.data$/,
    skip: 1,
    surface: 'absorbed',
    options: { dataFileBytes: 64 * 1024 * 1024 },
    prepare: async (ctx) => {
      // Past the first 2 MiB preallocated at the start, so the next append extends the file.
      while (ctx.db.engine.active.size + 70_000 < ctx.db.engine.active.allocated)
        await put(ctx, `p${ctx.acked.size}`, 'z'.repeat(60_000));
    },
    run: (ctx) => ctx.db.put(b('p-last'), b('z'.repeat(90_000))),
  },
  {
    name: 'compaction: output',
    op: 'write',
    path: /\.compacting$/,
    surface: 'caller',
    prepare: garbage,
    run: (ctx) => ctx.db.compact(),
  },
  {
    name: 'compaction: hint file',
    op: 'write',
    path: /\.hint\.tmp$/,
    surface: 'caller',
    prepare: garbage,
    run: (ctx) => ctx.db.compact(),
  },
  {
    name: 'compaction: metadata commit',
    op: 'write',
    path: /META-[12]\.tmp$/,
    surface: 'caller',
    prepare: garbage,
    run: (ctx) => ctx.db.compact(),
  },
  {
    name: 'background compaction',
    op: 'write',
    path: /\.compacting$/,
    surface: 'event',
    options: { autoCompact: true, compactionMinDeadBytes: 1, compactionDeadRatio: 0.2 },
    run: async (ctx) => {
      await garbage(ctx);
      await settleUntil(() => ctx.faulty.fired > 0);
    },
  },
  {
    name: 'metadata at close',
    op: 'write',
    path: /META-[12]\.tmp$/,
    surface: 'event',
    prepare: (ctx) => put(ctx, 'c', '1'),
    run: async (ctx) => {
      // close resolves: the data is durable; only the note of how far it is was not written.
      await ctx.db.close();
    },
  },
  {
    name: 'expiry cycle',
    op: 'write',
    path: /\.data$/,
    surface: 'event',
    prepare: async (ctx) => {
      await ctx.db.put(b('ttl'), b('1'), { expiresAt: ctx.clock.nowMs() + 10 });
      ctx.acked.set('ttl', undefined); // it will have expired: reads as absent either way
      ctx.clock.advance(50);
    },
    run: async (ctx) => {
      ctx.clock.advance(EXPIRY_CYCLE_INTERVAL_MS);
      await settleUntil(() => ctx.faulty.fired > 0);
    },
  },
  {
    // The open stops, having changed nothing, rather than cut bytes it could not save.
    name: "recovery's copy of damaged bytes",
    op: 'write',
    path: /corrupt/,
    surface: 'caller',
    prepare: async (ctx) => {
      // A crashed writer's torn tail, for the next open to save and cut.
      await put(ctx, 't', '1');
      const end = ctx.db.engine.active.size;
      const file = ctx.db.engine.active.file.path;
      ctx.faulty.dieAfter = ctx.faulty.mutations;
      await ctx.db.close().catch(() => {});
      ctx.faulty.clearFaults();
      fs.truncateSync(file, end);
      fs.appendFileSync(file, 'torn write');
    },
    run: async (ctx) => {
      ctx.db = await openCaskPipelined(ctx.dir, ctx.options);
    },
  },
];

/** unhandled: rejections nobody handled in the current test (each would end a server). */
const unhandled = trackUnhandledRejections();

async function check(
  dir: string,
  acked: Map<string, string | undefined>,
  nowMs: number,
  label: string,
): Promise<void> {
  const db = await openCaskPipelined(dir, {
    dataFileBytes: FILE_BYTES,
    autoCompact: false,
    clock: new ManualClock(nowMs),
  });
  try {
    const bad = db.engine.recovery.problems.filter((p) => !TOLERATED.has(p.kind));
    expect(bad, `${label}: recovery`).toEqual([]);
    for (const [key, value] of acked) {
      const got = await db.get(b(key));
      expect(got === undefined ? undefined : Buffer.from(got).toString(), `${label}: ${key}`).toBe(value);
    }
  } finally {
    await db.close();
  }
}

describe('fault matrix: every step, ENOSPC, EIO and a crash', () => {
  for (const step of STEPS) {
    for (const fault of ['ENOSPC', 'EIO', 'crash'] as const satisfies readonly Fault[]) {
      it(`${step.name}: ${fault}`, async () => {
        const dir = tmpDir('matrix');
        const faulty = new FaultyFileSystem(nodeFileSystem);
        const clock = new ManualClock();
        const events: CaskEvent[] = [];
        const options: CaskOptions = {
          fs: faulty,
          clock,
          dataFileBytes: FILE_BYTES,
          autoCompact: false,
          onEvent: (e) => events.push(e),
          ...step.options,
        };
        const ctx: Ctx = {
          dir,
          faulty,
          clock,
          events,
          acked: new Map(),
          db: await openCaskPipelined(dir, options),
          options,
        };
        for (let i = 0; i < 5; i++) await put(ctx, `before${i}`, `v${i}`);
        await step.prepare?.(ctx);
        faulty.inject({
          op: step.op,
          code: fault === 'crash' ? 'EIO' : fault,
          path: step.path,
          skip: step.skip,
          times: step.surface === 'event' && fault !== 'crash' ? 1_000_000 : 1,
          crash: fault === 'crash',
        });
        const outcome = await step.run(ctx).then(
          () => undefined,
          (err: unknown) => err ?? new Error('rejected without a reason'),
        );
        const label = `${step.name} / ${fault}`;
        expect(faulty.fired, `${label}: the fault was injected`).toBeGreaterThan(0);
        // Rule 2: typed, where it shows.
        if (outcome !== undefined) expect(outcome, label).toBeInstanceOf(CairnError);
        if (fault !== 'crash') {
          if (step.surface === 'caller')
            expect(outcome, `${label}: the call must fail`).toBeInstanceOf(CairnError);
          if (step.surface === 'absorbed')
            expect(outcome, `${label}: the step is best effort`).toBeUndefined();
          if (step.surface === 'event') {
            expect(outcome, label).toBeUndefined();
            expect(
              events.some((e) => e.type === 'compaction-failed' || e.type === 'write-failed'),
              `${label}: an event`,
            ).toBe(true);
          }
          // The store goes on once the fault is gone (unless the step closed it, or was an open).
          faulty.clearFaults();
          if (step.name === "recovery's copy of damaged bytes")
            ctx.db = await openCaskPipelined(dir, ctx.options);
          if (!(step.name === 'metadata at close')) {
            await put(ctx, 'after', 'fault');
            if (step.name === 'expiry cycle') {
              ctx.clock.advance(EXPIRY_CYCLE_INTERVAL_MS);
              await settleUntil(() => ctx.db.stats().expiredKeys > 0);
              expect(ctx.db.stats().expiredKeys, `${label}: the cycle retried`).toBeGreaterThan(0);
            }
            await ctx.db.close();
          }
        } else {
          // The machine died at the step: whatever was not fsynced is gone.
          await ctx.db.close().catch(() => {});
          await faulty.powerLoss();
        }
        // Rule 1: still here, and nothing rejected into the void.
        expect(unhandled(), label).toEqual([]);
        // Rules 3 and 4.
        await check(dir, ctx.acked, ctx.clock.nowMs(), label);
        expect(
          fs.readdirSync(dir).filter((n) => n.endsWith('.compacting')),
          label,
        ).toEqual([]);
        expect(path.isAbsolute(dir)).toBe(true);
      });
    }
  }
});
