// The shapes shared by the connection, the command table and the command handlers.

import type { Db } from '../../db/db.js';
import type { Clock } from '../../io/clock.js';
import type { ReplyWriter, RespVersion } from '../../protocol/resp/index.js';
import type { Durability } from '../../storage/engine.js';
import type { ClusterFront } from './cluster-front.js';
import type { FanIn } from './cluster-publish.js';
import type { CommandTable } from './command-table.js';
import type { UpstreamPool } from './forwarder.js';
import type { KeyStore } from './key-store.js';
import type { RespServerLimits } from './limits.js';
import type { Scripts } from './lua/script-cache.js';
import type { KeyspaceNotifier } from './notifications.js';
import type { PubSubBroker, Subscriptions } from './pubsub.js';
import type { ScanCursors } from './scan-cursors.js';
import type { ServerStats } from './server-stats.js';
import type { Session } from './session.js';
import type { TrackingState, TrackingTable } from './tracking.js';

/**
 * Held is a reply that may only be sent once `durable` resolves (it reveals a write that is not
 * durable yet); if it rejects, the client gets an error reply instead. `durable` undefined means
 * the reply can go out at once.
 */
export interface Held {
  readonly durable: Promise<void> | undefined;
  readonly reply: (w: ReplyWriter) => void;
}

/**
 * Handler runs one command. It writes an immediate reply into `ctx.w` (read `ctx.w` only after its
 * last await: the writer behind it changes as held replies are released), or returns a Held.
 * Errors are thrown as CommandError (or storage errors) and become error replies.
 */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers that write their reply return nothing
export type Outcome = Held | undefined | void;
export type Handler = (ctx: CommandContext, args: Buffer[]) => Outcome | Promise<Outcome>;

/** ClientState: what the server knows about one connection (CLIENT LIST/INFO print it). */
export interface ClientState {
  readonly id: number;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt: number;
  name: string;
  libName: string;
  libVer: string;
  protocol: RespVersion;
  authenticated: boolean;
  lastCommandAt: number;
  lastCommand: string;
  /** readonlyReads: READONLY was sent: a cluster member serves reads from its own state (may be stale). */
  readonlyReads: boolean;
  /** forwarded: the connection is another member forwarding its client's commands (never forwarded again). */
  forwarded: boolean;
  /** sub, psub, ssub: the connection's channels, patterns and shard channels (CLIENT LIST). */
  sub: number;
  psub: number;
  ssub: number;
  /** tracking: CLIENT TRACKING's settings; undefined while tracking is off (tracking.ts). */
  tracking?: TrackingState | undefined;
  /** noEvict: CLIENT NO-EVICT ON: the output budget never closes this connection (output-budget.ts). */
  noEvict: boolean;
}

/**
 * RespMetrics: the part of Metrics (src/server/metrics.ts) or ServerCounters
 * (src/server/counters.ts) the RESP server uses: the one set of counters INFO reads.
 */
export interface RespMetrics {
  observe(command: string, protocol: 'resp', seconds: number, ok: boolean): void;
  clientConnected(protocol: 'resp'): void;
  clientDisconnected(protocol: 'resp'): void;
  connectionRejected(): void;
  clientEvicted(protocol: 'resp'): void;
  snapshot(): {
    readonly commandsProcessed: number;
    readonly connectedClients: Readonly<Record<'resp', number>>;
    readonly totalConnections: Readonly<Record<'resp', number>>;
    readonly rejectedConnections: number;
    readonly evictedClients: Readonly<Record<'resp', number>>;
    /** keys, diskBytes, fsyncs, compactions: the store's numbers, when the metrics read them (INFO asks the engine otherwise). */
    readonly keys?: number;
    readonly diskBytes?: number;
    readonly fsyncs?: number;
    readonly compactions?: number;
    readonly commands: readonly {
      readonly command: string;
      readonly protocol: string;
      readonly calls: number;
      readonly failed: number;
      readonly usec: number;
    }[];
  };
}

/** RespLogger: the part of a pino logger the server uses. */
export interface RespLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** ServerConfig: the settings CONFIG GET/SET read and change at run time. */
export interface ServerConfig {
  requirePass: string | undefined;
  maxClients: number;
}

/** ServerContext: the server-wide state handlers see. */
export interface ServerContext {
  readonly db: Db;
  /** store: the newest state of `db`, the KeyStore of commands outside transactions. */
  readonly store: KeyStore;
  readonly version: string;
  /** metrics: where commands and connections are counted (the server's own counters without a Metrics). */
  readonly metrics: RespMetrics;
  /** stats: run_id, keyspace hits/misses and the command rate INFO prints (server-stats.ts). */
  readonly stats: ServerStats;
  readonly logger: RespLogger | undefined;
  readonly config: ServerConfig;
  readonly limits: RespServerLimits;
  readonly durability: Durability;
  /** clock: every time the server reads or waits for (tests substitute their own). */
  readonly clock: Clock;
  /** startedAt: clock.nowMs() when the server was created. */
  readonly startedAt: number;
  readonly cursors: ScanCursors;
  /** scripts: the Lua script cache and VM (EVAL, EVALSHA, SCRIPT). */
  readonly scripts: Scripts;
  readonly commands: CommandTable;
  /** pubsub: the channels and patterns connections listen to (pubsub.ts). */
  readonly pubsub: PubSubBroker;
  /** notifier: keyspace notifications, `notify-keyspace-events` (notifications.ts). */
  readonly notifier: KeyspaceNotifier;
  /** tracking: CLIENT TRACKING's table of who read what, and its invalidations (tracking.ts). */
  readonly tracking: TrackingTable;
  /**
   * publish: PUBLISH's delivery: to this server's subscribers, and in a cluster to every other
   * member's too; resolves to the number of receivers.
   */
  publish(channel: Buffer, payload: Buffer): number | Promise<number>;
  /** fanIn: the order filter of other members' fanned-out PUBLISHes (cluster-publish.ts). */
  readonly fanIn: FanIn;
  /** cluster: this server's cluster membership; undefined for a single server. */
  readonly cluster: ClusterFront | undefined;
  /** upstreams: a cluster member's shared links to the leader (forwarder.ts); undefined alone. */
  readonly upstreams: UpstreamPool | undefined;
  /** port: the port the server listens on (0 before listen). */
  port(): number;
  clients(): Iterable<ClientState>;
  /** killClient cuts another connection now, its unsent replies dropped (CLIENT KILL). */
  killClient(id: number): void;
  /** shutdown asks the owner to stop the server (SHUTDOWN); false when no owner listens. */
  shutdown(): boolean;
  /**
   * readBuffer: the buffer every connection's socket reads land in (read-buffer.ts), lent to
   * each read's handling only; undefined: connections read fresh 'data' chunks.
   */
  readonly readBuffer: Buffer | undefined;
  /** afterRead: called once each read into readBuffer is handled (tests poison the buffer). */
  readonly afterRead: ((buffer: Buffer) => void) | undefined;
}

/** CommandContext: what one command execution sees. */
export interface CommandContext {
  readonly server: ServerContext;
  readonly client: ClientState;
  /**
   * store: where data commands read and write: `server.store`, or the open transaction's view
   * (inside EXEC, or after TXN.BEGIN).
   */
  readonly store: KeyStore;
  /** session: the connection's MULTI queue, watched keys and interactive transaction. */
  readonly session: Session;
  /** pubsub: the connection's subscriptions (SUBSCRIBE and friends). */
  readonly pubsub: Subscriptions;
  /** w: the writer for an immediate reply, in order after everything before it. */
  readonly w: ReplyWriter;
  /** setProtocol switches the connection's RESP version (HELLO); replies after this one use it. */
  setProtocol(version: RespVersion): void;
  /** closeAfterReply closes the connection once this command's reply is sent (QUIT). */
  closeAfterReply(): void;
  /**
   * resetConnection: RESET: drop MULTI, WATCH, the open transaction and every subscription, and
   * return to RESP2, no name, linearizable reads and (with a password) unauthenticated.
   */
  resetConnection(): void;
}
