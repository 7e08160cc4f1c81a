// Cluster runs N Raft nodes in one process on a simulated clock. Each node has a durable
// MemoryStorage (its "disk"), a volatile RawNode and a volatile state machine (an applied log
// with a running digest). Handling a Ready takes simulated disk time; a crash in that window
// loses the Ready (a torn write may keep a prefix of its entries), exactly as a real node
// loses what it had not persisted. Checkers run on every step.

import type { ConfChange, ConfState, Entry, Message, NodeId, Ready } from '../src/raft/index.js';
import {
  checkPersistedBeforeSend,
  decodeConfChange,
  defaultConfig,
  MemoryStorage,
  message,
  ProposalDroppedError,
  RawNode,
} from '../src/raft/index.js';
import { assert } from '../src/stdx/assert.js';
import { Prng } from '../src/stdx/prng.js';
import { Checkers, SafetyViolation } from './checkers.js';
import type { NetworkOptions } from './network.js';
import { RELIABLE, SimNetwork } from './network.js';

/** ClusterOptions configure one simulated cluster; every field is a knob of the run. */
export interface ClusterOptions {
  readonly seed: number;
  /** nodeIds are every node that may ever run; nodes outside initialVoters start empty. */
  readonly nodeIds: readonly NodeId[];
  readonly initialVoters: readonly NodeId[];
  readonly network: NetworkOptions;
  /** tickMs is the simulated time between two ticks of a node's Raft clock. */
  readonly tickMs: number;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  /** diskLatencyMsMax bounds the simulated time to persist one Ready (0: instant). */
  readonly diskLatencyMsMax: number;
  /** tornWriteRate is the chance a crash during a persist keeps a prefix of its entries. */
  readonly tornWriteRate: number;
  /** snapshotEvery makes a node snapshot after this many applied entries; 0 disables snapshots. */
  readonly snapshotEvery: number;
  /** snapshotKeep is how many entries before the snapshot index stay in the log after compaction. */
  readonly snapshotKeep: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
}

/** Timing follows the 6.824 course: heartbeats at most 10/s, elections within a few hundred ms. */
export const TICK_MS = 10;
export const HEARTBEAT_TICK = 10;
export const ELECTION_TICK = 30;
/** MAX_PROPOSALS_PER_BATCH bounds one driver-level proposal batch (one MsgProp). */
export const MAX_PROPOSALS_PER_BATCH = 256;

export function defaultClusterOptions(overrides: Partial<ClusterOptions> = {}): ClusterOptions {
  const n = overrides.nodeIds?.length ?? 3;
  const ids = overrides.nodeIds ?? Array.from({ length: n }, (_, i) => i + 1);
  return {
    seed: 1,
    nodeIds: ids,
    initialVoters: ids,
    network: RELIABLE,
    tickMs: TICK_MS,
    electionTick: ELECTION_TICK,
    heartbeatTick: HEARTBEAT_TICK,
    diskLatencyMsMax: 1,
    tornWriteRate: 0.5,
    snapshotEvery: 0,
    snapshotKeep: 0,
    maxSizePerMsg: 64 * 1024,
    maxInflightMsgs: 64,
    preVote: true,
    checkQuorum: true,
    ...overrides,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** SimNode is one member: durable storage plus everything it loses on a crash. */
export class SimNode {
  readonly id: NodeId;
  /** storage is the node's disk: it survives crashes. */
  readonly storage = new MemoryStorage();
  /** rn is undefined while the node is down. */
  rn: RawNode | undefined = undefined;
  /** pending is the Ready being persisted until busyUntil; undefined when idle. */
  pending: Ready | undefined = undefined;
  busyUntil = 0;
  nextTickAt = 0;
  /** appliedIndex and hash are the state machine: its position and running digest. */
  appliedIndex = 0;
  hash = 0;
  /** applied maps index to the applied entry's key (normal entries only); volatile. */
  applied = new Map<number, string>();
  confState: ConfState | undefined = undefined;
  /** proposals are buffered client commands, flushed as one batch. */
  proposals: Uint8Array[] = [];
  /** leaderTerm is the last term in which this node was seen as leader (0 if never). */
  leaderTerm = 0;
  restarts = 0;

  constructor(id: NodeId) {
    this.id = id;
  }

  get up(): boolean {
    return this.rn !== undefined;
  }
}

interface SnapshotData {
  readonly index: number;
  readonly hash: number;
}

export class Cluster {
  readonly options: ClusterOptions;
  readonly prng: Prng;
  readonly net: SimNetwork;
  readonly checkers = new Checkers();
  readonly nodes = new Map<NodeId, SimNode>();
  /** now is the simulated time in milliseconds. */
  now = 0;
  /** maxTermEver is the highest term any node ever had (terms only grow, so it bounds commit terms). */
  maxTermEver = 0;
  /** trace, when set, receives a line per notable event (for debugging a seed). */
  trace: ((line: string) => void) | undefined = undefined;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.prng = new Prng(options.seed);
    this.net = new SimNetwork(this.prng, options.network);
    for (const id of options.nodeIds) this.nodes.set(id, new SimNode(id));
    for (const id of options.nodeIds) {
      if (options.initialVoters.includes(id)) this.start(id);
    }
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  private log(line: string): void {
    if (this.trace !== undefined) this.trace(`${this.now}ms ${line}`);
  }

  /** start boots (or reboots) node id from its disk. */
  start(id: NodeId): void {
    const n = this.node(id);
    assert(!n.up, `node ${id} is already up`);
    const o = this.options;
    const snap = n.storage.snapshot();
    const fresh = n.storage.lastIndex() === 0 && n.storage.initialState().hardState.term === 0;
    const peers = fresh && o.initialVoters.includes(id) ? o.initialVoters : [];
    n.rn = new RawNode(
      defaultConfig(id, n.storage, {
        electionTick: o.electionTick,
        heartbeatTick: o.heartbeatTick,
        applied: snap.metadata.index,
        maxSizePerMsg: o.maxSizePerMsg,
        maxInflightMsgs: o.maxInflightMsgs,
        maxInflightBytes: o.maxSizePerMsg * o.maxInflightMsgs,
        preVote: o.preVote,
        checkQuorum: o.checkQuorum,
        randomSeed: this.prng.u32(),
        peers,
      }),
    );
    // The state machine restarts from the snapshot on disk.
    this.installAppState(n, snap.metadata.index, snap.data);
    n.confState = snap.metadata.confState;
    n.pending = undefined;
    n.busyUntil = 0;
    n.nextTickAt = this.now + 1 + this.prng.int(o.tickMs);
    n.leaderTerm = 0;
    this.log(`start ${id}`);
  }

  /** crash stops node id: it loses its Raft state, its state machine and any unpersisted Ready. */
  crash(id: NodeId): void {
    const n = this.node(id);
    if (!n.up) return;
    const rd = n.pending;
    if (rd !== undefined && rd.snapshot === undefined && rd.entries.length > 0) {
      if (this.prng.chance(this.options.tornWriteRate)) {
        // A torn write: a prefix of the entries reached the disk, the hard state did not.
        const k = this.prng.int(rd.entries.length + 1);
        if (k > 0) this.persistEntries(n, rd.entries.slice(0, k));
      }
    }
    n.rn = undefined;
    n.pending = undefined;
    n.busyUntil = 0;
    n.proposals = [];
    n.appliedIndex = 0;
    n.hash = 0;
    n.applied = new Map();
    n.restarts++;
    this.log(`crash ${id}`);
  }

  private installAppState(n: SimNode, index: number, data: Uint8Array): void {
    if (index === 0) {
      n.appliedIndex = 0;
      n.hash = 0;
      n.applied = new Map();
      return;
    }
    const sd = JSON.parse(decoder.decode(data)) as SnapshotData;
    assert(sd.index === index, 'snapshot data index mismatch');
    this.checkers.onSnapshotInstall(n.id, index, sd.hash);
    n.appliedIndex = index;
    n.hash = sd.hash;
    // The snapshot's digest matched the global history, so its content is that history.
    n.applied = new Map();
    for (let i = 1; i <= index; i++) {
      const rec = this.checkers.committed[i];
      if (rec?.key.startsWith('N:') && rec.key.length > 2) n.applied.set(i, rec.key.slice(2));
    }
  }

  /** propose buffers a client command at node id; false if the node is down. */
  propose(id: NodeId, data: Uint8Array): boolean {
    const n = this.node(id);
    if (!n.up) return false;
    n.proposals.push(data);
    return true;
  }

  proposeConfChange(id: NodeId, cc: ConfChange): boolean {
    const n = this.node(id);
    if (n.rn === undefined || n.pending !== undefined) return false;
    try {
      n.rn.proposeConfChange(cc);
    } catch (err) {
      if (err instanceof ProposalDroppedError) return false;
      throw err;
    }
    this.observe(n);
    return true;
  }

  /**
   * readIndex issues a linearizable read at node id. The read is checked when its ReadState
   * comes out: its index must cover every entry applied anywhere before the read was issued.
   */
  readIndex(id: NodeId): boolean {
    const n = this.node(id);
    if (n.rn === undefined || n.pending !== undefined) return false;
    const ctx = `read-${this.readSeq++}`;
    try {
      n.rn.readIndex(encoder.encode(ctx));
    } catch (err) {
      if (err instanceof ProposalDroppedError) return false;
      throw err;
    }
    this.pendingReads.set(ctx, this.checkers.maxCommittedIndex());
    this.observe(n);
    return true;
  }

  private readSeq = 0;
  /** pendingReads maps a read's context to the highest index applied anywhere when it was issued. */
  private readonly pendingReads = new Map<string, number>();
  /** readsServed counts reads answered (and checked). */
  readsServed = 0;

  /** transferLeader asks node id (normally the leader) to hand leadership to transferee. */
  transferLeader(id: NodeId, transferee: NodeId): boolean {
    const n = this.node(id);
    if (n.rn === undefined || n.pending !== undefined) return false;
    this.log(`transfer leadership from ${id} to ${transferee}`);
    n.rn.transferLeader(transferee);
    this.observe(n);
    return true;
  }

  leaders(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.rn?.raft.state === 'leader');
  }

  /** leader returns the up node that leads the highest term, or undefined. */
  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.leaders())
      if (best === undefined || (n.rn?.raft.term ?? 0) > (best.rn?.raft.term ?? 0)) best = n;
    return best;
  }

  // -------------------------------------------------------------------------------------
  // The event loop.

  /** runFor advances simulated time by ms, processing every event on the way. */
  runFor(ms: number): void {
    this.runUntil(this.now + ms);
  }

  runUntil(end: number): void {
    for (;;) {
      const t = this.nextEventTime();
      if (t > end) {
        this.now = end;
        return;
      }
      this.now = Math.max(this.now, t);
      this.processNow();
    }
  }

  private nextEventTime(): number {
    let t = this.net.nextTime();
    for (const n of this.nodes.values()) {
      if (!n.up) continue;
      if (n.pending !== undefined) t = Math.min(t, n.busyUntil);
      else if (n.proposals.length > 0) t = Math.min(t, this.now);
      t = Math.min(t, n.nextTickAt);
    }
    return t;
  }

  private processNow(): void {
    const now = this.now;
    for (const n of this.nodes.values()) {
      if (n.pending !== undefined && n.busyUntil <= now) this.completeReady(n);
    }
    for (const n of this.nodes.values()) {
      if (n.rn === undefined || n.pending !== undefined || n.proposals.length === 0) continue;
      const batch = n.proposals.splice(0, MAX_PROPOSALS_PER_BATCH);
      try {
        n.rn.proposeMany(batch);
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
      this.observe(n);
    }
    for (const n of this.nodes.values()) {
      if (n.rn === undefined || n.nextTickAt > now) continue;
      // A node busy persisting does not tick (its event loop is blocked), like a real one.
      if (n.pending === undefined) {
        n.rn.tick();
        this.observe(n);
      }
      while (n.nextTickAt <= now) n.nextTickAt += this.options.tickMs;
    }
    for (let d = this.net.popDue(now); d !== undefined; d = this.net.popDue(now)) {
      const m = d.msg;
      const n = this.nodes.get(m.to);
      if (d.kind === 'snapStatus') {
        if (n?.rn === undefined) continue;
        if (n.pending !== undefined) {
          this.net.defer(d, n.busyUntil);
          continue;
        }
        n.rn.reportSnapshot(m.from, !m.reject);
        this.observe(n);
        continue;
      }
      if (n?.rn === undefined || !this.net.isDeliverable(m)) {
        this.net.dropped++;
        if (m.type === 'MsgSnap') this.reportSnap(m, false);
        continue;
      }
      if (n.pending !== undefined) {
        this.net.defer(d, n.busyUntil);
        continue;
      }
      this.net.delivered++;
      try {
        n.rn.step(m);
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
      if (m.type === 'MsgSnap') this.reportSnap(m, true);
      this.observe(n);
    }
    for (const n of this.nodes.values()) this.maybeStartReady(n);
  }

  private reportSnap(m: Message, ok: boolean): void {
    // The transport tells the sender how the snapshot went (etcd: ReportSnapshot).
    this.net.schedule(
      'snapStatus',
      message({ type: 'MsgSnapStatus', from: m.to, to: m.from, reject: !ok }),
      this.now + 1,
    );
  }

  /** observe runs the checkers that look at a node's volatile state after it changed. */
  private observe(n: SimNode): void {
    const r = n.rn?.raft;
    if (r === undefined) return;
    if (r.term > this.maxTermEver) this.maxTermEver = r.term;
    if (r.state === 'leader') {
      this.checkers.onLeader(n.id, r.term);
      if (n.leaderTerm !== r.term) {
        n.leaderTerm = r.term;
        this.log(`node ${n.id} leads term ${r.term}`);
        this.checkers.onBecomeLeader(n.id, r);
      }
    }
  }

  private maybeStartReady(n: SimNode): void {
    if (n.rn === undefined || n.pending !== undefined || !n.rn.hasReady()) return;
    const rd = n.rn.ready();
    n.pending = rd;
    const needsDisk = rd.entries.length > 0 || rd.hardState !== undefined || rd.snapshot !== undefined;
    const latency =
      needsDisk && this.options.diskLatencyMsMax > 0 ? this.prng.range(0, this.options.diskLatencyMsMax) : 0;
    n.busyUntil = this.now + latency;
    if (latency === 0) this.completeReady(n);
  }

  private persistEntries(n: SimNode, entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const prevTerm = n.storage.term(first.index - 1);
    n.storage.append(entries);
    this.checkers.onPersist(n.id, entries, prevTerm);
  }

  /** completeReady does what a Ready asks, in the contract's order: persist, send, apply, advance. */
  private completeReady(n: SimNode): void {
    const rd = n.pending;
    const rn = n.rn;
    assert(rd !== undefined && rn !== undefined, 'completeReady without a Ready');
    n.pending = undefined;
    // 1. Persist.
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    this.persistEntries(n, rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    // 2. Send: only now may messages that depend on the persisted state leave.
    for (const m of rd.messages) {
      checkPersistedBeforeSend(m, n.storage);
      const ok = this.net.send(m, this.now);
      if (!ok && m.type === 'MsgSnap') this.reportSnap(m, false);
    }
    // 3. Apply.
    if (rd.snapshot !== undefined) {
      this.installAppState(n, rd.snapshot.metadata.index, rd.snapshot.data);
      n.confState = rd.snapshot.metadata.confState;
    }
    for (const e of rd.committedEntries) this.apply(n, rn, e);
    for (const rs of rd.readStates) {
      const ctx = decoder.decode(rs.requestCtx);
      const floor = this.pendingReads.get(ctx);
      if (floor === undefined) continue;
      this.pendingReads.delete(ctx);
      this.readsServed++;
      if (rs.index < floor) {
        throw new SafetyViolation(
          `linearizable read ${ctx} at node ${n.id} got index ${rs.index}, but ${floor} was applied before it began`,
        );
      }
    }
    // 4. Advance.
    rn.advance(rd);
    this.maybeSnapshot(n);
    this.observe(n);
  }

  private apply(n: SimNode, rn: RawNode, e: Entry): void {
    assert(e.index === n.appliedIndex + 1, `node ${n.id} applies ${e.index} after ${n.appliedIndex}`);
    n.hash = this.checkers.onApply(n.id, e, n.hash, this.maxTermEver);
    n.appliedIndex = e.index;
    if (e.type === 'confChange') {
      n.confState = rn.applyConfChange(decodeConfChange(e.data));
      this.log(`node ${n.id} applied conf change at ${e.index}: voters ${n.confState.voters.join(',')}`);
    } else if (e.data.length > 0) {
      n.applied.set(e.index, decoder.decode(e.data));
    }
  }

  private maybeSnapshot(n: SimNode): void {
    const every = this.options.snapshotEvery;
    if (every === 0) return;
    const snapIndex = n.storage.snapshot().metadata.index;
    if (n.appliedIndex - snapIndex < every) return;
    const data = encoder.encode(
      JSON.stringify({ index: n.appliedIndex, hash: n.hash } satisfies SnapshotData),
    );
    n.storage.createSnapshot(n.appliedIndex, n.confState, data);
    const compactTo = n.appliedIndex - this.options.snapshotKeep;
    if (compactTo > n.storage.firstIndex()) n.storage.compact(compactTo);
  }

  // -------------------------------------------------------------------------------------
  // Queries used by scenarios and the liveness check.

  /** nCommitted returns how many up nodes applied index, and the command there (6.824 style). */
  nCommitted(index: number): { count: number; cmd: string | undefined } {
    let count = 0;
    let cmd: string | undefined;
    for (const n of this.nodes.values()) {
      const v = n.applied.get(index);
      if (v === undefined) continue;
      if (cmd !== undefined && cmd !== v) {
        throw new Error(`committed values do not match: index ${index}, ${cmd}, ${v}`);
      }
      count++;
      cmd = v;
    }
    return { count, cmd };
  }

  /** logSizeMax is the longest durable log (entries after the snapshot) of any node. */
  logSizeMax(): number {
    let max = 0;
    for (const n of this.nodes.values())
      max = Math.max(max, n.storage.lastIndex() - n.storage.firstIndex() + 1);
    return max;
  }
}
