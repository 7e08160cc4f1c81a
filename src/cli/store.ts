// Opening the store for one command: the `--dir` and `--engine` options every data command
// takes, and withDb, which opens, runs the command and always closes (releasing the lock).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Command, Option } from 'commander';
import { type Db, ENGINE_NAMES, type EngineName, open } from '../db/db.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { holdsStoreFiles } from '../storage/cask/cask-engine.js';
import { ClusterMemberDirectoryError, ReadOnlyError } from '../storage/errors.js';
import { readMeta } from '../storage/meta.js';
import { CliError } from './program.js';

export interface StoreOptions {
  /** dir: the data directory (default: the current directory, like kvs). */
  readonly dir: string;
  /** engine: undefined means the engine recorded in the directory, or cask for a new one. */
  readonly engine: EngineName | undefined;
}

/** addStoreOptions adds `-d, --dir <dir>` and `--engine <name>` to a command. */
export function addStoreOptions(command: Command): Command {
  return command
    .option('-d, --dir <dir>', 'data directory (default: the current directory)')
    .addOption(
      new Option(
        '--engine <engine>',
        'storage engine for a new directory (default: the one recorded in the directory, else cask)',
      ).choices(ENGINE_NAMES),
    );
}

/** storeOptions reads the options added by addStoreOptions from commander's parsed values. */
export function storeOptions(values: Record<string, unknown>): StoreOptions {
  const dir = typeof values.dir === 'string' ? values.dir : process.cwd();
  const engine = ENGINE_NAMES.find((name) => name === values.engine);
  return { dir, engine };
}

/**
 * withDb opens the store, runs `fn`, and closes the store whatever happens. With
 * `mustExist`, a directory that does not exist, or holds no store, is an error instead of being
 * created (reads should not leave an empty store behind a typo: `cairn stats` in a directory
 * of one's own used to write META-1, META-2 and a data file into it).
 */
export async function withDb<T>(
  options: StoreOptions,
  mustExist: boolean,
  fn: (db: Db) => Promise<T>,
  /** readsOnly: `fn` only reads, so a directory that cannot be written is opened read-only. */
  readsOnly = false,
): Promise<T> {
  if (mustExist) {
    requireDirectory(options.dir);
    await requireStore(options.dir);
  }
  const base = options.engine === undefined ? {} : { engine: options.engine };
  let db: Db;
  try {
    db = await open(options.dir, base);
  } catch (err) {
    // A command that only reads (get, scan, stats) works on a directory it may not write: a
    // read-only file system, a backup, a snapshot, a stopped cluster member's directory.
    if (!(readsOnly && (err instanceof ReadOnlyError || err instanceof ClusterMemberDirectoryError)))
      throw err;
    db = await open(options.dir, { ...base, readOnly: true });
  }
  let result: T;
  try {
    result = await fn(db);
  } catch (err) {
    // Report the command's error, not a secondary one from closing.
    await db.close().catch(() => undefined);
    throw err;
  }
  await db.close();
  return result;
}

/** requireDirectory throws a CliError unless `dir` is an existing directory. */
export function requireDirectory(dir: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new CliError(`no such directory: ${path.resolve(dir)}`);
  }
  if (!stat.isDirectory()) throw new CliError(`not a directory: ${path.resolve(dir)}`);
}

/**
 * requireStore throws a CliError when `dir` holds no store at all: no metadata copy and no data.
 * A directory with store files but no valid metadata is left to `open`, which refuses it.
 */
async function requireStore(dir: string): Promise<void> {
  const { copiesFound } = await readMeta(nodeFileSystem, dir);
  if (copiesFound > 0) return;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return; // open reports why the directory cannot be read
  }
  if (!holdsStoreFiles(names)) {
    throw new CliError(`no store in ${path.resolve(dir)} (\`cairn set\` creates one)`);
  }
}
