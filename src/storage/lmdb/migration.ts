// Migration of lmdb stores written before format 3 to the current format (docs/format.md,
// "lmdb store"). Open (lmdb-engine.ts) runs it before the engine serves anything.
//
// Stores written before format 3 hold values without a prefix. Open migrates them before it
// serves anything (migrateValues): lmdb kept no sequence number for their keys, so each value
// gets the prefix of legacyRevision(LEGACY_TS = 1), written at ts 1, before every write that
// carries a revision, and lastTs starts at 1 (so no later ts can fall at or below theirs);
// their next put keeps create 1 and counts version 2. The migration first records a progress
// marker (MIGRATION_KEY in the meta database) and makes it durable, then raises the metadata to
// FORMAT_REVISION (so older builds refuse the store from then on), then rewrites the values in
// chunks of at most MIGRATION_CHUNK_KEYS keys or MIGRATION_CHUNK_BYTES bytes, one write
// transaction each, which also moves the marker to the chunk's last key. A crash resumes after
// the marker, so no value is prefixed twice; the marker goes once no key follows it. A store
// at FORMAT_REVISION without a marker holds only prefixed values. (The format-3 development
// build that kept revisions in a `cairn-revision` database was never released. A store it left
// is recognised by that database, migrated the same way, and the database dropped in the
// transaction that removes the marker, so while it exists without a marker no value has a
// prefix.)
import type { FileSystem } from '../../io/file-system.js';
import { encodeU64LE } from '../../stdx/u64.js';
import { FORMAT_REVISION, type Meta, writeMeta } from '../meta.js';
import { legacyRevision } from '../revision.js';
import { type Db, type SubDb, syncEnv } from './lmdb-env.js';
import {
  encodeStoredValue,
  KEY_PREFIX,
  LAST_TS_KEY,
  STORED_KEYS_END,
  STORED_KEYS_START,
} from './value-codec.js';

/**
 * MIGRATION_KEY: the meta database's entry present while values written before format 3 are
 * being prefixed: MIGRATION_NOT_STARTED, or the stored key of the last value prefixed.
 */
const MIGRATION_KEY = Buffer.from('migration');
/** MIGRATION_NOT_STARTED: the marker before the first chunk (stored keys all start with KEY_PREFIX). */
const MIGRATION_NOT_STARTED = Buffer.from([0x00]);
/** MIGRATION_CHUNK_KEYS, MIGRATION_CHUNK_BYTES: bounds of one migration write transaction. */
const MIGRATION_CHUNK_KEYS = 10_000;
const MIGRATION_CHUNK_BYTES = 4 * 1024 * 1024;
/** DEV_REVISION_DB_NAME: the revision database of an unreleased development build (see the header). */
const DEV_REVISION_DB_NAME = 'cairn-revision';
/** LEGACY_TS: the mod and create of keys written before revisions were stored (see the header). */
const LEGACY_TS = 1;
const LEGACY_REVISION = legacyRevision(LEGACY_TS);

/**
 * LmdbOpenHooks: for tests only. migrationChunkKeys overrides MIGRATION_CHUNK_KEYS;
 * migrationChunksMax makes open fail after that many migration chunks, as a crash would.
 */
export interface LmdbOpenHooks {
  readonly migrationChunkKeys?: number;
  readonly migrationChunksMax?: number;
}

/**
 * migrateToRevisions migrates a store written before format 3, or left by the development build,
 * before the engine serves it (see the header): it records the marker and raises the metadata
 * when the migration has not started, then prefixes the values (migrateValues) while a marker
 * says it has not finished. `dbNames`: the named databases found at open (namedDbs).
 */
export async function migrateToRevisions(
  fs: FileSystem,
  dir: string,
  meta: Meta,
  db: Db,
  metaDb: SubDb,
  dbNames: readonly string[],
  hooks: LmdbOpenHooks,
): Promise<void> {
  // A development store's values are unprefixed until the transaction that ends its migration
  // drops the revision database; before that, a marker says how far the migration got.
  const devDb: SubDb | undefined = dbNames.includes(DEV_REVISION_DB_NAME)
    ? db.openDB<Buffer, Buffer>(DEV_REVISION_DB_NAME, { keyEncoding: 'binary', encoding: 'binary' })
    : undefined;
  const devStore = devDb !== undefined && metaDb.get(MIGRATION_KEY) === undefined;
  if (meta.format < FORMAT_REVISION || devStore) {
    // Values without a prefix. Nothing is prefixed before the metadata says FORMAT_REVISION,
    // so a marker left by an interrupted earlier attempt is simply started over. (Until the
    // metadata is raised, an older build would count the meta database as a key in stats.)
    const legacyKeys = hasStoredKeys(db);
    await metaDb.batch(() => {
      void metaDb.put(MIGRATION_KEY, MIGRATION_NOT_STARTED);
      if (legacyKeys) void metaDb.put(LAST_TS_KEY, encodeU64LE(LEGACY_TS));
    });
    // The marker must be durable before the raised metadata can be.
    await syncEnv(db);
    if (meta.format < FORMAT_REVISION) {
      await writeMeta(fs, dir, { ...meta, format: FORMAT_REVISION, generation: meta.generation + 1 });
    }
  }
  if (metaDb.get(MIGRATION_KEY) !== undefined) await migrateValues(db, metaDb, devDb, hooks);
}

function hasStoredKeys(db: Db): boolean {
  for (const _ of db.getKeys({ start: STORED_KEYS_START, end: STORED_KEYS_END, limit: 1, snapshot: false }))
    return true;
  return false;
}

/**
 * migrateValues prefixes every value after the migration marker with LEGACY_REVISION, one chunk
 * per write transaction that also moves the marker, and at the end removes the marker (and drops
 * a development store's revision database) in one more (see the header). Open runs it before the
 * engine exists, so nothing else writes meanwhile.
 */
async function migrateValues(
  db: Db,
  metaDb: SubDb,
  devDb: SubDb | undefined,
  hooks: LmdbOpenHooks,
): Promise<void> {
  const chunkKeys = hooks.migrationChunkKeys ?? MIGRATION_CHUNK_KEYS;
  for (let chunks = 0; ; chunks++) {
    if (hooks.migrationChunksMax !== undefined && chunks >= hooks.migrationChunksMax) {
      throw new Error('migration stopped by a test hook');
    }
    const marker = metaDb.getBinary(MIGRATION_KEY);
    if (marker === undefined) return;
    const started = marker[0] === KEY_PREFIX;
    const chunk: { key: Buffer; value: Buffer }[] = [];
    let bytes = 0;
    for (const { key, value } of db.getRange({
      start: started ? Buffer.from(marker) : STORED_KEYS_START,
      end: STORED_KEYS_END,
      exclusiveStart: started,
      snapshot: false,
    })) {
      // Keys and values from a binary lmdb-js range are fresh copies.
      chunk.push({ key, value: encodeStoredValue(LEGACY_REVISION, value) });
      bytes += key.length + value.length;
      if (chunk.length >= chunkKeys || bytes >= MIGRATION_CHUNK_BYTES) break;
    }
    const last = chunk.at(-1);
    await db.batch(() => {
      for (const { key, value } of chunk) void db.put(key, value);
      if (last !== undefined) void metaDb.put(MIGRATION_KEY, last.key);
      else {
        void metaDb.remove(MIGRATION_KEY);
        if (devDb !== undefined) void devDb.drop();
      }
    });
    if (last === undefined) {
      await syncEnv(db);
      return;
    }
  }
}
