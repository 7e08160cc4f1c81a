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
//   status-request := (empty)                     asking side, once, as the first frame
//   status         := started bool | checking bool | index u64
//                                                 answering side, once, then it closes
//
// started: the answering member's membership records the asker's id as started (a started mark,
// membership.ts); checking: the answering member is itself waiting for its own start check (it
// knows nothing yet: a new cluster whose members start one at a time); index: the membership
// index the answer describes.
import * as net from 'node:net';
import type { Clock } from '../io/clock.js';
import type { NodeId } from '../raft/types.js';
import { readSafeU64LE, writeU64LE } from '../stdx/u64.js';
import { PeerProtocolError } from './errors.js';
import {
  checkWelcome,
  decodeRefuse,
  decodeWelcome,
  encodeHello,
  isRemovedRefusal,
  MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES,
  PEER_PROTOCOL_VERSION,
} from './handshake.js';
import { parseHostPort } from './peer-address.js';
import { encodeFrame, FrameReader } from './peer-frame.js';
import type { Peer } from './transport.js';

/** START_STATUS_BYTES: started u8, checking u8, index u64. */
const START_STATUS_BYTES = 1 + 1 + 8;
/** START_CHECK_ASK_TIMEOUT_MS: one question's whole exchange (connect, handshake, answer). */
export const START_CHECK_ASK_TIMEOUT_MS = 2_000;
/** START_CHECK_RETRY_MS: between rounds while no peer answers (peers down or still starting). */
export const START_CHECK_RETRY_MS = 500;
/** START_CHECK_LOG_EVERY_ROUNDS: a waiting member says so again this often (not every second). */
export const START_CHECK_LOG_EVERY_ROUNDS = 60;

/** StartStatus: what a peer knows about the asking member. */
export interface StartStatus {
  readonly started: boolean;
  readonly checking: boolean;
  readonly index: number;
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

/** AskResult: one peer's answer, or why there is none. */
export type AskResult =
  | { readonly kind: 'status'; readonly peer: string; readonly status: StartStatus }
  | { readonly kind: 'removed'; readonly peer: string; readonly reason: string }
  | { readonly kind: 'no-answer'; readonly peer: string; readonly reason: string };

/** AskOptions: who asks (as in its hellos) and whom. */
export interface AskOptions {
  readonly self: { readonly id: NodeId; readonly name: string; readonly resp: string; readonly http: string };
  readonly clusterToken: string;
  readonly peer: Peer;
  readonly timeoutMs?: number;
}

/**
 * askStartStatus asks one peer; it never throws. A peer that refuses the hello (not yet told of
 * this member, another cluster) or is down gives no answer; one that says this member was
 * removed gives `removed`. A peer built before the start check drops the connection at the
 * request: no answer either (it cannot tell), so a lost directory cannot be restarted until one
 * peer runs a build with the check.
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
      socket.write(
        encodeFrame(
          'hello',
          encodeHello({
            version: PEER_PROTOCOL_VERSION,
            clusterToken: opts.clusterToken,
            fromId: opts.self.id,
            fromName: opts.self.name,
            toName: peer.name,
            resp: opts.self.resp,
            http: opts.self.http,
          }),
        ),
      );
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
            socket.write(encodeFrame('status-request', new Uint8Array(0)));
          } else if (f.kind === 'status' && welcomed) {
            finish({ kind: 'status', peer: peer.name, status: decodeStartStatus(f.payload) });
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
  | { readonly kind: 'go'; readonly answered: readonly string[] }
  | { readonly kind: 'wait' };

/**
 * decideStart: any peer that records this id as started (or removed) refuses the start; else any
 * answer lets it go (a member that knows nothing because it is itself checking counts: the
 * members of a new cluster started one at a time must let each other go); else wait and ask
 * again. Waiting, not going, when nobody answers: a member whose peers are all down is exactly
 * the case that lost a write (the repro in docs/cluster.md), and a member that waits has not
 * voted, so it costs availability only until a peer is up.
 */
export function decideStart(results: readonly AskResult[]): StartDecision {
  for (const r of results) {
    if (r.kind === 'removed') return { kind: 'refuse', peer: r.peer, why: 'removed' };
    if (r.kind === 'status' && r.status.started) return { kind: 'refuse', peer: r.peer, why: 'started' };
  }
  const answered = results.filter((r) => r.kind === 'status').map((r) => r.peer);
  return answered.length > 0 ? { kind: 'go', answered } : { kind: 'wait' };
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
    const decision = decideStart(results);
    if (decision.kind === 'go' || decision.kind === 'refuse') return decision;
    if (round % START_CHECK_LOG_EVERY_ROUNDS === 0) {
      opts.logger.warn(
        { peers: results.map((r) => ({ peer: r.peer, reason: r.kind === 'no-answer' ? r.reason : r.kind })) },
        'first start of this member: waiting until a peer confirms that this member id never started before (it neither votes nor acknowledges until then; docs/cluster.md, "A member that lost its directory")',
      );
    }
    await new Promise<void>((resolve) => opts.clock.after(opts.retryMs ?? START_CHECK_RETRY_MS, resolve));
  }
}
