// startServer wires one Cairn server process: the store, metrics, the RESP server and (when
// asked) the HTTP API; close() shuts it down gracefully: stop accepting, finish in-flight
// requests, flush and fsync (Db.close), release the directory lock.

import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { Db, open } from '../db/db.js';
import { type Clock, systemClock } from '../io/clock.js';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { type ClientAddrs, readIdentity } from '../replica/identity.js';
import { ClusterMember } from '../replica/member.js';
import { retireReadersOnChange } from '../replica/member-readers.js';
import type { CaskEvent } from '../storage/cask/cask-options.js';
import { CairnError, InvalidArgumentError } from '../storage/errors.js';
import { flagName, hasMemberFlags, type ServerConfig, type SettingName } from './config.js';
import type { createHttpApp } from './http/index.js';
import { createMetrics } from './metrics.js';
import { registerRaftMetrics } from './raft-metrics.js';
import { createRespServer } from './resp/index.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface RunningServer {
  readonly db: Db;
  /** cluster: the member this server fronts; undefined for a single server. */
  readonly cluster: ClusterMember | undefined;
  /** failure: why the server stopped by itself (a cluster member's log or engine failed). */
  readonly failure: () => unknown;
  readonly resp: Endpoint;
  readonly http: Endpoint | undefined;
  /** close shuts down gracefully; idempotent. */
  close(): Promise<void>;
  /** closed resolves once the server has shut down (after close(), SHUTDOWN, or a fatal error). */
  readonly closed: Promise<void>;
}

/** ServerStartError: the server could not start (bad address, port in use, ...). */
/** ServerStartError: the server could not start (an address in use, a bad address): an operating error. */
export class ServerStartError extends CairnError {
  constructor(message: string) {
    super('IO', message);
  }
}

export function parseEndpoint(text: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || port > 65535) throw new ServerStartError(`invalid address '${text}': expected HOST:PORT`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export async function startServer(
  config: ServerConfig,
  logger: Logger,
  version: string,
  /** clock: the store's and the RESP server's time source (tests substitute their own). */
  clock: Clock = systemClock,
  /** fs: the file system under the store (the failpoints of src/io/failpoints.ts wrap it). */
  fs: FileSystem = nodeFileSystem,
  /**
   * stop: aborted when the server should stop before it has finished starting (a SIGTERM while a
   * new member waits for its peers' start check): the start then ends, closing what it opened.
   */
  stop?: AbortSignal,
): Promise<RunningServer> {
  // Checked before anything is opened; a cluster member may listen elsewhere (clientAddrsOf).
  parseEndpoint(config.addr);
  if (config.http !== undefined) parseEndpoint(config.http);
  // The HTTP API's modules (fastify, its schema compiler: about 400 files) load beside the
  // store's opening, and not at all for a server without HTTP (kvs-server, --http off).
  let httpModule: Promise<typeof import('./http/index.js')> | undefined =
    config.http === undefined ? undefined : import('./http/index.js');
  let failure: unknown;
  let close: () => Promise<void> = () => Promise.resolve();
  const onEvent = (event: CaskEvent): void => {
    if (event.type === 'recovered') {
      const problems = (event.detail.problems as unknown[] | undefined)?.length ?? 0;
      (problems > 0 ? logger.warn.bind(logger) : logger.info.bind(logger))(
        { recovery: event.detail },
        'recovered',
      );
    } else if (
      event.type === 'compaction-failed' ||
      event.type === 'write-failed' ||
      event.type === 'record-damaged'
    ) {
      logger.error({ event: event.detail }, event.type);
    } else {
      logger.debug({ event: event.detail }, event.type);
    }
  };
  const cluster = (await isClusterMode(config))
    ? await openMember(config, logger, clock, fs, onEvent, (err) => {
        failure = err;
        void close();
      })
    : undefined;
  let db: Db;
  if (cluster === undefined) {
    db = await open(config.dir, {
      ...(config.engine === undefined ? {} : { engine: config.engine }),
      durability: config.sync,
      cacheBytes: config.cacheBytes,
      clock,
      fs,
      onEvent,
    });
  } else {
    db = new Db(path.resolve(config.dir), cluster.engine, { clock, onEvent });
    // Open transactions, snapshots and watches cannot outlive a change of leadership or of the
    // engine (member-readers.ts).
    retireReadersOnChange(cluster.replica, db.pipeline.mvcc, (ready) =>
      logger.info(
        { leaderReady: ready, leader: cluster.replica.leader.toString(16) },
        ready ? 'leading' : 'not leading',
      ),
    );
  }
  const addrs = clientAddrsOf(config, cluster?.identity.clientAddrs);
  // Addresses other than the settings' can only be the recorded ones.
  if (addrs.resp !== config.addr || addrs.http !== (config.http ?? ''))
    logger.info(
      { resp: addrs.resp, http: addrs.http || 'off' },
      'serving clients where this member did before (member.json); --addr and --http change it',
    );
  if (cluster !== undefined && addrs.http === '') {
    // Without it, every other member's HTTP requests would wait for this one whenever it leads,
    // and the operator commands (cairn member, move-leader, snapshot save, check hash) with them.
    await db.close();
    await discardFirstStart(cluster, logger);
    throw new InvalidArgumentError(
      "a cluster member must serve HTTP (--http HOST:PORT): the other members forward HTTP requests to the leader's, and the operator commands (cairn member, move-leader, snapshot save, check hash) use it; keep it on a private address instead of turning it off",
    );
  }
  const respAt = parseEndpoint(addrs.resp);
  const httpAt = addrs.http === '' ? undefined : parseEndpoint(addrs.http);
  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const metrics = createMetrics(db);
  if (cluster !== undefined) registerRaftMetrics(metrics.registry, cluster);
  let closing: Promise<void> | undefined;
  close = (): Promise<void> => {
    closing ??= (async () => {
      logger.info('shutting down');
      try {
        await resp.close();
        await app?.close();
      } finally {
        await db.close();
        logger.info('stopped');
        resolveClosed();
      }
    })();
    return closing;
  };
  const resp = createRespServer({
    db,
    metrics,
    logger: logger.child({ component: 'resp' }),
    requirePass: config.requirepass,
    maxClients: config.maxclients,
    limits: { txnIdleMs: config.txnIdleMs },
    version,
    clock,
    cluster,
    onShutdown: () => {
      void close();
    },
  });
  let app: ReturnType<typeof createHttpApp> | undefined;
  try {
    await resp.listen(respAt.host, respAt.port);
    if (httpAt !== undefined) {
      httpModule ??= import('./http/index.js');
      const { createHttpApp } = await httpModule;
      app = createHttpApp({
        db,
        metrics,
        version,
        logger: logger.child({ component: 'http' }),
        cluster,
        password: config.requirepass,
      });
      await app.listen({ host: httpAt.host, port: httpAt.port });
    }
  } catch (err) {
    await resp.close().catch(() => {});
    await app?.close().catch(() => {});
    await db.close();
    await discardFirstStart(cluster, logger);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ServerStartError(`address already in use: ${listenTarget(err)}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new ServerStartError(`cannot listen: ${describe(err)}`);
    }
    if (err instanceof CairnError) throw err;
    throw new ServerStartError(`cannot start: ${describe(err)}`);
  }
  const respAddress = resp.address();
  const httpAddress = app?.server.address() as AddressInfo | null | undefined;
  if (cluster !== undefined) {
    // A member's connect can wait for its peers indefinitely (the start check of a first start):
    // a stop ends the wait at once and closes what the start opened (the check's own loop then
    // ends at its next round; its timers keep no process alive).
    let onStop = (): void => {};
    const stopped = new Promise<never>((_, reject) => {
      onStop = () => {
        void close();
        reject(new ServerStartError('stopped before the start finished'));
      };
    });
    if (stop?.aborted === true) onStop();
    else stop?.addEventListener('abort', onStop, { once: true });
    try {
      const connecting = cluster.connect({
        resp: `${advertised(respAddress.host)}:${respAddress.port}`,
        http: httpAddress ? `${advertised(httpAddress.address)}:${httpAddress.port}` : '',
      });
      const peer = stop === undefined ? await connecting : await Promise.race([connecting, stopped]);
      logger.info({ peer, member: cluster.identity.name }, 'peer transport listening');
      await cluster.recordClientAddrs(addrs);
      stop?.removeEventListener('abort', onStop);
    } catch (err) {
      stop?.removeEventListener('abort', onStop);
      await close();
      await discardFirstStart(cluster, logger);
      throw err instanceof CairnError
        ? err
        : new ServerStartError(`cannot listen for peers: ${describe(err)}`);
    }
  }
  return {
    db,
    cluster,
    failure: () => failure,
    resp: { host: respAddress.host, port: respAddress.port },
    http: httpAddress ? { host: httpAddress.address, port: httpAddress.port } : undefined,
    close,
    closed,
  };
}

/**
 * discardFirstStart: a member's first start that failed before it connected leaves nothing
 * behind (ClusterMember.discardIfNew), so the corrected command line starts it afresh.
 */
async function discardFirstStart(cluster: ClusterMember | undefined, logger: Logger): Promise<void> {
  try {
    if (await cluster?.discardIfNew())
      logger.info('this first start failed: the member directory it created was removed');
  } catch (err) {
    logger.warn({ err }, 'this first start failed, and what it created could not all be removed');
  }
}

/** isClusterMode: cluster flags were given, or the directory records a cluster member. */
async function isClusterMode(config: ServerConfig): Promise<boolean> {
  if (hasMemberFlags(config)) return true;
  if ((await readIdentity(nodeFileSystem, config.dir)) !== undefined) return true;
  refuseClusterOnly(config);
  return false;
}

/** CLUSTER_ONLY: settings that mean something only to a cluster member. */
const CLUSTER_ONLY = ['initialClusterState', 'clusterToken', 'requestTimeoutMs', 'snapshotCount'] as const;

/**
 * refuseClusterOnly: a single server started with a member's settings is a mistake (a forgotten
 * --name, say): refused, rather than a single server whose store then makes the directory
 * unusable for the member that was meant.
 */
function refuseClusterOnly(config: ServerConfig): void {
  const set = CLUSTER_ONLY.filter((name) => config.given?.has(name) === true).map((n) => `--${flagName(n)}`);
  if (set.length === 0) return;
  throw new InvalidArgumentError(
    `${set.join(', ')} ${set.length === 1 ? 'applies' : 'apply'} only to a cluster member, and ${config.dir} is not a member's directory: a member's first start also needs --name, --listen-peer and --initial-cluster (without them and these, cairn serve runs a single server)`,
  );
}

function openMember(
  config: ServerConfig,
  logger: Logger,
  clock: Clock,
  fs: FileSystem,
  onEvent: (event: CaskEvent) => void,
  onFatal: (err: unknown) => void,
): Promise<ClusterMember> {
  if (config.engine === 'lmdb') {
    throw new InvalidArgumentError(
      'a cluster member runs the cask engine; --engine lmdb is for single servers',
    );
  }
  return ClusterMember.open({
    dir: config.dir,
    flags: {
      name: config.name,
      listenPeer: config.listenPeer,
      initialCluster: config.initialCluster,
      initialClusterState: config.initialClusterState,
      clusterToken: config.clusterToken,
    },
    cask: { cacheBytes: config.cacheBytes, onEvent },
    clock,
    logger: logger.child({ component: 'raft' }),
    requestTimeoutMs: config.requestTimeoutMs,
    snapshotEntries: config.snapshotCount,
    fs,
    onFatal,
  });
}

/**
 * clientAddrsOf: where to serve clients: the addresses given (a flag, the environment or the
 * config file), else, for a cluster member, where it served before (`recorded`, member.json), so
 * that a restart with only --dir resumes the member on its ports; else the defaults. A config
 * built without `given` (embedding, tests) is taken as given whole.
 */
function clientAddrsOf(config: ServerConfig, recorded: ClientAddrs | undefined): ClientAddrs {
  const given = config.given;
  const keep = (name: SettingName): boolean =>
    recorded !== undefined && given !== undefined && !given.has(name);
  return {
    resp: keep('addr') ? (recorded as ClientAddrs).resp : config.addr,
    http: keep('http') ? (recorded as ClientAddrs).http : (config.http ?? ''),
  };
}

/** advertised: the address peers and forwarded clients can reach (a wildcard listen means loopback here). */
function advertised(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

/** listenTarget: the HOST:PORT a failed listen named (Node's error carries them), else its message. */
function listenTarget(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  return e.address !== undefined && e.port !== undefined ? `${e.address}:${e.port}` : describe(err);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
