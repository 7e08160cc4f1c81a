// A small Engine adapter over classic-level (LevelDB), for the benchmarks only: enough of the
// interface to fill, read, scan and reopen a store with the same calls as the other engines.
//
// Durability: 'always' writes with `sync: true` (LevelDB fsyncs its log before the write
// completes); 'never' and 'interval' write without it, and flush() makes everything durable with
// one synced write (a synced LevelDB write fsyncs the whole log, so all earlier writes with it).
// 'interval' has no timer here: the benchmarks do not use it.
//
// Not for production use, and not run against the conformance suite, because:
// - it stores neither expiries nor revisions (see getStored below);
// - concurrent writes go through libuv's thread pool, so their order is not call order;
// - stats().keys is not tracked (LevelDB does not count keys): it is -1;
// - it does not keep the buffer rule (docs/ARCHITECTURE.md, "Who owns a buffer"): keys and values
//   go to LevelDB as they are, and its binding may read them on a worker thread after the call
//   returns, so a caller must not reuse them until the write resolves (the benchmarks never do;
//   copying here would charge LevelDB a cost the measurements should not include).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ClassicLevel } from 'classic-level';
import type {
  Engine,
  EngineStats,
  Entry,
  Revision,
  ScanRange,
  Stored,
  WriteOp,
} from '../src/storage/engine.js';
import type { EngineOptions } from '../src/storage/engine-options.js';
import { ClosedError, InvalidArgumentError } from '../src/storage/errors.js';
import { checkKeyVersion, checkTs } from '../src/storage/revision.js';

export const CLASSIC_LEVEL_ENGINE_NAME = 'classic-level';
/** LEVELDB_SUBDIR: LevelDB's files live here, inside the store directory. */
const LEVELDB_SUBDIR = 'leveldb';
/** FLUSH_KEY: the key of the synced delete that flush() uses as a durability barrier. */
const FLUSH_KEY = Buffer.from('\u0000cairn-bench-flush');

type Db = ClassicLevel<Uint8Array, Uint8Array>;

export async function openClassicLevel(dir: string, options: EngineOptions = {}): Promise<Engine> {
  const db: Db = new ClassicLevel<Uint8Array, Uint8Array>(path.join(dir, LEVELDB_SUBDIR), {
    keyEncoding: 'view',
    valueEncoding: 'view',
  });
  await db.open();
  return new ClassicLevelEngine(db, dir, (options.durability ?? 'always') === 'always');
}

class ClassicLevelEngine implements Engine {
  readonly name = CLASSIC_LEVEL_ENGINE_NAME;
  private closed = false;
  private writes = 0;
  /** last: the highest ts written since open (lastTs); kept in memory only, see getStored. */
  private last = 0;

  constructor(
    private readonly db: Db,
    private readonly dir: string,
    private readonly sync: boolean,
  ) {}

  async get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.getSync(key);
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    // getSync: LevelDB's get from the block cache takes microseconds, less than a round trip
    // through libuv's thread pool; lmdb and cask read synchronously too.
    return this.db.getSync(key);
  }

  async has(key: Uint8Array): Promise<boolean> {
    this.checkOpen();
    return this.db.has(key);
  }

  // This benchmark-only adapter has neither expiry nor revisions: it measures raw reads and
  // writes, and refuses what it cannot do rather than answer wrongly. Behind a write pipeline
  // (src/txn/pipelined-engine.ts) puts and batches work: revisionSync reports no revision, so the
  // pipeline stamps every put as a key's creation, and write() checks the stamps and drops them;
  // lastTs is kept in memory only (the pipeline's timestamps follow the clock anyway). A
  // pipeline's delete reads getStoredSync, which refuses.
  async getStored(_key: Uint8Array): Promise<Stored | undefined> {
    throw new Error('classic-level (benchmark adapter): no revisions, use get');
  }

  getStoredSync(_key: Uint8Array): Stored | undefined {
    throw new Error('classic-level (benchmark adapter): no revisions, use getSync');
  }

  revisionSync(_key: Uint8Array): Revision | undefined {
    this.checkOpen();
    return undefined;
  }

  lastTs(): number {
    return this.last;
  }

  async expiry(key: Uint8Array): Promise<number | null | undefined> {
    return (await this.has(key)) ? null : undefined;
  }

  async write(ts: number, ops: readonly WriteOp[]): Promise<void> {
    this.checkOpen();
    if (ops.length === 0) throw new InvalidArgumentError('a write needs at least one operation');
    checkTs(ts, this.last);
    for (const op of ops) {
      if (op.type !== 'put') continue;
      if (op.expiresAt !== undefined) throw new Error('classic-level: no expiry support');
      checkKeyVersion(op.create, op.version, ts);
    }
    this.last = ts;
    const only = ops[0] as WriteOp;
    if (ops.length === 1) {
      if (only.type === 'put') await this.db.put(only.key, only.value, { sync: this.sync });
      else await this.db.del(only.key, { sync: this.sync });
    } else {
      await this.db.batch(
        ops.map((op) =>
          op.type === 'put'
            ? { type: 'put' as const, key: op.key, value: op.value }
            : { type: 'del' as const, key: op.key },
        ),
        { sync: this.sync },
      );
    }
    this.writes++;
  }

  dueExpiries(_nowMs: number, _max: number): Uint8Array[] {
    this.checkOpen();
    return []; // no expiry support
  }

  async *scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
    this.checkOpen();
    const options = {
      ...(range.start === undefined ? {} : { gte: range.start }),
      ...(range.end === undefined ? {} : { lt: range.end }),
      ...(range.limit === undefined ? {} : { limit: range.limit }),
      reverse: range.reverse === true,
    };
    for await (const [key, value] of this.db.iterator(options)) {
      this.checkOpen();
      yield [key, value];
    }
  }

  async flush(): Promise<void> {
    this.checkOpen();
    if (!this.sync) await this.db.del(FLUSH_KEY, { sync: true });
  }

  async compact(): Promise<void> {
    this.checkOpen();
  }

  stats(): EngineStats {
    this.checkOpen();
    return {
      engine: this.name,
      keys: -1,
      expires: 0,
      avgTtlMs: 0,
      diskBytes: dirBytes(path.join(this.dir, LEVELDB_SUBDIR)),
      liveBytes: 0,
      writes: this.writes,
      fsyncs: this.sync ? this.writes : 0,
      compactions: 0,
    };
  }

  async close(): Promise<void> {
    this.checkOpen();
    this.closed = true;
    if (!this.sync) await this.db.del(FLUSH_KEY, { sync: true });
    await this.db.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError();
  }
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) total += fs.statSync(path.join(dir, name)).size;
  return total;
}
