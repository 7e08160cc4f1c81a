// The data-driven interaction format (after etcd's datadriven tests). A file is a sequence of
// cases; each case is a command line, a line "----", and the expected output, ended by a blank
// line or the end of the file. Lines starting with '#' outside a case are comments.
//
//   file    = { comment | blank | case }
//   case    = command NL "----" NL { output-line NL } ( blank | EOF )
//   command = name { SP arg }            arg = word | key "=" value
//
// Commands (ids are node ids):
//   add-nodes N [voters=1,2,3] (default: the first nodes bootstrap, later ones join empty) [prevote=false] [checkquorum=false] [inflight=K]
//   campaign ID | propose ID DATA | read-index ID CTX | transfer-leader FROM TO
//   propose-conf-change ID [transition=auto|joint-implicit|joint-explicit] (vN|lN|rN)... | leave
//   tick-heartbeat ID | tick-election ID | stabilize [ID...] | process-ready ID | deliver-msgs ID
//   isolate ID | heal | status ID | raft-log ID | compact ID INDEX | restart ID

import { assert } from '../stdx/assert.js';
import { defaultConfig } from './raft.js';
import { RawNode } from './raw-node.js';
import { describeEntry, TestCluster } from './test-cluster.js';
import type { ConfChangeSingle, ConfChangeTransition, NodeId } from './types.js';

/** MAX_CASES_PER_FILE bounds a trace file; a larger one should be split by topic. */
export const MAX_CASES_PER_FILE = 500;

export interface TraceCase {
  /** line is the 1-based line number of the command, for error messages. */
  readonly line: number;
  readonly command: string;
  readonly expected: string;
}

export function parseTrace(text: string): TraceCase[] {
  const lines = text.split('\n');
  const cases: TraceCase[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i] as string;
    if (l.trim() === '' || l.startsWith('#')) {
      i++;
      continue;
    }
    const command = l.trim();
    const line = i + 1;
    assert(lines[i + 1] === '----', `line ${line + 1}: expected ---- after the command`);
    i += 2;
    const out: string[] = [];
    while (i < lines.length && (lines[i] as string) !== '') out.push(lines[i++] as string);
    cases.push({ line, command, expected: out.join('\n') });
    assert(cases.length <= MAX_CASES_PER_FILE, 'too many cases in one trace file');
  }
  return cases;
}

export function formatTrace(header: string, cases: readonly { command: string; actual: string }[]): string {
  const blocks = cases.map((c) => `${c.command}\n----\n${c.actual}\n`);
  return `${header}${blocks.join('\n')}`;
}

const enc = new TextEncoder();

/** Interaction runs trace commands against a TestCluster and returns their output. */
export class Interaction {
  private c = new TestCluster();
  private nextId = 1;
  private electionTick = 10;
  private heartbeatTick = 1;

  run(command: string): string {
    const [name, ...rest] = command.split(/\s+/);
    const kv = new Map<string, string>();
    const args: string[] = [];
    for (const a of rest) {
      const eq = a.indexOf('=');
      if (eq > 0) kv.set(a.slice(0, eq), a.slice(eq + 1));
      else args.push(a);
    }
    const id = (k = 0): NodeId => {
      const v = Number(args[k]);
      assert(Number.isInteger(v) && v > 0, `${name}: bad node id ${args[k]}`);
      return v;
    };
    const c = this.c;
    c.out.length = 0;
    try {
      switch (name) {
        case 'add-nodes': {
          const n = Number(args[0]);
          const ids = Array.from({ length: n }, (_, i) => this.nextId + i);
          this.nextId += n;
          // The first nodes bootstrap the group; nodes added later join empty (through conf changes).
          const first = this.nextId - n === 1;
          const voters = kv.has('voters')
            ? (kv.get('voters') as string).split(',').map(Number)
            : first
              ? ids
              : [];
          const overrides = {
            electionTick: this.electionTick,
            heartbeatTick: this.heartbeatTick,
            preVote: kv.get('prevote') !== 'false',
            checkQuorum: kv.get('checkquorum') !== 'false',
            ...(kv.has('inflight') ? { maxInflightMsgs: Number(kv.get('inflight')) } : {}),
          };
          for (const nid of ids) c.add(nid, voters.includes(nid) ? voters : [], overrides);
          c.stabilize(ids, false);
          return ids.map((nid) => this.status(nid)).join('\n');
        }
        case 'campaign':
          c.node(id()).rn.campaign();
          return 'ok';
        case 'propose':
          c.node(id()).rn.propose(enc.encode(args[1] ?? ''));
          return 'ok';
        case 'read-index':
          c.node(id()).rn.readIndex(enc.encode(args[1] ?? ''));
          return 'ok';
        case 'transfer-leader':
          c.node(id()).rn.transferLeader(id(1));
          return 'ok';
        case 'propose-conf-change': {
          const changes: ConfChangeSingle[] = [];
          for (const a of args.slice(1)) {
            if (a === 'leave') continue;
            const t = a[0];
            const nid = Number(a.slice(1));
            changes.push({
              type: t === 'v' ? 'addNode' : t === 'l' ? 'addLearner' : 'removeNode',
              nodeId: nid,
            });
          }
          const tr = kv.get('transition') ?? 'auto';
          const transition: ConfChangeTransition =
            tr === 'joint-implicit' ? 'jointImplicit' : tr === 'joint-explicit' ? 'jointExplicit' : 'auto';
          c.node(id()).rn.proposeConfChange({ transition, changes, context: new Uint8Array() });
          return 'ok';
        }
        case 'tick-heartbeat':
          for (let i = 0; i < this.heartbeatTick; i++) c.node(id()).rn.tick();
          return 'ok';
        case 'tick-election':
          for (let i = 0; i < 2 * this.electionTick; i++) c.node(id()).rn.tick();
          return 'ok';
        case 'stabilize':
          c.stabilize(args.length > 0 ? args.map((_, k) => id(k)) : undefined);
          return c.out.join('\n') || 'ok';
        case 'process-ready':
          c.handleReady(id());
          return c.out.join('\n') || 'ok';
        case 'deliver-msgs':
          c.deliver(id());
          return c.out.join('\n') || 'ok';
        case 'isolate':
          c.isolate(id());
          return 'ok';
        case 'heal':
          c.heal();
          return 'ok';
        case 'status':
          return this.status(id());
        case 'raft-log': {
          const r = c.node(id()).rn.raft;
          const log = r.raftLog;
          const ents = log.lastIndex() >= log.firstIndex() ? log.allEntries() : [];
          return (
            ents.map(describeEntry).join('\n') ||
            `log is empty: first index=${log.firstIndex()}, last index=${log.lastIndex()}`
          );
        }
        case 'compact': {
          const n = c.node(id());
          const index = Number(args[1]);
          n.storage.createSnapshot(index, n.confState, enc.encode(`snap@${index}`));
          n.storage.compact(index);
          return `compacted to ${index}: first index ${n.storage.firstIndex()}`;
        }
        case 'restart': {
          const n = c.node(id());
          const applied = n.storage.snapshot().metadata.index;
          n.applied.length = 0;
          n.rn = new RawNode(
            defaultConfig(n.id, n.storage, {
              electionTick: this.electionTick,
              heartbeatTick: this.heartbeatTick,
              applied,
              randomSeed: n.id,
            }),
          );
          return this.status(n.id);
        }
        default:
          return `unknown command ${name}`;
      }
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  }

  private status(nid: NodeId): string {
    const st = this.c.node(nid).rn.status();
    const cs = st.confState;
    let s =
      `${nid}: ${st.softState.raftState} term=${st.hardState.term} lead=${st.softState.lead} ` +
      `commit=${st.hardState.commit} applied=${st.applied} last=${st.lastIndex} voters=(${cs.voters.join(',')})`;
    if (cs.votersOutgoing.length > 0) s += `&&(${cs.votersOutgoing.join(',')})`;
    if (cs.learners.length > 0) s += ` learners=(${cs.learners.join(',')})`;
    for (const [pid, p] of st.progress) s += `\n  ${pid}: ${p.state} match=${p.match} next=${p.next}`;
    return s;
  }
}
