// ScanCursors: SCAN's cursors. A Redis cursor is a number, and redis-cli --scan parses it as an
// unsigned 64-bit integer, so a cursor cannot carry the last key itself (keys are up to 64 KiB).
// Instead the server remembers, per cursor number, the last key it returned; the next SCAN
// continues strictly after that key. Iteration order is key order, so the guarantees are
// stronger than Redis's: every key present for the whole iteration is returned exactly once,
// whatever is written meanwhile. Cursors are bounded (oldest forgotten first) and do not survive
// a restart; a forgotten cursor is `ERR invalid cursor`.
//
// One iteration holds at most two cursors: the one its last reply gave (the next call's) and
// the one before it (so a client may retry a call whose reply it lost). Continuing from cursor C
// forgets the cursor C itself continued from. So a long iteration, which makes thousands of
// calls, takes two of the SCAN_CURSORS_MAX slots, not one per call, and cannot evict the
// cursors of other clients' iterations (defects-2026-12.md, entry 12).
import { assert } from '../../stdx/assert.js';

interface Cursor {
  /** lastKey: the last key the reply that issued this cursor returned (a copy). */
  readonly lastKey: Buffer;
  /** from: the cursor the call that issued this one continued from (undefined: from "0"). */
  readonly from: string | undefined;
}

export class ScanCursors {
  private readonly cursors = new Map<string, Cursor>();
  private next = 1;

  constructor(private readonly max: number) {
    assert(max > 0, 'ScanCursors: max must be positive');
  }

  /**
   * save remembers `lastKey` and returns a fresh cursor for it (never "0"). `from` is the cursor
   * the call continued from (undefined for "0"): the cursor before that one is forgotten.
   */
  save(lastKey: Buffer, from?: string): string {
    if (from !== undefined) {
      const older = this.cursors.get(from)?.from;
      if (older !== undefined) this.cursors.delete(older);
    }
    if (this.cursors.size >= this.max) {
      const oldest = this.cursors.keys().next();
      if (oldest.done !== true) this.cursors.delete(oldest.value);
    }
    const cursor = String(this.next++);
    // Copy: the key may be a view into a large buffer that it would otherwise keep alive.
    this.cursors.set(cursor, { lastKey: Buffer.from(lastKey), from });
    return cursor;
  }

  /**
   * get returns the last key of a cursor, or undefined when unknown. A cursor is not forgotten
   * on use: a client may retry a SCAN call whose reply it lost.
   */
  get(cursor: string): Buffer | undefined {
    return this.cursors.get(cursor)?.lastKey;
  }

  get size(): number {
    return this.cursors.size;
  }
}
