// lmdb's other durable write path, for the benchmark only: lmdb-js's default `overlappingSync`
// commits a transaction first and fsyncs it afterwards, so a write is durable once
// `await db.put(...)` and then `await db.flushed` have resolved. Commits overlap with the
// previous fsync, which can beat `overlappingSync: false` (src/storage/lmdb, every commit fsyncs
// before it resolves). The price, and why the product adapter does not use it: readers see a
// write before it is durable. The benchmark takes the better of the two as "lmdb's best durable
// write path".
import * as fs from 'node:fs';
import * as path from 'node:path';
import { open as openLmdbEnv } from 'lmdb';
import type { Engine, EngineStats, Entry, ScanRange, WriteOp } from '../src/storage/engine.js';
import type { EngineOptions } from '../src/storage/engine-options.js';
import { InvalidArgumentError } from '../src/storage/errors.js';
import { checkKeyVersion, checkTs } from '../src/storage/revision.js';

/** Keys get a one-byte prefix so the empty key works, as in src/storage/lmdb. */
const PREFIX = Buffer.from([0]);
const withPrefix = (key: Uint8Array): Buffer => Buffer.concat([PREFIX, key]);

export async function openLmdbFlushed(dir: string, _options: EngineOptions = {}): Promise<Engine> {
  fs.mkdirSync(dir, { recursive: true });
  const db = openLmdbEnv<Buffer, Buffer>(path.join(dir, 'lmdb-flushed'), {
    keyEncoding: 'binary',
    encoding: 'binary',
  });
  let writes = 0;
  /** last: the highest ts written since open (lastTs); kept in memory only, see revisionSync. */
  let last = 0;
  const durable = async (commit: Promise<unknown>): Promise<void> => {
    await commit;
    await db.flushed;
    writes++;
  };
  const engine: Engine = {
    name: 'lmdb-flushed',
    async get(key) {
      return this.getSync(key);
    },
    getSync(key) {
      const v = db.getBinary(withPrefix(key));
      return v === undefined ? undefined : Buffer.from(v);
    },
    async has(key) {
      return db.doesExist(withPrefix(key));
    },
    // This benchmark-only adapter has neither expiry nor revisions: it measures raw reads and
    // writes, and refuses what it cannot do rather than answer wrongly. Behind a write pipeline
    // (src/txn/pipelined-engine.ts) puts and batches work: revisionSync reports no revision, so
    // the pipeline stamps every put as a key's creation, and write() checks the stamps and drops
    // them; lastTs is kept in memory only (the pipeline's timestamps follow the clock anyway).
    // A pipeline's delete reads getStoredSync, which refuses.
    async getStored() {
      throw new Error('lmdb-flushed (benchmark adapter): no revisions, use get');
    },
    getStoredSync() {
      throw new Error('lmdb-flushed (benchmark adapter): no revisions, use getSync');
    },
    revisionSync() {
      return undefined;
    },
    lastTs() {
      return last;
    },
    async expiry(key) {
      return db.doesExist(withPrefix(key)) ? null : undefined;
    },
    write(ts: number, ops: readonly WriteOp[]) {
      try {
        if (ops.length === 0) throw new InvalidArgumentError('a write needs at least one operation');
        checkTs(ts, last);
        for (const op of ops) {
          if (op.type !== 'put') continue;
          if (op.expiresAt !== undefined) throw new Error('lmdb-flushed: no expiry support');
          checkKeyVersion(op.create, op.version, ts);
        }
      } catch (err) {
        return Promise.reject(err);
      }
      last = ts;
      const only = ops[0] as WriteOp;
      if (ops.length === 1) {
        return durable(
          only.type === 'put'
            ? db.put(withPrefix(only.key), Buffer.from(only.value))
            : db.remove(withPrefix(only.key)),
        );
      }
      return durable(
        db.batch(() => {
          for (const op of ops) {
            if (op.type === 'put') void db.put(withPrefix(op.key), Buffer.from(op.value));
            else void db.remove(withPrefix(op.key));
          }
        }),
      );
    },
    dueExpiries() {
      return []; // no expiry support
    },
    async *scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
      const start = range.start === undefined ? PREFIX : withPrefix(range.start);
      const end = range.end === undefined ? Buffer.from([1]) : withPrefix(range.end);
      for (const { key, value } of db.getRange({ start, end, limit: range.limit, reverse: range.reverse })) {
        yield [Buffer.from(key).subarray(1), Buffer.from(value)];
      }
    },
    async flush() {
      await db.flushed;
    },
    async compact() {},
    stats(): EngineStats {
      const envDir = path.join(dir, 'lmdb-flushed');
      const diskBytes = fs
        .readdirSync(envDir)
        .reduce((n, f) => n + fs.statSync(path.join(envDir, f)).size, 0);
      return {
        engine: 'lmdb-flushed',
        keys: db.getCount(),
        expires: 0,
        avgTtlMs: 0,
        diskBytes,
        liveBytes: 0,
        writes,
        fsyncs: 0,
        compactions: 0,
      };
    },
    async close() {
      await db.flushed;
      await db.close();
    },
  };
  return engine;
}
