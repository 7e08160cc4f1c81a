// ClusterMember: everything one `cairn serve` cluster member runs below its servers: its
// identity (identity.ts), its Raft log (DIR/raft/wal), the local engine (DIR, the same format
// as a single server's), the Replica driving them, and the peer transport. The servers run a Db
// over `engine` (a ReplicatedEngine) and route commands with `replica` (docs/cluster.md).
//
// Start-up order: open the identity, the log and the engine; the caller opens its servers; then
// `connect` starts the transport (which advertises the servers' addresses to peers) and the
// Raft ticks. Nothing is accepted from peers before the log and the engine are open.
//
// Membership (docs/cluster-ops.md): the member list follows the applied conf changes
// (membership.ts); each change updates the transport's peers and rewrites member.json's
// checkpoint. The operator's changes (addLearner, promote, remove, moveLeader) run on the ready
// leader, after the strict checks of reconfig-check.ts.
//
// Lost directories (docs/cluster.md, "A member that lost its directory"): the leader records
// each member that has started in the member list (a started mark, membership.ts); a member
// starting from an empty directory asks its peers first (start-check.ts) and is refused if its
// id is recorded, before it can vote or acknowledge anything.
import * as path from 'node:path';
import type { Clock, Timer } from '../io/clock.js';
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import {
  type ConfChange,
  type ConfState,
  isEmptyHardState,
  NONE,
  type NodeId,
  type Snapshot,
} from '../raft/index.js';
import { assert } from '../stdx/assert.js';
import type { CaskEngine } from '../storage/cask/cask-engine.js';
import type { CaskOptions } from '../storage/cask/cask-options.js';
import type { Engine } from '../storage/engine.js';
import { ClusterDownError, CorruptionError, UncertainError } from '../storage/errors.js';
import { DiskLog } from './disk-log.js';
import { EngineFailureLatch } from './engine-failure.js';
import {
  type InstallRepairOptions,
  installRepairSnapshot,
  installSnapshotEngine,
  openMemberEngine,
} from './engine-repair.js';
import { MemberRemovedError, MemberStartRefusedError, MembershipRefusedError } from './errors.js';
import {
  type ClientAddrs,
  type ClusterFlags,
  checkAddress,
  checkName,
  type Identity,
  identityPath,
  type MemberRecord,
  memberId,
  RAFT_DIR,
  resolveIdentity,
  writeIdentity,
} from './identity.js';
import { changeOrTimeout, leaderAddress } from './leader-address.js';
import { hexId, hexRecords } from './log-ids.js';
import {
  decodeSnapshotData,
  encodeMemberContext,
  encodeSnapshotData,
  Membership,
  type MembershipState,
  snapshotLogTs,
} from './membership.js';
import { unreachableListen } from './peer-address.js';
import {
  ACTIVE_WINDOW_MS,
  checkAddLearner,
  checkPromote,
  checkRemove,
  type ReconfigView,
} from './reconfig-check.js';
import { describeRemoval, type MemberRemoval, REMOVED_LEADER_GRACE_MS, waitForHandoff } from './removal.js';
import {
  HEARTBEAT_TICKS,
  REQUEST_TIMEOUT_MS,
  Replica,
  type ReplicaLogger,
  TICK_MS,
  type VoteFloor,
} from './replica.js';
import { ReplicatedEngine } from './replicated-engine.js';
import { finishInstall, isEngineEntry } from './snapshot-install.js';
import { removeStagedDir } from './snapshot-staging.js';
import { runStartCheck, type StartAnswer } from './start-check.js';
import { answerStartCheck, nextStartedMark, STARTED_MARK_INTERVAL_MS } from './started-marks.js';
import { createTcpTransport, type TcpTransport } from './tcp-transport.js';
import type { Peer, PeerInfo } from './transport.js';

export const WAL_DIR = 'wal';

/** CaskOpenOptions: how a member opens its engine (also a staged snapshot's, to check it). */
type CaskOpenOptions = CaskOptions & { readonly fs: FileSystem };
/** ENGINE_SYNC_INTERVAL_MS: how often a member's engine fsyncs what it applied (etcd commits its backend every 100 ms). */
export const ENGINE_SYNC_INTERVAL_MS = 1_000;

/**
 * memberCaskOptions: how a member opens its cask engine (the replica simulator's members too),
 * given the caller's own options. The Raft log is where a write becomes durable (a quorum
 * fdatasynced it); the engine applies without an fsync per entry and syncs once a second. After
 * a crash it holds a prefix of the applied entries up to lastTs (its compaction floor counts only
 * synced writes), or reports damage and is rebuilt; replay from the log refills the rest
 * (docs/cluster.md, "The commit timestamp is the consistent index"). A store that fails in the
 * background (a periodic fdatasync's I/O error) fails the member at once (`failure`,
 * engine-failure.ts).
 */
export function memberCaskOptions(
  base: CaskOptions,
  fs: FileSystem,
  failure: EngineFailureLatch,
): CaskOpenOptions {
  const onEvent = base.onEvent;
  return {
    ...base,
    onEvent: (event) => {
      onEvent?.(event);
      failure.observe(event);
    },
    durability: 'interval',
    syncIntervalMs: ENGINE_SYNC_INTERVAL_MS,
    // A Ready's committed entries are applied in one call: written right after it, not after
    // the rest of the turn (the "handed -> visible" stage of a commit's budget).
    commitAfterCall: true,
    fs,
  };
}

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
  /** snapshotEntries: applied entries between snapshots (`--snapshot-count`; SNAPSHOT_ENTRIES). */
  readonly snapshotEntries?: number | undefined;
}

/** SNAPSHOT_STAGING_DIR: where the transport stages a leader's snapshot, inside DIR/raft. */
export const SNAPSHOT_STAGING_DIR = 'snap';

/**
 * TRANSFER_HEARD_WITHIN_MS: how recently the target of a leadership transfer (move-leader) must
 * have answered: three heartbeats. The membership checks' "active" (ACTIVE_WINDOW_MS, 5 s) is too
 * wide for this: a transfer to a member that died a second ago stops proposals for an election
 * timeout and then fails.
 */
export const TRANSFER_HEARD_WITHIN_MS = 3 * HEARTBEAT_TICKS * TICK_MS;

/** MemberRole: a member's place in the Raft configuration ('unknown' while a log replay has not reached it). */
export type MemberRole = 'voter' | 'learner' | 'unknown';

/** MemberView: one member as ROLE, INFO and /v1/cluster show it. */
export interface MemberView {
  readonly id: NodeId;
  /** name: "" for a member whose record this member has not learned (an id only). */
  readonly name: string;
  readonly peerAddr: string;
  /** resp, http: client addresses, once the member told them (handshake); "" when unknown. */
  readonly resp: string;
  readonly http: string;
  readonly role: MemberRole;
  /** started: the member is recorded as having started (a started mark; docs/cluster.md). */
  readonly started: boolean;
}

export class ClusterMember {
  private transport: TcpTransport | undefined;
  /**
   * createdNow: this start created the member's identity (a first start); until `connect`
   * succeeds nothing can have been committed here (Raft does not tick before it), so a start
   * that fails may take back what it created (`discardIfNew`).
   */
  private createdNow = false;
  private readonly infos = new Map<NodeId, PeerInfo>();
  /** lastHeard: when each peer's latest message arrived (monotonic ms): the strict checks' "active". */
  private readonly lastHeard = new Map<NodeId, number>();
  private readonly membership: Membership;
  /** saving: the chain of member.json rewrites (one at a time, in order). */
  private saving: Promise<void> = Promise.resolve();
  /** recorded: what member.json says (its members kept as of the last checkpoint). */
  private recorded: Identity;
  /**
   * checking: this member started from an empty directory and its peers have not yet confirmed
   * that its id never started (start-check.ts): Raft does not run, and everything peers send
   * but the start check's question is dropped (no vote, no acknowledgement).
   */
  private checking: boolean;
  /** marking: the started mark this leader has proposed and not yet seen settled. */
  private marking: Promise<void> | undefined;
  private markTimer: Timer | undefined;
  private stopping = false;
  /** lastSaveOk: whether the latest member.json rewrite succeeded (a removal reports it: `recorded`). */
  private lastSaveOk = true;
  /**
   * departing: a leader this member applied the removal of, kept as a peer for
   * REMOVED_LEADER_GRACE_MS so that its handover (MsgTimeoutNow) still arrives.
   */
  private readonly departing = new Map<NodeId, MemberRecord>();
  /** removing: this member learned of its removal (once; removal.ts). */
  private removing = false;
  private resolveRemoval: (r: MemberRemoval) => void = () => {};
  /**
   * removal resolves once this member learned that it was removed from the cluster (it applied
   * its removal, or a peer refused it as removed), recorded that in member.json, and, if it led,
   * handed the leadership over (removal.ts). It never rejects, and never resolves for a member
   * that is not removed. The member goes on answering CLUSTER_DOWN until its owner stops it:
   * `cairn serve` closes and exits with code 3 (src/cli/run-server.ts).
   */
  readonly removal: Promise<MemberRemoval> = new Promise((resolve) => {
    this.resolveRemoval = resolve;
  });

  private constructor(
    identity: Identity,
    readonly replica: Replica,
    readonly engine: ReplicatedEngine,
    readonly requestTimeoutMs: number,
    private readonly listenPeer: string,
    private readonly clock: Clock,
    private readonly logger: ReplicaLogger,
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly caskOptions: CaskOpenOptions,
  ) {
    this.recorded = identity;
    this.checking = identity.startCheck === 'pending';
    this.membership = new Membership({
      members: identity.members,
      removed: identity.removed ?? [],
      index: identity.membershipIndex ?? 0,
      started: identity.started ?? [],
    });
    replica.onConfChange((cc, cs, index) => this.confChangeApplied(cc, cs, index));
    if (identity.voteFloor !== undefined) this.holdVotes(identity.voteFloor);
  }

  static async open(options: MemberOptions): Promise<ClusterMember> {
    const fs = options.fs ?? nodeFileSystem;
    const hasData = await hasStore(fs, options.dir);
    const { identity, created } = await resolveIdentity(fs, options.dir, options.flags, hasData);
    // Recorded when it applied its removal or a peer told it (toldRemoved). A member removed
    // while it was down does not know yet: it starts, and its peers tell it (docs/cluster-ops.md).
    if ((identity.removed ?? []).some((m) => m.id === identity.id)) {
      throw new MemberRemovedError(identity.name, identityPath(options.dir), options.dir);
    }
    const log = await DiskLog.open(fs, path.join(options.dir, RAFT_DIR, WAL_DIR));
    let local: Engine | undefined;
    const engineFailure = new EngineFailureLatch();
    try {
      const { openCask } = await import('../storage/cask/cask-engine.js');
      const caskOptions = memberCaskOptions(options.cask ?? {}, fs, engineFailure);
      // A snapshot install a crash interrupted is finished before the engine opens (the log
      // does not record the snapshot until the install is done: snapshot-install.ts).
      const finished = await finishInstall(fs, options.dir);
      if (finished !== undefined) {
        options.logger.warn(
          finished,
          finished.installed
            ? 'finished installing a snapshot that a crash interrupted'
            : 'a snapshot install was interrupted before its files were durable: the engine stays as it was',
        );
      }
      // Damage below the engine's newest record (a power cut can leave a hole in the unsynced
      // tail, and recovery keeps the records after it): replaying from lastTs would not refill
      // the hole. The engine's files are set aside (never deleted) and the engine is rebuilt from
      // the log if it holds every entry, else repaired with a snapshot from the leader
      // (engine-repair.ts).
      const others = identity.members.filter((m) => m.id !== identity.id).length;
      const opened = await openMemberEngine({
        fs,
        dir: options.dir,
        clock: options.clock,
        logger: options.logger,
        open: () => openCask(options.dir, caskOptions),
        rebuildable: log.firstIndex() === 1 && identity.seeded !== true,
        unrepairable: (damage) =>
          others > 0
            ? undefined
            : new CorruptionError(
                `the engine in ${options.dir} is damaged (${damage}), the Raft log does not hold every entry (it was compacted, or the member was seeded from a backup), and no other member can send a snapshot of the state: restore it from a snapshot (cairn snapshot restore), keeping this directory for inspection`,
              ),
      });
      local = opened.engine;
      const fresh = log.lastIndex() === 0 && isEmptyHardState(log.initialState().hardState);
      const bootstrap = fresh && identity.bootstrapped === 'new' ? identity.members.map((m) => m.id) : [];
      if (created)
        options.logger.info(
          { member: identity.name, id: hexId(identity.id), members: hexRecords(identity.members) },
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
        snapshotEntries: options.snapshotEntries,
        repairing: opened.repairing,
        seeded: identity.seeded === true,
        snapshots: {
          data: (logTs) => {
            assert(member !== undefined, 'a snapshot before the member was built');
            return encodeSnapshotData(member.membership.state(), logTs);
          },
          logTsOf: snapshotLogTs,
          install: (stage, snap) => {
            assert(member !== undefined, 'a snapshot before the member was built');
            return member.installSnapshot(stage, snap);
          },
          discard: (stage) => removeStagedDir(fs, stage),
          repair: (stage, snap) => {
            assert(member !== undefined, 'a snapshot before the member was built');
            return member.installRepairSnapshot(stage, snap);
          },
        },
      });
      engineFailure.attach(replica);
      const engine = new ReplicatedEngine(local, replica, async () => {
        member?.stopMarking();
        await member?.transport?.close();
        await member?.saving;
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
        fs,
        options.dir,
        caskOptions,
      );
      // A start check that a crash or a stop interrupted never let this member take part in Raft:
      // what it created may still be taken back if the check refuses it.
      member.createdNow = created || member.checking;
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
    this.warnUnreachableListen();
    const transport = await createTcpTransport({
      self: { id: self.id, name: self.name, resp: addresses.resp, http: addresses.http },
      listen: this.listenPeer,
      clusterToken: self.clusterToken,
      peers: this.peers(),
      handlers: {
        onMessages: (msgs) => {
          if (this.checking) return;
          const now = this.clock.monotonicMs();
          for (const m of msgs) this.lastHeard.set(m.from, now);
          this.replica.step(msgs);
        },
        onUnreachable: (id) => {
          if (!this.checking) this.replica.unreachable(id);
        },
        onPeerInfo: (info) => {
          this.infos.set(info.id, info);
        },
        onSnapshot: (m, dir) => {
          if (this.checking) void removeStagedDir(this.fs, dir).catch(() => {});
          else this.replica.stepSnapshot(m, dir);
        },
        onRemoved: (by, reason) => {
          if (!this.checking) this.toldRemoved(by, reason);
        },
      },
      isRemoved: (id) => this.membership.isRemoved(id),
      removalIndex: (id) => this.membership.removalIndex(id),
      startStatus: (id) => this.startAnswer(id),
      onPeerRoundTrip: (peer, seconds) => {
        this.roundTrips.set(peer.name, seconds * 1000);
        for (const f of this.onPeerRoundTrip) f(peer.name, seconds);
      },
      logger: this.logger,
      clock: this.clock,
      snapshotDir: path.join(this.dir, RAFT_DIR, SNAPSHOT_STAGING_DIR),
    });
    this.infos.set(self.id, { id: self.id, name: self.name, resp: addresses.resp, http: addresses.http });
    this.transport = transport;
    if (this.checking) await this.checkStart(addresses);
    this.createdNow = false;
    this.replica.start(transport);
    this.markTimer = this.clock.every(STARTED_MARK_INTERVAL_MS, () => this.markStarted());
    return transport.address();
  }

  /**
   * warnUnreachableListen says so when peers dialing this member's --initial-cluster address would
   * miss its --listen-peer (see unreachableListen): a first start would otherwise wait for its
   * peers without a word.
   */
  private warnUnreachableListen(): void {
    const self = this.identity;
    const advertised = self.members.find((m) => m.id === self.id)?.peerAddr;
    if (advertised === undefined) return;
    const why = unreachableListen(this.listenPeer, advertised);
    if (why === undefined) return;
    // The directory records the listen address, and a restart may not contradict it: a first
    // start that has not reached its peers holds nothing yet, so it can start over.
    const fix = this.checking
      ? `if that is a mistake, stop it, empty ${this.dir} (this first start holds nothing yet) and start it again with --listen-peer ${advertised} or without --listen-peer`
      : `${this.dir} records this listen address: a member that must listen elsewhere is replaced (docs/cluster-ops.md, "Replacing a dead member")`;
    this.logger.warn(
      { listenPeer: this.listenPeer, advertised },
      `this member listens for peers on ${this.listenPeer} (--listen-peer), but its peers dial ${advertised} (its address in --initial-cluster): ${why}. Unless a proxy or NAT forwards ${advertised} to ${this.listenPeer}, no peer reaches this member; ${fix}`,
    );
  }

  /**
   * checkStart runs the start check of a member started from an empty directory (start-check.ts)
   * and records that it passed; MemberStartRefusedError when a peer records this id as started
   * or removed (the server then removes what this start created and exits).
   */
  private async checkStart(addresses: { resp: string; http: string }): Promise<void> {
    const self = this.identity;
    const peers = this.peers();
    let floor: VoteFloor | undefined;
    if (peers.length > 0) {
      const decision = await runStartCheck({
        self: { id: self.id, name: self.name, resp: addresses.resp, http: addresses.http },
        clusterToken: self.clusterToken,
        peers,
        clock: this.clock,
        logger: this.logger,
        stopped: () => this.stopping,
      });
      if (decision.kind === 'stopped') throw new Error('stopped during the start check');
      if (decision.kind === 'refuse') {
        throw new MemberStartRefusedError(
          decision.why === 'removed'
            ? `member '${self.name}' was removed from the cluster (peer '${decision.peer}' says so): a removed member's name is never reused. Add the machine under a new name: cairn member add NEWNAME --peer-url ADDR, then start it with --initial-cluster-state existing (docs/cluster-ops.md, "Replacing a dead member")`
            : `member '${self.name}' (id ${self.id.toString(16)}) already started in this cluster (peer '${decision.peer}' records it), but ${this.dir} holds no state of it: its directory was lost or replaced. Starting it afresh could lose committed writes. Restore its original directory, or replace it: cairn member remove ${self.name}, then cairn member add NEWNAME --peer-url ADDR and start NEWNAME on an empty directory with --initial-cluster-state existing (docs/cluster-ops.md, "Replacing a dead member")`,
        );
      }
      this.logger.info(
        { answered: decision.answered, via: decision.via },
        decision.via === 'confirmed'
          ? 'start check passed: a peer confirmed with the leader that no member records this one as started (votes are held until this member has applied what the peer had)'
          : 'start check passed: a majority of the members, this one included, know nothing yet (a new cluster)',
      );
      floor = decision.floor;
    }
    const { startCheck: _, ...passed } = this.recorded;
    this.recorded = floor === undefined ? passed : { ...passed, voteFloor: floor };
    this.checking = false;
    if (floor !== undefined) this.holdVotes(floor);
    this.saveCheckpoint();
    // Durable before Raft runs: a restart after this vote-capable point must not ask again
    // (its peers would by then record it as started, and refuse it).
    await this.saving;
  }

  /**
   * holdVotes: a member that passed its start check on a running cluster's confirmed answer holds
   * its votes until it has applied the entry the confirming peer had applied (Replica.holdVotes):
   * its lost directory may have acknowledged entries up to there that a quorum counted on
   * (docs/cluster.md, "The window before the mark"). member.json keeps the floor until then.
   */
  private holdVotes(floor: VoteFloor): void {
    this.replica.holdVotes(floor, () => {
      const { voteFloor: _, ...released } = this.recorded;
      this.recorded = released;
      this.saveCheckpoint();
    });
  }

  /** startAnswer: the answer to a peer's start check (started-marks.ts). */
  private startAnswer(id: NodeId): Promise<StartAnswer> {
    const { membership } = this;
    return answerStartCheck(
      {
        isStarted: (m) => membership.isStarted(m),
        checking: this.checking,
        replica: this.replica,
        clock: this.clock,
      },
      id,
    );
  }

  /**
   * markStarted: on the ready leader, proposes a started mark for one member not yet recorded
   * as started that has shown durable state: the leader itself, or a member that acknowledged
   * entries (match > 0). One at a time, and never beside an operator's change (they wait for a
   * mark in flight: settleMarking). A mark lost to a leader change is proposed again by the next
   * leader, which also marks the members of a cluster that predates the marks (an upgrade).
   */
  private markStarted(): void {
    if (this.marking !== undefined || this.removed || !this.replica.leaderReady) return;
    const next = nextStartedMark(this.replica.status(), this.identity.id, this.membership);
    if (next === undefined) return;
    const { record, change } = next;
    const marking = this.replica
      .proposeConfChange(change)
      .then(
        () => this.logger.info({ member: record.name }, 'recorded that the member has started'),
        (err: unknown) =>
          this.logger.debug({ member: record.name, err }, 'started mark not applied; proposed again later'),
      )
      .finally(() => {
        this.marking = undefined;
      });
    this.marking = marking;
  }

  /** settleMarking: an operator's change waits for a started mark in flight (one change at a time). */
  private async settleMarking(): Promise<void> {
    await this.marking;
  }

  /** stopMarking: the member is closing. */
  private stopMarking(): void {
    this.stopping = true;
    this.markTimer?.cancel();
    this.markTimer = undefined;
  }

  /**
   * discardIfNew: after a first start failed before the member connected (a peer or client
   * address in use, say), and once it is closed, removes what that start created (DIR/raft and
   * the empty engine's files), so that the operator can correct the command line and start again
   * instead of meeting "contradicts member.json". Nothing was ever written there: no leader,
   * no log entry but the bootstrap ones. Returns whether it removed anything.
   */
  async discardIfNew(): Promise<boolean> {
    if (!this.createdNow) return false;
    this.createdNow = false;
    const fs = this.fs;
    for (const name of await fs.readdir(this.dir)) {
      if (name === RAFT_DIR || isEngineEntry(name)) await removeTree(fs, path.join(this.dir, name));
    }
    return true;
  }

  /** peers: every other member, for the transport; none once this member was removed. */
  private peers(): Peer[] {
    // A removed member stops connecting: its peers refuse it, and it has nothing to say to them
    // (it applied its own removal, or was told of it: toldRemoved). Except a removed leader
    // still handing over: its successor needs its last appends and MsgTimeoutNow (removal.ts);
    // once it stepped down, removedNow drops the peers.
    if (this.removed && !this.replica.leading) return [];
    return [...this.membership.records(), ...this.departing.values()]
      .filter((m) => m.id !== this.identity.id)
      .map((m) => ({ id: m.id, name: m.name, peerAddr: m.peerAddr }));
  }

  /**
   * members: the members of the Raft configuration with their records; before this member has
   * applied any configuration (a newcomer, a restart early in its replay), the recorded list.
   */
  members(): MemberView[] {
    const st = this.replica.status();
    const inConfig = [...st.voters, ...st.learners];
    const ids =
      inConfig.length === 0
        ? this.membership.records().map((m) => m.id)
        : [
            ...this.membership
              .records()
              .map((m) => m.id)
              .filter((id) => inConfig.includes(id)),
            ...inConfig.filter((id) => this.membership.record(id) === undefined),
          ];
    return ids.map((id) => {
      const record = this.membership.record(id);
      const info = this.infos.get(id);
      const role: MemberRole = st.voters.includes(id)
        ? 'voter'
        : st.learners.includes(id)
          ? 'learner'
          : 'unknown';
      return {
        id,
        name: record?.name ?? '',
        peerAddr: record?.peerAddr ?? '',
        resp: info?.resp ?? '',
        http: info?.http ?? '',
        role,
        started: this.membership.isStarted(id),
      };
    });
  }

  /**
   * removed: this member was removed from the cluster (it applied its own removal, or a peer
   * told it). It serves nothing any more; its data directory may be deleted (docs/cluster-ops.md).
   */
  get removed(): boolean {
    return this.membership.isRemoved(this.identity.id);
  }

  /** memberByName: a current member's record. */
  memberByName(name: string): MemberView | undefined {
    return this.members().find((m) => m.name === name);
  }

  member(id: NodeId): MemberView | undefined {
    return this.members().find((m) => m.id === id);
  }

  /** selfAddress: this member's own client address of `kind` (as its peers know it). */
  selfAddress(kind: 'resp' | 'http'): string {
    const addr = this.member(this.identity.id)?.[kind];
    if (addr === undefined || addr === '')
      throw new ClusterDownError(`this member's ${kind} address is not known yet`);
    return addr;
  }

  /**
   * leaderAddress waits until this member is the ready leader (undefined: run here) or knows
   * the leader's client address of the given kind (forward there); ClusterDownError once the
   * request timeout passes without either (leader-address.ts).
   */
  leaderAddress(kind: 'resp' | 'http'): Promise<string | undefined> {
    return leaderAddress(
      {
        replica: this.replica,
        clock: this.clock,
        requestTimeoutMs: this.requestTimeoutMs,
        selfId: this.identity.id,
        removed: () => this.removed,
        addressOf: (id, k) => this.member(id)?.[k],
      },
      kind,
    );
  }

  /**
   * toldRemoved: a peer refused this member as removed from the cluster. The removal was
   * committed without this member (it never applies it); like etcd's, it stops (removedNow).
   */
  private toldRemoved(by: NodeId, reason: string): void {
    if (!this.membership.markRemoved(this.identity.id)) return;
    this.removedNow('told', this.membership.record(by)?.name ?? hexId(by), undefined, reason);
  }

  /**
   * removedNow: this member was removed (`how`, `by`, `index`, `reason`: MemberRemoval). It says
   * so once, records the removal in member.json (its next start is refused with exit code 3),
   * hands the leadership over if it led (the core started that when it applied the change), stops
   * calling on its peers, and then resolves `removal` for its owner to stop it.
   */
  private removedNow(
    how: MemberRemoval['how'],
    by: string,
    index: number | undefined,
    reason: string | undefined,
  ): void {
    if (this.removing) return;
    this.removing = true;
    const seen = { name: this.identity.name, how, by, index, reason };
    this.logger.error(
      { member: seen.name, how, removedBy: by === '' ? undefined : by, index, reason },
      `${describeRemoval(seen)}: it stops; delete its directory (${this.dir}), and add the machine back under a new name if wanted`,
    );
    // Stop calling on peers that refuse it (a removed leader keeps them until it handed over).
    if (!this.stopping) this.transport?.setPeers(this.peers());
    this.saveCheckpoint();
    void (async () => {
      // Durable before anything else: a member that stopped must not start again.
      await this.saving;
      const recorded = this.lastSaveOk;
      const handedOver = await waitForHandoff(this.replica, this.clock);
      if (!this.stopping) this.transport?.setPeers(this.peers());
      this.resolveRemoval({ ...seen, recorded, handedOver });
    })();
  }

  // ---- snapshots -----------------------------------------------------------------------------

  /**
   * installSnapshot replaces the engine with a leader's snapshot staged in `stage` (Replica
   * calls it before the log records the snapshot): the staged store must open cleanly, then the
   * engine closes, its files are replaced (snapshot-install.ts) and it opens again, and the
   * member list becomes the snapshot's.
   */
  private async installSnapshot(stage: string, snap: Snapshot): Promise<Engine> {
    const state = decodeSnapshotData(snap.data);
    if (state === undefined) {
      throw new CorruptionError(`the snapshot at index ${snap.metadata.index} holds no member list`);
    }
    const cask = await installSnapshotEngine(
      await this.installOptions(stage, snap),
      (damage) =>
        new CorruptionError(`the snapshot at index ${snap.metadata.index} arrived damaged (${damage})`),
    );
    if (this.membership.restore(withOwnView(state, this.membership.records()))) {
      this.transport?.setPeers(this.peers());
      this.saveCheckpoint();
    }
    this.logger.info(
      { index: snap.metadata.index, keys: cask.stats().keys, lastTs: cask.lastTs() },
      'installed a snapshot from the leader',
    );
    return cask;
  }

  /** installOptions: what installing the snapshot staged in `stage` over this member's engine takes. */
  private async installOptions(stage: string, snap: Snapshot): Promise<InstallRepairOptions<CaskEngine>> {
    const { openCask } = await import('../storage/cask/cask-engine.js');
    return {
      fs: this.fs,
      dir: this.dir,
      stage,
      index: snap.metadata.index,
      current: this.engine.localEngine,
      open: (dir) => openCask(dir, this.caskOptions),
    };
  }

  /**
   * installRepairSnapshot replaces the empty engine of a member repairing its damaged one with a
   * snapshot fetched from the leader (engine-repair.ts). The member list is not restored from
   * it: the log, which this member keeps, replays the changes after its snapshot as on any start.
   */
  private async installRepairSnapshot(stage: string, snap: Snapshot): Promise<Engine> {
    const cask = await installRepairSnapshot(await this.installOptions(stage, snap));
    this.logger.warn(
      { index: snap.metadata.index, keys: cask.stats().keys, lastTs: cask.lastTs() },
      'installed the snapshot fetched from the leader to repair the engine',
    );
    return cask;
  }

  // ---- membership --------------------------------------------------------------------------

  private confChangeApplied(cc: ConfChange, _cs: ConfState, index: number): void {
    const lead = this.replica.leader;
    const leadRecord = this.membership.record(lead);
    if (!this.membership.apply(cc, index)) return;
    for (const c of cc.changes) {
      if (c.type === 'removeNode') {
        this.infos.delete(c.nodeId);
        this.lastHeard.delete(c.nodeId);
        if (c.nodeId === lead && lead !== this.identity.id && leadRecord !== undefined)
          this.keepDeparting(leadRecord);
      }
    }
    this.transport?.setPeers(this.peers());
    this.saveCheckpoint();
    if (cc.changes.some((c) => c.type === 'removeNode' && c.nodeId === this.identity.id)) {
      this.removedNow('applied', this.leaderName(), index, undefined);
    }
  }

  /** keepDeparting keeps a removed leader's connections for REMOVED_LEADER_GRACE_MS (`departing`). */
  private keepDeparting(record: MemberRecord): void {
    this.departing.set(record.id, record);
    this.clock.after(REMOVED_LEADER_GRACE_MS, () => {
      this.departing.delete(record.id);
      if (!this.stopping) this.transport?.setPeers(this.peers());
    });
  }

  /** leaderName: the leader this member follows (or is), by name; "" when it knows none. */
  private leaderName(): string {
    const lead = this.replica.leader;
    if (lead === NONE) return '';
    if (lead === this.identity.id) return this.identity.name;
    return this.membership.record(lead)?.name || this.infos.get(lead)?.name || hexId(lead);
  }

  /** identity: who this member is, as member.json records it. */
  get identity(): Identity {
    return this.recorded;
  }

  /** onPeerRoundTrip: told each answered probe's round trip to a peer, by name (the RTT histogram). */
  readonly onPeerRoundTrip = new Set<(peer: string, seconds: number) => void>();
  /** roundTrips: the last answered probe's round trip to each peer, by name, in ms. */
  private readonly roundTrips = new Map<string, number>();

  /** lastRoundTripMs: the last answered probe's round trip to peer `name` (undefined: none yet). */
  lastRoundTripMs(name: string): number | undefined {
    return this.roundTrips.get(name);
  }

  /** peerDials: outbound connections to peers attempted since start (the reconnect metric). */
  get peerDials(): number {
    return this.transport?.dials ?? 0;
  }

  /**
   * recordClientAddrs records where this member now serves clients (member.json's clientAddrs),
   * if that changed: a restart without --addr or --http listens there again.
   */
  recordClientAddrs(addrs: ClientAddrs): Promise<void> {
    const was = this.recorded.clientAddrs;
    if (was !== undefined && was.resp === addrs.resp && was.http === addrs.http) return this.saving;
    this.recorded = { ...this.recorded, clientAddrs: { resp: addrs.resp, http: addrs.http } };
    this.saveCheckpoint();
    return this.saving;
  }

  /** saveCheckpoint records the member list (and the rest of the identity) in member.json. */
  private saveCheckpoint(): void {
    const identity: Identity = { ...this.recorded, ...this.checkpoint() };
    // In order, one at a time; a failed rewrite leaves the older checkpoint, which the log replay
    // (or the next snapshot) brings up to date at the next start.
    this.saving = this.saving.then(() =>
      writeIdentity(this.fs, this.dir, identity).then(
        () => {
          this.lastSaveOk = true;
        },
        (err: unknown) => {
          this.lastSaveOk = false;
          this.logger.warn({ err }, 'could not record the member list in member.json (the log still has it)');
        },
      ),
    );
  }

  private checkpoint(): Pick<Identity, 'members' | 'removed' | 'membershipIndex' | 'started'> {
    const st = this.membership.state();
    return { members: st.members, removed: st.removed, membershipIndex: st.index, started: st.started ?? [] };
  }

  /** reconfigView: what the strict checks look at (meaningful on the leader). */
  reconfigView(): ReconfigView {
    const st = this.replica.status();
    const now = this.clock.monotonicMs();
    const active = new Set<NodeId>([this.identity.id]);
    for (const [id, at] of this.lastHeard) if (now - at <= ACTIVE_WINDOW_MS) active.add(id);
    const match = new Map<NodeId, number>();
    for (const [id, pr] of st.progress) match.set(id, pr.match);
    return {
      leader: this.identity.id,
      voters: st.voters,
      learners: st.learners,
      lastIndex: st.lastIndex,
      match,
      active,
      members: this.membership.records(),
      removed: this.membership.removed(),
    };
  }

  /**
   * addLearner adds a member as a learner (the only way in: strict reconfiguration); it resolves
   * once the change is applied here. Run on the ready leader.
   */
  async addLearner(name: string, peerAddr: string): Promise<MemberRecord> {
    checkName(name, 'member add');
    checkAddress(peerAddr, 'member add --peer-url');
    await this.settleMarking();
    this.requireLeader();
    const record: MemberRecord = { id: memberId(name, this.identity.clusterToken), name, peerAddr };
    refuseIf(checkAddLearner(this.reconfigView(), record));
    // The log of a cluster seeded from a backup lacks the seeded data (docs/backup.md): compact
    // it whole first, so that the new member catches up by snapshot, which holds that data.
    if (this.identity.seeded === true && this.replica.logStart() <= 1) await this.replica.snapshotNow();
    await this.replica.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addLearner', nodeId: record.id }],
      context: encodeMemberContext(record),
    });
    return record;
  }

  /** promote makes a caught-up learner a voter. Run on the ready leader. */
  async promote(name: string): Promise<void> {
    await this.settleMarking();
    this.requireLeader();
    const m = this.namedMember(name);
    refuseIf(checkPromote(this.reconfigView(), m.id));
    const record = this.membership.record(m.id);
    await this.replica.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'addNode', nodeId: m.id }],
      context: record === undefined ? NO_CONTEXT : encodeMemberContext(record),
    });
  }

  /**
   * remove takes a member out of the cluster. Removing this member (the leader) first moves
   * leadership to the most up-to-date active voter and answers `{ movedTo }`: the caller sends
   * the removal to the new leader (the Raft core would also cope with a removed leader, but a
   * handover first keeps the group from waiting on it). Run on the ready leader.
   */
  async remove(name: string, force: boolean): Promise<{ movedTo: NodeId } | undefined> {
    await this.settleMarking();
    this.requireLeader();
    const m = this.namedMember(name);
    const view = this.reconfigView();
    refuseIf(checkRemove(view, m.id, force));
    if (m.id === this.identity.id) {
      const successor = view.voters
        .filter((id) => id !== this.identity.id && view.active.has(id))
        .sort((a, b) => (view.match.get(b) ?? 0) - (view.match.get(a) ?? 0))[0];
      if (successor === undefined) refuseIf('no other active voter can take over the leadership');
      await this.transferTo(successor as NodeId, this.member(successor as NodeId)?.name ?? '');
      return { movedTo: successor as NodeId };
    }
    await this.replica.proposeConfChange({
      transition: 'auto',
      changes: [{ type: 'removeNode', nodeId: m.id }],
      context: NO_CONTEXT,
    });
    return undefined;
  }

  /** moveLeader hands leadership to the named voter and resolves once it leads. Run on the ready leader. */
  async moveLeader(name: string): Promise<void> {
    this.requireLeader();
    const m = this.namedMember(name);
    if (m.id === this.identity.id) return;
    const view = this.reconfigView();
    if (!view.voters.includes(m.id)) refuseIf(`'${name}' is not a voter`);
    if (!view.active.has(m.id)) refuseIf(`'${name}' has not been heard from recently`);
    // A transfer stops proposals until the target takes over or the core gives up (an election
    // timeout): a target that stopped answering a moment ago, though still "active" for the
    // membership checks, is refused here rather than costing the cluster its writes for that long.
    const heard = this.lastHeard.get(m.id);
    if (heard === undefined || this.clock.monotonicMs() - heard > TRANSFER_HEARD_WITHIN_MS)
      refuseIf(
        `'${name}' has not answered in the last ${TRANSFER_HEARD_WITHIN_MS} ms (is it running and reachable?)`,
      );
    await this.transferTo(m.id, name);
  }

  /** transferTo asks the core to hand leadership to `to` and waits until this member follows someone else. */
  private async transferTo(to: NodeId, name: string): Promise<void> {
    this.replica.transferLeader(to);
    const deadline = this.clock.monotonicMs() + this.requestTimeoutMs;
    for (;;) {
      const lead = this.replica.leader;
      if (lead !== NONE && lead !== this.identity.id) return;
      // Still leading, and the core no longer transfers: it gave up (the target did not catch up
      // and take over within an election timeout). Uncertain, not refused: the target may yet
      // act on a TimeoutNow it received late.
      if (lead === this.identity.id && this.replica.transferee !== to) {
        throw new UncertainError(
          `'${name}' did not take over within an election timeout, and this member leads again; look at '${name}' (running? caught up?) and retry`,
        );
      }
      const left = deadline - this.clock.monotonicMs();
      if (left <= 0) {
        throw new UncertainError(
          `leadership did not move to '${name}' within ${this.requestTimeoutMs} ms; look at the cluster and retry`,
        );
      }
      await changeOrTimeout(this.replica, this.clock, left);
    }
  }

  private requireLeader(): void {
    if (!this.replica.leaderReady) {
      throw new ClusterDownError(
        'membership changes run on the leader, and this member is not the ready leader',
      );
    }
  }

  private namedMember(name: string): MemberView {
    const m = this.memberByName(name);
    if (m === undefined) throw new MembershipRefusedError(`no member named '${name}'`, 'not-found');
    return m;
  }
}

/**
 * withOwnView: a leader's snapshot's member list, with this member's own record of every member
 * it already knows. The snapshot's records are the leader's view of the addresses; with a proxy
 * or NAT in between, each member reaches its peers (and is reached) at other addresses, and a
 * member's record of an id never changes otherwise (there is no `member update`). Taking the
 * leader's view re-pointed this member's links through the leader's routes, and rewrote its own
 * record, so that a restart with its unchanged command line was refused ("--initial-cluster
 * gives 'n1' address ..., but member.json records <the leader's view>"): found on a proxied
 * cluster (test/cluster/snapshot-view.test.ts). Members the snapshot adds come with the leader's
 * view: this member has none of its own.
 */
function withOwnView(state: MembershipState, own: readonly MemberRecord[]): MembershipState {
  const mine = new Map(own.map((r) => [r.id, r]));
  return { ...state, members: state.members.map((r) => mine.get(r.id) ?? r) };
}

/** NO_CONTEXT: the context of a change that adds no member record. */
const NO_CONTEXT = new Uint8Array(0);

/** removeTree removes a file, or a directory with everything in it. */
async function removeTree(fs: FileSystem, target: string): Promise<void> {
  if ((await fs.kind(target)) === 'directory') {
    for (const name of await fs.readdir(target)) await removeTree(fs, path.join(target, name));
    await removeStagedDir(fs, target);
  } else {
    await fs.unlink(target);
  }
}

/** hasStore: whether `dir` already holds a store (engine metadata or data files). */
async function hasStore(fs: FileSystem, dir: string): Promise<boolean> {
  if ((await fs.kind(dir)) !== 'directory') return false;
  const names = await fs.readdir(dir);
  return names.some(isEngineEntry);
}

/** refuseIf throws a MembershipRefusedError with `reason` when there is one. */
function refuseIf(reason: string | undefined): void {
  if (reason !== undefined) throw new MembershipRefusedError(reason, 'refused');
}

function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
