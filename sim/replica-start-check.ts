// The start check and the started marks in the replica simulator (docs/cluster.md, "A member that
// lost its directory"; docs/replica-sim.md, "Lost directories"). What `cairn serve` keeps in
// member.json is a small marker file here:
//
//   DATA_DIR/start-check := "pending" | "passed" | "floor " index " " term
//
// absent on an empty disk (a first start, or a wiped directory): the process writes "pending"
// first, then asks its peers (decideStart over answerStartCheck, the servers' rules) over the
// simulated network, with its Raft messages dropped; "floor" after a pass on a confirmed answer
// (votes held until it applied that entry, across restarts: Replica.holdVotes); "passed" otherwise.
import type { NodeId } from '../src/raft/index.js';
import type { VoteFloor } from '../src/replica/replica.js';
import {
  type AskResult,
  decideStart,
  START_CHECK_ASK_TIMEOUT_MS,
  START_CHECK_RETRY_MS,
  type StartAnswer,
  type StartDecision,
} from '../src/replica/start-check.js';
import type { SimFileSystem } from './replica-fs.js';
import type { ReplicaNet } from './replica-net.js';
import type { SimProcess } from './replica-scheduler.js';

/** START_CHECK_FILE: the marker (see the header). */
export const START_CHECK_FILE = 'start-check';

export type StartCheckState = 'pending' | 'passed' | { readonly floor: VoteFloor };

/** readStartCheck: the marker's state, undefined when there is none (an empty disk). */
export async function readStartCheck(fs: SimFileSystem, dir: string): Promise<StartCheckState | undefined> {
  const p = `${dir}/${START_CHECK_FILE}`;
  if (!(await fs.exists(p))) return undefined;
  const text = Buffer.from(await fs.readFile(p)).toString('utf8');
  if (text === 'pending' || text === 'passed') return text;
  const m = /^floor (\d+) (\d+)$/.exec(text);
  if (m === null) throw new Error(`${p} holds '${text}'`);
  return { floor: { index: Number(m[1]), term: Number(m[2]) } };
}

/** writeStartCheck replaces the marker durably (a temporary file, fsync, rename, fsync of the directory). */
export async function writeStartCheck(fs: SimFileSystem, dir: string, state: StartCheckState): Promise<void> {
  const tmp = `${dir}/${START_CHECK_FILE}.tmp`;
  if (await fs.exists(tmp)) await fs.unlink(tmp);
  const file = await fs.open(tmp, 'create');
  try {
    const text = typeof state === 'string' ? state : `floor ${state.floor.index} ${state.floor.term}`;
    await file.write(Buffer.from(text, 'utf8'), 0);
    await file.datasync();
  } finally {
    await file.close();
  }
  await fs.rename(tmp, `${dir}/${START_CHECK_FILE}`);
  await fs.syncDir(dir);
}

/** Answerer: a peer as the start check sees it: its process, and its answer (answerStartCheck). */
export interface Answerer {
  readonly id: NodeId;
  /** live: the peer's running process and its answer, or undefined when it is down. */
  live(): { readonly proc: SimProcess; answer(asker: NodeId): Promise<StartAnswer> } | undefined;
}

/**
 * askPeer: one question from `self` to `peer` over the simulated network: no answer when the
 * peer is down or a link is cut (either way, at the question or at the answer), or when the whole
 * exchange takes longer than START_CHECK_ASK_TIMEOUT_MS; else the peer's answer.
 */
export function askPeer(net: ReplicaNet, proc: SimProcess, self: NodeId, peer: Answerer): Promise<AskResult> {
  const name = `n${peer.id}`;
  return new Promise<AskResult>((resolve) => {
    let done = false;
    const finish = (r: AskResult): void => {
      if (done) return;
      done = true;
      timer.cancel();
      resolve(r);
    };
    const noAnswer = (reason: string): void => finish({ kind: 'no-answer', peer: name, reason });
    const timer = proc.after(START_CHECK_ASK_TIMEOUT_MS, () => noAnswer('timeout'));
    proc.after(net.latency(), () => {
      const live = peer.live();
      if (live === undefined || !net.reachable(self, peer.id)) return noAnswer('unreachable');
      live.answer(self).then(
        (answer) =>
          live.proc.after(net.latency(), () => {
            if (!net.reachable(peer.id, self)) noAnswer('answer lost');
            else finish({ kind: 'answer', peer: name, answer });
          }),
        () => noAnswer('the peer failed'),
      );
    });
  });
}

/**
 * runSimStartCheck asks every peer, round after round (START_CHECK_RETRY_MS apart), until
 * decideStart goes or refuses; undefined when the process died meanwhile.
 */
export async function runSimStartCheck(opts: {
  readonly net: ReplicaNet;
  readonly proc: SimProcess;
  readonly self: NodeId;
  readonly peers: readonly Answerer[];
  readonly trace: (line: string) => void;
}): Promise<Exclude<StartDecision, { readonly kind: 'wait' }> | undefined> {
  const { net, proc, self, peers } = opts;
  for (;;) {
    const results = await Promise.all(peers.map((p) => askPeer(net, proc, self, p)));
    if (!proc.alive) return undefined;
    const decision = decideStart(results, peers.length + 1);
    const said = results.map((r) => `${r.peer}:${r.kind === 'answer' ? r.answer.answer : r.kind}`).join(' ');
    opts.trace(`${proc.name} start check: ${said} -> ${decision.kind}`);
    if (decision.kind !== 'wait') return decision;
    await new Promise<void>((resolve) => proc.after(START_CHECK_RETRY_MS, resolve));
    if (!proc.alive) return undefined;
  }
}
