import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/ports.js';
import { systemClock } from '../io/clock.js';
import type { NodeId } from '../raft/types.js';
import { PeerProtocolError } from './errors.js';
import { REMOVED_REFUSAL } from './handshake.js';
import {
  type AskResult,
  askStartStatus,
  decideStart,
  decodeStartAnswer,
  decodeStartStatus,
  decodeStatusRequest,
  encodeStartAnswer,
  encodeStartStatus,
  encodeStatusRequest,
  fromLegacyStatus,
  legacyStatus,
  runStartCheck,
  type StartAnswer,
  type StartAnswerKind,
} from './start-check.js';
import { createTcpTransport, type TcpTransport } from './tcp-transport.js';

const TOKEN = 'test-token';
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const open: TcpTransport[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

/** answering: a transport for member `name` (id 1) whose peer is 'asker' (id 2). */
async function answering(
  status: ((id: NodeId) => StartAnswer | Promise<StartAnswer>) | undefined,
  isRemoved?: (id: NodeId) => boolean,
): Promise<string> {
  const t = await createTcpTransport({
    self: { id: 1, name: 'n1', resp: '127.0.0.1:1', http: '' },
    listen: '127.0.0.1:0',
    clusterToken: TOKEN,
    peers: isRemoved === undefined ? [{ id: 2, name: 'asker', peerAddr: '127.0.0.1:1' }] : [],
    handlers: { onMessages() {}, onUnreachable() {}, onPeerInfo() {} },
    logger: quiet,
    clock: systemClock,
    ...(status === undefined ? {} : { startStatus: async (id: NodeId) => status(id) }),
    ...(isRemoved === undefined ? {} : { isRemoved }),
  });
  open.push(t);
  return `127.0.0.1:${t.address().port}`;
}

const ask = (peerAddr: string, timeoutMs?: number, legacyRequest = false): Promise<AskResult> =>
  askStartStatus({
    self: { id: 2, name: 'asker', resp: '127.0.0.1:2', http: '' },
    clusterToken: TOKEN,
    peer: { id: 1, name: 'n1', peerAddr },
    legacyRequest,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

const said = (peer: string, answer: StartAnswerKind): AskResult => ({
  kind: 'answer',
  peer,
  answer: { answer, index: 7, term: 2 },
});
const none = (peer: string): AskResult => ({ kind: 'no-answer', peer, reason: 'down' });

describe('start status codec', () => {
  it('round-trips and refuses anything else', () => {
    const s = { started: true, checking: false, index: 2 ** 40 };
    expect(decodeStartStatus(encodeStartStatus(s))).toEqual(s);
    expect(encodeStartStatus(s).length).toBe(10);
    const bad = encodeStartStatus(s);
    bad[1] = 2;
    expect(() => decodeStartStatus(bad)).toThrow(PeerProtocolError);
    expect(() => decodeStartStatus(new Uint8Array(9))).toThrow(PeerProtocolError);
    const big = Buffer.alloc(10);
    big.fill(0xff, 2);
    expect(() => decodeStartStatus(big)).toThrow(PeerProtocolError);
  });
});

describe('start answer codec', () => {
  it('round-trips every answer and refuses anything else', () => {
    for (const answer of ['not-started', 'started', 'fresh', 'unconfirmed'] as const) {
      const a = { answer, index: 2 ** 40, term: 2 ** 33 };
      expect(decodeStartAnswer(encodeStartAnswer(a))).toEqual(a);
    }
    expect(encodeStartAnswer({ answer: 'fresh', index: 1, term: 0 }).length).toBe(17);
    const bad = encodeStartAnswer({ answer: 'started', index: 1, term: 0 });
    bad[0] = 4;
    expect(() => decodeStartAnswer(bad)).toThrow(PeerProtocolError);
    expect(() => decodeStartAnswer(new Uint8Array(9))).toThrow(PeerProtocolError);
  });

  it('reads a request of either version and maps answers between the versions', () => {
    expect(decodeStatusRequest(new Uint8Array(0))).toBe(1);
    expect(decodeStatusRequest(encodeStatusRequest())).toBe(2);
    expect(() => decodeStatusRequest(new Uint8Array([3]))).toThrow(PeerProtocolError);
    expect(() => decodeStatusRequest(new Uint8Array([2, 0]))).toThrow(PeerProtocolError);
    // An older asker goes on any status: it gets none when the answer is unconfirmed.
    expect(legacyStatus({ answer: 'unconfirmed', index: 3, term: 1 })).toBeUndefined();
    expect(legacyStatus({ answer: 'fresh', index: 3, term: 0 })).toEqual({
      started: false,
      checking: true,
      index: 3,
    });
    // An older peer's "not started" was read from its own state, possibly behind: unconfirmed.
    expect(fromLegacyStatus({ started: false, checking: false, index: 3 }).answer).toBe('unconfirmed');
    expect(fromLegacyStatus({ started: true, checking: false, index: 3 }).answer).toBe('started');
    expect(fromLegacyStatus({ started: false, checking: true, index: 3 }).answer).toBe('fresh');
  });
});

describe('decideStart', () => {
  it('refuses on any started or removed answer', () => {
    expect(decideStart([none('a'), said('b', 'not-started'), said('c', 'started')], 3)).toEqual({
      kind: 'refuse',
      peer: 'c',
      why: 'started',
    });
    expect(decideStart([{ kind: 'removed', peer: 'a', reason: 'x' }, said('b', 'not-started')], 3).kind).toBe(
      'refuse',
    );
  });

  it('goes on a confirmed answer, never on a peer that only read its own state', () => {
    expect(decideStart([none('a'), said('b', 'not-started')], 3)).toEqual({
      kind: 'go',
      via: 'confirmed',
      answered: ['b'],
      floor: { index: 7, term: 2 },
    });
    // The vote floor is the newest entry a confirming peer applied.
    const at = (peer: string, index: number, term: number): AskResult => ({
      kind: 'answer',
      peer,
      answer: { answer: 'not-started', index, term },
    });
    expect(decideStart([at('a', 9, 2), at('b', 8, 3)], 3)).toMatchObject({ floor: { index: 8, term: 3 } });
    expect(decideStart([at('a', 9, 3), at('b', 8, 3)], 3)).toMatchObject({ floor: { index: 9, term: 3 } });
    // A peer that is behind (it has not applied the mark) and cannot reach the leader: wait.
    expect(decideStart([none('a'), said('b', 'unconfirmed')], 3)).toEqual({ kind: 'wait' });
    // Nobody answers: wait (the lost-write repro had every peer down).
    expect(decideStart([none('a'), none('b')], 3)).toEqual({ kind: 'wait' });
    expect(decideStart([], 3)).toEqual({ kind: 'wait' });
  });

  it('goes when this member and the peers that know nothing are a majority, and none holds state it could not confirm', () => {
    // A new cluster of three: one peer up, itself checking.
    expect(decideStart([none('a'), said('b', 'fresh')], 3)).toEqual({
      kind: 'go',
      via: 'fresh',
      answered: ['b'],
    });
    // Of five, one fresh peer is not enough: the other three could have committed with this id.
    expect(decideStart([said('a', 'fresh'), none('b'), none('c'), none('d')], 5)).toEqual({ kind: 'wait' });
    expect(decideStart([said('a', 'fresh'), said('b', 'fresh'), none('c'), none('d')], 5).kind).toBe('go');
    // A peer with state that cannot confirm: it may hold entries this id acknowledged.
    expect(decideStart([said('a', 'fresh'), said('b', 'unconfirmed')], 3)).toEqual({ kind: 'wait' });
  });

  it('runStartCheck asks again until a peer answers', async () => {
    let round = 0;
    const decision = await runStartCheck({
      self: { id: 2, name: 'asker', resp: '', http: '' },
      clusterToken: TOKEN,
      peers: [{ id: 1, name: 'n1', peerAddr: '127.0.0.1:1' }],
      clock: systemClock,
      logger: quiet,
      stopped: () => false,
      retryMs: 1,
      ask: async (o) => (++round < 3 ? none(o.peer.name) : said(o.peer.name, 'started')),
    });
    expect(round).toBe(3);
    expect(decision).toEqual({ kind: 'refuse', peer: 'n1', why: 'started' });
  });
});

describe('askStartStatus over the peer transport', () => {
  it('gets the answering member’s answer, also one that takes a while (a ReadIndex round)', async () => {
    const asked: NodeId[] = [];
    const addr = await answering(async (id) => {
      asked.push(id);
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { answer: 'not-started', index: 12, term: 4 };
    });
    expect(await ask(addr)).toEqual({
      kind: 'answer',
      peer: 'n1',
      answer: { answer: 'not-started', index: 12, term: 4 },
    });
    expect(asked).toEqual([2]);
  });

  it('answers an older asker in its format, and nothing when unconfirmed', async () => {
    let answer: StartAnswer = { answer: 'started', index: 12, term: 0 };
    const addr = await answering(() => answer);
    // The legacy status, read back as an older asker would have (mapped by fromLegacyStatus).
    expect(await ask(addr, undefined, true)).toEqual({
      kind: 'answer',
      peer: 'n1',
      answer: { answer: 'started', index: 12, term: 0 },
    });
    answer = { answer: 'unconfirmed', index: 12, term: 0 };
    expect(await ask(addr, undefined, true)).toMatchObject({ kind: 'no-answer' });
    expect(await ask(addr)).toEqual({ kind: 'answer', peer: 'n1', answer });
  });

  it('a removed asker hears so; a down peer or one without the check gives no answer', async () => {
    const removed = await answering(
      () => ({ answer: 'not-started', index: 0, term: 0 }),
      () => true,
    );
    const r = await ask(removed);
    expect(r.kind).toBe('removed');
    expect(r.kind === 'removed' && r.reason.startsWith(REMOVED_REFUSAL)).toBe(true);
    expect((await ask(`127.0.0.1:${await freePort()}`)).kind).toBe('no-answer');
    // A transport that does not answer (a build before the check) drops the connection.
    const old = await answering(undefined);
    expect(await ask(old)).toMatchObject({ kind: 'no-answer' });
  });

  it('a peer that never answers times out', async () => {
    const server = net.createServer(() => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    try {
      expect(await ask(`127.0.0.1:${port}`, 100)).toMatchObject({
        kind: 'no-answer',
        reason: /within 100 ms/,
      });
    } finally {
      server.close();
    }
  });
});
