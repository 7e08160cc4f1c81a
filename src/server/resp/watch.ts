// WATCH: the keys a client watched for its next EXEC (commands/transactions.ts), each with the
// commit timestamp current when it was watched. Session (session.ts) holds one per connection.
//
// Expiry (Redis 7): a watched key that was alive when watched and whose expiry has passed by EXEC
// counts as changed, so EXEC aborts; one already expired (absent) when watched does not. An
// expiry deletes nothing anyone can see change (the expiry cycle's tombstones take no tracked
// timestamp, see docs/transactions.md), so the watch notes each key's expiry itself.
import type { Clock } from '../../io/clock.js';
import { keyString } from '../../stdx/key-string.js';
import { isExpired } from '../../storage/expiry-index.js';
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
  /** expiries: the expiry each watched key had when watched, for keys alive with one. */
  private readonly expiries = new Map<string, number>();
  /** dropped: released for idleness; EXEC must fail as if a key had changed. */
  private dropped = false;

  constructor(
    private readonly mvcc: Mvcc,
    private readonly reg: Registration,
    /** expiryOf: a key's newest expiry (undefined: none, or the key is absent). */
    private readonly expiryOf: (key: Buffer) => number | undefined,
    /** clock: the store's, which decides expiry. */
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  add(key: Buffer): void {
    const k = keyString(key);
    // Watching a key again keeps the first watch (as Redis: the key is already watched).
    if (this.keys.has(k)) return;
    this.keys.set(k, this.mvcc.lastTs);
    const expiresAt = this.expiryOf(key);
    if (expiresAt !== undefined) this.expiries.set(k, expiresAt);
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

  /**
   * changed: was any watched key written since it was watched, or did it expire since?
   * Synchronous (see EXEC).
   */
  changed(): boolean {
    if (this.dropped) return true;
    for (const [k, ts] of this.keys) if (this.mvcc.changedSince(k, ts)) return true;
    if (this.expiries.size > 0) {
      const nowMs = this.clock.nowMs();
      for (const expiresAt of this.expiries.values()) if (isExpired(expiresAt, nowMs)) return true;
    }
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
