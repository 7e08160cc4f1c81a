// The pacer sizes each step of background work from the turn of the event loop before it: the
// whole budget while writes are published or when nothing waited, a share of a loop kept busy by
// reads otherwise (pacer.ts). Its decisions are checked with a clock of the test's own.
import { describe, expect, it } from 'vitest';
import { IDLE_GAP_MS, MIN_STEP_MS, PACED_SHARE, Pacer } from './pacer.js';

/** pacer: a Pacer of budget `stepMs` over a publish counter the test moves. */
function pacer(stepMs: number): { p: Pacer; publish: () => void } {
  let published = 0;
  const p = new Pacer(stepMs, () => published, undefined, true);
  return { p, publish: () => published++ };
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

  it('takes the whole budget whenever writes were published since the last step', () => {
    const { p, publish } = pacer(1);
    p.decide(2);
    expect(p.budget).toBeLessThan(1);
    publish();
    p.decide(2);
    expect(p.budget).toBe(1);
    // No write since: paced again.
    p.decide(2);
    expect(p.budget).toBeCloseTo(paced(2));
    expect(p.budgets).toEqual([paced(2), 1, paced(2)]);
  });

  it('pause yields a turn of the event loop and measures it with its clock', async () => {
    let now = 0;
    const p = new Pacer(
      1,
      () => 0,
      () => now,
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
    const p = new Pacer(10_000, () => 0);
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
