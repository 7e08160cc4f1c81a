// ClusterMember: everything one `cairn serve` cluster member runs below its servers: its
// identity (identity.ts), its Raft log (DIR/raft/wal), the local engine (DIR, the same format
// as a single server's), the Replica driving them, and the peer transport. The servers run a Db
// over `engine` (a ReplicatedEngine) and route commands with `replica` (docs/cluster.md).
//
// Start-up order: open the identity, the log and the engine; the caller opens its servers; then
// `connect` starts the transport (which advertises the servers' addresses to peers) and the
// Raft ticks. Nothing is accepted from peers before the log and the engine are open.
import * as path from 'node:path';
import type { Clock } from '../io/clock.js';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { isEmptyHardState, NONE, type NodeId } from '../raft/index.js';
import type { CaskOptions } from '../storage/cask/cask-options.js';
import type { Engine } from '../storage/engine.js';
import { ClusterDownError, CorruptionError } from '../storage/errors.js';
import { DiskLog } from './disk-log.js';
import { type ClusterFlags, type Identity, RAFT_DIR, resolveIdentity } from './identity.js';
import { REQUEST_TIMEOUT_MS, Replica, type ReplicaLogger } from './replica.js';
import { ReplicatedEngine } from './replicated-engine.js';
import { createTcpTransport } from './tcp-transport.js';
import type { Peer, PeerInfo, Transport } from './transport.js';

export const WAL_DIR = 'wal';
/** ENGINE_SYNC_INTERVAL_MS: how often a member's engine fsyncs what it applied (etcd commits its backend every 100 ms). */
export const ENGINE_SYNC_INTERVAL_MS = 1_000;

export interface MemberOptions {
  readonly dir: string;
  readonly flags: ClusterFlags;
  /** cask: the local engine's options (a member decides durability and the sync interval). */
  readonly cask: Omit<CaskOptions, 'durability' | 'syncIntervalMs'>;
  readonly clock: Clock;
  readonly logger: ReplicaLogger;
  readonly requestTimeoutMs?: number | undefined;
  readonly fs?: FileSystem;
  /** onFatal: the member cannot go on; the server shuts down (a restart recovers). */
  readonly onFatal: (err: unknown) => void;
}

/** MemberView: one member as ROLE, INFO and /v1/cluster show it. */
export interface MemberView {
  readonly id: NodeId;
  readonly name: string;
  readonly peerAddr: string;
  /** resp, http: client addresses, once the member told them (handshake); "" when unknown. */
  readonly resp: string;
  readonly http: string;
}

export class ClusterMember {
  private transport: Transport | undefined;
  private readonly infos = new Map<NodeId, PeerInfo>();

  private constructor(
    readonly identity: Identity,
    readonly replica: Replica,
    readonly engine: ReplicatedEngine,
    readonly requestTimeoutMs: number,
    private readonly listenPeer: string,
    private readonly clock: Clock,
    private readonly logger: ReplicaLogger,
  ) {}

  static async open(options: MemberOptions): Promise<ClusterMember> {
    const fs = options.fs ?? nodeFileSystem;
    const hasData = await hasStore(fs, options.dir);
    const { identity, created } = await resolveIdentity(fs, options.dir, options.flags, hasData);
    const log = await DiskLog.open(fs, path.join(options.dir, RAFT_DIR, WAL_DIR));
    let local: Engine | undefined;
    try {
      const { openCask } = await import('../storage/cask/cask-engine.js');
      // The Raft log is where a write becomes durable (a quorum fdatasynced it); the engine
      // applies without an fsync per entry and syncs once a second. After a crash it holds a
      // prefix of the applied entries up to lastTs (its compaction floor counts only synced
      // writes), or reports damage and is rebuilt below; replay from the log refills the rest
      // (docs/cluster.md, "The commit timestamp is the consistent index").
      const caskOptions = {
        ...options.cask,
        durability: 'interval' as const,
        syncIntervalMs: ENGINE_SYNC_INTERVAL_MS,
        fs,
      };
      let cask = await openCask(options.dir, caskOptions);
      const damage = cask.recovery.problems.filter((p) => DAMAGE.has(p.kind));
      if (damage.length > 0) {
        // Damage below the engine's newest record (a power cut can leave a hole in the unsynced
        // tail, and recovery keeps the records after it): replaying from lastTs would not refill
        // the hole. Set the engine's files aside (never delete them) and rebuild from the log.
        await cask.close();
        if (log.firstIndex() !== 1) {
          throw new CorruptionError(
            `the engine in ${options.dir} is damaged (${damage.map((p) => `${p.kind} in ${p.file}`).join(', ')}) and the Raft log no longer starts at 1: restore this member from a snapshot`,
          );
        }
        const aside = await setEngineAside(fs, options.dir, options.clock);
        options.logger.error(
          { damage, setAside: aside },
          'the engine was damaged; its files are set aside and it is rebuilt from the Raft log',
        );
        cask = await openCask(options.dir, caskOptions);
      }
      local = cask;
      const fresh = log.lastIndex() === 0 && isEmptyHardState(log.initialState().hardState);
      const bootstrap = fresh && identity.bootstrapped === 'new' ? identity.members.map((m) => m.id) : [];
      if (created)
        options.logger.info(
          { member: identity.name, id: identity.id, members: identity.members },
          'new cluster member',
        );
      let member: ClusterMember | undefined;
      const replica = new Replica({
        id: identity.id,
        log,
        engine: local,
        clock: options.clock,
        logger: options.logger,
        bootstrap,
        requestTimeoutMs: options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
        randomSeed: randomSeed(),
        onFatal: options.onFatal,
      });
      const engine = new ReplicatedEngine(local, replica, async () => {
        await member?.transport?.close();
        await log.close();
      });
      member = new ClusterMember(
        identity,
        replica,
        engine,
        options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS,
        identity.listenPeer,
        options.clock,
        options.logger,
      );
      return member;
    } catch (err) {
      await local?.close().catch(() => {});
      await log.close().catch(() => {});
      throw err;
    }
  }

  /** connect starts the peer transport, advertising this member's client addresses, and Raft. */
  async connect(addresses: { resp: string; http: string }): Promise<{ host: string; port: number }> {
    const self = this.identity;
    const transport = await createTcpTransport({
      self: { id: self.id, name: self.name, resp: addresses.resp, http: addresses.http },
      listen: this.listenPeer,
      clusterToken: self.clusterToken,
      peers: this.peers(),
      handlers: {
        onMessages: (msgs) => this.replica.step(msgs),
        onUnreachable: (id) => this.replica.unreachable(id),
        onPeerInfo: (info) => {
          this.infos.set(info.id, info);
        },
      },
      logger: this.logger,
      clock: this.clock,
    });
    this.infos.set(self.id, { id: self.id, name: self.name, resp: addresses.resp, http: addresses.http });
    this.transport = transport;
    this.replica.start(transport);
    return transport.address();
  }

  /** peers: every other member, for the transport. */
  private peers(): Peer[] {
    return this.identity.members
      .filter((m) => m.id !== this.identity.id)
      .map((m) => ({ id: m.id, name: m.name, peerAddr: m.peerAddr }));
  }

  members(): MemberView[] {
    return this.identity.members.map((m) => {
      const info = this.infos.get(m.id);
      return { id: m.id, name: m.name, peerAddr: m.peerAddr, resp: info?.resp ?? '', http: info?.http ?? '' };
    });
  }

  member(id: NodeId): MemberView | undefined {
    return this.members().find((m) => m.id === id);
  }

  /**
   * leaderAddress waits until this member is the ready leader (undefined: run here) or knows
   * the leader's client address of the given kind (forward there); ClusterDownError once the
   * request timeout passes without either.
   */
  async leaderAddress(kind: 'resp' | 'http'): Promise<string | undefined> {
    const deadline = this.clock.monotonicMs() + this.requestTimeoutMs;
    for (;;) {
      if (this.replica.leaderReady) return undefined;
      const lead = this.replica.leader;
      if (lead !== NONE && lead !== this.identity.id) {
        const addr = this.member(lead)?.[kind];
        if (addr !== undefined && addr !== '') return addr;
      }
      const left = deadline - this.clock.monotonicMs();
      if (left <= 0) {
        throw new ClusterDownError(
          lead === NONE
            ? `no leader elected within ${this.requestTimeoutMs} ms (is a majority of members up and connected?)`
            : lead === this.identity.id
              ? 'this member was elected but has not caught up yet'
              : `the leader's ${kind} address is not known yet`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = this.clock.after(Math.min(left, LEADER_POLL_MS), () => {
          off();
          resolve();
        });
        const off = this.replica.onChange(() => {
          timer.cancel();
          off();
          resolve();
        });
      });
    }
  }
}

/** LEADER_POLL_MS: how often a request waiting for a leader looks again (besides change events). */
const LEADER_POLL_MS = 50;

/**
 * DAMAGE: recovery problems that may hide lost records below the engine's newest one (a torn
 * tail, by contrast, only loses a suffix, which replay from lastTs refills).
 */
const DAMAGE: ReadonlySet<string> = new Set([
  'corrupt-range',
  'bad-header',
  'damaged-batch',
  'short-file',
  'damaged-index',
]);

/** setEngineAside moves every engine file of `dir` into a new subdirectory; returns its name. */
async function setEngineAside(fs: FileSystem, dir: string, clock: Clock): Promise<string> {
  const name = `engine-set-aside-${new Date(clock.nowMs()).toISOString().replace(/[:.]/g, '-')}`;
  const target = path.join(dir, name);
  await fs.mkdir(target);
  for (const entry of await fs.readdir(dir)) {
    if (entry === RAFT_DIR || entry === name || entry.startsWith('engine-set-aside-')) continue;
    await fs.rename(path.join(dir, entry), path.join(target, entry));
  }
  await fs.syncDir(target);
  await fs.syncDir(dir);
  return name;
}

/** hasStore: whether `dir` already holds a store (engine metadata or data files). */
async function hasStore(fs: FileSystem, dir: string): Promise<boolean> {
  if ((await fs.kind(dir)) !== 'directory') return false;
  const names = await fs.readdir(dir);
  return names.some((n) => n !== RAFT_DIR && n !== 'LOCK' && !n.startsWith('engine-set-aside-'));
}

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
