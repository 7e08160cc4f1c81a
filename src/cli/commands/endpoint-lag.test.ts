import { describe, expect, it } from 'vitest';
import { APPLY_LAG_ENTRIES_MAX } from '../../replica/apply-lag.js';
import { withLag } from './endpoint-lag.js';

describe('withLag', () => {
  it("measures each member against the leader's commit index, and says when one is far behind", () => {
    const far = 100_000 - APPLY_LAG_ENTRIES_MAX - 1;
    const rows = withLag([
      { name: 'n1', isLeader: true, commit: 100_000, applied: 100_000, errors: [] },
      { name: 'n2', isLeader: false, commit: 100_000, applied: 99_990, errors: [] },
      // Cut off: its own commit index stopped where its applied index is.
      { name: 'n3', isLeader: false, commit: far, applied: far, errors: [] },
    ]);
    expect(rows.map((r) => r.lag)).toEqual([0, 10, APPLY_LAG_ENTRIES_MAX + 1]);
    expect(rows[0]!.errors).toEqual([]);
    expect(rows[1]!.errors).toEqual([]);
    expect(rows[2]!.errors).toEqual([
      `applied index is ${APPLY_LAG_ENTRIES_MAX + 1} entries behind the leader's commit index 100000 (more than ${APPLY_LAG_ENTRIES_MAX}): catching up, or its apply is stuck`,
    ]);
  });

  it('falls back to the own commit index without the leader, shows no negative lag, and none for a single server', () => {
    const rows = withLag([
      { isLeader: false, commit: 10_000, applied: 10_000 - APPLY_LAG_ENTRIES_MAX - 5, errors: [] },
      { isLeader: false, commit: 7, applied: 9, errors: [] },
      { errors: [] },
    ]);
    expect(rows.map((r) => r.lag)).toEqual([APPLY_LAG_ENTRIES_MAX + 5, 0, null]);
    expect(rows[0]!.errors[0]).toMatch(/behind its commit index 10000/);
  });

  it('adds no second error when the member already reports its own lag', () => {
    const own = 'applied index is 6000 entries behind its commit index 9000 (...)';
    const rows = withLag([{ isLeader: false, commit: 9_000, applied: 3_000, errors: [own] }]);
    expect(rows[0]!.errors).toEqual([own]);
  });
});
