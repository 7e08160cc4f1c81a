// TestCluster is a tiny synchronous driver for unit and trace tests: every node has a
// MemoryStorage and a RawNode; messages are queued per recipient and delivered on request.
// It follows the Ready contract exactly (persist, check, send, apply, advance) and prints
// what happens in the format the trace tests expect. The simulator in sim/ is the heavy one.

import { assert } from '../stdx/assert.js';
import { decodeConfChange } from './conf-change.js';
import { MemoryStorage } from './log-storage.js';
import type { RaftConfig } from './raft.js';
import { defaultConfig } from './raft.js';
import { checkPersistedBeforeSend, RawNode } from './raw-node.js';
import type { ConfState, Entry, Message, NodeId, Ready } from './types.js';

/** MAX_STABILIZE_ROUNDS bounds stabilize(): a protocol that never quiesces is a bug. */
export const MAX_STABILIZE_ROUNDS = 1000;

export interface TestNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  rn: RawNode;
  /** applied is the application's state: the data of every applied normal entry. */
  readonly applied: Entry[];
  confState: ConfState | undefined;
}

const decoder = new TextDecoder();

export function describeEntry(e: Entry): string {
  if (e.type === 'confChange') {
    const cc = decodeConfChange(e.data);
    const parts = cc.changes.map(
      (c) => `${c.type === 'addNode' ? 'v' : c.type === 'addLearner' ? 'l' : 'r'}${c.nodeId}`,
    );
    return `${e.term}/${e.index} EntryConfChange${cc.transition === 'auto' ? '' : ` ${cc.transition}`} ${parts.join(' ') || 'leave-joint'}`;
  }
  return `${e.term}/${e.index} EntryNormal ${JSON.stringify(decoder.decode(e.data))}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${m.type} Term:${m.term}`;
  switch (m.type) {
    case 'MsgApp':
      s += ` Log:${m.logTerm}/${m.index} Commit:${m.commit}`;
      if (m.entries.length > 0) s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
      break;
    case 'MsgAppResp':
      s += ` Index:${m.index}`;
      if (m.reject) s += ` Rejected (Hint: ${m.rejectHint}, LogTerm: ${m.logTerm})`;
      break;
    case 'MsgVote':
    case 'MsgPreVote':
      s += ` Log:${m.logTerm}/${m.index}`;
      break;
    case 'MsgVoteResp':
    case 'MsgPreVoteResp':
      if (m.reject) s += ' Rejected';
      break;
    case 'MsgHeartbeat':
      s += ` Commit:${m.commit}`;
      break;
    case 'MsgSnap':
      s += ` Snapshot: Index:${m.snapshot?.metadata.index} Term:${m.snapshot?.metadata.term}`;
      break;
    case 'MsgReadIndexResp':
      s += ` Index:${m.index}`;
      break;
    default:
      break;
  }
  if (m.entries.length > 0 && m.type === 'MsgProp')
    s += ` Entries:[${m.entries.map(describeEntry).join(', ')}]`;
  if (m.context.length > 0 && m.type !== 'MsgVote' && m.type !== 'MsgPreVote') {
    s += ` Ctx:${JSON.stringify(decoder.decode(m.context))}`;
  }
  return s;
}

export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** queues holds undelivered messages per recipient, oldest first. */
  readonly queues = new Map<NodeId, Message[]>();
  /** cut holds directed links that drop messages: "from->to". */
  readonly cut = new Set<string>();
  readonly out: string[] = [];
  private readonly overrides: Partial<RaftConfig>;

  constructor(overrides: Partial<RaftConfig> = {}) {
    this.overrides = overrides;
  }

  add(id: NodeId, peers: readonly NodeId[], overrides: Partial<RaftConfig> = {}): TestNode {
    assert(!this.nodes.has(id), `node ${id} exists`);
    const storage = new MemoryStorage();
    const rn = new RawNode(
      defaultConfig(id, storage, { ...this.overrides, ...overrides, peers, randomSeed: id }),
    );
    const node: TestNode = { id, storage, rn, applied: [], confState: undefined };
    this.nodes.set(id, node);
    this.queues.set(id, []);
    return node;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    assert(n !== undefined, `no node ${id}`);
    return n;
  }

  /** handleReady processes one Ready of node id; it returns false if there was none. */
  handleReady(id: NodeId, verbose = true): boolean {
    const n = this.node(id);
    if (!n.rn.hasReady()) return false;
    const rd = n.rn.ready();
    if (verbose) this.printReady(id, rd);
    if (rd.snapshot !== undefined) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState);
    for (const m of rd.messages) {
      checkPersistedBeforeSend(m, n.storage);
      if (this.cut.has(`${m.from}->${m.to}`)) continue;
      const q = this.queues.get(m.to);
      if (q !== undefined) q.push(m);
    }
    if (rd.snapshot !== undefined) n.confState = rd.snapshot.metadata.confState;
    for (const e of rd.committedEntries) {
      if (e.type === 'confChange') n.confState = n.rn.applyConfChange(decodeConfChange(e.data));
      else if (e.data.length > 0) n.applied.push(e);
    }
    n.rn.advance(rd);
    return true;
  }

  /** deliver steps every queued message for id; it returns how many there were. */
  deliver(id: NodeId, verbose = true): number {
    const q = this.queues.get(id) ?? [];
    this.queues.set(id, []);
    if (q.length > 0 && verbose) {
      this.out.push(`> ${id} receiving messages`);
      for (const m of q) this.out.push(`  ${describeMessage(m)}`);
    }
    for (const m of q) {
      try {
        this.node(id).rn.step(m);
      } catch (err) {
        if (verbose) this.out.push(`  error: ${(err as Error).message}`);
      }
    }
    return q.length;
  }

  /** stabilize handles readies and delivers messages until nothing is left to do. */
  stabilize(ids?: readonly NodeId[], verbose = true): void {
    const which = ids ?? [...this.nodes.keys()].sort((a, b) => a - b);
    for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
      let busy = false;
      for (const id of which) if (this.handleReady(id, verbose)) busy = true;
      for (const id of which) if (this.deliver(id, verbose) > 0) busy = true;
      if (!busy) return;
    }
    assert(false, 'stabilize did not converge');
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  leader(): NodeId | undefined {
    for (const n of this.nodes.values()) if (n.rn.raft.state === 'leader') return n.id;
    return undefined;
  }

  private printReady(id: NodeId, rd: Ready): void {
    this.out.push(`> ${id} handling Ready`);
    if (rd.softState !== undefined)
      this.out.push(`  State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
    if (rd.hardState !== undefined) {
      const hs = rd.hardState;
      this.out.push(`  HardState Term:${hs.term} Vote:${hs.vote} Commit:${hs.commit}`);
    }
    if (rd.entries.length > 0) {
      this.out.push('  Entries:');
      for (const e of rd.entries) this.out.push(`  ${describeEntry(e)}`);
    }
    if (rd.snapshot !== undefined) {
      const md = rd.snapshot.metadata;
      this.out.push(`  Snapshot Index:${md.index} Term:${md.term} Voters:[${md.confState.voters.join(',')}]`);
    }
    if (rd.committedEntries.length > 0) {
      this.out.push('  CommittedEntries:');
      for (const e of rd.committedEntries) this.out.push(`  ${describeEntry(e)}`);
    }
    if (rd.messages.length > 0) {
      this.out.push('  Messages:');
      for (const m of rd.messages) this.out.push(`  ${describeMessage(m)}`);
    }
    if (rd.readStates.length > 0) {
      for (const rs of rd.readStates) {
        this.out.push(`  ReadState Index:${rs.index} Ctx:${JSON.stringify(decoder.decode(rs.requestCtx))}`);
      }
    }
  }
}
