// PipelinedEngine: an engine with a write pipeline in front of it, offering the plain key-value
// surface (put/delete/batch with the pipeline's stamping, reads from the engine). The engine
// conformance suites, the engine crash tests and the engine benchmarks use it: they exercise an
// engine with revisions, expiry and "did it exist" answers exactly as the Db gives them, without
// the Db's MVCC API on top. Applications use `open()` (src/db).
import { type Clock, systemClock } from '../io/clock.js';
import type { Engine, EngineStats, Entry, Revision, ScanRange, Stored } from '../storage/engine.js';
import { type BatchOp, WritePipeline } from './write-pipeline.js';

/** PutOptions: per-write options of PipelinedEngine.put. */
export interface PutOptions {
  /** expiresAt: ms since the Unix epoch after which the key reads as absent; undefined: never. */
  readonly expiresAt?: number | undefined;
}

/** PipelinedStats: the engine's statistics and the expiry cycle's. */
export interface PipelinedStats extends EngineStats {
  /** expiredKeys: keys the active expiry cycle deleted since open. */
  readonly expiredKeys: number;
}

export class PipelinedEngine {
  readonly pipeline: WritePipeline;

  constructor(
    readonly engine: Engine,
    clock: Clock = systemClock,
  ) {
    this.pipeline = new WritePipeline(engine, clock);
  }

  get name(): string {
    return this.engine.name;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.engine.get(key);
  }
  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.engine.getSync(key);
  }
  has(key: Uint8Array): Promise<boolean> {
    return this.engine.has(key);
  }
  getStored(key: Uint8Array): Promise<Stored | undefined> {
    return this.engine.getStored(key);
  }
  getStoredSync(key: Uint8Array): Stored | undefined {
    return this.engine.getStoredSync(key);
  }
  expiry(key: Uint8Array): Promise<number | null | undefined> {
    return this.engine.expiry(key);
  }
  revisionSync(key: Uint8Array): Revision | undefined {
    return this.engine.revisionSync(key);
  }
  lastTs(): number {
    return this.engine.lastTs();
  }
  /** put stores a value (clearing any expiry unless `options.expiresAt` gives one); resolves once durable. */
  put(key: Uint8Array, value: Uint8Array, options?: PutOptions): Promise<void> {
    return this.pipeline.put(key, value, options?.expiresAt);
  }
  /** delete removes a key; resolves to whether it existed (counting pending writes), once durable. */
  delete(key: Uint8Array): Promise<boolean> {
    return this.pipeline.delete(key);
  }
  /** batch applies `ops` as one atomic write; resolves once durable. */
  batch(ops: readonly BatchOp[]): Promise<void> {
    return this.pipeline.batch(ops);
  }
  scan(range?: ScanRange): AsyncIterableIterator<Entry> {
    return this.engine.scan(range);
  }
  flush(): Promise<void> {
    return this.engine.flush();
  }
  compact(): Promise<void> {
    return this.engine.compact();
  }
  stats(): PipelinedStats {
    return { ...this.engine.stats(), expiredKeys: this.pipeline.stats().expiredKeys };
  }
  close(): Promise<void> {
    this.pipeline.close();
    return this.engine.close();
  }
}

/** pipelined puts a write pipeline in front of `engine` (on the engine's clock for expiry). */
export function pipelined(engine: Engine, clock?: Clock): PipelinedEngine {
  return new PipelinedEngine(engine, clock);
}
