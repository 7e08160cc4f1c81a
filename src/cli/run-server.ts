// What `cairn serve` and `kvs-server` share: start the server, log where it listens, and shut
// down gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight requests, fsync, unlock).
// A cluster member that learns it was removed from the cluster shuts down the same way and
// fails with RemovedMemberStoppedError (exit code 3), as etcd's removed member stops: the member
// only reports its removal (ClusterMember.removal); stopping the process is this layer's call.
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { systemClock } from '../io/clock.js';
import { failpointFileSystem } from '../io/failpoints.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { RemovedMemberStoppedError } from '../replica/errors.js';
import { RAFT_DIR } from '../replica/identity.js';
import { describeRemoval, type MemberRemoval } from '../replica/removal.js';
import { hasMemberFlags, type ServerConfig } from '../server/config.js';
import { createLogger } from '../server/logger.js';
import { type RunningServer, ServerStartError, startServer } from '../server/server.js';
import { DirLock, LOCK_FILE } from '../storage/dir-lock.js';
import { META_FILES } from '../storage/meta.js';
import { CliError } from './program.js';
import { packageVersion } from './version.js';

export async function runServer(
  name: string,
  config: ServerConfig,
  onListening?: (server: RunningServer) => void,
): Promise<void> {
  const logger = createLogger({ level: config.logLevel, name });
  const version = packageVersion();
  // CAIRN_FAILPOINTS: disk faults for the robustness tests (src/io/failpoints.ts); unset in use.
  const fs = failpointFileSystem(process.env.CAIRN_FAILPOINTS, nodeFileSystem);
  if (fs !== nodeFileSystem) logger.warn({ failpoints: process.env.CAIRN_FAILPOINTS }, 'failpoints armed');
  await checkServerDir(config.dir);
  const before = await beforeFirstStart(config);
  // A cluster member's failed first start removes what it created itself (discardIfNew), but
  // not the directory: an empty one this start made is removed here, as a single server's is.
  const memberDirExisted = hasMemberFlags(config)
    ? await fsp.stat(config.dir).then(
        () => true,
        () => false,
      )
    : undefined;
  // A signal while starting (a new member can wait for its peers as long as they are away) stops
  // the start gracefully too: what it opened is closed, and a member's first start undone.
  const starting = new AbortController();
  const stopStarting = (signal: string) => {
    logger.info({ signal }, 'signal received while starting: stopping');
    starting.abort();
  };
  process.once('SIGTERM', stopStarting);
  process.once('SIGINT', stopStarting);
  let server: RunningServer;
  try {
    server = await startServer(config, logger, version, systemClock, fs, starting.signal);
  } catch (err) {
    // A start that never served (the address is in use or not available) must not leave a new
    // store behind: its metadata would fix the directory's engine for the next start.
    if (before !== undefined && err instanceof ServerStartError)
      await undoFirstStart(config.dir, before, logger);
    // Only an empty directory goes (rmdir): a member that had started keeps everything.
    if (memberDirExisted === false) await fsp.rmdir(config.dir).catch(() => {});
    if (starting.signal.aborted) {
      logger.info(
        { reason: err instanceof Error ? err.message : String(err) },
        'stopped before the start finished',
      );
      return;
    }
    throw err;
  } finally {
    process.off('SIGTERM', stopStarting);
    process.off('SIGINT', stopStarting);
  }
  if (starting.signal.aborted) {
    await server.close();
    logger.info('stopped before the start finished');
    return;
  }
  logger.info(
    {
      version,
      // kvs-server speaks the course's vocabulary, where our own engine is called 'kvs'.
      engine: name === 'kvs-server' && server.db.engineName === 'cask' ? 'kvs' : server.db.engineName,
      addr: `${server.resp.host}:${server.resp.port}`,
      http: server.http === undefined ? undefined : `${server.http.host}:${server.http.port}`,
      dir: server.db.dir,
      sync: server.cluster === undefined ? config.sync : 'raft (a quorum fsyncs the log)',
      member: server.cluster?.identity.name,
      // startupMs: from process start to listening (the course asks for under a second).
      startupMs: Math.round(process.uptime() * 1000),
    },
    `${name} ${version} listening on ${server.resp.host}:${server.resp.port}`,
  );
  onListening?.(server);
  const stop = (signal: string) => {
    logger.info({ signal }, 'signal received');
    void server.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  let removal: MemberRemoval | undefined;
  void server.cluster?.removal.then((r) => {
    removal = r;
    logger.info({ member: r.name, recorded: r.recorded, handedOver: r.handedOver }, 'removed: shutting down');
    void server.close();
  });
  await server.closed;
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  if (removal !== undefined) {
    throw new RemovedMemberStoppedError(describeRemoval(removal), path.resolve(config.dir), removal.recorded);
  }
  const failure = server.failure();
  if (failure !== undefined) {
    // A cluster member whose log or engine failed stops; a restart recovers and catches up.
    throw failure instanceof Error ? failure : new Error(String(failure));
  }
}

/**
 * checkServerDir refuses a data directory path that names a file, before the server looks for
 * a cluster member's files inside it (which would report ENOTDIR on `raft/member.json`).
 */
async function checkServerDir(dir: string): Promise<void> {
  const st = await fsp.stat(dir).catch(() => undefined);
  if (st !== undefined && !st.isDirectory()) {
    throw new CliError(
      `the data directory ${path.resolve(dir)} is a ${st.isFile() ? 'file' : 'special file'}, not a directory: give --dir the path of a directory (a new one is created)`,
    );
  }
}

/** FirstStart: a data directory that held no store before this start, and what it held. */
interface FirstStart {
  readonly existed: boolean;
  readonly names: ReadonlySet<string>;
}

/**
 * beforeFirstStart: what the data directory holds when it holds no store yet (no metadata, no
 * cluster member), for undoFirstStart; undefined for an existing store or a cluster member
 * (whose failed first start the server undoes itself: ClusterMember.discardIfNew).
 */
async function beforeFirstStart(config: ServerConfig): Promise<FirstStart | undefined> {
  if (hasMemberFlags(config)) return undefined;
  let names: string[];
  try {
    names = await fsp.readdir(config.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { existed: false, names: new Set() };
    return undefined; // the open reports it
  }
  const meta: readonly string[] = META_FILES;
  if (names.some((name) => name === RAFT_DIR || meta.includes(name))) return undefined;
  return { existed: true, names: new Set(names) };
}

/**
 * undoFirstStart removes what a failed first start created in `dir`: the entries that were not
 * there before it (a pre-existing file is never touched), and the directory itself if the start
 * created it. Only under the directory lock: a process that opened the store meanwhile keeps it.
 */
async function undoFirstStart(
  dir: string,
  before: FirstStart,
  logger: ReturnType<typeof createLogger>,
): Promise<void> {
  let lock: DirLock;
  try {
    lock = await DirLock.acquire(dir);
  } catch {
    return; // missing (nothing was created), or another process has it open: leave it
  }
  const created: string[] = [];
  try {
    for (const name of await fsp.readdir(dir)) {
      if (before.names.has(name) || name === LOCK_FILE) continue;
      await fsp.rm(path.join(dir, name), { recursive: true, force: true });
      created.push(name);
    }
  } catch (err) {
    logger.warn({ err, dir }, 'this first start failed, and what it created could not all be removed');
  } finally {
    await lock.release();
  }
  if (!before.existed) await fsp.rmdir(dir).catch(() => {});
  if (created.length > 0)
    logger.info(
      { dir, removed: created },
      'this first start failed: the store files it created were removed',
    );
}
