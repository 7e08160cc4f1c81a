// Harness adapts the MIT 6.824 (talent-plan) Raft test "config" to the simulator: connect and
// disconnect servers, crash and restart them, start commands and wait for agreement. Server ids
// are 1-based. Time is simulated, so the course's wall-clock waits cost microseconds.

import type { NodeId } from '../src/raft/index.js';
import type { ClusterOptions, SimNode } from './cluster.js';
import { Cluster, defaultClusterOptions } from './cluster.js';
import { RELIABLE, UNRELIABLE } from './network.js';

/** The course's timing constants, in simulated milliseconds. */
export const ELECTION_TIMEOUT_MS = 1000;
/** ONE_TIMEOUT_MS is how long one() keeps trying to get a command agreed. */
export const ONE_TIMEOUT_MS = 10_000;
/** AGREEMENT_WAIT_MS is how long one() waits for a started command to commit before retrying. */
export const AGREEMENT_WAIT_MS = 2000;
export const CHECK_LEADER_ITERATIONS = 10;

const encoder = new TextEncoder();

/** next returns the server k places after id in a ring of n (the course's (i+k)%n, 1-based). */
export function next(id: NodeId, k: number, n: number): NodeId {
  return ((id - 1 + k) % n) + 1;
}

/** SCENARIO_SEEDS is how many seeds each 6.824 scenario runs with in CI. */
export const SCENARIO_SEEDS = 3;

/** scenarioSeeds returns the seeds a scenario runs with: base, base+1, ... */
export function scenarioSeeds(base: number): number[] {
  return Array.from({ length: SCENARIO_SEEDS }, (_, i) => base + i * 1000);
}

export class HarnessError extends Error {
  override name = 'HarnessError';
}

export class Harness {
  readonly c: Cluster;
  readonly connected = new Set<NodeId>();
  private longReordering = false;
  private reliable = true;

  constructor(servers: number, seed: number, overrides: Partial<ClusterOptions> = {}) {
    const ids = Array.from({ length: servers }, (_, i) => i + 1);
    this.c = new Cluster(defaultClusterOptions({ seed, nodeIds: ids, initialVoters: ids, ...overrides }));
    for (const id of ids) this.connected.add(id);
  }

  get servers(): NodeId[] {
    return this.c.ids();
  }

  now(): number {
    return this.c.now;
  }

  sleep(ms: number): void {
    this.c.runFor(ms);
  }

  rand(n: number): number {
    return this.c.prng.int(n);
  }

  private applyLinks(): void {
    this.c.net.heal();
    for (const id of this.servers) if (!this.connected.has(id)) this.c.net.isolate(id, this.servers);
  }

  disconnect(id: NodeId): void {
    this.connected.delete(id);
    this.applyLinks();
  }

  connect(id: NodeId): void {
    this.connected.add(id);
    this.applyLinks();
  }

  /** crash stops a server (it keeps its disk) and disconnects it, like the course's crash1. */
  crash(id: NodeId): void {
    this.disconnect(id);
    this.c.crash(id);
  }

  /** start restarts a crashed server from its disk; it stays disconnected until connect(). */
  start(id: NodeId): void {
    if (!this.c.node(id).up) this.c.start(id);
  }

  isUp(id: NodeId): boolean {
    return this.c.node(id).up;
  }

  setUnreliable(unreliable: boolean): void {
    this.reliable = !unreliable;
    this.updateNet();
  }

  setLongReordering(on: boolean): void {
    this.longReordering = on;
    this.updateNet();
  }

  private updateNet(): void {
    const base = this.reliable ? RELIABLE : UNRELIABLE;
    // labrpc's long reordering delays 600 in 900 replies by 200 + rand(1 + rand(2000)) ms.
    this.c.net.options = this.longReordering
      ? { ...base, longDelayRate: 600 / 900, longDelayMsMax: 2000, longDelayResponsesOnly: true }
      : base;
  }

  private liveLeaders(): SimNode[] {
    return this.c.leaders().filter((n) => this.connected.has(n.id));
  }

  /** checkOneLeader waits for exactly one leader among connected servers and returns it. */
  checkOneLeader(): NodeId {
    for (let iters = 0; iters < CHECK_LEADER_ITERATIONS; iters++) {
      this.sleep(450 + this.rand(100));
      const byTerm = new Map<number, NodeId[]>();
      for (const n of this.liveLeaders()) {
        const t = n.rn?.raft.term ?? 0;
        byTerm.set(t, [...(byTerm.get(t) ?? []), n.id]);
      }
      let lastTerm = -1;
      for (const [term, leaders] of byTerm) {
        if (leaders.length > 1) throw new HarnessError(`term ${term} has ${leaders.length} (>1) leaders`);
        if (term > lastTerm) lastTerm = term;
      }
      const l = byTerm.get(lastTerm);
      if (l !== undefined) return l[0] as NodeId;
    }
    throw new HarnessError('expected one leader, got none');
  }

  /** checkTerms returns the common term of connected servers, failing if they disagree. */
  checkTerms(): number {
    let term = -1;
    for (const id of this.connected) {
      const r = this.c.node(id).rn?.raft;
      if (r === undefined) continue;
      if (term === -1) term = r.term;
      else if (term !== r.term) throw new HarnessError('servers disagree on term');
    }
    return term;
  }

  checkNoLeader(): void {
    const l = this.liveLeaders();
    if (l.length > 0)
      throw new HarnessError(`expected no leader among connected servers, but ${l[0]?.id} claims`);
  }

  term(id: NodeId): number {
    return this.c.node(id).rn?.raft.term ?? 0;
  }

  isLeader(id: NodeId): boolean {
    return this.c.node(id).rn?.raft.state === 'leader';
  }

  nCommitted(index: number): { count: number; cmd: string | undefined } {
    return this.c.nCommitted(index);
  }

  /**
   * startCmd is the course's Start(): only a leader accepts; it returns the index the command
   * will have if it commits. Commands are batched by the driver and appended on the next step.
   */
  startCmd(id: NodeId, cmd: string): { index: number; term: number; isLeader: boolean } {
    const n = this.c.node(id);
    const r = n.rn?.raft;
    if (r === undefined || r.state !== 'leader') return { index: -1, term: r?.term ?? 0, isLeader: false };
    const index = r.raftLog.lastIndex() + n.proposals.length + 1;
    this.c.propose(id, encoder.encode(cmd));
    return { index, term: r.term, isLeader: true };
  }

  /**
   * one starts cmd on a leader and waits for expected servers to commit it, retrying on
   * other servers while ONE_TIMEOUT_MS lasts (the course's cfg.one).
   */
  one(cmd: string, expected: number, retry: boolean): number {
    const t0 = this.now();
    let starts = 0;
    const ids = this.servers;
    while (this.now() - t0 < ONE_TIMEOUT_MS) {
      let index = -1;
      for (let si = 0; si < ids.length; si++) {
        starts = (starts + 1) % ids.length;
        const id = ids[starts] as NodeId;
        if (!this.connected.has(id) || !this.isUp(id)) continue;
        const r = this.startCmd(id, cmd);
        if (r.isLeader) {
          index = r.index;
          break;
        }
      }
      if (index !== -1) {
        const t1 = this.now();
        while (this.now() - t1 < AGREEMENT_WAIT_MS) {
          const { count, cmd: got } = this.nCommitted(index);
          if (count > 0 && count >= expected && got === cmd) return index;
          this.sleep(20);
        }
        if (!retry) throw new HarnessError(`one(${cmd}) failed to reach agreement`);
      } else {
        this.sleep(50);
      }
    }
    throw new HarnessError(`one(${cmd}) failed to reach agreement in ${ONE_TIMEOUT_MS}ms`);
  }

  /** wait waits for n servers to commit index; it returns undefined if the term moved on. */
  wait(index: number, n: number, startTerm: number): string | undefined {
    let to = 10;
    for (let iters = 0; iters < 30; iters++) {
      if (this.nCommitted(index).count >= n) break;
      this.sleep(to);
      if (to < 1000) to *= 2;
      if (startTerm > -1) {
        for (const id of this.servers) if (this.term(id) > startTerm) return undefined;
      }
    }
    const { count, cmd } = this.nCommitted(index);
    if (count < n) throw new HarnessError(`only ${count} decided for index ${index}; wanted ${n}`);
    return cmd;
  }

  rpcTotal(): number {
    return this.c.net.requests;
  }
}
