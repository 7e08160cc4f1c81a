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
  decodeStartStatus,
  encodeStartStatus,
  runStartCheck,
  type StartStatus,
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
  status: ((id: NodeId) => StartStatus) | undefined,
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
    ...(status === undefined ? {} : { startStatus: status }),
    ...(isRemoved === undefined ? {} : { isRemoved }),
  });
  open.push(t);
  return `127.0.0.1:${t.address().port}`;
}

const ask = (peerAddr: string, timeoutMs?: number): Promise<AskResult> =>
  askStartStatus({
    self: { id: 2, name: 'asker', resp: '127.0.0.1:2', http: '' },
    clusterToken: TOKEN,
    peer: { id: 1, name: 'n1', peerAddr },
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });

const status = (peer: string, started: boolean, checking = false): AskResult => ({
  kind: 'status',
  peer,
  status: { started, checking, index: 7 },
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

describe('decideStart', () => {
  it('refuses on any started or removed answer, goes on any other answer, else waits', () => {
    expect(decideStart([none('a'), status('b', false), status('c', true)])).toEqual({
      kind: 'refuse',
      peer: 'c',
      why: 'started',
    });
    expect(decideStart([{ kind: 'removed', peer: 'a', reason: 'x' }, status('b', false)]).kind).toBe(
      'refuse',
    );
    // A peer that is itself checking knows nothing, and still lets a new cluster form.
    expect(decideStart([none('a'), status('b', false, true)])).toEqual({ kind: 'go', answered: ['b'] });
    // Nobody answers: wait (the lost-write repro had every peer down).
    expect(decideStart([none('a'), none('b')])).toEqual({ kind: 'wait' });
    expect(decideStart([])).toEqual({ kind: 'wait' });
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
      ask: async (o) => (++round < 3 ? none(o.peer.name) : status(o.peer.name, true)),
    });
    expect(round).toBe(3);
    expect(decision).toEqual({ kind: 'refuse', peer: 'n1', why: 'started' });
  });
});

describe('askStartStatus over the peer transport', () => {
  it('gets the answering member’s record of the asker', async () => {
    const asked: NodeId[] = [];
    const addr = await answering((id) => {
      asked.push(id);
      return { started: true, checking: false, index: 12 };
    });
    expect(await ask(addr)).toEqual({
      kind: 'status',
      peer: 'n1',
      status: { started: true, checking: false, index: 12 },
    });
    expect(asked).toEqual([2]);
  });

  it('a removed asker hears so; a down peer or one without the check gives no answer', async () => {
    const removed = await answering(
      () => ({ started: false, checking: false, index: 0 }),
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
