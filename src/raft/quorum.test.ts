import { describe, expect, it } from 'vitest';
import { jointCommitted, jointVoteResult, majorityCommitted, majorityVoteResult } from './quorum.js';

const acked = (m: Record<number, number>) => (id: number) => m[id];

describe('quorum', () => {
  it('majorityCommitted is the index acknowledged by a majority', () => {
    expect(majorityCommitted(new Set([1, 2, 3]), acked({ 1: 5, 2: 3, 3: 1 }))).toBe(3);
    expect(majorityCommitted(new Set([1, 2, 3, 4]), acked({ 1: 5, 2: 3, 3: 1, 4: 9 }))).toBe(3);
    expect(majorityCommitted(new Set([1, 2, 3]), acked({ 1: 5 }))).toBe(0);
    expect(majorityCommitted(new Set(), acked({}))).toBe(Number.POSITIVE_INFINITY);
  });

  it('majorityVoteResult distinguishes won, lost and pending', () => {
    const v = new Set([1, 2, 3]);
    expect(majorityVoteResult(v, new Map([[1, true]]))).toBe('pending');
    expect(
      majorityVoteResult(
        v,
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe('won');
    expect(
      majorityVoteResult(
        v,
        new Map([
          [1, false],
          [2, false],
        ]),
      ),
    ).toBe('lost');
    expect(majorityVoteResult(new Set(), new Map())).toBe('won');
  });

  it('a joint config needs both majorities', () => {
    const cfg = { incoming: new Set([1, 2, 3]), outgoing: new Set([3, 4, 5]) };
    expect(jointCommitted(cfg, acked({ 1: 9, 2: 9, 3: 1, 4: 1, 5: 1 }))).toBe(1);
    expect(jointCommitted(cfg, acked({ 1: 9, 2: 9, 3: 7, 4: 8, 5: 1 }))).toBe(7);
    expect(
      jointVoteResult(
        cfg,
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe('pending');
    expect(
      jointVoteResult(
        cfg,
        new Map([
          [1, true],
          [2, true],
          [4, false],
          [5, false],
        ]),
      ),
    ).toBe('lost');
    expect(
      jointVoteResult(
        cfg,
        new Map([
          [1, true],
          [3, true],
          [4, true],
        ]),
      ),
    ).toBe('won');
  });
});
