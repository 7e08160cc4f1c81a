// ManualEngine: a test double of the Engine interface (tests only; excluded from the build).
import type { Engine, EngineStats, Entry, Revision, ScanRange, WriteOp } from '../storage/engine.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { checkKeyVersion, checkTs, legacyRevision } from '../storage/revision.js';

/**
 * ManualEngine: an in-memory engine whose writes become durable (visible and resolved) only when
 * the test says so, in order, or fail. Reads see durable state only, like the real engines.
 */
export class ManualEngine implements Engine {
  readonly name = 'manual';
  readonly data = new Map<string, Buffer>();
  readonly expiries = new Map<string, number>();
  readonly revisions = new Map<string, Revision>();
  /** types: value types of keys that hold other than a string. */
  readonly types = new Map<string, number>();
  private last = 0;
  readonly queue: {
    ops: WriteOp[];
    revs: (Revision | undefined)[];
    resolve: () => void;
    reject: (e: Error) => void;
  }[] = [];
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
    for (let i = 0; i < this.getDelay; i++) await Promise.resolve();
    return this.getStoredSync(key);
  }
  getStoredSync(key: Uint8Array) {
    const value = this.getSync(key);
    const expiresAt = this.expiries.get(Buffer.from(key).toString('latin1'));
    const revision = this.revisionSync(key);
    if (value === undefined || revision === undefined) return undefined;
    return {
      value,
      expiresAt,
      revision,
      valueType: this.types.get(Buffer.from(key).toString('latin1')) ?? 0,
    };
  }
  /** revisionSync: a key a test put into `data` directly reads as a legacy record of ts 1. */
  revisionSync(key: Uint8Array) {
    const k = Buffer.from(key).toString('latin1');
    if (!this.data.has(k)) return undefined;
    return this.revisions.get(k) ?? legacyRevision(1);
  }
  lastTs() {
    return this.last;
  }
  async expiry(key: Uint8Array) {
    const k = Buffer.from(key).toString('latin1');
    return this.data.has(k) ? (this.expiries.get(k) ?? null) : undefined;
  }
  /** autoCommit: make every write durable on the next microtask turn instead of on command. */
  autoCommit = false;
  write(ts: number, ops: readonly WriteOp[]) {
    try {
      if (ops.length === 0) throw new InvalidArgumentError('a write needs at least one operation');
      checkTs(ts, this.last);
      for (const op of ops) if (op.type === 'put') checkKeyVersion(op.create, op.version, ts);
    } catch (err) {
      return Promise.reject(err);
    }
    this.last = ts;
    const revs = ops.map((op) =>
      op.type === 'put' ? { mod: ts, create: op.create, version: op.version } : undefined,
    );
    // Copies, as every engine keeps (docs/ARCHITECTURE.md, "Who owns a buffer"): the ops wait in
    // the queue until a test commits them, and the caller's buffers are borrowed.
    const own: WriteOp[] = ops.map((op) =>
      op.type === 'put'
        ? { ...op, key: Buffer.from(op.key), value: Buffer.from(op.value) }
        : { ...op, key: Buffer.from(op.key) },
    );
    const done = new Promise<void>((resolve, reject) => this.queue.push({ ops: own, revs, resolve, reject }));
    if (this.autoCommit) queueMicrotask(() => this.commit());
    return done;
  }
  /** dueExpiries: keys whose expiry passed (tests that use it set expiries in the past). */
  dueExpiries(nowMs: number, max: number) {
    const due: Uint8Array[] = [];
    for (const [k, at] of this.expiries) {
      if (due.length >= max) break;
      if (nowMs > at && this.data.has(k)) due.push(Buffer.from(k, 'latin1'));
    }
    return due;
  }
  /** commit makes the first n queued writes durable. */
  commit(n = this.queue.length) {
    for (const w of this.queue.splice(0, n)) {
      w.ops.forEach((op, i) => {
        const k = Buffer.from(op.key).toString('latin1');
        const rev = w.revs[i];
        if (op.type === 'put' && rev !== undefined) {
          this.data.set(k, Buffer.from(op.value));
          this.revisions.set(k, rev);
          if (op.valueType) this.types.set(k, op.valueType);
          else this.types.delete(k);
        } else {
          this.data.delete(k);
          this.revisions.delete(k);
          this.types.delete(k);
        }
        if (op.type === 'put' && op.expiresAt !== undefined) this.expiries.set(k, op.expiresAt);
        else this.expiries.delete(k);
      });
      w.resolve();
    }
  }
  /** failNext rejects the first queued write. */
  failNext() {
    const failed = this.queue.shift();
    if (failed === undefined) return;
    failed.reject(new Error('EIO'));
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
      const valueType = this.types.get(k);
      yield valueType === undefined
        ? [Buffer.from(k, 'latin1'), this.data.get(k)!]
        : [Buffer.from(k, 'latin1'), this.data.get(k)!, valueType];
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
      avgTtlMs: 0,
      diskBytes: 0,
      liveBytes: 0,
      writes: 0,
      fsyncs: 0,
      compactions: 0,
    };
  }
  async close() {}
}
