// Which files a background compaction rewrites (Bitcask's merge picks files the same way): the
// most fragmented ones, not every sealed file. Rewriting a file costs its live bytes and frees
// its dead ones, so the files with the highest dead ratio free the most per byte copied; a file
// that is mostly live is left alone until its own ratio makes it worth the copy. That keeps the
// write amplification of a store under steady overwrites bounded while the trigger holds the
// dead bytes, so the disk use, at a lower ratio than rewriting everything could afford.
// docs/compaction.md states the policy and why a partial compaction loses no delete.
//
// The plan is a pure function of the files' sizes and live bytes, so it is tested alone
// (compaction-plan.test.ts); the engine runs it when the trigger fires (cask-engine.ts).

/** PlanFile: what the plan needs to know of a data file. */
export interface PlanFile {
  readonly id: number;
  /** size: bytes of records (the file's length once sealed). */
  readonly size: number;
  /** liveBytes: bytes of records the key directory points at (DataFile.liveBytes). */
  readonly liveBytes: number;
}

/**
 * FILE_DEAD_RATIO_MIN: a file is rewritten only if at least this share of it is dead: below it
 * the copy costs over four live bytes per byte freed, and the file is better left to age.
 */
export const FILE_DEAD_RATIO_MIN = 0.2;
/**
 * RECLAIM_TO_RATIO_OF_TRIGGER: a compaction frees dead bytes until the store's dead ratio would
 * fall to this share of the trigger ratio (hysteresis: one compaction per trigger, not one per
 * group commit at the edge of it).
 */
export const RECLAIM_TO_RATIO_OF_TRIGGER = 0.5;
/** PLAN_FILE_BYTES_MIN: a file smaller than this (just its header, or nearly) is never worth a compaction of its own. */
export const PLAN_FILE_BYTES_MIN = 64;

/**
 * planCompaction returns the ids of the files to compact, most fragmented first, or an empty
 * list when no file is worth it. `files` are all data files, the active one included (the
 * engine seals it when it is chosen); `deadRatio` is the trigger ratio (compactionDeadRatio).
 */
export function planCompaction(files: readonly PlanFile[], deadRatio: number): number[] {
  let total = 0;
  let live = 0;
  for (const f of files) {
    total += f.size;
    live += f.liveBytes;
  }
  const want = total - live - RECLAIM_TO_RATIO_OF_TRIGGER * deadRatio * total;
  const candidates = files
    .filter((f) => f.size >= PLAN_FILE_BYTES_MIN && dead(f) >= FILE_DEAD_RATIO_MIN * f.size)
    .sort((a, b) => dead(b) / b.size - dead(a) / a.size || a.id - b.id);
  const chosen: number[] = [];
  let freed = 0;
  for (const f of candidates) {
    if (freed >= want && chosen.length > 0) break;
    chosen.push(f.id);
    freed += dead(f);
  }
  return chosen;
}

function dead(f: PlanFile): number {
  return f.size - f.liveBytes;
}
