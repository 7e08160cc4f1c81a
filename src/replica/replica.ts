// Replica: one member of a Raft group, driving the core (src/raft) with a durable log, a
// transport and the local engine as state machine (docs/cluster.md, "The driver").
//
// One Ready at a time, started once per event-loop turn (setImmediate) so that proposals,
// messages and read requests of a turn share one log write and one fsync:
//
//   ready -> send a leader's appends and heartbeats -> save to the log (one write, one
//   fdatasync if mustSync) -> send the rest (votes, acks: only once durable) -> apply committed
//   entries to the engine -> serve read states -> advance (the leader counts itself now)
//
// A leader sends its appends and heartbeats before its own fsync (the core counts its own
// entries toward commit only once saved); votes and acknowledgements wait for the save.
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
  type LogStorage,
  type Message,
  type MessageType,
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
import type { Engine, WriteOp } from '../storage/engine.js';
import { ClusterDownError, UncertainError } from '../storage/errors.js';
import { decodeWrite, encodeWrite } from './entry-codec.js';
import type { Transport } from './transport.js';

/** ReplicaLog: the durable Raft log the driver saves each Ready to (disk-log.ts, or memory in tests). */
export interface ReplicaLog extends LogStorage {
  /**
   * save persists one Ready: the in-memory view changes at the call; the promise resolves once
   * durable (one fdatasync when `sync`). Never called while an earlier save is in flight.
   */
  save(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    snapshot: Snapshot | undefined,
    sync: boolean,
  ): Promise<void>;
  close(): Promise<void>;
}

/** LEADER_MESSAGES: what only a leader sends; from an earlier term, it is stale and dropped. */
const LEADER_MESSAGES: ReadonlySet<MessageType> = new Set<MessageType>([
  'MsgApp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgTimeoutNow',
]);

/** TICK_MS: one Raft tick. Heartbeats every tick, elections after 10-20 ticks (etcd's 100 ms / 1 s). */
export const TICK_MS = 100;
export const ELECTION_TICKS = 10;
export const HEARTBEAT_TICKS = 1;
/** REQUEST_TIMEOUT_MS: how long a proposal or a read waits before failing (the default 5 s). */
export const REQUEST_TIMEOUT_MS = 5_000;

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
}

export class Replica {
  readonly id: NodeId;
  private readonly rn: RawNode;
  private transport: Transport | undefined;
  private readonly log: ReplicaLog;
  private readonly engine: Engine;
  private readonly clock: Clock;
  private readonly logger: ReplicaLogger;
  private readonly requestTimeoutMs: number;
  private readonly onFatal: (err: unknown) => void;
  private ticker: Timer | undefined;
  private scheduled = false;
  private persisting = false;
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
  };
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
    const electionTick = options.electionTicks ?? ELECTION_TICKS;
    this.rn = new RawNode(
      defaultConfig(options.id, options.log, {
        electionTick,
        heartbeatTick: HEARTBEAT_TICKS,
        // Followers cannot compute a write's effects: a command is forwarded whole (the servers'
        // forwarding), never a bare proposal.
        disableProposalForwarding: true,
        randomSeed: options.randomSeed ?? options.id,
        peers: options.bootstrap,
      }),
    );
    this.tickMs = options.tickMs ?? TICK_MS;
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
    this.schedule();
  }

  // ---- inputs ---------------------------------------------------------------------------------

  /** step feeds messages from peers (the transport's onMessages). */
  step(msgs: readonly Message[]): void {
    if (this.closed || this.failed !== undefined) return;
    for (const m of msgs) {
      if (m.to !== this.id) continue;
      try {
        this.rn.step(m);
      } catch (err) {
        // A peer's message the core refuses (ProposalDroppedError for a forwarded read without
        // leader) is dropped: the sender retries. Anything else is a bug: crash loudly.
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
    }
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

  /** transferLeader asks the leader to hand over to `to` (cairn move-leader). */
  transferLeader(to: NodeId): void {
    this.rn.transferLeader(to);
    this.schedule();
  }

  /** leaderReady: this member may run writes and transactions now. */
  get leaderReady(): boolean {
    return this.failed === undefined && !this.closed && this.role === 'leader' && this.termApplied;
  }

  get leader(): NodeId {
    return this.lead;
  }

  get applied(): number {
    return this.appliedIndex;
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
      this.rn.propose(encodeWrite(ts, ops));
    } catch (err) {
      if (err instanceof ProposalDroppedError) {
        return Promise.reject(new ClusterDownError(`proposal refused: ${err.message}`));
      }
      return Promise.reject(err);
    }
    this.lastProposedTs = ts;
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
      this.settle(
        index,
        stale,
        new ClusterDownError(`the leader changed and the write was not applied (entry ${index})`),
      );
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
        this.settle(
          index,
          p,
          new ClusterDownError(`the leader changed and the write was not applied (entry ${index})`),
        );
      }
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
   */
  linearizable(): Promise<void> {
    this.checkUsable();
    return new Promise<void>((resolve, reject) => {
      const waiter: ReadWaiter = {
        resolve,
        reject,
        timer: this.clock.after(this.requestTimeoutMs, () => {
          this.dropWaiter(waiter);
          reject(new ClusterDownError(`read index not confirmed within ${this.requestTimeoutMs} ms`));
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
      voters: st.confState.voters,
      learners: st.confState.learners,
      progress: st.progress,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ticker?.cancel();
    this.failAll(() => new ClusterDownError('the member is shutting down'), true);
    // Let a save in flight finish before the log closes under it.
    while (this.persisting) await new Promise<void>((r) => this.defer(r));
    await this.applyTail.catch(() => {});
  }

  // ---- the loop -------------------------------------------------------------------------------

  private schedule(): void {
    if (this.scheduled || this.persisting || this.closed || this.failed !== undefined) return;
    this.scheduled = true;
    this.defer(() => {
      this.scheduled = false;
      void this.turn();
    });
  }

  private async turn(): Promise<void> {
    if (this.closed || this.failed !== undefined || this.persisting) return;
    this.startReadRound();
    if (!this.rn.hasReady()) return;
    this.persisting = true;
    try {
      await this.handle(this.rn.ready());
    } catch (err) {
      this.fail(err);
    } finally {
      this.persisting = false;
    }
    this.schedule();
  }

  private async handle(rd: Ready): Promise<void> {
    if (rd.softState !== undefined) this.onSoftState(rd.softState.raftState, rd.softState.lead);
    // A leader's replication messages (appends, heartbeats) go out before its own fsync, so the
    // followers write their disks while it writes its own (Raft thesis §10.2.1, etcd). Safe
    // because the core counts the leader's own entries toward commit only once this save is
    // done (Raft.persisted, called by advance): no commit index in these messages depends on
    // what this save has not yet made durable. Everything else (votes, acknowledgements) waits
    // for the save; checkPersistedBeforeSend asserts it.
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) (LEADER_MESSAGES.has(m.type) ? early : late).push(m);
    this.send(early, false);
    const started = this.clock.monotonicMs();
    await this.log.save(rd.hardState, rd.entries, rd.snapshot, rd.mustSync);
    if (rd.mustSync) {
      this.counters.walFsyncs++;
      const seconds = (this.clock.monotonicMs() - started) / 1000;
      for (const f of this.onFsync) f(seconds);
    }
    this.send(late, true);
    if (!isEmptySnapshot(rd.snapshot)) {
      // Snapshot transfer is not built yet (docs/cluster.md, "Missing"): the log is never
      // compacted, so a leader never sends one. Receiving one means a peer that compacts.
      throw new Error('received a Raft snapshot, which this version cannot install');
    }
    this.apply(rd.committedEntries);
    for (const rs of rd.readStates) this.readStateArrived(rs.index, rs.requestCtx);
    this.rn.advance(rd);
  }

  private send(msgs: readonly Message[], afterSave: boolean): void {
    if (msgs.length === 0 || this.transport === undefined) return;
    // A leader that stepped down within this Ready (a newer term arrived) may have produced
    // appends for entries the same Ready then overwrote with the new leader's. Peers would refuse
    // them (an old term); they are dropped here, as the core drops stale acknowledgements, since
    // dropping a message is always safe. (Found by the multi-process SIGSTOP test.)
    const term = this.log.initialState().hardState.term;
    const out = msgs.filter((m) => !(LEADER_MESSAGES.has(m.type) && m.term < term));
    if (afterSave) for (const m of out) checkPersistedBeforeSend(m, this.log);
    if (out.length > 0) this.transport.send(out);
  }

  private onSoftState(role: StateType, lead: NodeId): void {
    const wasLeading = this.role === 'leader';
    if (lead !== this.lead) this.counters.leaderChanges++;
    this.role = role;
    this.lead = lead;
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
      let visible: Promise<void> | undefined;
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        const cs = this.rn.applyConfChange(cc);
        for (const f of this.confListeners) f(cc, cs, e.index);
      } else {
        const write = decodeWrite(e.data);
        if (write !== undefined && write.ts > this.engine.lastTs()) {
          visible = this.engine.write(write.ts, write.ops);
        }
        if (write !== undefined) this.counters.proposalsCommitted++;
      }
      const index = e.index;
      const term = e.term;
      const own = this.proposals.get(index);
      if (own !== undefined && own.term !== term) {
        // Another leader's entry took this index: ours was never committed anywhere.
        this.settle(
          index,
          own,
          new ClusterDownError(`the leader changed and the write was not applied (entry ${index})`),
        );
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
      // Visible in log order: after every earlier entry, and after its own write.
      const prev = this.applyTail;
      this.applyTail = (visible === undefined ? prev : Promise.all([prev, visible]).then(() => {})).then(
        () => this.appliedTo(index, term),
        (err: unknown) => {
          this.fail(err);
        },
      );
    }
  }

  private appliedTo(index: number, term: number): void {
    if (this.failed !== undefined) return;
    assert(index > this.appliedIndex, `applied ${index} after ${this.appliedIndex}`);
    this.appliedIndex = index;
    const own = this.proposals.get(index);
    if (own !== undefined && own.term === term) this.settle(index, own, undefined);
    if (this.role === 'leader' && !this.termApplied && term === this.rn.raft.term) this.becomeReady(term);
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
    this.logger.error({ err }, 'replica failed: the log or the engine cannot go on; restart the member');
    this.failAll(() => new ClusterDownError(`this member failed: ${this.failed?.message ?? ''}`), true);
    this.notify();
    this.onFatal(err);
  }

  private notify(): void {
    for (const f of this.changeListeners) f();
  }
}
