// WATCH: the keys a client watched for its next EXEC (commands/transactions.ts), each with the
// commit timestamp current when it was watched. Session (session.ts) holds one per connection.
import { keyString } from '../../stdx/key-string.js';
import type { Mvcc, Registration } from '../../txn/mvcc.js';
import { CommandError } from './errors.js';
import { WATCHED_KEYS_MAX } from './limits.js';

/**
 * Watch: the keys a client WATCHed, each with the commit timestamp current when it was watched.
 * The registration keeps the store tracking the last write of every key (mvcc.lastWrite) from
 * the first WATCH on, so `changed()` can tell whether any watched key was written since.
 */
export class Watch {
  private readonly keys = new Map<string, number>();
  /** dropped: released for idleness; EXEC must fail as if a key had changed. */
  private dropped = false;

  constructor(
    private readonly mvcc: Mvcc,
    private readonly reg: Registration,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  add(key: Buffer): void {
    const k = keyString(key);
    // Watching a key again keeps the first watch (as Redis: the key is already watched).
    if (!this.keys.has(k)) this.keys.set(k, this.mvcc.lastTs);
  }

  /** addKeys adds the keys of one WATCH command, up to WATCHED_KEYS_MAX in all. */
  addKeys(keys: readonly Buffer[]): void {
    for (const key of keys) {
      if (this.size >= WATCHED_KEYS_MAX) {
        throw new CommandError(`ERR too many watched keys (at most ${WATCHED_KEYS_MAX})`);
      }
      this.add(key);
    }
  }

  /** changed: was any watched key written since it was watched? Synchronous (see EXEC). */
  changed(): boolean {
    if (this.dropped) return true;
    for (const [k, ts] of this.keys) if (this.mvcc.changedSince(k, ts)) return true;
    return false;
  }

  release(): void {
    this.mvcc.release(this.reg);
  }

  /** drop releases the watch early (idleness); it then always reports a change. */
  drop(): void {
    this.dropped = true;
    this.release();
  }
}
