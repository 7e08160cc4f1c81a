// Checkers watch a simulation continuously and fail it the moment a Raft safety property
// breaks (Raft Figure 3): election safety, log matching, leader completeness and state machine
// safety. Liveness is checked by the runner once the network heals (see cluster.ts).

import type { Entry, NodeId } from '../src/raft/index.js';
import type { Raft } from '../src/raft/raft.js';

/** SafetyViolation is a failed checker; the runner prints the seed so the run can be replayed. */
export class SafetyViolation extends Error {
  override name = 'SafetyViolation';
}

const decoder = new TextDecoder();

/** entryKey is the comparable identity of an entry's payload. */
export function entryKey(e: Entry): string {
  return `${e.type === 'confChange' ? 'C' : 'N'}:${decoder.decode(e.data)}`;
}

/** FNV-1a over a string, chained: the state machine's running digest. */
export function chainHash(prev: number, index: number, term: number, key: string): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  const s = `${index}/${term}/${key}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** CommittedRecord is what the first node to apply an index applied there. */
export interface CommittedRecord {
  readonly term: number;
  readonly key: string;
  /** hash is the state machine digest after applying this index. */
  readonly hash: number;
  /** maxTermSeen is the highest term any node had when the entry was first seen applied. */
  readonly maxTermSeen: number;
}

export class Checkers {
  /** leaders maps each term to the one node that led it (election safety). */
  readonly leaders = new Map<number, NodeId>();
  /** committed[i] is the entry applied at index i by anyone; all appliers must agree. */
  readonly committed: (CommittedRecord | undefined)[] = [];
  /** chain maps "index/term" to the previous entry's term and the payload (log matching). */
  private readonly chain = new Map<string, { prevTerm: number | undefined; key: string }>();
  /** appliedCount counts distinct indexes applied by anyone; normalApplied only client entries. */
  appliedCount = 0;
  normalApplied = 0;

  /** onLeader is called whenever a node is observed as leader of term. */
  onLeader(id: NodeId, term: number): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) this.leaders.set(term, id);
    else if (prev !== id)
      throw new SafetyViolation(`election safety: nodes ${prev} and ${id} both led term ${term}`);
  }

  /**
   * onPersist records entries a node made durable, with the term of the entry before the
   * first (undefined if unknown). Two entries with the same index and term must have the same
   * payload and the same predecessor term, which by induction gives Log Matching.
   */
  onPersist(id: NodeId, entries: readonly Entry[], prevTermOfFirst: number | undefined): void {
    let prevTerm = prevTermOfFirst;
    for (const e of entries) {
      const k = `${e.index}/${e.term}`;
      const key = entryKey(e);
      const seen = this.chain.get(k);
      if (seen === undefined) {
        this.chain.set(k, { prevTerm, key });
      } else {
        if (seen.key !== key) {
          throw new SafetyViolation(
            `log matching: node ${id} has ${k} = ${key}, another node has ${seen.key}`,
          );
        }
        if (seen.prevTerm !== undefined && prevTerm !== undefined && seen.prevTerm !== prevTerm) {
          throw new SafetyViolation(
            `log matching: node ${id} has ${k} after term ${prevTerm}, another node after term ${seen.prevTerm}`,
          );
        }
      }
      prevTerm = e.term;
    }
  }

  /** onApply checks state machine safety and returns the digest after applying e. */
  onApply(id: NodeId, e: Entry, prevHash: number, maxTerm: number): number {
    const key = entryKey(e);
    const rec = this.committed[e.index];
    const hash = chainHash(prevHash, e.index, e.term, key);
    if (rec === undefined) {
      this.committed[e.index] = { term: e.term, key, hash, maxTermSeen: maxTerm };
      this.appliedCount++;
      if (e.type === 'normal' && e.data.length > 0) this.normalApplied++;
      return hash;
    }
    if (rec.term !== e.term || rec.key !== key) {
      throw new SafetyViolation(
        `state machine safety: node ${id} applied ${e.term}/${e.index} ${key}, another applied ${rec.term}/${e.index} ${rec.key}`,
      );
    }
    if (rec.hash !== hash) {
      throw new SafetyViolation(
        `state machine safety: node ${id} digest at ${e.index} differs from the first applier`,
      );
    }
    return hash;
  }

  /**
   * digestAt: the digest of the history up to `index`, for a member whose log starts after it
   * (a snapshot); the entry must have been applied by someone (it is committed).
   */
  digestAt(id: NodeId, index: number): number {
    if (index === 0) return 0;
    const rec = this.committed[index];
    if (rec === undefined)
      throw new SafetyViolation(`node ${id} holds a snapshot at ${index} nobody applied`);
    return rec.hash;
  }

  /** onSnapshotInstall checks that a snapshot's digest matches the history at its index. */
  onSnapshotInstall(id: NodeId, index: number, hash: number): void {
    if (index === 0) return;
    const rec = this.committed[index];
    if (rec === undefined)
      throw new SafetyViolation(`node ${id} installed a snapshot at ${index} nobody applied`);
    if (rec.hash !== hash)
      throw new SafetyViolation(`node ${id} installed a snapshot at ${index} with a wrong digest`);
  }

  /**
   * onBecomeLeader checks leader completeness: a leader of term T must hold every entry that
   * was seen committed while every node's term was below T (so its commit term is below T).
   */
  onBecomeLeader(id: NodeId, raft: Raft): void {
    const log = raft.raftLog;
    const first = log.firstIndex();
    for (let i = first; i < this.committed.length; i++) {
      const rec = this.committed[i];
      if (rec === undefined || rec.maxTermSeen >= raft.term) continue;
      const t = log.term(i);
      if (t !== rec.term) {
        throw new SafetyViolation(
          `leader completeness: leader ${id} of term ${raft.term} has term ${t} at ${i}, committed ${rec.term}`,
        );
      }
    }
  }

  maxCommittedIndex(): number {
    return this.committed.length - 1;
  }
}
