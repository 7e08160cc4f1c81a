// The open-after-crash rule as a checker (docs/format.md, "Recovery"; docs/wal.md, "Opening after
// a crash"): once the WAL or the engine has opened, every byte it read and trusts must survive a
// power loss as it reads now, and so must the file's directory entry. A store that shows bytes a failed fdatasync left in the page cache
// (SimDisk models Linux's "fsyncgate") fails the seed at that open, not only in the rare runs
// where a snapshot, a log compaction and a power cut then lose an acknowledged write (seed 1111
// with --lost-directory, about one seed in 120, was such a run).
import * as path from 'node:path';
import { SafetyViolation } from './checkers.js';
import { DIR, type SimDisk } from './replica-disk.js';

/** checkDurableAtOpen throws a SafetyViolation unless `file`'s entry and bytes [0, end) are durable. */
export function checkDurableAtOpen(disk: SimDisk, file: string, end: number, who: string): void {
  const node = disk.entries.get(file);
  if (node === undefined || node === DIR) return;
  const why = disk.entryDurable(file) ? node.undurable(end) : 'its directory entry is not durable';
  if (why !== undefined)
    throw new SafetyViolation(
      `${who} opened ${file} and trusts its first ${end} bytes, not all durable: ${why}`,
    );
}

/**
 * checkWalDurableAtOpen checks the WAL's active (newest) segment up to its last nonzero byte:
 * its data ends with a commit frame, whose checksum is not zero, and the zeros after it are
 * preallocated space the WAL does not read as entries.
 */
export function checkWalDurableAtOpen(disk: SimDisk, walDir: string, who: string): void {
  const segments = [...disk.listing(walDir).keys()].filter((p) => p.endsWith('.wal')).sort();
  const active = segments.at(-1);
  if (active === undefined) return;
  const node = disk.entries.get(active);
  if (node === undefined || node === DIR) return;
  const bytes = node.contents();
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  checkDurableAtOpen(disk, active, end, `${who} (WAL ${path.basename(active)})`);
}
