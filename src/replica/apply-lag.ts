// How far a member's applied index may trail the commit index before `/v1/status` and `cairn
// endpoint status` report it as an error (docs/cluster-ops.md, "Looking at the cluster").
//
// A member applies what is committed within milliseconds; a gap of thousands of entries means it
// is replaying after a restart, catching up after a partition, or its apply is stuck (a damaged
// engine, a slow disk, a long `cairn check hash`). Reads it serves locally (READONLY) are that
// far in the past, and its /healthz answers 503 until it catches up.

/**
 * APPLY_LAG_ENTRIES_MAX: a member whose applied index is more than this many entries behind the
 * commit index (its own, or the leader's) is reported as behind. etcd refuses requests at the
 * same gap between its applied and committed indexes (maxGapBetweenApplyAndCommitIndex, 5000).
 */
export const APPLY_LAG_ENTRIES_MAX = 5_000;

/** applyLagError: the error to report for a member `lag` entries behind `what`, or undefined within bounds. */
export function applyLagError(lag: number, what: string): string | undefined {
  if (lag <= APPLY_LAG_ENTRIES_MAX) return undefined;
  return `applied index is ${lag} entries behind ${what} (more than ${APPLY_LAG_ENTRIES_MAX}): catching up, or its apply is stuck`;
}
