// The LAG column of `cairn endpoint status`: how far each member's applied index trails the
// leader's commit index, from the rows the command already fetched (no request of its own). The
// leader's row gives the commit index when the leader is among the endpoints asked; otherwise a
// member is compared with its own commit index, which a member cut off from the leader stops
// advancing (so it understates the lag). The rows are fetched one after another: under load the
// leader's commit may be read before a member's applied index, so a small lag means nothing,
// and a negative one is shown as 0.
import { applyLagError } from '../../replica/apply-lag.js';

/** StatusIndexes: what the lag is computed from, one endpoint's /v1/status. */
export interface StatusIndexes {
  readonly isLeader?: boolean | undefined;
  readonly commit?: number | undefined;
  readonly applied?: number | undefined;
  readonly errors: readonly string[];
}

/**
 * withLag adds to each row `lag` (entries its applied index trails the leader's commit index,
 * else its own; null for a single server) and, past APPLY_LAG_ENTRIES_MAX, an error saying so.
 */
export function withLag<R extends StatusIndexes>(rows: readonly R[]): (R & { lag: number | null })[] {
  const leader = rows.find((r) => r.isLeader === true && r.commit !== undefined);
  return rows.map((r) => {
    if (r.applied === undefined || r.commit === undefined) return { ...r, lag: null };
    const commit = leader?.commit ?? r.commit;
    const lag = Math.max(0, commit - r.applied);
    const what = leader === undefined || leader === r ? 'its commit index' : "the leader's commit index";
    const error = applyLagError(lag, `${what} ${commit}`);
    // The member may already say so itself, against its own commit index: one error is enough.
    const said = r.errors.some((e) => e.startsWith('applied index is'));
    return { ...r, lag, errors: error === undefined || said ? r.errors : [...r.errors, error] };
  });
}
