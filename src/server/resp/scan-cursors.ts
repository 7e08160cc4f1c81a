// ScanCursors: SCAN's cursors. A Redis cursor is a number, and redis-cli --scan parses it as an
// unsigned 64-bit integer, so a cursor cannot carry the last key itself (keys are up to 64 KiB).
// Instead the server remembers, per cursor number, the last key it returned; the next SCAN
// continues strictly after that key. Iteration order is key order, so the guarantees are
// stronger than Redis's: every key present for the whole iteration is returned exactly once,
// whatever is written meanwhile. Cursors are bounded (oldest forgotten first) and do not survive
// a restart; a forgotten cursor is `ERR invalid cursor`.
import { assert } from '../../stdx/assert.js';

export class ScanCursors {
  private readonly lastKeys = new Map<string, Buffer>();
  private next = 1;

  constructor(private readonly max: number) {
    assert(max > 0, 'ScanCursors: max must be positive');
  }

  /** save remembers `lastKey` and returns a fresh cursor for it (never "0"). */
  save(lastKey: Buffer): string {
    if (this.lastKeys.size >= this.max) {
      const oldest = this.lastKeys.keys().next();
      if (oldest.done !== true) this.lastKeys.delete(oldest.value);
    }
    const cursor = String(this.next++);
    // Copy: the key may be a view into a large buffer that it would otherwise keep alive.
    this.lastKeys.set(cursor, Buffer.from(lastKey));
    return cursor;
  }

  /**
   * get returns the last key of a cursor, or undefined when unknown. Cursors are not forgotten on
   * use: a client may retry a SCAN call whose reply it lost.
   */
  get(cursor: string): Buffer | undefined {
    return this.lastKeys.get(cursor);
  }

  get size(): number {
    return this.lastKeys.size;
  }
}
