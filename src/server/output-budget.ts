// OutputBudget: a bound on the reply bytes a server holds for clients that have not read them.
//
// A client that asks for large values and never reads (or reads slowly) makes the server hold
// its replies: on RESP up to the connection's output limit plus one reply (a 64 MiB value, or a
// 512 MiB MGET), on HTTP one whole response (a 64 MiB value, an 80 MiB /v1/txn answer). One
// such client is harmless; ten thousand hold hundreds of gigabytes. Each server therefore adds
// up what its connections hold, every OUTPUT_SWEEP_MS, and while the sum is past its budget
// closes the connection holding the most, as Redis 7's maxmemory-clients evicts the clients that
// use the most memory. A client downloading a large value over a slow link keeps its connection
// unless the server as a whole is over budget. An eviction is logged with what the client held
// and counted (INFO `evicted_clients`, `cairn_evicted_clients_total`).
//
// Time alone is no signal here: a single 64 MiB write stays whole in Node's socket buffer until
// the kernel has taken all of it, so a slow but steady reader looks the same as a stalled one.
import { type Clock, systemClock, type Timer } from '../io/clock.js';
import { assert } from '../stdx/assert.js';

/** OUTPUT_SWEEP_MS: how often a server adds up what its connections hold. */
export const OUTPUT_SWEEP_MS = 250;

/**
 * CLIENT_OUTPUT_BYTES_MAX: the reply bytes one server (RESP, or HTTP) holds for all its clients
 * before it evicts the largest holders. Far above what reading clients hold (RESP's 8 MiB per
 * connection, a few responses in flight), far below the machine's memory.
 */
export const CLIENT_OUTPUT_BYTES_MAX = 1024 * 1024 * 1024;

/** OutputHolder: a connection, as the budget sees it. */
export interface OutputHolder {
  /** outputBytes: reply bytes held for the client and not yet taken by the kernel. */
  readonly outputBytes: number;
  /** destroy closes the connection at once (its held replies are dropped). */
  destroy(): void;
  /** noEvict: never evicted (RESP's CLIENT NO-EVICT ON, as Redis's no-evict clients); its bytes still count. */
  readonly noEvict?: boolean;
}

export class OutputBudget<H extends OutputHolder = OutputHolder> {
  private readonly holders = new Set<H>();
  private readonly timer: Timer;

  constructor(
    readonly maxBytes: number,
    /** evicted: called for each evicted holder with what it held, before it is closed. */
    private readonly evicted: (holder: H, bytes: number) => void,
    sweepMs = OUTPUT_SWEEP_MS,
    /**
     * clock: the server's (the sweep never keeps the process alive). The replica simulator's
     * processes pass theirs, so that a dead process's sweep dies with it.
     */
    clock: Clock = systemClock,
  ) {
    assert(Number.isSafeInteger(maxBytes) && maxBytes > 0, 'the output budget must be a positive byte count');
    this.timer = clock.every(sweepMs, () => this.sweep());
  }

  add(holder: H): void {
    this.holders.add(holder);
  }

  delete(holder: H): void {
    this.holders.delete(holder);
  }

  /** sweep evicts the largest holders while the sum is past the budget; returns how many. */
  sweep(): number {
    let total = 0;
    for (const h of this.holders) total += h.outputBytes;
    if (total <= this.maxBytes) return 0;
    const largest = [...this.holders]
      .filter((holder) => holder.noEvict !== true)
      .map((holder) => ({ holder, bytes: holder.outputBytes }))
      .sort((a, b) => b.bytes - a.bytes);
    let evictions = 0;
    for (const { holder, bytes } of largest) {
      if (total <= this.maxBytes || bytes === 0) break;
      this.holders.delete(holder);
      total -= bytes;
      evictions++;
      this.evicted(holder, bytes);
      holder.destroy();
    }
    return evictions;
  }

  close(): void {
    this.timer.cancel();
    this.holders.clear();
  }
}
