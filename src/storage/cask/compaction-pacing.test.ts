// A compaction shares the event loop with requests in steps (stdx/pacer.ts): on a loop kept busy
// by reads only, each step takes a share of the loop (many short steps); while writes are
// published, or on an idle loop, each step takes the whole compactionStepMs (few long steps).
// The step counts come from the compaction-done event; the busy loop is a foreground that spins
// BUSY_TURN_MS per turn, reading (and in the write case also writing) the store.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import type { CaskEngine } from './cask-engine.js';
import { openCask } from './cask-engine.js';

/** KEYS: records the compaction copies (each written twice, so half the bytes are dead). */
const KEYS = 20_000;
/** STEP_MS: a large step budget, so that pacing makes an unmistakable difference. */
const STEP_MS = 20;
/** BUSY_TURN_MS: how long the foreground holds each turn of the loop. */
const BUSY_TURN_MS = 2;

/** fill writes every key twice into sealed files, and returns the store and its last ts. */
async function fill(dir: string): Promise<{ db: CaskEngine; ts: number }> {
  let steps = 0;
  const db = await openCask(dir, {
    autoCompact: false,
    compactionStepMs: STEP_MS,
    onEvent: (e) => {
      if (e.type === 'compaction-done') steps = Number((e.detail as { steps: number }).steps);
    },
  });
  (db as unknown as { lastSteps: () => number }).lastSteps = () => steps;
  let ts = db.lastTs();
  for (let round = 0; round < 2; round++) {
    const writes: Promise<void>[] = [];
    for (let i = 0; i < KEYS; i++) {
      ts++;
      const key = Buffer.from(`key${String(i).padStart(8, '0')}`);
      writes.push(
        db.write(ts, [{ type: 'put', key, value: Buffer.alloc(100, round), create: ts, version: 1 }]),
      );
    }
    await Promise.all(writes);
  }
  await db.rotate();
  return { db, ts };
}

/** compactWith compacts `db` while `foreground` (if any) holds every turn; returns its steps. */
async function compactWith(db: CaskEngine, foreground?: () => void): Promise<number> {
  let running = foreground !== undefined;
  const turn = (): void => {
    if (!running) return;
    const until = performance.now() + BUSY_TURN_MS;
    while (performance.now() < until) foreground?.();
    setImmediate(turn);
  };
  setImmediate(turn);
  try {
    await db.compact();
  } finally {
    running = false;
  }
  return (db as unknown as { lastSteps: () => number }).lastSteps();
}

describe('compaction pacing', () => {
  it('takes short steps beside reads, long ones when idle or while writes are published', async () => {
    const key = (i: number): Buffer => Buffer.from(`key${String(i % KEYS).padStart(8, '0')}`);
    let n = 0;

    const idle = await fill(tmpDir('pacing-idle'));
    const idleSteps = await compactWith(idle.db);
    await idle.db.close();

    const reads = await fill(tmpDir('pacing-reads'));
    const readSteps = await compactWith(reads.db, () => {
      expect(reads.db.getSync(key(n++))).toBeDefined();
    });
    await reads.db.close();

    const writes = await fill(tmpDir('pacing-writes'));
    let ts = writes.ts;
    let last = 0;
    const writeSteps = await compactWith(writes.db, () => {
      expect(writes.db.getSync(key(n++))).toBeDefined();
      // One write per turn: the store publishes between every two steps.
      const now = performance.now();
      if (now - last < BUSY_TURN_MS / 2) return;
      last = now;
      ts++;
      void writes.db.write(ts, [
        { type: 'put', key: Buffer.from('other'), value: Buffer.from('v'), create: ts, version: 1 },
      ]);
    });
    await writes.db.close();

    // At STEP_MS a step, a handful of steps (measured: idle 4-5, with writes 2); paced beside
    // 2 ms turns, about 0.5 ms a step: dozens (48-67). The idle loop's margin is the smaller
    // one: on a loaded machine a turn may be descheduled past IDLE_GAP_MS and count as busy.
    expect(readSteps).toBeGreaterThan(2 * idleSteps);
    expect(readSteps).toBeGreaterThan(4 * writeSteps);
  }, 60_000);
});
