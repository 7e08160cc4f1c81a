// ManualEngine: a test double of the Engine interface (tests only; excluded from the build).
import type { BatchOp, Engine, EngineStats, Entry, ScanRange } from '../storage/engine.js';

/**
 * ManualEngine: an in-memory engine whose writes become durable (visible and resolved) only when
 * the test says so, in order, or fail. Reads see durable state only, like the real engines.
 */
export class ManualEngine implements Engine {
  readonly name = 'manual';
  readonly data = new Map<string, Buffer>();
  readonly expiries = new Map<string, number>();
  readonly queue: { ops: BatchOp[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** getDelay: turns of the microtask queue a get takes, so writes can race it. */
  getDelay = 0;

  async get(key: Uint8Array) {
    for (let i = 0; i < this.getDelay; i++) await Promise.resolve();
    return this.getSync(key);
  }
  getSync(key: Uint8Array) {
    return this.data.get(Buffer.from(key).toString('latin1'));
  }
  async has(key: Uint8Array) {
    return this.data.has(Buffer.from(key).toString('latin1'));
  }
  async getStored(key: Uint8Array) {
    const value = await this.get(key);
    const expiresAt = this.expiries.get(Buffer.from(key).toString('latin1'));
    return value === undefined ? undefined : { value, expiresAt };
  }
  async expiry(key: Uint8Array) {
    const k = Buffer.from(key).toString('latin1');
    return this.data.has(k) ? (this.expiries.get(k) ?? null) : undefined;
  }
  put(key: Uint8Array, value: Uint8Array, options?: { expiresAt?: number | undefined }) {
    return this.batch([{ type: 'put', key, value, expiresAt: options?.expiresAt }]);
  }
  async delete(key: Uint8Array) {
    await this.batch([{ type: 'delete', key }]);
    return true;
  }
  /** autoCommit: make every write durable on the next microtask turn instead of on command. */
  autoCommit = false;
  batch(ops: readonly BatchOp[]) {
    const done = new Promise<void>((resolve, reject) => this.queue.push({ ops: [...ops], resolve, reject }));
    if (this.autoCommit) queueMicrotask(() => this.commit());
    return done;
  }
  /** commit makes the first n queued writes durable. */
  commit(n = this.queue.length) {
    for (const w of this.queue.splice(0, n)) {
      for (const op of w.ops) {
        const k = Buffer.from(op.key).toString('latin1');
        if (op.type === 'put') this.data.set(k, Buffer.from(op.value));
        else this.data.delete(k);
        if (op.type === 'put' && op.expiresAt !== undefined) this.expiries.set(k, op.expiresAt);
        else this.expiries.delete(k);
      }
      w.resolve();
    }
  }
  /** failNext rejects the first queued write. */
  failNext() {
    this.queue.shift()?.reject(new Error('EIO'));
  }
  /** scan walks the durable state in key order, one await per entry, so writes can interleave. */
  async *scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
    const lo = range.start === undefined ? undefined : Buffer.from(range.start).toString('latin1');
    const hi = range.end === undefined ? undefined : Buffer.from(range.end).toString('latin1');
    const inRange = (k: string) => (lo === undefined || k >= lo) && (hi === undefined || k < hi);
    let cursor: string | undefined;
    let n = 0;
    for (;;) {
      if (range.limit !== undefined && n >= range.limit) return;
      // Re-read the live map each step: like the real engines, the scan is not a snapshot.
      const keys = [...this.data.keys()].filter(inRange).sort();
      if (range.reverse === true) keys.reverse();
      const k = keys.find((x) => cursor === undefined || (range.reverse === true ? x < cursor : x > cursor));
      if (k === undefined) return;
      cursor = k;
      n++;
      yield [Buffer.from(k, 'latin1'), this.data.get(k)!];
      await Promise.resolve();
    }
  }
  async flush() {}
  async compact() {}
  stats(): EngineStats {
    return {
      engine: 'manual',
      keys: this.data.size,
      expires: this.expiries.size,
      diskBytes: 0,
      liveBytes: 0,
      writes: 0,
      fsyncs: 0,
      compactions: 0,
    };
  }
  async close() {}
}
