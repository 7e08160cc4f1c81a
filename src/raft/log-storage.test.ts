import { describe, expect, it } from 'vitest';
import { MemoryStorage } from './log-storage.js';
import { EMPTY_CONF_STATE } from './types.js';

const e = (term: number, index: number) => ({
  term,
  index,
  type: 'normal' as const,
  data: new Uint8Array([index]),
});

describe('MemoryStorage', () => {
  it('appends, replaces a conflicting suffix, and reports terms', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(1, 2), e(1, 3)]);
    s.append([e(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
    expect(s.term(3)).toBeUndefined();
  });

  it('compacts behind a snapshot and keeps the snapshot term at firstIndex-1', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(1, 2), e(2, 3), e(2, 4)]);
    s.createSnapshot(3, EMPTY_CONF_STATE, new Uint8Array([9]));
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(s.term(2)).toBeUndefined();
    expect(s.entries(4, 5, 1000).map((x) => x.index)).toEqual([4]);
    expect(s.snapshot().metadata.index).toBe(3);
  });

  it('applySnapshot replaces the log and ignores older snapshots', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1)]);
    s.applySnapshot({
      metadata: { index: 10, term: 3, confState: EMPTY_CONF_STATE },
      data: new Uint8Array(),
    });
    expect(s.firstIndex()).toBe(11);
    expect(s.lastIndex()).toBe(10);
    s.applySnapshot({ metadata: { index: 5, term: 2, confState: EMPTY_CONF_STATE }, data: new Uint8Array() });
    expect(s.lastIndex()).toBe(10);
    s.append([e(3, 9), e(3, 10), e(3, 11)]); // Entries inside the snapshot are skipped.
    expect(s.lastIndex()).toBe(11);
  });

  it('entries honours the size limit but returns at least one entry', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(1, 2), e(1, 3)]);
    expect(s.entries(1, 4, 1)).toHaveLength(1);
    expect(s.entries(1, 4, 1_000_000)).toHaveLength(3);
  });
});
