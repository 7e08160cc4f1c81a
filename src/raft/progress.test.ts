import { describe, expect, it } from 'vitest';
import { AssertionError } from '../stdx/assert.js';
import { Inflights, Progress } from './progress.js';

describe('Inflights', () => {
  it('is full by count or by bytes, and frees up to an index', () => {
    const inf = new Inflights(3, 100);
    inf.add(1, 10);
    inf.add(2, 10);
    expect(inf.full()).toBe(false);
    inf.add(3, 10);
    expect(inf.full()).toBe(true);
    expect(() => inf.add(4, 1)).toThrow(AssertionError);
    inf.freeLE(2);
    expect(inf.count()).toBe(1);
    inf.add(4, 95);
    expect(inf.full()).toBe(true); // 105 bytes >= 100.
    inf.freeLE(10);
    expect(inf.count()).toBe(0);
  });
});

describe('Progress', () => {
  it('probe sends one append until acknowledged, replicate pipelines within the window', () => {
    const pr = new Progress(5, new Inflights(2, 1000), false);
    pr.sentEntries(1, 10);
    expect(pr.isPaused()).toBe(true);
    expect(pr.maybeUpdate(5)).toBe(true);
    pr.becomeReplicate();
    expect(pr.next).toBe(6);
    pr.sentEntries(2, 10);
    pr.inflights.freeLE(5);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(1, 10);
    expect(pr.isPaused()).toBe(true);
  });

  it('maybeDecrTo ignores stale rejections and uses the hint in probe state', () => {
    const pr = new Progress(11, new Inflights(2, 1000), false);
    pr.match = 3;
    expect(pr.maybeDecrTo(5, 4)).toBe(false); // Not the last probe (next-1 = 10).
    expect(pr.maybeDecrTo(10, 6)).toBe(true);
    expect(pr.next).toBe(7);
    pr.becomeReplicate();
    expect(pr.maybeDecrTo(2, 0)).toBe(false); // At or below match: stale.
  });
});
