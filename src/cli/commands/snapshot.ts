// cairn snapshot save|restore: consistent online snapshots as archive files (docs/backup.md).
//
//   cairn snapshot save FILE --endpoints HOST:PORT,...  a running server's (or cluster members')
//                                                   HTTP addresses, tried in order: GET /v1/snapshot
//                                                   (--endpoint HOST:PORT: the same, one address)
//   cairn snapshot save FILE --dir DIR              a stopped store, opened here
//   cairn snapshot restore FILE --dir DIR           into a new or empty DIR: a single server,
//       [--name N --initial-cluster N=HOST:PORT [--cluster-token T] [--listen-peer HOST:PORT]]
//                                                   or the first member of a NEW one-member cluster
//
// save writes FILE.tmp, verifies every checksum of what it received, fdatasyncs, and only then
// renames it to FILE (a FILE that exists is refused): a FILE is always a whole archive.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { Command } from 'commander';
import { nodeFileSystem } from '../../io/node-file-system.js';
import {
  checkName,
  checkSeedable,
  DEFAULT_CLUSTER_TOKEN,
  parseInitialCluster,
  resolveIdentity,
} from '../../replica/identity.js';
import { CairnError } from '../../storage/errors.js';
import {
  type ArchiveSummary,
  readFileChunks,
  restoreArchive,
  verifyArchive,
  writeArchive,
} from '../../storage/snapshot-archive.js';
import { parseAddress } from '../address.js';
import {
  adminHeaders,
  answerMessage,
  describeFetchError,
  parseEndpoints,
  unreachableReason,
} from '../admin-client.js';
import { write } from '../output.js';
import { type Cli, CliError } from '../program.js';
import { withDb } from '../store.js';
import { addPasswordOption } from './cluster-options.js';

/** SAVE_TIMEOUT_MS: a server that sends nothing for this long has failed the download. */
const SAVE_IDLE_TIMEOUT_MS = 60_000;

export function registerSnapshot(program: Command, _cli: Cli): void {
  const snapshot = program
    .command('snapshot')
    .description('save a consistent online snapshot, or restore one');
  const save = snapshot
    .command('save')
    .description(
      'save a consistent snapshot of a running server (--endpoints) or a stopped store (--dir) to FILE',
    )
    .argument('<file>', 'the archive to write (must not exist)')
    .option(
      '--endpoints <HOST:PORT,...>',
      "a running server's HTTP address, or cluster members' (any one will do), tried in order",
    )
    .option('--endpoint <HOST:PORT>', 'the same as --endpoints with one address')
    .option('-d, --dir <dir>', 'a stopped store directory, opened here')
    .option('--json', 'print the summary as one JSON object');
  addPasswordOption(save).action(async (file: string, options: Record<string, unknown>) => {
    const given = [options.endpoints, options.endpoint].filter((e) => typeof e === 'string');
    const dir = typeof options.dir === 'string' ? options.dir : undefined;
    if (given.length + (dir === undefined ? 0 : 1) !== 1) {
      throw new CliError('snapshot save needs exactly one of --endpoints HOST:PORT,... or --dir DIR');
    }
    const endpoints = given.length === 0 ? undefined : parseEndpoints(given[0] as string);
    const target = path.resolve(file);
    if ((await nodeFileSystem.kind(target)) !== undefined)
      throw new CliError(`${target} exists; choose a new file`);
    const summary =
      endpoints === undefined
        ? await withDb(
            { dir: dir as string, engine: undefined },
            true,
            async (db) => {
              if (db.engineName !== 'cask') {
                // The store is stopped (opened here): its directory is the copy to take.
                throw new CliError(
                  `the ${db.engineName} engine has no snapshot archive; this store is stopped, so copy its directory instead (cp -a ${path.resolve(dir as string)} ...)`,
                );
              }
              const source = await db.backupSource();
              try {
                return await saveArchive(target, writeArchive(source));
              } finally {
                await source.close();
              }
            },
            true,
          )
        : await saveFromFirst(target, endpoints);
    await report(options.json === true, { file: target, ...summary }, `saved ${target}`);
  });

  snapshot
    .command('restore')
    .description(
      'restore FILE into a new or empty DIR: a single server, or with --name and --initial-cluster the first member of a new cluster',
    )
    .argument('<file>', 'an archive written by `cairn snapshot save`')
    .requiredOption('-d, --dir <dir>', 'the directory to create (or an empty one)')
    .option('--name <NAME>', 'seed a new cluster: this member name')
    .option('--initial-cluster <NAME=HOST:PORT>', 'seed a new cluster: exactly one member, this one')
    .option('--cluster-token <TOKEN>', `seed a new cluster: its token (default ${DEFAULT_CLUSTER_TOKEN})`)
    .option('--listen-peer <HOST:PORT>', 'seed a new cluster: where this member listens for peers')
    .option('--json', 'print the summary as one JSON object')
    .action(async (file: string, options: Record<string, unknown>) => {
      const dir = path.resolve(options.dir as string);
      const flags = clusterFlags(options);
      if (flags !== undefined) {
        // Refused before a byte is written: only a one-member new cluster can be seeded.
        checkName(flags.name, '--name');
        const members = parseInitialCluster(
          flags.initialCluster,
          flags.clusterToken ?? DEFAULT_CLUSTER_TOKEN,
        );
        if (!members.some((m) => m.name === flags.name)) {
          throw new CliError(`--name ${flags.name} is not the member --initial-cluster lists`);
        }
        checkSeedable(members, flags);
      }
      const source = path.resolve(file);
      const kind = await nodeFileSystem.kind(source);
      if (kind === undefined) throw new CliError(`no such file: ${source}`);
      if (kind !== 'file')
        throw new CliError(
          `${source} is ${kind === 'directory' ? 'a directory' : 'not a regular file'}, not a snapshot archive (give the FILE cairn snapshot save wrote)`,
        );
      // A restore that fails removes the files it wrote (restoreArchive), and the directory too
      // when it made it: nothing is left behind.
      const existed = (await nodeFileSystem.kind(dir)) !== undefined;
      let summary: ArchiveSummary;
      try {
        summary = await restoreArchive(nodeFileSystem, readFileChunks(nodeFileSystem, source), dir);
      } catch (err) {
        if (!existed) await fsp.rmdir(dir).catch(() => {});
        throw err;
      }
      let member: string | undefined;
      if (flags !== undefined) {
        const { identity } = await resolveIdentity(nodeFileSystem, dir, flags, true, { seeded: true });
        member = identity.name;
      }
      await report(
        options.json === true,
        { dir, ...summary, ...(member === undefined ? {} : { member }) },
        member === undefined
          ? `restored ${dir} (start it with: cairn serve --dir ${dir})`
          : `restored ${dir} as member ${member} of a new one-member cluster (start it with cairn serve --dir ${dir} and the same --name/--initial-cluster; add members with cairn member add)`,
      );
    });
}

interface SeedFlags {
  readonly name: string;
  readonly initialCluster: string;
  readonly clusterToken: string | undefined;
  readonly listenPeer: string | undefined;
}

/** clusterFlags reads restore's cluster flags: all of --name and --initial-cluster, or none. */
function clusterFlags(options: Record<string, unknown>): SeedFlags | undefined {
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const name = str(options.name);
  const initialCluster = str(options.initialCluster);
  const clusterToken = str(options.clusterToken);
  const listenPeer = str(options.listenPeer);
  if (name === undefined && initialCluster === undefined) {
    if (clusterToken !== undefined || listenPeer !== undefined) {
      throw new CliError(
        '--cluster-token and --listen-peer seed a cluster member: give --name and --initial-cluster too',
      );
    }
    return undefined;
  }
  if (name === undefined || initialCluster === undefined) {
    throw new CliError('seeding a cluster member needs both --name and --initial-cluster');
  }
  return { name, initialCluster, clusterToken, listenPeer };
}

/**
 * saveFromFirst saves the snapshot of the first endpoint that serves one whole: a member that
 * cannot be reached, refuses (no leader, repairing) or breaks off is passed over for the next
 * (each member's snapshot is the cluster's state at a linearizable point).
 */
async function saveFromFirst(target: string, endpoints: readonly string[]): Promise<ArchiveSummary> {
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    try {
      return await saveArchive(target, download(endpoint));
    } catch (err) {
      if (endpoints.length === 1) throw err;
      failures.push((err as Error).message);
    }
  }
  throw new CliError(`no endpoint served a snapshot: ${failures.join('; ')}`);
}

/** download streams GET /v1/snapshot from a server's HTTP address. */
async function* download(endpoint: string): AsyncGenerator<Uint8Array> {
  const { host, port } = parseAddress(endpoint);
  const hostPart = host.includes(':') ? `[${host}]` : host;
  // Any cluster member serves its own snapshot (never proxied: src/server/http/cluster.ts),
  // after making itself linearizable (src/server/http/routes-snapshot.ts).
  const url = `http://${hostPart}:${port}/v1/snapshot`;
  const abort = new AbortController();
  let idle = setTimeout(() => abort.abort(), SAVE_IDLE_TIMEOUT_MS);
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: abort.signal, headers: adminHeaders() });
    } catch (err) {
      throw new CliError(`could not reach ${endpoint}: ${unreachableReason(describeFetchError(err))}`);
    }
    if (!res.ok || res.body === null) {
      const text = await res.text().catch(() => '');
      throw new CliError(
        `${endpoint} refused the snapshot (HTTP ${res.status}): ${answerMessage(res.status, errorMessage(text))}`,
      );
    }
    for await (const chunk of res.body) {
      clearTimeout(idle);
      idle = setTimeout(() => abort.abort(), SAVE_IDLE_TIMEOUT_MS);
      yield chunk;
    }
  } finally {
    clearTimeout(idle);
  }
}

function errorMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: string } };
    return body.error?.message ?? text;
  } catch {
    return text;
  }
}

/**
 * saveArchive writes an archive stream to FILE.tmp, verifies it whole, fdatasyncs it and renames
 * it to FILE (directory fsynced); on any failure FILE.tmp is removed.
 */
async function saveArchive(target: string, chunks: AsyncIterable<Uint8Array>): Promise<ArchiveSummary> {
  const fs = nodeFileSystem;
  const tmp = `${target}.tmp`;
  await fs.unlink(tmp);
  try {
    const file = await fs.open(tmp, 'create');
    try {
      let at = 0;
      for await (const chunk of chunks) {
        await file.write(chunk, at);
        at += chunk.length;
      }
      await file.datasync();
    } finally {
      await file.close();
    }
    const summary = await verifyArchive(readFileChunks(fs, tmp));
    await fs.rename(tmp, target);
    await fs.syncDir(path.dirname(target));
    return summary;
  } catch (err) {
    await fs.unlink(tmp).catch(() => {});
    // A system error (ENOSPC, EACCES) names the file it could not write.
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (!(err instanceof CairnError) && typeof code === 'string' && /^E[A-Z]+$/.test(code))
      throw new CliError(`could not write ${target}: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}

async function report(
  json: boolean,
  summary: Record<string, unknown> & ArchiveSummary,
  headline: string,
): Promise<void> {
  if (json) {
    await write(`${JSON.stringify(summary)}\n`);
    return;
  }
  await write(
    [
      headline,
      `files:   ${summary.files}`,
      `bytes:   ${summary.bytes}`,
      `keys:    ${summary.keys}`,
      `last ts: ${summary.lastTs}`,
      '',
    ].join('\n'),
  );
}
