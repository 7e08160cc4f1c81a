// The pacer sizes each step of background work from the turn of the event loop before it
// (pacer.ts): the whole budget when nothing waited or the job is behind, a share of a busy loop
// otherwise, and at least the time to keep up with what was written. Its decisions are checked
// with a clock of the test's own.
import { describe, expect, it } from 'vitest';
import { nodeEventLoop } from './event-loop.js';
import { IDLE_GAP_MS, MIN_STEP_MS, PACED_SHARE, Pacer, type PaceSource } from './pacer.js';

interface Harness {
  readonly p: Pacer;
  /** write: the store publishes `bytes` more. */
  write(bytes: number): void;
  /** step: a step of `ms` (on the test's clock) that did `work`. */
  step(ms: number, work: number): void;
  behind: boolean;
}

/** pacer: a Pacer of budget `stepMs` over a store and a clock the test moves. */
function pacer(stepMs: number, workPerByte?: number): Harness {
  let published = 0;
  let now = 0;
  const h = {
    behind: false,
  } as Harness & { behind: boolean };
  const source: PaceSource = {
    publishedBytes: () => published,
    behind: () => h.behind,
    ...(workPerByte === undefined ? {} : { workPerByte }),
  };
  const p = new Pacer(stepMs, source, { now: () => now, nextTurn: nodeEventLoop.nextTurn }, true);
  return Object.assign(h, {
    p,
    write: (bytes: number) => {
      published += bytes;
    },
    step: (ms: number, work: number) => {
      p.start();
      now += ms;
      p.worked(work);
    },
  });
}

const paced = (gapMs: number): number => (gapMs * PACED_SHARE) / (1 - PACED_SHARE);

describe('Pacer', () => {
  it('starts with the whole budget', () => {
    expect(pacer(1).p.budget).toBe(1);
  });

  it('keeps the whole budget after a short turn (nothing waited)', () => {
    const { p } = pacer(1);
    p.decide(IDLE_GAP_MS);
    expect(p.budget).toBe(1);
    p.decide(0);
    expect(p.budget).toBe(1);
  });

  it('takes a share of a long turn without writes', () => {
    const { p } = pacer(1);
    p.decide(2);
    expect(p.budget).toBeCloseTo(paced(2));
    expect(p.budget).toBeLessThan(1);
    // A longer turn, a longer step, up to the whole budget.
    p.decide(3);
    expect(p.budget).toBeCloseTo(paced(3));
    p.decide(100);
    expect(p.budget).toBe(1);
  });

  it('never goes below MIN_STEP_MS, or above a budget smaller than it', () => {
    const { p } = pacer(1);
    p.decide(IDLE_GAP_MS + 0.01);
    expect(p.budget).toBe(MIN_STEP_MS);
    const zero = pacer(0).p;
    zero.decide(5);
    expect(zero.budget).toBe(0);
  });

  it('a job that reports no rate takes the whole budget whenever writes were published', () => {
    const h = pacer(1);
    h.p.decide(2);
    expect(h.p.budget).toBeLessThan(1);
    h.write(100);
    h.p.decide(2);
    expect(h.p.budget).toBe(1);
    // No write since: paced again.
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(paced(2));
    expect(h.p.budgets).toEqual([paced(2), 1, paced(2)]);
  });

  it('a job with a rate takes the time to keep up with what was written, within the budget', () => {
    const h = pacer(1, 3); // three units of work per byte written
    h.write(1000);
    h.p.decide(2);
    expect(h.p.budget).toBe(1); // no rate yet: the whole budget
    h.step(0.5, 10_000); // 20,000 units a millisecond
    // 1,000 bytes written: 3,000 units, 0.15 ms; the busy loop's share is more.
    h.write(1000);
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(paced(2));
    // 4,000 bytes: 12,000 units, 0.6 ms, more than the share.
    h.write(4000);
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(0.6);
    // 100,000 bytes: more than the whole budget.
    h.write(100_000);
    h.p.decide(2);
    expect(h.p.budget).toBe(1);
  });

  it('the rate follows the job: a slower step lowers it, a step too short to time does not count', () => {
    const h = pacer(10, 1);
    h.step(1, 1000); // 1,000 a millisecond
    h.step(0.001, 1); // too short: ignored
    h.write(4000);
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(4);
    h.step(1, 200); // 200 a millisecond: the average moves a quarter of the way, to 800
    h.write(4000);
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(5);
  });

  it('a job that is behind takes the whole budget while writes are published', () => {
    const h = pacer(1, 1);
    h.step(1, 1000);
    h.behind = true;
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(paced(2)); // nothing written: nothing grows
    h.write(10);
    h.p.decide(2);
    expect(h.p.budget).toBe(1);
    h.behind = false;
    h.write(10);
    h.p.decide(2);
    expect(h.p.budget).toBeCloseTo(paced(2));
  });

  it('pause yields a turn of the event loop and measures it with its clock', async () => {
    let now = 0;
    const p = new Pacer(
      1,
      { publishedBytes: () => 0 },
      { now: () => now, nextTurn: nodeEventLoop.nextTurn },
      true,
    );
    const order: string[] = [];
    // Work queued before the pause runs before it returns (the turn it measures).
    setImmediate(() => {
      order.push('request');
      now += 3;
    });
    const paused = p.pause().then(() => order.push('step'));
    order.push('sync');
    await paused;
    expect(order).toEqual(['sync', 'request', 'step']);
    expect(p.budget).toBeCloseTo(paced(3));
  });

  it('its slice is over once the budget it decided is spent', async () => {
    const p = new Pacer(10_000, { publishedBytes: () => 0 });
    p.start();
    expect(p.over()).toBe(false);
    p.decide(IDLE_GAP_MS + 0.01); // paced to MIN_STEP_MS
    p.start();
    const until = performance.now() + MIN_STEP_MS + 1;
    while (performance.now() < until) {
      // spin past the paced budget
    }
    expect(p.over()).toBe(true);
  });
});
