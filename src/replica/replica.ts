// Replica: one member of a Raft group, driving the core (src/raft) with a durable log, a
// transport and the local engine as state machine (docs/cluster.md, "The driver").
//
// A Ready is taken whenever there is work (once per event-loop turn, setImmediate) and handed
// out without waiting for the previous Ready's save (pipelined, etcd raft's asynchronous storage
// writes; see `handle`):
//
//   ready -> send a leader's appends and heartbeats -> hand the save to the log (memory now, the
//   WAL writes queued saves in order) -> apply committed entries -> serve read states;
//   once this save and every earlier one is durable: send the rest (votes, acks) -> appended
//   (the leader counts its own entries toward commit only now)
//
// A snapshot to install, and a snapshot of our own with its compaction, run alone after every
// save in flight.
//
// Repair. A member whose engine was damaged after its log was compacted starts with an empty
// engine (engine-repair.ts) and `repairing`: the core holds committed entries back and does not
// campaign (RawNode.setStateMachineMissing) while the log, the hard state, appends,
// acknowledgements and votes go on as usual; reads are refused. Every REPAIR_ASK_MS it asks the
// leader for a snapshot of the state at or past its floor (MsgSnapRequest; the floor is its
// log's snapshot index and its persisted commit); the leader answers with its engine's files
// beside a MsgSnap marked REPAIR_SNAPSHOT_CONTEXT, which never reaches the core. Once installed,
// the held entries are applied from the log's applied index on; by commit timestamp the writes
// the snapshot holds are skipped, as after any restart.
//
// Applying. A committed entry is a stamped write (entry-codec.ts); the engine takes it at its
// commit timestamp. Entries whose ts the engine already holds (ts <= engine.lastTs()) were
// applied before a restart and are skipped: the commit timestamp is the consistent index
// (etcd's consistent_index), so no applied index needs to be stored beside the data. The engine
// runs with durability `always` and applies in log order, so what survives a crash is a prefix
// of the applied entries (see docs/cluster.md for the power-loss caveat).
//
// Visibility. `applied` counts entries whose writes the engine shows (resolved durable), in log
// order; reads after a ReadIndex wait for it, and a proposal resolves when its entry is applied.
//
// Leadership. The local write pipeline may only run writes while this member leads AND has
// applied an entry of its own term (TiKV's applied_term == term): then the engine plus the
// proposals of this term are the newest state, because every older entry is applied. Proposals
// in flight when leadership is lost stay pending: if their entry is applied anyway (a new leader
// committed it), they resolve; if a different entry takes their index, or an entry of a newer
// term is committed before their index, they fail as not applied; otherwise the request timeout
// ends their callers' wait as uncertain. A proposal that timed out stays tracked until its fate
// is known, and until then the leader refuses writes: the pipeline dropped its pending value, so
// a write computed meanwhile could overwrite it unseen.
import { createHash } from 'node:crypto';
import type { Clock, Timer } from '../io/clock.js';
import {
  type ConfChange,
  type ConfState,
  checkPersistedBeforeSend,
  decodeConfChange,
  defaultConfig,
  type Entry,
  type HardState,
  isEmptySnapshot,
  LEADER_MESSAGES,
  type LogStorage,
  type Message,
  type MessageType,
  message,
  NONE,
  type NodeId,
  ProposalDroppedError,
  RawNode,
  type Ready,
  type Snapshot,
  type StateType,
  type Status,
} from '../raft/index.js';
import { assert } from '../stdx/assert.js';
import { writeU64LE } from '../stdx/u64.js';
import type { BackupSource, Engine, WriteOp } from '../storage/engine.js';
import { CairnError, ClusterDownError, UncertainError } from '../storage/errors.js';
import { CommitTrace } from './commit-trace.js';
import { decodeCheck, decodeWrite, encodeCheck, encodeWrite } from './entry-codec.js';
import { EngineRepairingError, ReadUnconfirmedError, RepairSnapshotDamagedError } from './errors.js';
import { hexId } from './log-ids.js';
import { checkProposal } from './proposal-limit.js';
import type { Transport } from './transport.js';

/** ReplicaLog: the durable Raft log the driver saves each Ready to (disk-log.ts, or memory in tests). */
export interface ReplicaLog extends LogStorage {
  /** createSnapshot records a snapshot at applied index i, durably (disk-log.ts). */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot | Promise<Snapshot>;
  /** compact drops the entries up to index (at most the snapshot's), durably. */
  compact(index: number): void | Promise<void>;
  /**
   * save persists one Ready: the in-memory view changes at the call; the promise resolves once
   * durable (one fdatasync when `sync`). Saves may be queued while earlier ones are in flight;
   * they resolve in call order. createSnapshot and compact are only called with none in flight.
   */
  save(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    snapshot: Snapshot | undefined,
    sync: boolean,
  ): Promise<void>;
  close(): Promise<void>;
}

/**
 * EARLY_MESSAGES: what leaves as soon as a Ready is taken, before its save and the earlier ones
 * are durable. A leader's messages (above: no commit index in them depends on its own unsaved
 * entries) and the responses that claim nothing about this member's disk: a heartbeat response
 * or a ReadIndex response only says "I was in term T and heard you when I answered", which a
 * crash afterwards cannot take back (etcd raft holds back only MsgAppResp, MsgVoteResp and
 * MsgPreVoteResp under asynchronous storage writes). Sending them early keeps ReadIndex rounds
 * (linearizable reads, EXEC, TXN.BEGIN) from waiting for every follower's fsync in flight.
 */
const EARLY_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>([
  ...LEADER_MESSAGES,
  'MsgHeartbeatResp',
  'MsgReadIndexResp',
]);

/** TICK_MS: one Raft tick. Heartbeats every tick, elections after 10-20 ticks (etcd's 100 ms / 1 s). */
export const TICK_MS = 100;
export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 1;
/** REQUEST_TIMEOUT_MS: how long a proposal or a read waits before failing (the default 5 s). */
export const REQUEST_TIMEOUT_MS = 5_000;
/** VoteFloor: a committed entry (index and term) a member's votes are held up to (Replica.holdVotes). */
export interface VoteFloor {
  readonly index: number;
  readonly term: number;
}

/** BOOTSTRAP_TERM: the term of a new cluster's bootstrap entries (Raft.bootstrap); leaders' entries are later. */
const BOOTSTRAP_TERM = 1;
/**
 * SNAPSHOT_ENTRIES: applied entries between two snapshots of the engine, each followed by a
 * compaction of the log (etcd's --snapshot-count, whose default is 10,000 since v3.6).
 */
export const SNAPSHOT_ENTRIES = 10_000;
/**
 * SNAPSHOT_CATCHUP_ENTRIES: entries kept below a snapshot so that a follower a little behind
 * catches up from the log instead of by a whole snapshot (etcd keeps 5,000).
 */
export const SNAPSHOT_CATCHUP_ENTRIES = 5_000;
/**
 * REPAIR_ASK_MS: how often a member repairing its engine asks the leader for a snapshot of the
 * state until one arrives (the leader ignores a request while it sends one to that member, or
 * has not applied as far as asked).
 */
export const REPAIR_ASK_MS = 1_000;
/** REPAIR_SNAPSHOT_CONTEXT: marks the MsgSnap answering a MsgSnapRequest (the driver installs it, never the core). */
const REPAIR_SNAPSHOT_CONTEXT: Uint8Array = new TextEncoder().encode('cairn:engine-repair');
/** CHECKS_KEPT: state digests kept for `cairn check hash` (by check entry). */
const CHECKS_KEPT = 16;
/** LOOKAHEAD_ENTRIES: entries read from the log at a time while looking for the next write. */
const LOOKAHEAD_ENTRIES = 256;
/**
 * CHECK_EXPIRY_MARGIN_MS: keys expiring this close to a check's time are left out of its digest
 * (members hide expired keys by their own clocks; a check runs for a while).
 */
export const CHECK_EXPIRY_MARGIN_MS = 60_000;
/** DIGEST_HEAD_BYTES: per key: key length, value length, expiry, revision (mod, create, version). */
const DIGEST_HEAD_BYTES = 4 + 4 + 8 + 8 + 8 + 8;
/** DIGEST_HEX_CHARS: 128 bits of the SHA-256, in hex. */
const DIGEST_HEX_CHARS = 32;

/** StateDigest: one member's digest of its state at a check entry (`cairn check hash`). */
export interface StateDigest {
  readonly index: number;
  readonly digest: string;
  readonly keys: number;
}

/** CheckUnavailableError: this member applied past a check without digesting it (a snapshot, a restart). */
export class CheckUnavailableError extends CairnError {
  constructor(index: number, why: 'ahead' | 'passed') {
    super(
      'INVALID_ARGUMENT',
      why === 'ahead'
        ? `this member has no digest for entry ${index}: its engine already held writes of later entries when it applied it (it restarted, or installed a snapshot newer than its index); run the check again`
        : `this member has no digest for entry ${index}: it applied past it without digesting it (it installed a snapshot past it, restarted, or the digest is too old); run the check again`,
    );
  }
}

export interface ReplicaLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ReplicaOptions {
  readonly id: NodeId;
  readonly log: ReplicaLog;
  /** engine: the local state machine, opened with durability `always`. */
  readonly engine: Engine;
  readonly clock: Clock;
  readonly logger: ReplicaLogger;
  /** bootstrap: the voters of a brand-new group (first start only; empty on restarts). */
  readonly bootstrap: readonly NodeId[];
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly requestTimeoutMs?: number;
  /** randomSeed: seeds election timeouts (tests and the simulator fix it). */
  readonly randomSeed?: number;
  /** onFatal: the replica cannot go on (log or engine failure): the process should stop. */
  readonly onFatal: (err: unknown) => void;
  /**
   * defer: runs `fn` on a later turn (the driver's once-per-turn step). Default setImmediate;
   * the simulator substitutes its seeded scheduler so that a run replays exactly.
   */
  readonly defer?: ((fn: () => void) => void) | undefined;
  /**
   * snapshotEntries: SNAPSHOT_ENTRIES (`--snapshot-count`; tests lower it). snapshotCatchupEntries:
   * the log tail kept below a snapshot, by default SNAPSHOT_CATCHUP_ENTRIES or half the spacing.
   */
  readonly snapshotEntries?: number;
  readonly snapshotCatchupEntries?: number;
  /**
   * snapshots: what a member does with snapshots of its engine. Without it, the log is never
   * compacted and a snapshot from a leader stops the member.
   */
  readonly snapshots?: SnapshotHooks | undefined;
  /**
   * repairing: the engine is empty because the damaged one was set aside and the log no longer
   * holds every entry (engine-repair.ts): nothing is applied, no read served and no election
   * started until a snapshot fetched from the leader is installed (`snapshots.repair`).
   */
  readonly repairing?: boolean | undefined;
  /**
   * seeded: the engine held data before the log's first entry (`cairn snapshot restore`; the
   * identity's `seeded`). Without it, engine writes the log does not explain came from entries
   * applied before their local save was durable (see `logTsAtStart`).
   */
  readonly seeded?: boolean | undefined;
}

/**
 * SnapshotHooks: the member's part of Raft snapshots (docs/cluster.md, "Snapshots and log
 * compaction"). A snapshot's Raft data is small (`data`: the member list at its index); the
 * engine's files travel beside it (Transport.sendSnapshot) and are installed by `install`.
 */
export interface SnapshotHooks {
  /**
   * data: what a snapshot taken now records beside the engine (the membership), and `logTs`, the
   * commit timestamp of the newest write at or below its index, which `logTsOf` reads back.
   */
  data(logTs: number): Uint8Array;
  /** logTsOf (optional): the `logTs` that `data` recorded; undefined when not known. */
  logTsOf?(data: Uint8Array): number | undefined;
  /**
   * install replaces the local engine (closed first) with the one staged in `dir`, restores
   * what `data` recorded, and returns the new engine. The staged engine holds at least every
   * write up to the snapshot's index (it may hold later ones: see `apply`).
   */
  install(dir: string, snapshot: Snapshot): Promise<Engine>;
  /** discard removes a staged directory that will not be installed (or was emptied by install). */
  discard(dir: string): Promise<void>;
  /**
   * repair replaces the local engine (closed first) with a snapshot fetched to repair it,
   * staged in `dir`, and ends the repair durably; RepairSnapshotDamagedError (nothing changed)
   * when the staged store does not open cleanly. Required for a Replica started `repairing`.
   */
  repair?(dir: string, snapshot: Snapshot): Promise<Engine>;
}

/** RepairState: a member repairing its engine (see "Repair" at the top). */
interface RepairState {
  /** floor: the snapshot must be at least this index: the log's snapshot index and persisted commit. */
  readonly floor: number;
  /** asked: the leader asked last (the first request to each leader is logged as a warning). */
  asked: NodeId;
  /** staged: a fetched snapshot waiting to be installed (in a turn of its own). */
  staged: { readonly dir: string; readonly snapshot: Snapshot; readonly from: NodeId } | undefined;
}

interface Proposal {
  readonly term: number;
  /** confChange: the proposal is a membership change (the leader may replace it with an empty entry). */
  readonly confChange?: boolean;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly timer: Timer;
  /**
   * timedOut: its caller was told UNCERTAIN, but the entry is still in the log and may yet be
   * applied: the proposal stays tracked until its fate is known (see `undecided`).
   */
  timedOut: boolean;
}

interface ReadWaiter {
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
  readonly timer: Timer;
  /** readIndex: set once the leader confirmed the round (the read then waits for applied to reach it). */
  readIndex?: number;
}

/** ReadConfirmation: a read confirmed now (`Replica.confirmRead`, /healthz). */
export interface ReadConfirmation {
  /** readIndex: the leader's commit index that a quorum confirmed for this read. */
  readonly readIndex: number;
  /** applied: this member's applied index when the read could be served (at or past readIndex). */
  readonly applied: number;
}

/** ReplicaStatus: what ROLE, INFO replication and /v1/cluster report. */
export interface ReplicaStatus {
  readonly id: NodeId;
  readonly role: StateType;
  readonly leader: NodeId;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly leaderReady: boolean;
  /** repairing: the engine waits for a snapshot of the state (it applies and serves nothing). */
  readonly repairing: boolean;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** progress: per member match index (leader only). */
  readonly progress: ReadonlyMap<
    NodeId,
    { readonly match: number; readonly next: number; readonly state: string }
  >;
}

export interface ReplicaCounters {
  proposalsCommitted: number;
  proposalsApplied: number;
  proposalsFailed: number;
  leaderChanges: number;
  readIndexRounds: number;
  walFsyncs: number;
  /** snapshotsSent, snapshotsFailed: snapshots this member shipped to followers, by outcome. */
  snapshotsSent: number;
  snapshotsFailed: number;
  /** snapshotsInstalled: snapshots from a leader that replaced this member's engine. */
  snapshotsInstalled: number;
}

export class Replica {
  readonly id: NodeId;
  private readonly rn: RawNode;
  private transport: Transport | undefined;
  private readonly log: ReplicaLog;
  /** engine: the local state machine; replaced when a snapshot from the leader is installed. */
  private engine: Engine;
  private readonly clock: Clock;
  private readonly logger: ReplicaLogger;
  private readonly requestTimeoutMs: number;
  private readonly onFatal: (err: unknown) => void;
  private ticker: Timer | undefined;
  private scheduled = false;
  /**
   * exclusive: a turn that runs alone is in progress (a snapshot to install, a snapshot to take
   * and the log to compact): no other Ready is taken until it is done.
   */
  private exclusive = false;
  /**
   * saveTail: settles once every save handed to the log so far is durable and its Ready's
   * held-back messages are sent (the pipeline of saves; see `handle`).
   */
  private saveTail: Promise<void> = Promise.resolve();
  /** savesInFlight: pipelined saves not yet durable. */
  private savesInFlight = 0;
  private failed: Error | undefined;
  private closed = false;
  /** applied: the index of the newest entry whose write the engine shows (in log order). */
  private appliedIndex = 0;
  /** applyTail: settles once every entry handed to the engine so far is visible. */
  private applyTail: Promise<void> = Promise.resolve();
  private lead: NodeId = NONE;
  private role: StateType = 'follower';
  /** termApplied: this member leads and has applied an entry of its current term. */
  private termApplied = false;
  /** lastProposedTs: the newest commit timestamp this member proposed (lastTs of the replicated engine). */
  lastProposedTs = 0;
  private readonly proposals = new Map<number, Proposal>();
  /**
   * undecided: proposals whose callers timed out while their entries may still be applied. The
   * write pipeline dropped their pending values when the callers failed, so a write computed now
   * would miss them if they apply later (a lost update); writes wait until none is left.
   */
  private undecided = 0;
  /** staleTerm: proposals of terms below it are settled (see `settleOlderTerms`). */
  private staleTerm = 0;
  private readonly snapshots: SnapshotHooks | undefined;
  private readonly snapshotEntries: number;
  private readonly snapshotCatchupEntries: number;
  /** confState: the configuration after the last conf change handed to apply (snapshots record it). */
  private confState: ConfState;
  /** snapshotIndex: the index of the newest snapshot, taken here or installed. */
  private snapshotIndex: number;
  /**
   * logTs: the commit timestamp of the newest write at or below the newest entry handed to apply
   * (applied or skipped); appliedTs: the same at `appliedIndex` (what a snapshot records). From
   * the start they count the writes the replay does not see (see `logTsAtStart`).
   */
  private logTs: number;
  private appliedTs: number;
  /** held: entries after a check entry, waiting for its digest (see `apply`). */
  private held: Entry[] | undefined;
  /** digests: the state digests of the last CHECKS_KEPT check entries, by index. */
  private readonly digests = new Map<number, StateDigest | Error>();
  private readonly digestListeners = new Set<() => void>();
  /** onDigest: told each state digest this member computes at a check entry (the simulator compares them). */
  readonly onDigest = new Set<(digest: StateDigest) => void>();
  /** snapshotWaiters: callers of snapshotNow, served by the next turn. */
  private readonly snapshotWaiters: { resolve: () => void; reject: (err: Error) => void }[] = [];
  /** staged: engine files of snapshots that arrived (Transport), by snapshot index, until installed. */
  private readonly staged = new Map<number, string>();
  /** repair: set while the engine waits for a snapshot of the state (see "Repair" at the top). */
  private repair: RepairState | undefined;
  private repairTimer: Timer | undefined;
  /** repairsServing: members this one is sending a repair snapshot to (at most one each). */
  private readonly repairsServing = new Set<NodeId>();
  /** onInstalling: told when a snapshot install starts (the local engine is about to close). */
  readonly onInstalling = new Set<() => void>();
  /** onEngine: told when a snapshot replaced the local engine (the ReplicatedEngine follows it). */
  readonly onEngine = new Set<(engine: Engine) => void>();
  /**
   * onForeignWrite: told the keys of every write entry this member applies that it did not
   * propose itself (another member's write; its own were told by its write pipeline as it
   * queued them), when it hands the entry to the engine. Client tracking's invalidations.
   */
  readonly onForeignWrite = new Set<(keys: readonly Uint8Array[]) => void>();
  /** voteFloor: the vote floor this member holds until it applied it (holdVotes). */
  private voteFloor: { readonly floor: VoteFloor; readonly released: () => void } | undefined;
  /** readWaiters: reads waiting for the next ReadIndex round (batched per turn). */
  private readWaiters: ReadWaiter[] = [];
  private readonly readRounds = new Map<string, ReadWaiter[]>();
  /** roundStarted: when each ReadIndex round in flight started (monotonic ms). */
  private readonly roundStarted = new Map<string, number>();
  /** indexWaiters: reads whose read index is known, waiting until applied reaches it. */
  private indexWaiters: { index: number; waiters: ReadWaiter[] }[] = [];
  private readSeq = 0;
  private readonly changeListeners = new Set<() => void>();
  private readonly confListeners = new Set<(cc: ConfChange, cs: ConfState, index: number) => void>();
  readonly counters: ReplicaCounters = {
    proposalsCommitted: 0,
    proposalsApplied: 0,
    proposalsFailed: 0,
    leaderChanges: 0,
    readIndexRounds: 0,
    walFsyncs: 0,
    snapshotsSent: 0,
    snapshotsFailed: 0,
    snapshotsInstalled: 0,
  };
  /** trace: the commit budget diagnostic (CAIRN_COMMIT_TRACE; commit-trace.ts), usually off. */
  private readonly trace = CommitTrace.fromEnv();
  /** onFsync: told the duration of every log save that fsynced (the WAL fsync histogram). */
  readonly onFsync = new Set<(seconds: number) => void>();
  /** onReadIndex: told how long each ReadIndex round took until its reads could be served. */
  readonly onReadIndex = new Set<(seconds: number) => void>();

  constructor(options: ReplicaOptions) {
    this.id = options.id;
    this.log = options.log;
    this.engine = options.engine;
    this.clock = options.clock;
    this.logger = options.logger;
    this.requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.onFatal = options.onFatal;
    this.defer = options.defer ?? setImmediate;
    this.snapshots = options.snapshots;
    this.snapshotEntries = options.snapshotEntries ?? SNAPSHOT_ENTRIES;
    // The tail kept below a snapshot: at most half the spacing, so that compaction happens at all.
    this.snapshotCatchupEntries =
      options.snapshotCatchupEntries ??
      Math.min(SNAPSHOT_CATCHUP_ENTRIES, Math.floor(this.snapshotEntries / 2));
    const initial = options.log.initialState();
    this.confState = initial.confState;
    this.snapshotIndex = options.log.snapshot().metadata.index;
    // Entries up to the snapshot are applied: the engine holds them (it was synced before the
    // log was compacted, or installed from the snapshot).
    this.appliedIndex = this.snapshotIndex;
    this.logTs = this.logTsAtStart(options.seeded === true);
    this.appliedTs = this.logTs;
    const electionTick = options.electionTicks ?? ELECTION_TICKS;
    this.rn = new RawNode(
      defaultConfig(options.id, options.log, {
        electionTick,
        heartbeatTick: HEARTBEAT_TICKS,
        // Followers cannot compute a write's effects: a command is forwarded whole (the servers'
        // forwarding), never a bare proposal.
        disableProposalForwarding: true,
        randomSeed: options.randomSeed ?? options.id,
        // Entries up to the newest snapshot are in the engine (it was flushed before the
        // snapshot was recorded, or installed from it): they are not delivered again. (Entries
        // between a compaction point and the snapshot stay in the log for slow followers.)
        applied: this.snapshotIndex,
        peers: options.bootstrap,
      }),
    );
    this.tickMs = options.tickMs ?? TICK_MS;
    if (options.repairing === true) {
      assert(this.snapshots?.repair !== undefined, 'a repairing replica needs snapshots.repair');
      // At least the log's snapshot (the entries below it are nowhere else on this member) and
      // whatever it had committed (and may have applied) before.
      this.repair = {
        floor: Math.max(this.snapshotIndex, initial.hardState.commit),
        asked: NONE,
        staged: undefined,
      };
      this.rn.setStateMachineMissing(true);
    }
  }

  /**
   * logTsAtStart: the commit timestamp of the newest write below the entries a replay hands to
   * apply. With a snapshot, what it recorded (0 when it did not: the check's test is then only
   * conservative). Without one the log holds every entry since the first, so the engine's writes
   * below the log's first write came before the log: anything below that write's timestamp.
   * When the log holds no write, the engine's writes came from before the log only on a member
   * seeded by `cairn snapshot restore`; on any other they are writes of entries this member
   * applied before its own save of them was durable and then lost to a power cut (docs/cluster.md,
   * "Applying does not wait for the local save"), so they are ahead of every entry in the log:
   * 0. (Taking the engine's newest timestamp there made a restarted member digest a check entry
   * with a later entry's write in its engine; replica simulator, seed 730469247.)
   */
  private logTsAtStart(seeded: boolean): number {
    if (this.snapshotIndex > 0) return this.snapshots?.logTsOf?.(this.log.snapshot().data) ?? 0;
    const first = this.firstWriteTsAfter(this.snapshotIndex);
    if (first !== undefined) return first - 1;
    return seeded ? this.engine.lastTs() : 0;
  }

  /**
   * firstWriteTsAfter: the commit timestamp of the first write entry after `index` in this
   * member's log, or undefined when there is none (yet). Commit timestamps grow along the log.
   */
  private firstWriteTsAfter(index: number): number | undefined {
    const last = this.log.lastIndex();
    for (let lo = Math.max(index + 1, this.log.firstIndex()); lo <= last; ) {
      const hi = Math.min(last + 1, lo + LOOKAHEAD_ENTRIES);
      for (const e of this.log.entries(lo, hi, Number.MAX_SAFE_INTEGER)) {
        if (e.type !== 'normal') continue;
        const write = decodeWrite(e.data);
        if (write !== undefined) return write.ts;
      }
      lo = hi;
    }
    return undefined;
  }

  /**
   * engineAhead: whether the engine already holds a write of an entry after `index` (a replay
   * after a restart, or a snapshot's cut newer than its index): its digest would then not
   * describe `index`. Exact when a write entry after `index` is in the log (timestamps grow along
   * it, so the engine holds a later write iff it holds that one); otherwise any write newer than
   * the newest at or below `index` came from beyond the log.
   */
  private engineAhead(index: number): boolean {
    const lastTs = this.engine.lastTs();
    if (lastTs <= this.logTs) return false;
    const next = this.firstWriteTsAfter(index);
    return next === undefined || next <= lastTs;
  }

  private readonly tickMs: number;
  private readonly defer: (fn: () => void) => void;

  /** start attaches the transport and starts ticking. */
  start(transport: Transport): void {
    assert(this.transport === undefined, 'replica started twice');
    this.transport = transport;
    this.ticker = this.clock.every(this.tickMs, () => {
      if (this.closed || this.failed !== undefined) return;
      this.rn.tick();
      this.schedule();
    });
    if (this.repair !== undefined)
      this.repairTimer = this.clock.every(REPAIR_ASK_MS, () => this.askForRepair());
    this.schedule();
  }

  // ---- inputs ---------------------------------------------------------------------------------

  /** step feeds messages from peers (the transport's onMessages). */
  step(msgs: readonly Message[]): void {
    if (this.closed || this.failed !== undefined) return;
    for (const m of msgs) {
      if (m.to !== this.id) continue;
      if (m.type === 'MsgSnapRequest') {
        this.serveRepair(m);
        continue;
      }
      if (m.type === 'MsgTimeoutNow' && this.repair !== undefined) {
        this.logger.warn(
          { from: hexId(m.from) },
          'leadership was offered to this member, which refuses it until its engine is repaired',
        );
      }
      try {
        this.rn.step(m);
      } catch (err) {
        // A peer's message the core refuses (ProposalDroppedError for a forwarded read without
        // leader) is dropped: the sender retries. Anything else is a bug: crash loudly.
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
    }
    this.trace?.committed(this.rn.raft.raftLog.committed);
    this.schedule();
  }

  /** unreachable: the transport could not deliver to id (flow control goes back to probing). */
  unreachable(id: NodeId): void {
    if (this.closed || this.failed !== undefined) return;
    this.rn.reportUnreachable(id);
  }

  /** campaign starts an election now (tests; the operator's move-leader uses transferLeader). */
  campaign(): void {
    this.rn.campaign();
    this.schedule();
  }

  /** transferee: the target of a leadership transfer in progress (NONE: none); leader only. */
  get transferee(): NodeId {
    return this.rn.raft.leadTransferee;
  }

  /** transferLeader asks the leader to hand over to `to` (cairn move-leader). */
  transferLeader(to: NodeId): void {
    this.rn.transferLeader(to);
    this.schedule();
  }

  /**
   * savesPending: pipelined log saves handed to the log and not yet durable (the simulator counts
   * crashes that cut one short).
   */
  get savesPending(): number {
    return this.savesInFlight;
  }

  /** repairing: the engine waits for a snapshot of the state; nothing is applied or read meanwhile. */
  get repairing(): boolean {
    return this.repair !== undefined;
  }

  /** leaderReady: this member may run writes and transactions now. */
  get leaderReady(): boolean {
    return this.failed === undefined && !this.closed && this.role === 'leader' && this.termApplied;
  }

  /**
   * leading: this member acts as the leader (ready or not); a removed leader goes on leading
   * until it has handed over (removal.ts, waitForHandoff).
   */
  get leading(): boolean {
    return this.role === 'leader';
  }

  /**
   * fresh: this member's log holds no entry of any leader: nothing, or only a new cluster's
   * bootstrap entries (term BOOTSTRAP_TERM). It acknowledged nothing a quorum could count on, so
   * it knows nothing a start check asks about (docs/cluster.md, "A member that lost its directory").
   */
  get fresh(): boolean {
    return this.rn.raft.raftLog.lastTerm() <= BOOTSTRAP_TERM;
  }

  /**
   * appliedTerm: the term of the entry at the applied index (0 before any), or undefined when the
   * log no longer knows it: with the applied index, what a start check's confirmed answer says.
   */
  get appliedTerm(): number | undefined {
    if (this.appliedIndex === 0) return 0;
    return this.rn.raft.raftLog.term(this.appliedIndex);
  }

  /**
   * holdVotes sets a vote floor (Raft.voteFloor): until this member has applied `floor.index`,
   * it does not campaign and votes only for candidates whose log reaches the floor; then the floor
   * is dropped and `released` is called. A member restarted on an empty directory holds its votes
   * this way up to the commit index its start check confirmed (docs/cluster.md, "The window before
   * the mark"). No floor at or below the applied index is set.
   */
  holdVotes(floor: VoteFloor, released: () => void): void {
    if (floor.index <= this.appliedIndex) {
      released();
      return;
    }
    this.voteFloor = { floor, released };
    this.rn.setVoteFloor(floor);
    this.logger.info(
      { ...floor },
      'votes held until this member has applied the entry its start check confirmed',
    );
  }

  /** releaseVoteFloor: the applied index reached the vote floor (holdVotes). */
  private releaseVoteFloor(index: number): void {
    const held = this.voteFloor;
    if (held === undefined || index < held.floor.index) return;
    this.voteFloor = undefined;
    this.rn.setVoteFloor(undefined);
    this.logger.info(
      { index },
      'votes no longer held: this member holds every entry its start check confirmed',
    );
    held.released();
  }

  get leader(): NodeId {
    return this.lead;
  }

  get applied(): number {
    return this.appliedIndex;
  }

  /** logStart: the first index the log still holds (entries before it are in a snapshot). */
  logStart(): number {
    return this.log.firstIndex();
  }

  /** onChange: called when the role, leader or leader readiness changes. */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /**
   * propose replicates one stamped write; it resolves once the entry is committed and applied
   * here. Only a ready leader proposes (ClusterDownError otherwise: nothing happened).
   */
  propose(ts: number, ops: readonly WriteOp[]): Promise<void> {
    try {
      this.checkWritable();
      const data = encodeWrite(ts, ops);
      checkProposal(data);
      this.rn.propose(data);
    } catch (err) {
      if (err instanceof ProposalDroppedError) {
        return Promise.reject(new ClusterDownError(`proposal refused: ${err.message}`));
      }
      return Promise.reject(err);
    }
    this.lastProposedTs = ts;
    this.trace?.proposed(this.rn.raft.raftLog.lastIndex());
    return this.track(false, '');
  }

  /**
   * track follows the entry just appended to the log (the last one) until it is applied here,
   * another entry takes its index, or the request timeout passes.
   */
  private track(confChange: boolean, what: string): Promise<void> {
    const raft = this.rn.raft;
    const index = raft.raftLog.lastIndex();
    const term = raft.term;
    // A proposal of an earlier term still waiting at this index lost it: this leader's log holds
    // every committed entry and now has its own entry there. (Found by the replica simulator,
    // seed 1481219097: the earlier proposal was overwritten in the map and never settled.)
    const stale = this.proposals.get(index);
    if (stale !== undefined) {
      this.settle(index, stale, notApplied(index));
    }
    this.schedule();
    return new Promise<void>((resolve, reject) => {
      const timer = this.clock.after(this.requestTimeoutMs, () => {
        const p = this.proposals.get(index);
        if (p?.timer !== timer) return;
        // The caller is told the outcome is unknown; the proposal stays tracked, because its
        // entry may still be applied (by this leader or a later one) or be overwritten.
        p.timedOut = true;
        this.undecided++;
        this.counters.proposalsFailed++;
        reject(
          new UncertainError(
            `${what}no outcome within ${this.requestTimeoutMs} ms (entry ${index}, term ${term})`,
          ),
        );
      });
      this.proposals.set(index, { term, confChange, resolve, reject, timer, timedOut: false });
    });
  }

  /**
   * settle ends a tracked proposal: resolved when `err` is undefined (its entry is applied),
   * rejected otherwise. A proposal whose caller already timed out only stops being undecided.
   */
  private settle(index: number, p: Proposal, err: Error | undefined): void {
    this.proposals.delete(index);
    p.timer.cancel();
    if (p.timedOut) {
      this.undecided--;
      if (this.undecided === 0) this.notify();
      return;
    }
    if (err === undefined) {
      this.counters.proposalsApplied++;
      p.resolve();
    } else {
      this.counters.proposalsFailed++;
      p.reject(err);
    }
  }

  /**
   * settleOlderTerms fails every proposal of a term below `term` at an index after `committed` once
   * the entry (index, term) is committed: every log that holds it has only entries of `term` or
   * later after it, so none of them can be applied. (Proposals at earlier indexes were matched
   * against their own index's entry by `apply`.) Without this, a proposal whose index lies beyond a new leader's log stayed pending
   * into the new term, and a write computed from its pending value was committed although its
   * own client had been told it failed (replica simulator, seed 873934335).
   */
  private settleOlderTerms(committed: number, term: number): void {
    if (term <= this.staleTerm) return;
    this.staleTerm = term;
    for (const [index, p] of this.proposals) {
      if (p.term < term && index > committed) {
        this.settle(index, p, notApplied(index));
      }
    }
  }

  /**
   * settleCovered settles every proposal at or below `index` once a snapshot of (index, term)
   * replaced the state: `apply` never sees the entries it covers, so nothing else would settle
   * them, and a proposal left pending keeps its write's value pending in the write pipeline.
   * (Replica simulator, seed 829900782: a leader isolated in term 2 proposed an INCR, installed a
   * newer leader's snapshot once healed, led again in term 5, and computed the next INCR of the
   * key from the never-committed one's value; that write was committed.) The snapshot tells
   * only the term at `index`: a proposal there is applied exactly when its term is that one; one
   * below it of a newer term cannot be in the log the snapshot ends (terms only grow along a
   * log); of any other term, this member cannot tell whether its entry was committed.
   */
  private settleCovered(index: number, term: number): void {
    for (const [i, p] of this.proposals) {
      if (i > index) continue;
      if (i === index) this.settle(i, p, p.term === term ? undefined : notApplied(i));
      else if (p.term > term) this.settle(i, p, notApplied(i));
      else
        this.settle(
          i,
          p,
          new UncertainError(
            `the write may or may not be applied: this member installed a snapshot (entry ${index}) in place of entry ${i}`,
          ),
        );
    }
  }

  /** checkWritable throws ClusterDownError unless this member is the ready leader. */
  checkWritable(): void {
    this.checkUsable();
    if (!this.leaderReady) {
      throw new ClusterDownError(this.lead === NONE ? 'no leader' : 'this member is not the leader');
    }
    if (this.undecided > 0) {
      throw new ClusterDownError(
        `the outcome of ${this.undecided} earlier write(s) is not known yet (their callers timed out); retry`,
      );
    }
  }

  /**
   * proposeConfChange replicates a membership change; it resolves once the entry is applied here
   * (the new configuration is in effect on this member). ClusterDownError: not the ready leader,
   * another change is still being applied, or the leader refused it (it became an empty entry);
   * UncertainError: no outcome within the request timeout.
   */
  proposeConfChange(cc: ConfChange): Promise<void> {
    this.checkUsable();
    if (!this.leaderReady) {
      return Promise.reject(
        new ClusterDownError(this.lead === NONE ? 'no leader' : 'this member is not the leader'),
      );
    }
    const raft = this.rn.raft;
    // The core would replace the change with an empty entry (one change in flight, docs/raft.md):
    // say so now instead of after a round trip.
    if (raft.pendingConfIndex > raft.raftLog.applied) {
      return Promise.reject(new ClusterDownError('another membership change is still being applied; retry'));
    }
    try {
      this.rn.proposeConfChange(cc);
    } catch (err) {
      if (err instanceof ProposalDroppedError) {
        return Promise.reject(new ClusterDownError(`membership change refused: ${err.message}`));
      }
      throw err;
    }
    return this.track(true, 'membership change: ');
  }

  /**
   * engineFailed: the engine stopped taking writes outside an apply (a background fdatasync or a
   * compaction's sync met an I/O error: cask's `write-failed` event with `failed`). The member
   * fails as when an apply's write fails (onFatal: restart it), instead of leading on with an
   * engine that can neither apply the next write nor send a follower a snapshot, which wedged
   * a follower behind a compacted log for good (the replica simulator on cask, seed 296490866).
   */
  engineFailed(err: unknown): void {
    this.fail(err);
  }

  /**
   * onConfChange: told of every membership change this member applies, in log order, with the
   * configuration it leads to (also while replaying the log after a restart).
   */
  onConfChange(listener: (cc: ConfChange, cs: ConfState, index: number) => void): () => void {
    this.confListeners.add(listener);
    return () => this.confListeners.delete(listener);
  }

  /**
   * linearizable resolves once this member has applied everything committed before the call
   * (ReadIndex, §6.4): a read after it is linearizable. Batched: every call in one turn shares
   * one round of heartbeats.
   *
   * Expiry: on the leader, everything acknowledged is applied, so a read that hides expired keys
   * by the clock when it runs is linearizable. On a follower the state may be as old as the read
   * index while the clock is the time it runs: near an expiry, such a read can find a key
   * expired that a newer, acknowledged write had already replaced (the replica simulator, seed
   * 615226418 with --ttl --lost-directory). The servers never serve a linearizable read on a
   * follower (they forward it to the leader; docs/cluster.md), so this is for reads that do not
   * hide by time, or for the leader.
   */
  linearizable(): Promise<void> {
    return this.read(
      this.requestTimeoutMs,
      // Said as the write path says it: a ReadIndex round needs a leader and a majority.
      () =>
        new ClusterDownError(
          `a linearizable read could not be confirmed by a majority within ${this.requestTimeoutMs} ms (is a majority of members up and connected?)`,
        ),
    ).then(() => {});
  }

  /**
   * confirmRead: whether this member can serve a linearizable read now (the cluster's /healthz,
   * as etcd's health check reads through Raft): the same ReadIndex round as `linearizable`
   * (batched with the reads of this turn; heartbeats only, nothing written to the log), with
   * its own timeout. ReadUnconfirmedError says which step did not finish in time: the quorum's
   * confirmation through the leader, or this member's apply reaching the read index.
   */
  confirmRead(timeoutMs: number): Promise<ReadConfirmation> {
    return this.read(timeoutMs, (readIndex) =>
      readIndex === undefined
        ? new ReadUnconfirmedError(
            'quorum',
            `no quorum confirmed a read through the leader within ${timeoutMs} ms (this member may be cut off from the leader, or the leader from a majority)`,
            undefined,
            this.appliedIndex,
          )
        : new ReadUnconfirmedError(
            'apply',
            `a quorum confirmed read index ${readIndex}, but this member had applied only up to ${this.appliedIndex} after ${timeoutMs} ms: its apply is behind by ${readIndex - this.appliedIndex} entries`,
            readIndex,
            this.appliedIndex,
          ),
    ).then((readIndex) => ({ readIndex, applied: this.appliedIndex }));
  }

  /**
   * read: one ReadIndex read (batched per turn), resolving with its read index once applied
   * reaches it; `timedOut` makes the error when `timeoutMs` passes first (with the read index
   * when the leader had confirmed it by then).
   */
  private read(timeoutMs: number, timedOut: (readIndex: number | undefined) => Error): Promise<number> {
    this.checkUsable();
    // Its engine holds nothing yet: a read after this would see an empty store.
    if (this.repair !== undefined) return Promise.reject(new EngineRepairingError());
    return new Promise<number>((resolve, reject) => {
      const waiter: ReadWaiter = {
        resolve: () => resolve(waiter.readIndex ?? this.appliedIndex),
        reject,
        timer: this.clock.after(timeoutMs, () => {
          this.dropWaiter(waiter);
          reject(timedOut(waiter.readIndex));
        }),
      };
      this.readWaiters.push(waiter);
      this.schedule();
    });
  }

  status(): ReplicaStatus {
    const st: Status = this.rn.status();
    return {
      id: this.id,
      role: st.softState.raftState,
      leader: st.softState.lead,
      term: st.hardState.term,
      commit: st.hardState.commit,
      applied: this.appliedIndex,
      lastIndex: st.lastIndex,
      leaderReady: this.leaderReady,
      repairing: this.repair !== undefined,
      voters: st.confState.voters,
      learners: st.confState.learners,
      progress: st.progress,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ticker?.cancel();
    this.repairTimer?.cancel();
    this.failAll(() => new ClusterDownError('the member is shutting down'), true);
    // Let the saves in flight finish before the log closes under them.
    while (this.exclusive || this.savesInFlight > 0) {
      await this.saveTail;
      if (this.exclusive) await new Promise<void>((r) => this.defer(r));
    }
    await this.applyTail.catch(() => {});
  }

  // ---- the loop -------------------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled || this.exclusive || this.closed || this.failed !== undefined) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      void this.turn();
    });
  }

  /**
   * turn takes one Ready and hands it out without waiting for its save (pipelined, see
   * `handle`), unless it carries a snapshot from the leader or a snapshot of our own is due:
   * those run alone, after every save in flight, and no Ready is taken meanwhile.
   */
  private async turn(): Promise<void> {
    if (this.closed || this.failed !== undefined || this.exclusive) return;
    this.startReadRound();
    const snapshotWork =
      this.snapshotWaiters.length > 0 || this.snapshotDue() || this.repair?.staged !== undefined;
    if (!this.rn.hasReady() && !snapshotWork) return;
    let rd: Ready | undefined;
    if (this.rn.hasReady()) {
      rd = this.rn.readyPipelined();
      if (rd.snapshot === undefined || isEmptySnapshot(rd.snapshot)) {
        this.handle(rd);
        rd = undefined;
      }
    }
    if (rd === undefined && !snapshotWork) {
      this.schedule();
      return;
    }
    this.exclusive = true;
    try {
      if (rd !== undefined) await this.handleInstall(rd);
      if (this.repair?.staged !== undefined) {
        await this.installRepair();
      } else if (this.snapshotWaiters.length > 0) {
        await this.allSaved();
        const waiters = this.snapshotWaiters.splice(0);
        try {
          await this.snapshotAndCompact(0);
        } catch (err) {
          for (const w of waiters) w.reject(err instanceof Error ? err : new Error(String(err)));
          throw err;
        }
        for (const w of waiters) w.resolve();
      } else if (this.snapshotDue()) {
        await this.allSaved();
        await this.snapshotAndCompact(this.snapshotCatchupEntries);
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.exclusive = false;
    }
    this.schedule();
  }

  /** allSaved waits until every pipelined save is durable (and its messages sent). */
  private async allSaved(): Promise<void> {
    while (this.savesInFlight > 0) await this.saveTail;
  }

  /**
   * handle hands one Ready out without waiting for its save (etcd raft's asynchronous storage
   * writes; docs/cluster.md, "The driver"), so that proposals, acknowledgements and commits that
   * arrive during an fsync are acted on at once instead of after it:
   * - a leader's appends and heartbeats go out now, before its own fsync (the core counts its
   *   own entries toward commit only once `appended` says they are saved);
   * - the save is handed to the log now (its in-memory view changes at once; the WAL writes
   *   queued saves in order, one write and one fdatasync per group);
   * - so do heartbeat and ReadIndex responses (EARLY_MESSAGES: they claim nothing on disk);
   * - every other message (votes, acknowledgements) waits until this save and every earlier
   *   one is durable (`saveTail`, in Ready order), as does `appended` (the core's stable index
   *   and the leader's own match);
   * - committed entries are applied now: they are on a quorum's disks whether or not this save
   *   is done (a follower may apply an entry its own save is still writing: its log gets the
   *   entry back from any later leader, and replay skips what the engine holds, by ts).
   */
  private handle(rd: Ready): void {
    if (rd.softState !== undefined) this.onSoftState(rd.softState.raftState, rd.softState.lead);
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) (EARLY_MESSAGES.has(m.type) ? early : late).push(m);
    this.send(early, false);
    // A turn runs in the check phase; the transport's own flush would wait a whole turn more.
    if (early.some((m) => LEADER_MESSAGES.has(m.type))) this.transport?.flushNow?.();
    const first = rd.entries[0];
    const last = rd.entries[rd.entries.length - 1];
    if (first !== undefined && last !== undefined) this.trace?.readied(first.index, last.index);
    const needsSave = rd.hardState !== undefined || rd.entries.length > 0 || rd.mustSync;
    if (needsSave || late.length > 0) {
      const started = this.clock.monotonicMs();
      let saved: Promise<void>;
      try {
        saved = needsSave
          ? this.log.save(rd.hardState, rd.entries, undefined, rd.mustSync)
          : Promise.resolve();
      } catch (err) {
        saved = Promise.reject(err);
      }
      const prev = this.saveTail;
      this.savesInFlight++;
      this.saveTail = Promise.all([prev, saved]).then(
        () => {
          this.savesInFlight--;
          if (this.failed !== undefined) return;
          if (rd.mustSync) {
            this.counters.walFsyncs++;
            const seconds = (this.clock.monotonicMs() - started) / 1000;
            for (const f of this.onFsync) f(seconds);
          }
          if (first !== undefined && last !== undefined) this.trace?.saved(first.index, last.index);
          if (this.closed) return;
          this.send(late, true);
          this.rn.appended(rd);
          this.trace?.committed(this.rn.raft.raftLog.committed);
          this.schedule();
        },
        (err: unknown) => {
          this.savesInFlight--;
          this.fail(err);
        },
      );
    }
    this.apply(rd.committedEntries);
    for (const rs of rd.readStates) this.readStateArrived(rs.index, rs.requestCtx);
    this.trace?.committed(this.rn.raft.raftLog.committed);
  }

  /**
   * handleInstall handles a Ready that carries a snapshot from the leader, alone: after every
   * earlier save, its engine replaces ours before the log records it, so that a crash between
   * the two leaves the old log with a newer engine (replay skips what the engine holds, by ts)
   * and never a compacted log over an engine that lacks the snapshot's writes.
   */
  private async handleInstall(rd: Ready): Promise<void> {
    await this.allSaved();
    if (rd.softState !== undefined) this.onSoftState(rd.softState.raftState, rd.softState.lead);
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) (LEADER_MESSAGES.has(m.type) ? early : late).push(m);
    this.send(early, false);
    if (rd.snapshot !== undefined && !isEmptySnapshot(rd.snapshot)) await this.installSnapshot(rd.snapshot);
    const started = this.clock.monotonicMs();
    await this.log.save(rd.hardState, rd.entries, rd.snapshot, rd.mustSync);
    if (rd.mustSync) {
      this.counters.walFsyncs++;
      const seconds = (this.clock.monotonicMs() - started) / 1000;
      for (const f of this.onFsync) f(seconds);
    }
    this.send(late, true);
    this.apply(rd.committedEntries);
    for (const rs of rd.readStates) this.readStateArrived(rs.index, rs.requestCtx);
    this.rn.appended(rd);
  }

  private send(msgs: readonly Message[], afterSave: boolean): void {
    if (msgs.length === 0 || this.transport === undefined) return;
    // A deposed leader's messages never reach here: the core drops them from its Readys
    // (raw-node.ts, withoutStaleLeaderMessages).
    if (afterSave) for (const m of msgs) checkPersistedBeforeSend(m, this.log);
    const plain = msgs.filter((m) => m.type !== 'MsgSnap');
    if (plain.length < msgs.length) for (const m of msgs) if (m.type === 'MsgSnap') this.sendSnapshot(m);
    if (plain.length > 0) this.transport.send(plain);
  }

  /**
   * sendSnapshot ships a snapshot to a follower whose next entry the log no longer holds: the
   * Raft message plus a consistent cut of the engine taken when the transfer starts. The cut is
   * newer than the snapshot's index, which is harmless: the follower then skips, by ts, the
   * entries after the index that the cut already holds (`apply`).
   */
  private sendSnapshot(m: Message): void {
    const transport = this.transport;
    const engine = this.engine;
    if (transport === undefined) return;
    const report = (ok: boolean): void => {
      if (ok) this.counters.snapshotsSent++;
      else this.counters.snapshotsFailed++;
      if (this.closed || this.failed !== undefined) return;
      this.rn.reportSnapshot(m.to, ok);
      this.schedule();
    };
    if (engine.backupSource === undefined) {
      this.logger.error(
        { to: hexId(m.to) },
        `the ${engine.name} engine cannot be copied: no snapshot can be sent`,
      );
      this.defer(() => report(false));
      return;
    }
    this.logger.info({ to: hexId(m.to), index: m.snapshot?.metadata.index }, 'sending a snapshot');
    transport.sendSnapshot(
      m,
      () => (engine.backupSource as () => Promise<BackupSource>).call(engine),
      report,
    );
  }

  /**
   * stepSnapshot takes a MsgSnap whose engine files the transport staged in `dir`; Raft decides
   * whether to install it (a Ready with the snapshot), and `installSnapshot` finds the files here.
   */
  stepSnapshot(m: Message, dir: string): void {
    const index = m.snapshot?.metadata.index;
    if (index === undefined) return;
    if (isRepairSnapshot(m)) {
      this.repairSnapshotArrived(m, dir);
      return;
    }
    // Only the newest staged snapshot can still be installed: older ones go (Raft takes a
    // snapshot only above its commit index, and commit never goes back).
    this.discardStaged((i) => i < index);
    const previous = this.staged.get(index);
    if (previous !== undefined && previous !== dir) this.discardDir(previous);
    this.staged.set(index, dir);
    this.step([m]);
  }

  private discardStaged(which: (index: number) => boolean): void {
    for (const [i, dir] of this.staged) {
      if (!which(i)) continue;
      this.staged.delete(i);
      this.discardDir(dir);
    }
  }

  private discardDir(dir: string): void {
    this.snapshots?.discard(dir).catch((err: unknown) => {
      this.logger.warn({ err, dir }, 'could not remove a staged snapshot (it goes at the next start)');
    });
  }

  private async installSnapshot(snap: Snapshot): Promise<void> {
    const index = snap.metadata.index;
    const dir = this.staged.get(index);
    if (dir === undefined || this.snapshots === undefined) {
      throw new Error(`Raft accepted the snapshot at ${index}, but no engine files arrived with it`);
    }
    // The install owns its files from here: a newer snapshot arriving meanwhile (stepSnapshot
    // discards the older ones) must not remove them under it, and it must itself survive this
    // install, which once discarded every staged snapshot: the core then accepted the newer one
    // and found no files (replica simulator, seed 344028894).
    this.staged.delete(index);
    // Every entry handed to the old engine is visible (nothing is left to resolve on it).
    await this.drainApplies();
    this.logger.info({ index, term: snap.metadata.term }, 'installing a snapshot from the leader');
    for (const f of this.onInstalling) f();
    const engine = await this.snapshots.install(dir, snap);
    this.discardDir(dir);
    this.discardStaged((i) => i < index);
    this.engine = engine;
    for (const f of this.onEngine) f(engine);
    this.confState = snap.metadata.confState;
    this.snapshotIndex = index;
    this.counters.snapshotsInstalled++;
    this.settleCovered(index, snap.metadata.term);
    // The leader's snapshot replaced the whole state, so an engine under repair is whole again
    // (the hook ended the repair on disk), and the log restarts at the snapshot.
    if (this.repair !== undefined)
      this.endRepair(index, 'the leader sent a snapshot its log could not replace');
    if (index > this.appliedIndex) {
      this.appliedIndex = index;
      this.releaseIndexWaiters(index);
      this.releaseVoteFloor(index);
    }
    // The log restarts after the snapshot: its writes are all at or below what it recorded.
    this.logTs = this.snapshots?.logTsOf?.(snap.data) ?? 0;
    this.appliedTs = this.logTs;
    this.notify();
  }

  /**
   * snapshotNow takes a snapshot at the applied index and compacts the whole log below it, so
   * that a member added next catches up by snapshot. A cluster seeded from a backup needs that:
   * its log does not hold the seeded data (member.ts, addLearner).
   */
  snapshotNow(): Promise<void> {
    try {
      this.checkUsable();
      if (this.repair !== undefined) throw new EngineRepairingError();
      if (this.snapshots === undefined) throw new Error('this member takes no snapshots');
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.snapshotWaiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /**
   * snapshotDue: enough entries were applied since the last snapshot to take one and compact the
   * log (see `snapshotAndCompact`).
   */
  private snapshotDue(): boolean {
    return this.snapshots !== undefined && this.appliedIndex - this.snapshotIndex >= this.snapshotEntries;
  }

  /**
   * snapshotAndCompact records a snapshot at the applied index and drops the log below it but
   * for a tail kept for followers a little behind. The engine is flushed first: a restart
   * replays the log from the snapshot on, so the engine must hold every write up to it durably
   * (members run their engine with a periodic fsync; the log is where writes become durable).
   */
  private async snapshotAndCompact(keep: number): Promise<void> {
    const hooks = this.snapshots;
    if (hooks === undefined) return;
    await this.drainApplies();
    const index = this.appliedIndex;
    const confState = this.confState;
    const data = hooks.data(this.appliedTs);
    await this.engine.flush();
    await this.log.createSnapshot(index, confState, data);
    this.snapshotIndex = index;
    const upTo = index - keep;
    if (upTo >= this.log.firstIndex()) await this.log.compact(upTo);
    this.logger.info({ index, firstIndex: this.log.firstIndex() }, 'snapshot taken and log compacted');
  }

  // ---- repair ---------------------------------------------------------------------------------

  /**
   * askForRepair asks the leader for a snapshot of the state at or past the floor (every
   * REPAIR_ASK_MS, and when a leader becomes known) until one is staged.
   */
  private askForRepair(): void {
    const r = this.repair;
    const transport = this.transport;
    if (r === undefined || r.staged !== undefined || transport === undefined) return;
    if (this.closed || this.failed !== undefined) return;
    const lead = this.lead;
    if (lead === NONE || lead === this.id) return;
    if (lead !== r.asked) {
      r.asked = lead;
      this.logger.warn(
        { leader: hexId(lead), atLeast: r.floor },
        'asking the leader for a snapshot of the state to repair the engine',
      );
    }
    transport.send([
      message({ type: 'MsgSnapRequest', to: lead, from: this.id, term: this.rn.raft.term, index: r.floor }),
    ]);
  }

  /**
   * serveRepair answers a MsgSnapRequest: a snapshot of this member's engine at its applied
   * index, if that is at least the index asked for, streamed with the existing snapshot
   * machinery (a consistent cut taken when the transfer starts, newer than the index: the
   * receiver skips by commit timestamp the entries the cut holds). Anything else is ignored: the
   * member asks again.
   */
  private serveRepair(m: Message): void {
    const transport = this.transport;
    const hooks = this.snapshots;
    const engine = this.engine;
    if (transport === undefined || hooks === undefined || this.closed || this.failed !== undefined) return;
    if (this.repair !== undefined || this.repairsServing.has(m.from)) return;
    if (this.appliedIndex < m.index) {
      this.logger.info(
        { to: hexId(m.from), asked: m.index, applied: this.appliedIndex },
        'a member repairing its engine asked for a snapshot past what this member applied; it will ask again',
      );
      return;
    }
    if (engine.backupSource === undefined) {
      this.logger.error(
        { to: hexId(m.from) },
        `the ${engine.name} engine cannot be copied: no snapshot can be sent`,
      );
      return;
    }
    const index = this.appliedIndex;
    const snapshot: Snapshot = {
      metadata: { index, term: this.log.term(index) ?? 0, confState: this.confState },
      data: hooks.data(this.appliedTs),
    };
    const reply = message({
      type: 'MsgSnap',
      to: m.from,
      from: this.id,
      term: this.rn.raft.term,
      snapshot,
      context: REPAIR_SNAPSHOT_CONTEXT,
    });
    this.repairsServing.add(m.from);
    this.logger.warn(
      { to: hexId(m.from), index },
      'sending a snapshot of the state to a member repairing its engine',
    );
    transport.sendSnapshot(
      reply,
      () => (engine.backupSource as () => Promise<BackupSource>).call(engine),
      (ok) => {
        this.repairsServing.delete(m.from);
        if (ok) this.counters.snapshotsSent++;
        else this.counters.snapshotsFailed++;
        if (ok)
          this.logger.info({ to: hexId(m.from), index }, 'a member repairing its engine has its snapshot');
        else
          this.logger.warn(
            { to: hexId(m.from), index },
            'a snapshot for a member repairing its engine failed; it will ask again',
          );
      },
    );
  }

  /** repairSnapshotArrived stages a fetched snapshot for installRepair, or discards one not needed. */
  private repairSnapshotArrived(m: Message, dir: string): void {
    const r = this.repair;
    const snapshot = m.snapshot as Snapshot;
    const index = snapshot.metadata.index;
    if (
      r === undefined ||
      r.staged !== undefined ||
      index < r.floor ||
      this.closed ||
      this.failed !== undefined
    ) {
      this.logger.info(
        { from: hexId(m.from), index, floor: r?.floor },
        'a snapshot for an engine repair was not needed (any more) and is discarded',
      );
      this.discardDir(dir);
      return;
    }
    r.staged = { dir, snapshot, from: m.from };
    this.logger.warn(
      { from: hexId(m.from), index, floor: r.floor },
      'fetched a snapshot of the state to repair the engine; installing it',
    );
    this.schedule();
  }

  /**
   * installRepair replaces the empty engine with the staged snapshot (a turn of its own, so no
   * snapshot from the core installs beside it) and lets the core hand out the held entries.
   */
  private async installRepair(): Promise<void> {
    const r = this.repair;
    const staged = r?.staged;
    const repair = this.snapshots?.repair;
    assert(r !== undefined && staged !== undefined && repair !== undefined, 'no repair snapshot to install');
    // The engine holds nothing: no entry was handed to it, and reads are refused.
    await this.drainApplies();
    for (const f of this.onInstalling) f();
    let engine: Engine;
    try {
      engine = await repair.call(this.snapshots, staged.dir, staged.snapshot);
    } catch (err) {
      // Anything but a damaged arrival (refused before the engine was touched) may have left the
      // engine closed or half replaced: rethrown, it stops the member (turn), and a restart
      // resumes the repair (its marker is still there). A damaged one is dropped and asked again.
      if (!(err instanceof RepairSnapshotDamagedError)) throw err;
      this.logger.error(
        { err, from: hexId(staged.from) },
        'the snapshot fetched to repair the engine is discarded; asking again',
      );
      r.staged = undefined;
      this.discardDir(staged.dir);
      for (const f of this.onEngine) f(this.engine);
      return;
    }
    r.staged = undefined;
    this.discardDir(staged.dir);
    this.engine = engine;
    for (const f of this.onEngine) f(engine);
    this.counters.snapshotsInstalled++;
    this.endRepair(
      staged.snapshot.metadata.index,
      `installed the snapshot fetched from member ${staged.from}`,
    );
  }

  /** endRepair: the engine holds the state up to `index` (at least the floor); entries flow again. */
  private endRepair(index: number, how: string): void {
    const r = this.repair;
    if (r === undefined) return;
    // A fetched snapshot still staged (the core's snapshot came first) is not needed any more.
    if (r.staged !== undefined) this.discardDir(r.staged.dir);
    this.repair = undefined;
    this.repairTimer?.cancel();
    this.repairTimer = undefined;
    this.rn.setStateMachineMissing(false);
    this.logger.warn(
      { index, floor: r.floor, lastTs: this.engine.lastTs() },
      `the engine is repaired (${how}); the entries after the log's applied index are applied again, those the snapshot holds skipped by commit timestamp`,
    );
    this.notify();
  }

  private onSoftState(role: StateType, lead: NodeId): void {
    const wasLeading = this.role === 'leader';
    const newLeader = lead !== this.lead;
    if (newLeader) this.counters.leaderChanges++;
    this.role = role;
    this.lead = lead;
    assert(role !== 'leader' || this.repair === undefined, 'a member repairing its engine was elected');
    // A repair asks a new leader at once rather than at the next REPAIR_ASK_MS.
    if (newLeader && this.repair !== undefined) this.defer(() => this.askForRepair());
    if (role !== 'leader') {
      this.termApplied = false;
      if (wasLeading) {
        // Reads waiting on this member's leadership can no longer be confirmed by it.
        this.failReads(() => new ClusterDownError('leadership lost'));
      }
    } else if (!wasLeading) {
      this.termApplied = false;
    }
    this.notify();
  }

  private apply(entries: readonly Entry[]): void {
    for (const e of entries) {
      if (this.held !== undefined) {
        // A check's digest is being computed: the engine must not change until it is done.
        this.held.push(e);
        continue;
      }
      let visible: Promise<void> | undefined;
      let check: { readonly atMs: number } | undefined;
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        const cs = this.rn.applyConfChange(cc);
        this.confState = cs;
        for (const f of this.confListeners) f(cc, cs, e.index);
      } else {
        const write = decodeWrite(e.data);
        if (write !== undefined && write.ts > this.engine.lastTs()) {
          visible = this.engine.write(write.ts, write.ops);
          const mine = this.proposals.get(e.index);
          if (this.onForeignWrite.size > 0 && (mine === undefined || mine.term !== e.term)) {
            const keys = write.ops.map((op) => op.key);
            for (const f of this.onForeignWrite) {
              // A listener's failure is not the apply's.
              try {
                f(keys);
              } catch {
                // nothing to undo
              }
            }
          }
        }
        if (write !== undefined) this.logTs = write.ts;
        if (write !== undefined) this.counters.proposalsCommitted++;
        else check = decodeCheck(e.data);
      }
      const index = e.index;
      const term = e.term;
      this.trace?.handed(index);
      const own = this.proposals.get(index);
      if (own !== undefined && own.term !== term) {
        // Another leader's entry took this index: ours was never committed anywhere.
        this.settle(index, own, notApplied(index));
      } else if (own?.confChange === true && e.type !== 'confChange') {
        // The leader's core vetted the change and replaced it with an empty entry.
        this.settle(
          index,
          own,
          new ClusterDownError(`the leader refused the membership change (entry ${index})`),
        );
      }
      // Every proposal of an older term is now dead (settleOlderTerms), settled before this
      // entry becomes visible and before this member can become the ready leader.
      this.settleOlderTerms(index, term);
      const prev = this.applyTail;
      const tsAt = this.logTs;
      if (check !== undefined) {
        // A check (`cairn check hash`): once every earlier entry is visible, digest the engine
        // with nothing after this entry handed to it; later entries wait in `held` meanwhile.
        const atMs = check.atMs;
        // A replay (after a restart or a snapshot) finds the engine ahead of this entry: it
        // already holds later writes, so its digest would not describe this index.
        const ahead = this.engineAhead(index);
        this.held = [];
        this.applyTail = prev
          .then(() => (ahead ? this.noDigest(index) : this.digest(index, atMs)))
          .then(
            () => {
              this.appliedTo(index, term, tsAt);
              const rest = this.held ?? [];
              this.held = undefined;
              this.apply(rest);
            },
            (err: unknown) => {
              this.fail(err);
            },
          );
        continue;
      }
      // Visible in log order: after every earlier entry, and after its own write.
      this.applyTail = (visible === undefined ? prev : Promise.all([prev, visible]).then(() => {})).then(
        () => this.appliedTo(index, term, tsAt),
        (err: unknown) => {
          this.fail(err);
        },
      );
    }
  }

  /** drainApplies waits until every committed entry handed to apply, held ones too, is visible. */
  private async drainApplies(): Promise<void> {
    for (;;) {
      const tail = this.applyTail;
      await tail;
      if (tail === this.applyTail && this.held === undefined) return;
    }
  }

  /**
   * digest records the state digest at a check entry (`cairn check hash`): SHA-256 over every
   * live key in key order with its value, expiry and revision, all of which are the same bytes on
   * every member at the same index. Keys that expire within CHECK_EXPIRY_MARGIN_MS of the
   * leader's clock when it asked are left out: each member hides expired keys by its own clock.
   * A failed read records the error; it does not stop the member.
   */
  private async digest(index: number, atMs: number): Promise<void> {
    // A member whose engine failed an earlier write is stopping: its state is not this index's.
    if (this.failed !== undefined) return;
    let result: StateDigest | Error;
    try {
      const hash = createHash('sha256');
      let keys = 0;
      const head = Buffer.alloc(DIGEST_HEAD_BYTES);
      for await (const [key] of this.engine.scan()) {
        const stored = this.engine.getStoredSync(key);
        if (stored === undefined) continue;
        if (stored.expiresAt !== undefined && stored.expiresAt <= atMs + CHECK_EXPIRY_MARGIN_MS) continue;
        head.writeUInt32LE(key.length, 0);
        head.writeUInt32LE(stored.value.length, 4);
        writeU64LE(head, stored.expiresAt ?? 0, 8);
        writeU64LE(head, stored.revision.mod, 16);
        writeU64LE(head, stored.revision.create, 24);
        writeU64LE(head, stored.revision.version, 32);
        hash.update(head);
        // A typed value (a hash) differs from a string of the same bytes: its type joins the
        // digest; a string adds nothing, so digests of string-only stores are unchanged.
        if (stored.valueType) hash.update(Uint8Array.of(stored.valueType));
        hash.update(key);
        hash.update(stored.value);
        keys++;
      }
      if (this.failed !== undefined) return;
      result = { index, digest: hash.digest('hex').slice(0, DIGEST_HEX_CHARS), keys };
    } catch (err) {
      result = err instanceof Error ? err : new Error(String(err));
      this.logger.warn({ err, index }, 'could not compute the state digest for a check');
    }
    this.digests.set(index, result);
    if (!(result instanceof Error)) for (const f of this.onDigest) f(result);
    this.trimDigests();
  }

  private noDigest(index: number): void {
    this.digests.set(index, new CheckUnavailableError(index, 'ahead'));
    this.trimDigests();
  }

  private trimDigests(): void {
    for (const old of this.digests.keys()) {
      if (this.digests.size <= CHECKS_KEPT) break;
      this.digests.delete(old);
    }
    for (const f of this.digestListeners) f();
  }

  /**
   * proposeCheck asks every member for a state digest at one index (`cairn check hash`): the
   * ready leader appends a check entry and resolves with its index once it is applied here.
   */
  async proposeCheck(): Promise<number> {
    this.checkWritable();
    try {
      this.rn.propose(encodeCheck(this.clock.nowMs()));
    } catch (err) {
      if (err instanceof ProposalDroppedError) throw new ClusterDownError(`check refused: ${err.message}`);
      throw err;
    }
    const index = this.rn.raft.raftLog.lastIndex();
    await this.track(false, 'check: ');
    return index;
  }

  /**
   * stateDigest answers this member's digest at a check entry's index, waiting up to `timeoutMs`
   * for it to be applied. A member that never applied that index itself (it installed a snapshot
   * past it) or was restarted after the digest was dropped cannot answer.
   */
  stateDigest(index: number, timeoutMs: number): Promise<StateDigest> {
    return new Promise<StateDigest>((resolve, reject) => {
      let timer: Timer | undefined;
      const done = (): boolean => {
        const d = this.digests.get(index);
        if (d !== undefined) {
          if (d instanceof Error) reject(d);
          else resolve(d);
          return true;
        }
        if (this.appliedIndex >= index && this.held === undefined) {
          reject(new CheckUnavailableError(index, 'passed'));
          return true;
        }
        return false;
      };
      if (done()) return;
      const listener = (): void => {
        if (!done()) return;
        this.digestListeners.delete(listener);
        this.changeListeners.delete(listener);
        timer?.cancel();
      };
      this.digestListeners.add(listener);
      this.changeListeners.add(listener);
      timer = this.clock.after(timeoutMs, () => {
        this.digestListeners.delete(listener);
        this.changeListeners.delete(listener);
        reject(new UncertainError(`entry ${index} was not applied here within ${timeoutMs} ms`));
      });
    });
  }

  private appliedTo(index: number, term: number, ts: number): void {
    if (this.failed !== undefined) return;
    assert(index > this.appliedIndex, `applied ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    this.appliedTs = ts;
    this.trace?.visible(index);
    const own = this.proposals.get(index);
    if (own !== undefined && own.term === term) this.settle(index, own, undefined);
    if (this.role === 'leader' && !this.termApplied && term === this.rn.raft.term) this.becomeReady(term);
    this.releaseIndexWaiters(index);
    this.releaseVoteFloor(index);
  }

  private releaseIndexWaiters(index: number): void {
    while (this.indexWaiters.length > 0 && this.indexWaiters[0]!.index <= index) {
      for (const w of this.indexWaiters.shift()!.waiters) {
        w.timer.cancel();
        w.resolve();
      }
    }
  }

  /**
   * becomeReady lets the write pipeline run writes, one turn later: the proposals of older terms
   * were failed (settleOlderTerms), and the pipeline drops their pending values in promise
   * callbacks; a write admitted before those ran could compute from a failed write's value.
   */
  private becomeReady(term: number): void {
    this.defer(() => {
      if (this.role !== 'leader' || this.termApplied || this.rn.raft.term !== term) return;
      this.termApplied = true;
      this.notify();
    });
  }

  // ---- reads ----------------------------------------------------------------------------------

  private startReadRound(): void {
    if (this.readWaiters.length === 0) return;
    const ctx = `${this.id}:${++this.readSeq}`;
    const waiters = this.readWaiters;
    this.readWaiters = [];
    try {
      this.rn.readIndex(Buffer.from(ctx));
    } catch (err) {
      const error =
        err instanceof ProposalDroppedError
          ? new ClusterDownError('no leader to confirm a read')
          : (err as Error);
      for (const w of waiters) {
        w.timer.cancel();
        w.reject(error);
      }
      return;
    }
    this.counters.readIndexRounds++;
    this.readRounds.set(ctx, waiters);
    this.roundStarted.set(ctx, this.clock.monotonicMs());
  }

  private readStateArrived(index: number, ctx: Uint8Array): void {
    const key = Buffer.from(ctx).toString();
    const waiters = this.readRounds.get(key);
    if (waiters === undefined) return;
    this.readRounds.delete(key);
    const started = this.roundStarted.get(key) ?? this.clock.monotonicMs();
    this.roundStarted.delete(key);
    for (const w of waiters) w.readIndex = index;
    const done = (): void => {
      const seconds = (this.clock.monotonicMs() - started) / 1000;
      for (const f of this.onReadIndex) f(seconds);
    };
    if (index <= this.appliedIndex) {
      done();
      for (const w of waiters) {
        w.timer.cancel();
        w.resolve();
      }
      return;
    }
    waiters.unshift({ resolve: done, reject: () => {}, timer: { cancel() {} } });
    const at = this.indexWaiters.findIndex((x) => x.index >= index);
    if (at === -1) this.indexWaiters.push({ index, waiters });
    else if (this.indexWaiters[at]!.index === index) this.indexWaiters[at]!.waiters.push(...waiters);
    else this.indexWaiters.splice(at, 0, { index, waiters });
  }

  private dropWaiter(waiter: ReadWaiter): void {
    const drop = (list: ReadWaiter[]): void => {
      const i = list.indexOf(waiter);
      if (i !== -1) list.splice(i, 1);
    };
    drop(this.readWaiters);
    for (const list of this.readRounds.values()) drop(list);
    for (const x of this.indexWaiters) drop(x.waiters);
  }

  private failReads(error: () => Error): void {
    const all = [
      ...this.readWaiters,
      ...[...this.readRounds.values()].flat(),
      ...this.indexWaiters.flatMap((x) => x.waiters),
    ];
    this.readWaiters = [];
    this.readRounds.clear();
    this.roundStarted.clear();
    this.indexWaiters = [];
    for (const w of all) {
      w.timer.cancel();
      w.reject(error());
    }
  }

  // ---- failure --------------------------------------------------------------------------------

  private checkUsable(): void {
    if (this.failed !== undefined) throw new ClusterDownError(`this member failed: ${this.failed.message}`);
    if (this.closed) throw new ClusterDownError('the member is shutting down');
  }

  private failAll(error: () => Error, proposalsToo: boolean): void {
    this.failReads(error);
    if (!proposalsToo) return;
    for (const [index, p] of this.proposals) {
      this.settle(
        index,
        p,
        new UncertainError(`${error().message}; the write may or may not be applied (entry ${index})`),
      );
    }
  }

  private fail(err: unknown): void {
    if (this.failed !== undefined) return;
    this.failed = err instanceof Error ? err : new Error(String(err));
    this.ticker?.cancel();
    this.repairTimer?.cancel();
    this.logger.error({ err }, 'replica failed: the log or the engine cannot go on; restart the member');
    this.failAll(() => new ClusterDownError(`this member failed: ${this.failed?.message ?? ''}`), true);
    this.notify();
    this.onFatal(err);
  }

  private notify(): void {
    for (const f of this.changeListeners) f();
  }
}

/** isRepairSnapshot: the MsgSnap answers a MsgSnapRequest (the driver installs it; the core never sees it). */
function isRepairSnapshot(m: Message): boolean {
  return Buffer.from(m.context).equals(REPAIR_SNAPSHOT_CONTEXT);
}

/** notApplied: a proposal whose entry another leader's took, or a newer term ended: it never happened. */
function notApplied(index: number): ClusterDownError {
  return new ClusterDownError(`the leader changed and the write was not applied (entry ${index})`);
}
