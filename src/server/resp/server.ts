// createRespServer: the Redis-compatible server over a Db. Process wiring (flags, signals, logs)
// lives in src/cli; this module is the listener, the connections and the command table.

import * as net from 'node:net';
import type { Db } from '../../db/db.js';
import { type Clock, systemClock } from '../../io/clock.js';
import type { Durability } from '../../storage/engine.js';
import { ServerCounters } from '../counters.js';
import { OUTPUT_SWEEP_MS, OutputBudget } from '../output-budget.js';
import type { ClusterFront } from './cluster-front.js';
import { ClusterPublisher, FanIn } from './cluster-publish.js';
import { COMMAND_TABLE } from './commands/index.js';
import { Connection } from './connection.js';
import { UpstreamPool } from './forwarder.js';
import { LatestKeyStore } from './key-store.js';
import { DEFAULT_LIMITS, type RespServerLimits, SCAN_CURSORS_MAX } from './limits.js';
import { Scripts } from './lua/script-cache.js';
import { KeyspaceNotifier, NOTIFY } from './notifications.js';
import { PubSubBroker } from './pubsub.js';
import { ScanCursors } from './scan-cursors.js';
import { countingCommands, ServerStats } from './server-stats.js';
import { type Dial, type RespSocket, tcpDial } from './socket.js';
import { TrackingTable } from './tracking.js';
import type { ClientState, RespLogger, RespMetrics, ServerConfig, ServerContext } from './types.js';

/**
 * REJECTED_LINGER_MS: how long a connection turned away (maxclients, or the server closing) may
 * stay open after its error reply before it is cut: time for the reply to go out and the client
 * to close its end.
 */
export const REJECTED_LINGER_MS = 1_000;

export interface RespServerOptions {
  readonly db: Db;
  /** version: Cairn's version (INFO cairn_version, HELLO). */
  readonly version: string;
  /** metrics: where to count commands and connections (INFO reads them). Default: counters of its own. */
  readonly metrics?: RespMetrics | undefined;
  readonly logger?: RespLogger | undefined;
  readonly limits?: Partial<RespServerLimits> | undefined;
  /** maxClients: shorthand for limits.maxClients (Redis's maxclients). */
  readonly maxClients?: number | undefined;
  /** requirePass: when set, clients must AUTH (or HELLO ... AUTH) before other commands. */
  readonly requirePass?: string | undefined;
  /** durability: the store's durability mode, for INFO and CONFIG GET appendfsync. Default 'always'. */
  readonly durability?: Durability | undefined;
  /** onShutdown: called by the SHUTDOWN command; without it SHUTDOWN is refused. */
  readonly onShutdown?: (() => void) | undefined;
  /** clock: the source of time and timers. Default: the system clock. */
  readonly clock?: Clock | undefined;
  /** cluster: the member this server fronts, when it runs in a cluster (docs/cluster.md). */
  readonly cluster?: ClusterFront | undefined;
  /** dial: how a member connects to other members' RESP ports (forwarding, PUBLISH). Default: TCP. */
  readonly dial?: Dial | undefined;
  /**
   * afterRead: called after each socket read into the shared read buffer has been handled, with
   * that buffer (tests overwrite it, to prove nothing kept a view of it).
   */
  readonly afterRead?: ((buffer: Buffer) => void) | undefined;
}

export interface RespAddress {
  readonly host: string;
  readonly port: number;
}

export interface RespServer {
  /** listen starts accepting connections; resolves once listening. */
  listen(host: string, port: number): Promise<void>;
  /** address: where the server listens (after listen). */
  address(): RespAddress;
  /**
   * accept serves a connection that did not come through listen's TCP listener (the replica
   * simulator's sockets); it is treated as any other.
   */
  accept(socket: RespSocket): void;
  /** clientCount: connections open now. */
  readonly clientCount: number;
  /**
   * close stops accepting, lets every connection finish its in-flight commands and send their
   * replies, then closes the sockets (cutting those still open after the grace period). It does
   * not close the Db.
   */
  close(): Promise<void>;
}

export function createRespServer(options: RespServerOptions): RespServer {
  const limits: RespServerLimits = {
    ...DEFAULT_LIMITS,
    ...(options.maxClients === undefined ? {} : { maxClients: options.maxClients }),
    ...options.limits,
  };
  const table = COMMAND_TABLE;
  const clock = options.clock ?? systemClock;
  const dial = options.dial ?? tcpDial;
  const stats = new ServerStats(clock);
  // Wrapped so that INFO's instantaneous_ops_per_sec counts exactly the commands the metrics count.
  const metrics: RespMetrics = countingCommands(options.metrics ?? new ServerCounters(), stats);
  const connections = new Map<number, Connection>();
  const outputBudget = new OutputBudget<Connection>(
    limits.clientOutputBytes,
    (conn, bytes) => {
      metrics.clientEvicted('resp');
      options.logger?.warn(
        {
          client: conn.client.id,
          addr: conn.client.addr,
          outputBytes: bytes,
          budgetBytes: limits.clientOutputBytes,
        },
        'evicting the client holding the most unread reply bytes: the clients together hold more than the output budget',
      );
    },
    OUTPUT_SWEEP_MS,
    clock,
  );
  const config: ServerConfig = { requirePass: options.requirePass, maxClients: limits.maxClients };
  let nextClientId = 1;
  let closing: Promise<void> | undefined;
  const netServer = net.createServer();
  const pubsub = new PubSubBroker();
  // In a cluster, PUBLISH reaches every member's subscribers (cluster-publish.ts), and so do
  // keyspace notifications: the writes behind them run on the leader.
  const fanout =
    options.cluster === undefined
      ? undefined
      : new ClusterPublisher(options.cluster, config.requirePass, clock, dial);
  const publish = (channel: Buffer, payload: Buffer): number | Promise<number> => {
    const local = pubsub.publish(channel, payload);
    return fanout === undefined ? local : fanout.publish(channel, payload, local);
  };
  const notifier = new KeyspaceNotifier(pubsub, publish);
  const upstreams =
    options.cluster === undefined ? undefined : new UpstreamPool(config.requirePass, clock, dial);
  // `expired` events come from the expiry cycle, once its tombstones are durable (Redis also
  // sends them when a read finds an expired key; here the cycle deletes it within a cycle).
  const stopExpired = options.db.pipeline.onExpired((keys) => {
    if (!notifier.wants(NOTIFY.expired)) return;
    notifier.after(
      undefined,
      keys.map((key) => KeyspaceNotifier.event(NOTIFY.expired, 'expired', key)),
    );
  });

  // CLIENT TRACKING (tracking.ts): every write this server's pipeline queues invalidates the keys
  // it touches; a cluster member also invalidates on the entries it applies for other members,
  // and everything when a snapshot from the leader replaces its state.
  const tracking = new TrackingTable((id) => connections.get(id), limits.trackingTableMaxKeys);
  const stopQueued = options.db.pipeline.onQueued((keys) => tracking.invalidate(keys));
  const replica = options.cluster?.replica;
  const onForeignWrite = (keys: readonly Uint8Array[]): void => tracking.invalidate(keys);
  const onEngine = (): void => tracking.flushed();
  replica?.onForeignWrite.add(onForeignWrite);
  replica?.onEngine.add(onEngine);

  const ctx: ServerContext = {
    db: options.db,
    store: new LatestKeyStore(options.db.pipeline),
    version: options.version,
    metrics,
    stats,
    logger: options.logger,
    config,
    limits,
    durability: options.durability ?? 'always',
    clock,
    startedAt: clock.nowMs(),
    cursors: new ScanCursors(SCAN_CURSORS_MAX),
    scripts: new Scripts(limits.scriptTimeMs),
    commands: table,
    cluster: options.cluster,
    upstreams,
    pubsub,
    notifier,
    tracking,
    publish,
    fanIn: new FanIn(),
    port: () => {
      const a = netServer.address();
      return a !== null && typeof a === 'object' ? a.port : 0;
    },
    clients: () => [...connections.values()].map((c) => c.client),
    killClient: (id) => connections.get(id)?.destroy(),
    shutdown: () => {
      if (options.onShutdown === undefined) return false;
      options.onShutdown();
      return true;
    },
    // One buffer for every connection: a read is handled to the end before the next one lands.
    readBuffer: limits.readBufferBytes > 0 ? Buffer.allocUnsafeSlow(limits.readBufferBytes) : undefined,
    afterRead: options.afterRead,
  };
  const accept = (socket: RespSocket): void => {
    if (closing !== undefined || connections.size >= config.maxClients) {
      metrics.connectionRejected();
      socket.on('error', () => {});
      // Read and drop what the client sends, so that its end of the connection is seen and the
      // socket closes; unread, its request bytes kept the socket (and its descriptor) open for
      // ever, and the server's close waited for it. A client that never closes is cut off after
      // REJECTED_LINGER_MS.
      socket.on('data', () => {});
      const linger = clock.after(REJECTED_LINGER_MS, () => socket.destroy());
      socket.on('close', () => linger.cancel());
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    const id = nextClientId++;
    const client: ClientState = {
      id,
      addr: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`,
      laddr: `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`,
      createdAt: clock.nowMs(),
      name: '',
      libName: '',
      libVer: '',
      protocol: 2,
      authenticated: config.requirePass === undefined,
      lastCommandAt: clock.nowMs(),
      lastCommand: 'NULL',
      readonlyReads: false,
      forwarded: false,
      noEvict: false,
      sub: 0,
      psub: 0,
      ssub: 0,
    };
    const conn = new Connection(socket, ctx, table, client);
    connections.set(id, conn);
    outputBudget.add(conn);
    metrics.clientConnected('resp');
    socket.on('close', () => {
      connections.delete(id);
      outputBudget.delete(conn);
      metrics.clientDisconnected('resp');
    });
  };
  netServer.on('connection', accept);

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        netServer.once('error', reject);
        netServer.listen(port, host, () => {
          netServer.off('error', reject);
          options.logger?.info({ address: netServer.address() }, 'RESP server listening');
          resolve();
        });
      });
    },
    accept,
    address() {
      const a = netServer.address();
      if (a === null || typeof a === 'string') throw new Error('the RESP server is not listening on TCP');
      return { host: a.address, port: a.port };
    },
    get clientCount() {
      return connections.size;
    },
    close() {
      stopExpired();
      stopQueued();
      replica?.onForeignWrite.delete(onForeignWrite);
      replica?.onEngine.delete(onEngine);
      fanout?.close();
      stats.stop();
      outputBudget.close();
      closing ??= new Promise<void>((resolve) => {
        const listenerClosed = new Promise<void>((r) => {
          if (!netServer.listening) r();
          else netServer.close(() => r());
        });
        for (const conn of connections.values()) conn.shutdown();
        const grace = clock.after(limits.closeGraceMs, () => {
          for (const conn of connections.values()) conn.destroy();
        });
        void listenerClosed.then(() => {
          grace.cancel();
          // After the connections: their forwarded commands had their replies.
          upstreams?.close();
          resolve();
        });
      });
      return closing;
    },
  };
}
