import { describe, expect, it } from 'vitest';
import { AssertionError } from '../stdx/assert.js';
import { RaftLog } from './log.js';
import { MemoryStorage } from './log-storage.js';
import type { Entry } from './types.js';

const e = (term: number, index: number): Entry => ({ term, index, type: 'normal', data: new Uint8Array() });

function logWith(terms: number[]): RaftLog {
  const s = new MemoryStorage();
  s.append(terms.map((t, i) => e(t, i + 1)));
  return new RaftLog(s);
}

describe('RaftLog', () => {
  it('maybeAppend checks the previous entry and truncates only a conflicting suffix', () => {
    const log = logWith([1, 2, 3]);
    expect(log.maybeAppend(3, 2, 0, [e(4, 4)])).toBeUndefined(); // Term at 3 is 3, not 2.
    expect(log.maybeAppend(1, 1, 2, [e(2, 2), e(4, 3)])).toBe(3);
    expect(log.term(3)).toBe(4);
    expect(log.committed).toBe(2);
  });

  it('never truncates committed entries', () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(3);
    expect(() => log.maybeAppend(1, 1, 3, [e(2, 2)])).toThrow(AssertionError);
  });

  it('findConflictByTerm finds the last index whose term is at most the given term', () => {
    const log = logWith([1, 1, 2, 2, 5, 5]);
    expect(log.findConflictByTerm(6, 3)).toEqual({ index: 4, term: 2 });
    expect(log.findConflictByTerm(6, 1)).toEqual({ index: 2, term: 1 });
    expect(log.findConflictByTerm(6, 0)).toEqual({ index: 0, term: 0 });
  });

  it('isUpToDate compares last term, then last index (§5.4.1)', () => {
    const log = logWith([1, 2]);
    expect(log.isUpToDate(1, 3)).toBe(true);
    expect(log.isUpToDate(2, 2)).toBe(true);
    expect(log.isUpToDate(1, 2)).toBe(false);
    expect(log.isUpToDate(9, 1)).toBe(false);
  });

  it('unstable entries become stable only if their term still matches', () => {
    const log = logWith([1]);
    log.append([e(2, 2), e(2, 3)]);
    log.stableTo(3, 1); // Wrong term: ignored.
    expect(log.unstableEntries()).toHaveLength(2);
    log.stableTo(3, 2);
    expect(log.unstableEntries()).toHaveLength(0);
  });

  it('committed and applied only move forward', () => {
    const log = logWith([1, 1, 1]);
    log.commitTo(2);
    log.commitTo(1);
    expect(log.committed).toBe(2);
    log.appliedTo(2);
    expect(() => log.appliedTo(3)).toThrow(AssertionError);
  });
});
