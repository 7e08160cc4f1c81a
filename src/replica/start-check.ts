// The start check (docs/cluster.md, "A member that lost its directory"): a member starting from
// an empty directory asks its peers whether its id already started, before it takes any part in
// Raft. A member that lost its directory (a disk replaced, `rm -rf`) and is started again with
// its original command line would otherwise bootstrap afresh under the same id, with an empty log
// and no memory of its votes, and could elect a member that misses a committed write (etcd
// refuses the same start: "member ... has already been bootstrapped").
//
// The question travels on a connection of its own, after the usual hello and welcome
// (docs/peer-protocol.md, "Start check"):
//
//   status-request := [ version u8 ]              asking side, once, as the first frame; empty
//                                                 from a build before the start answers (v1)
//   start-answer   := answer u8 | index u64 | term u64
//                                                 answering side to a version-2 request, once,
//                                                 then it closes
//   status         := started bool | checking bool | index u64
//                                                 answering side to an empty (v1) request
//
// answer: 0 not-started: the answering member confirmed its state with the leader after the
// question arrived (a ReadIndex round, then it applied through the read index; index is its
// applied index and term that entry's term: the asker's vote floor) and records no started mark
// of the asker; 1 started: it has applied the asker's mark (a mark is committed and never taken
// back, so no confirmation is needed); 2 fresh: it knows nothing, since its log holds no entry of
// any leader (it is checking itself, or is a member of a new cluster that has not elected one
// yet); 3 unconfirmed: it holds state but could not confirm it in time (no leader, no quorum).
// For answers 1-3, index is its applied index and term 0. A v1 asker gets `status`: started,
// checking for fresh, neither for not-started, and no frame at all for unconfirmed (an old asker
// goes on any status).
import * as net from 'node:net';
import type { Clock } from '../io/clock.js';
import type { NodeId } from '../raft/types.js';
import { assert } from '../stdx/assert.js';
import { readSafeU64LE, writeU64LE } from '../stdx/u64.js';
import { PeerProtocolError } from './errors.js';
import {
  checkWelcome,
  decodeRefuse,
  decodeWelcome,
  helloFrame,
  isRemovedRefusal,
  MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES,
} from './handshake.js';
import { parseHostPort } from './peer-address.js';
import { encodeFrame, FrameReader } from './peer-frame.js';
import type { Peer } from './transport.js';

/** START_STATUS_BYTES: started u8, checking u8, index u64 (v1). */
const START_STATUS_BYTES = 1 + 1 + 8;
/** START_ANSWER_BYTES: answer u8, index u64, term u64. */
const START_ANSWER_BYTES = 1 + 8 + 8;
/** START_CHECK_VERSION: the version a status-request of this build carries. */
export const START_CHECK_VERSION = 2;
/** START_CHECK_ASK_TIMEOUT_MS: one question's whole exchange (connect, handshake, answer). */
export const START_CHECK_ASK_TIMEOUT_MS = 2_000;
/**
 * START_CHECK_CONFIRM_MS: how long an answering member tries to confirm its state with the leader
 * before it answers unconfirmed: well within the asker's timeout, with room for the handshake.
 */
export const START_CHECK_CONFIRM_MS = 1_000;
/** START_CHECK_RETRY_MS: between rounds while no peer answers (peers down or still starting). */
export const START_CHECK_RETRY_MS = 500;
/** START_CHECK_LOG_EVERY_ROUNDS: a waiting member says so again this often (not every second). */
export const START_CHECK_LOG_EVERY_ROUNDS = 60;

/** StartStatus: the v1 answer (askers built before start-answer). */
export interface StartStatus {
  readonly started: boolean;
  readonly checking: boolean;
  readonly index: number;
}

/** StartAnswerKind: what a peer can say about the asking member (see the header). */
export type StartAnswerKind = 'not-started' | 'started' | 'fresh' | 'unconfirmed';

const ANSWER_CODES: Readonly<Record<StartAnswerKind, number>> = {
  'not-started': 0,
  started: 1,
  fresh: 2,
  unconfirmed: 3,
};
const ANSWERS_BY_CODE: ReadonlyMap<number, StartAnswerKind> = new Map(
  (Object.entries(ANSWER_CODES) as [StartAnswerKind, number][]).map(([k, c]) => [c, k]),
);

/**
 * StartAnswer: one peer's answer; index: its applied index (for not-started, at or past the read
 * index the leader confirmed), term: that entry's term (0 when not known: other answers).
 */
export interface StartAnswer {
  readonly answer: StartAnswerKind;
  readonly index: number;
  readonly term: number;
}

export function encodeStartStatus(s: StartStatus): Buffer {
  const out = Buffer.alloc(START_STATUS_BYTES);
  out[0] = s.started ? 1 : 0;
  out[1] = s.checking ? 1 : 0;
  writeU64LE(out, s.index, 2);
  return out;
}

export function decodeStartStatus(payload: Uint8Array): StartStatus {
  if (payload.length !== START_STATUS_BYTES)
    throw new PeerProtocolError(`a start status of ${payload.length} bytes`);
  const flag = (b: number | undefined, what: string): boolean => {
    if (b !== 0 && b !== 1) throw new PeerProtocolError(`start status ${what} is ${b}, not 0 or 1`);
    return b === 1;
  };
  const index = readSafeU64LE(payload, 2);
  if (index === undefined) throw new PeerProtocolError('start status index is not a safe integer');
  return { started: flag(payload[0], 'started'), checking: flag(payload[1], 'checking'), index };
}

export function encodeStartAnswer(a: StartAnswer): Buffer {
  const out = Buffer.alloc(START_ANSWER_BYTES);
  out[0] = ANSWER_CODES[a.answer];
  writeU64LE(out, a.index, 1);
  writeU64LE(out, a.term, 9);
  return out;
}

export function decodeStartAnswer(payload: Uint8Array): StartAnswer {
  if (payload.length !== START_ANSWER_BYTES)
    throw new PeerProtocolError(`a start answer of ${payload.length} bytes`);
  const answer = ANSWERS_BY_CODE.get(payload[0] ?? -1);
  if (answer === undefined) throw new PeerProtocolError(`start answer ${payload[0]} is not 0 to 3`);
  const index = readSafeU64LE(payload, 1);
  const term = readSafeU64LE(payload, 9);
  if (index === undefined || term === undefined)
    throw new PeerProtocolError('start answer index or term is not a safe integer');
  return { answer, index, term };
}

/** encodeStatusRequest: the question of this build (version 2). */
export function encodeStatusRequest(): Buffer {
  return Buffer.from([START_CHECK_VERSION]);
}

/** decodeStatusRequest: the asker's version, 1 for the empty request of an older build. */
export function decodeStatusRequest(payload: Uint8Array): 1 | 2 {
  if (payload.length === 0) return 1;
  if (payload.length === 1 && payload[0] === START_CHECK_VERSION) return 2;
  throw new PeerProtocolError(`a status request of ${payload.length} bytes, version ${payload[0]}`);
}

/**
 * legacyStatus: the v1 answer to an older asker, or undefined for none (unconfirmed: an older
 * asker goes on any status, so it gets none rather than one it would take as a yes).
 */
export function legacyStatus(a: StartAnswer): StartStatus | undefined {
  switch (a.answer) {
    case 'started':
      return { started: true, checking: false, index: a.index };
    case 'not-started':
      return { started: false, checking: false, index: a.index };
    case 'fresh':
      return { started: false, checking: true, index: a.index };
    case 'unconfirmed':
      return undefined;
  }
}

/**
 * fromLegacyStatus: what a v1 answer (a peer built before start-answer) is worth: its "not
 * started" was read from its own state, possibly behind, so it counts as unconfirmed.
 */
export function fromLegacyStatus(s: StartStatus): StartAnswer {
  if (s.started) return { answer: 'started', index: s.index, term: 0 };
  if (s.checking) return { answer: 'fresh', index: s.index, term: 0 };
  return { answer: 'unconfirmed', index: s.index, term: 0 };
}

/** AskResult: one peer's answer, or why there is none. */
export type AskResult =
  | { readonly kind: 'answer'; readonly peer: string; readonly answer: StartAnswer }
  | { readonly kind: 'removed'; readonly peer: string; readonly reason: string }
  | { readonly kind: 'no-answer'; readonly peer: string; readonly reason: string };

/** AskOptions: who asks (as in its hellos) and whom. */
export interface AskOptions {
  readonly self: { readonly id: NodeId; readonly name: string; readonly resp: string; readonly http: string };
  readonly clusterToken: string;
  readonly peer: Peer;
  readonly timeoutMs?: number;
  /** legacyRequest: ask as a build before start-answer did (an empty request; compatibility tests). */
  readonly legacyRequest?: boolean;
}

/**
 * askStartStatus asks one peer; it never throws. A peer that refuses the hello (not yet told of
 * this member, another cluster) or is down gives no answer; one that says this member was
 * removed gives `removed`. A peer built before the start check drops the connection at the
 * request: no answer either (it cannot tell), so a lost directory cannot be restarted until one
 * peer runs a build with the check. A peer built before start-answer answers `status` (its
 * version ignores the request's payload): fromLegacyStatus.
 */
export function askStartStatus(opts: AskOptions): Promise<AskResult> {
  const { peer } = opts;
  const timeoutMs = opts.timeoutMs ?? START_CHECK_ASK_TIMEOUT_MS;
  return new Promise<AskResult>((resolve) => {
    const reader = new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES);
    let welcomed = false;
    let done = false;
    const finish = (result: AskResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const noAnswer = (reason: string): void => finish({ kind: 'no-answer', peer: peer.name, reason });
    const timer = setTimeout(() => noAnswer(`no answer within ${timeoutMs} ms`), timeoutMs);
    let socket: net.Socket;
    try {
      const at = parseHostPort(peer.peerAddr);
      socket = net.connect({ host: at.host, port: at.port });
    } catch (err) {
      clearTimeout(timer);
      resolve({ kind: 'no-answer', peer: peer.name, reason: (err as Error).message });
      return;
    }
    socket.setNoDelay(true);
    socket.on('connect', () => {
      socket.write(helloFrame(opts.self, opts.clusterToken, peer.name));
    });
    socket.on('error', (err) => noAnswer(err.message));
    socket.on('close', () =>
      noAnswer(
        welcomed
          ? 'the peer closed the connection without an answer (a build before the start check?)'
          : 'connection closed',
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
        for (let f = reader.next(); f !== undefined && !done; f = reader.next()) {
          if (f.kind === 'refuse') {
            const { reason } = decodeRefuse(f.payload);
            if (isRemovedRefusal(reason)) finish({ kind: 'removed', peer: peer.name, reason });
            else noAnswer(`refused: ${reason}`);
          } else if (f.kind === 'welcome' && !welcomed) {
            const why = checkWelcome(decodeWelcome(f.payload), peer);
            if (why !== undefined) return noAnswer(why);
            welcomed = true;
            const request = opts.legacyRequest === true ? new Uint8Array(0) : encodeStatusRequest();
            socket.write(encodeFrame('status-request', request));
          } else if (f.kind === 'start-answer' && welcomed) {
            finish({ kind: 'answer', peer: peer.name, answer: decodeStartAnswer(f.payload) });
          } else if (f.kind === 'status' && welcomed) {
            const answer = fromLegacyStatus(decodeStartStatus(f.payload));
            finish({ kind: 'answer', peer: peer.name, answer });
          } else {
            noAnswer(`unexpected ${f.kind} frame`);
          }
        }
      } catch (err) {
        noAnswer(err instanceof Error ? err.message : String(err));
      }
    });
  });
}

/** StartDecision: what a round of answers decides. */
export type StartDecision =
  | { readonly kind: 'refuse'; readonly peer: string; readonly why: 'started' | 'removed' }
  | {
      readonly kind: 'go';
      /** via: a peer confirmed with the leader ('confirmed'), or a majority knows nothing ('fresh'). */
      readonly via: 'confirmed' | 'fresh';
      readonly answered: readonly string[];
      /**
       * floor: with 'confirmed', the newest entry (index, term) the confirming peers applied: this
       * member holds its votes until it has applied it (Replica.holdVotes).
       */
      readonly floor?: { readonly index: number; readonly term: number };
    }
  | { readonly kind: 'wait' };

/** majorityOf: the smallest majority of `members` voters. */
export function majorityOf(members: number): number {
  return Math.floor(members / 2) + 1;
}

/**
 * decideStart, given the answers of one round and the number of members the asker knows
 * (itself included):
 * - any peer that records this id as started, or as removed, refuses the start;
 * - else any confirmed "not started" lets it go: that peer answered from state at least as new as
 *   the commit index the leader confirmed after the question, which holds every mark committed
 *   before it;
 * - else, when no peer that holds state says it could not confirm, and this member with the peers
 *   that know nothing (fresh: no entry of any leader in their logs) makes a majority, it goes: a
 *   new cluster forming (its members must let each other start before any leader exists). No entry
 *   can have been committed without one of that majority's acknowledgements, and all but this
 *   member have none;
 * - else it waits and asks again. Waiting, not going, when nobody answers: a member whose peers
 *   are all down is exactly the case that lost a write (the repro in docs/cluster.md), and a member
 *   that waits has not voted, so it costs availability only until a peer is up.
 */
export function decideStart(results: readonly AskResult[], members: number): StartDecision {
  assert(members >= 1, 'a start check without the asking member');
  for (const r of results) {
    if (r.kind === 'removed') return { kind: 'refuse', peer: r.peer, why: 'removed' };
    if (r.kind === 'answer' && r.answer.answer === 'started')
      return { kind: 'refuse', peer: r.peer, why: 'started' };
  }
  const answers = results.filter((r) => r.kind === 'answer');
  const confirmed = answers.filter((r) => r.answer.answer === 'not-started');
  const newest = confirmed
    .map((r) => r.answer)
    .reduce<StartAnswer | undefined>(
      (a, b) => (a === undefined || b.term > a.term || (b.term === a.term && b.index > a.index) ? b : a),
      undefined,
    );
  if (newest !== undefined) {
    const floor = { index: newest.index, term: newest.term };
    return { kind: 'go', via: 'confirmed', answered: confirmed.map((r) => r.peer), floor };
  }
  if (answers.some((r) => r.answer.answer === 'unconfirmed')) return { kind: 'wait' };
  const fresh = answers.filter((r) => r.answer.answer === 'fresh').map((r) => r.peer);
  if (fresh.length > 0 && 1 + fresh.length >= majorityOf(members))
    return { kind: 'go', via: 'fresh', answered: fresh };
  return { kind: 'wait' };
}

/** StartCheckLogger: the part of a pino logger the check uses. */
export interface StartCheckLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * runStartCheck asks every peer, round after round, until decideStart says go or refuse (or
 * `stopped()` says the server is shutting down: 'stopped'). It returns the decision.
 */
export async function runStartCheck(opts: {
  readonly self: AskOptions['self'];
  readonly clusterToken: string;
  readonly peers: readonly Peer[];
  readonly clock: Clock;
  readonly logger: StartCheckLogger;
  readonly stopped: () => boolean;
  readonly ask?: (o: AskOptions) => Promise<AskResult>;
  readonly retryMs?: number;
}): Promise<Exclude<StartDecision, { readonly kind: 'wait' }> | { readonly kind: 'stopped' }> {
  const ask = opts.ask ?? askStartStatus;
  for (let round = 0; ; round++) {
    if (opts.stopped()) return { kind: 'stopped' };
    const results = await Promise.all(
      opts.peers.map((peer) => ask({ self: opts.self, clusterToken: opts.clusterToken, peer })),
    );
    const decision = decideStart(results, opts.peers.length + 1);
    if (decision.kind === 'go' || decision.kind === 'refuse') return decision;
    if (round % START_CHECK_LOG_EVERY_ROUNDS === 0) {
      opts.logger.warn(
        {
          peers: results.map((r) => ({
            peer: r.peer,
            reason: r.kind === 'no-answer' ? r.reason : r.kind === 'answer' ? r.answer.answer : r.kind,
          })),
        },
        'first start of this member: waiting until a peer confirms that this member id never started before (it neither votes nor acknowledges until then; docs/cluster.md, "A member that lost its directory")',
      );
    }
    await new Promise<void>((resolve) => opts.clock.after(opts.retryMs ?? START_CHECK_RETRY_MS, resolve));
  }
}
