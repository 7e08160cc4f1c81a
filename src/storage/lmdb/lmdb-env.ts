// The parts of lmdb-js that the lmdb engine (lmdb-engine.ts) and the migration of older stores
// (migration.ts) share: the database types, lmdb's env sync, and the list of named databases.
import type { Database, RootDatabase } from 'lmdb';
import { STORED_KEYS_END } from './value-codec.js';

/** The parts of lmdb-js we use that its type declarations leave out. */
export interface LmdbEnvSync {
  /** sync runs mdb_env_sync(force) on a worker thread and calls back when done. */
  sync(callback: (error?: unknown) => void): void;
}

export type Db = RootDatabase<Buffer, Buffer>;
export type SubDb = Database<Buffer, Buffer>;

/**
 * namedDbs lists the names of the named databases: records of the root database that sort after
 * every stored key, keyed by the name and a NUL byte (lmdb-js's convention).
 */
export function namedDbs(db: Db): string[] {
  return [...db.getKeys({ start: STORED_KEYS_END, snapshot: false })].map((key) =>
    Buffer.from(key).toString('latin1').replace(/\0$/, ''),
  );
}

/** syncEnv fsyncs everything committed so far (lmdb's env sync). */
export function syncEnv(db: Db): Promise<void> {
  const env = db as unknown as LmdbEnvSync;
  return new Promise<void>((resolve, reject) => {
    env.sync((error) => (error === undefined || error === null ? resolve() : reject(error)));
  });
}
