import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/ports.js';
import { type Clock, systemClock } from '../io/clock.js';
import { ManualClock } from '../io/manual-clock.js';
import { type Message, message, type NodeId } from '../raft/types.js';
import { AssertionError } from '../stdx/assert.js';
import { TransportStartError } from './errors.js';
import { encodeHello, PEER_PROTOCOL_VERSION } from './handshake.js';
import { encodeMessages } from './message-codec.js';
import { encodeFrame, FRAME_HEADER_BYTES, MAX_PEER_FRAME_PAYLOAD_BYTES } from './peer-frame.js';
import {
  createTcpTransport,
  HANDSHAKE_TIMEOUT_MS,
  PEER_OUTPUT_QUEUE_MAX_BYTES,
  RECONNECT_BACKOFF_MAX_MS,
  RECONNECT_BACKOFF_MIN_MS,
  type TcpTransport,
} from './tcp-transport.js';
import type { Peer, PeerInfo } from './transport.js';

interface LogLine {
  readonly level: string;
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

interface Node {
  readonly id: NodeId;
  readonly name: string;
  readonly t: TcpTransport;
  readonly addr: string;
  readonly received: Message[];
  readonly batches: number[];
  readonly unreachable: NodeId[];
  readonly infos: PeerInfo[];
  readonly logs: LogLine[];
}

const TOKEN = 'test-token';
const open: TcpTransport[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
});

async function startNode(
  id: NodeId,
  name: string,
  options: { port?: number; token?: string; peers?: Peer[]; clock?: Clock } = {},
): Promise<Node> {
  const received: Message[] = [];
  const batches: number[] = [];
  const unreachable: NodeId[] = [];
  const infos: PeerInfo[] = [];
  const logs: LogLine[] = [];
  const log =
    (level: string) =>
    (obj: object, msg: string): void => {
      logs.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const t = await createTcpTransport({
    self: { id, name, resp: `127.0.0.1:${6000 + id}`, http: id % 2 === 0 ? '' : `127.0.0.1:${7000 + id}` },
    listen: `127.0.0.1:${options.port ?? 0}`,
    clusterToken: options.token ?? TOKEN,
    peers: options.peers ?? [],
    handlers: {
      onMessages: (msgs) => {
        batches.push(msgs.length);
        received.push(...msgs);
      },
      onUnreachable: (peer) => unreachable.push(peer),
      onPeerInfo: (info) => infos.push(info),
    },
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    clock: options.clock ?? systemClock,
  });
  open.push(t);
  return { id, name, t, addr: `127.0.0.1:${t.address().port}`, received, batches, unreachable, infos, logs };
}

const peerOf = (n: Node): Peer => ({ id: n.id, name: n.name, peerAddr: n.addr });

/** connectAll gives every node every other node as a peer. */
function connectAll(nodes: readonly Node[]): void {
  for (const n of nodes) n.t.setPeers(nodes.filter((o) => o !== n).map(peerOf));
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const hb = (from: NodeId, to: NodeId, commit = 0): Message =>
  message({ type: 'MsgHeartbeat', from, to, term: 1, commit, context: Uint8Array.of(from, to) });

const logged = (n: Node, level: string, pattern: RegExp): boolean =>
  n.logs.some((l) => l.level === level && pattern.test(`${l.msg} ${JSON.stringify(l.obj)}`));

describe('TcpTransport', () => {
  it('two members exchange messages, entries and a snapshot with data, and learn client addresses', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    connectAll([a, b]);
    await waitFor(() => a.t.isConnected(2) && b.t.isConnected(1), 'connections');
    const data = Buffer.alloc(3 * 1024 * 1024, 0x5a); // several TCP reads
    const app = message({
      type: 'MsgApp',
      from: 1,
      to: 2,
      term: 3,
      logTerm: 2,
      index: 10,
      commit: 9,
      entries: [
        { term: 3, index: 11, type: 'normal', data: Uint8Array.of(1, 2, 3) },
        { term: 3, index: 12, type: 'confChange', data: new Uint8Array(0) },
      ],
    });
    const snap = message({
      type: 'MsgSnap',
      from: 1,
      to: 2,
      term: 3,
      snapshot: {
        metadata: {
          index: 100,
          term: 3,
          confState: {
            voters: [1, 2],
            learners: [3],
            votersOutgoing: [],
            learnersNext: [],
            autoLeave: false,
          },
        },
        data,
      },
    });
    a.t.send([app, snap]);
    b.t.send([
      message({ type: 'MsgAppResp', from: 2, to: 1, term: 3, index: 12, reject: true, rejectHint: 7 }),
    ]);
    await waitFor(() => b.received.length === 2 && a.received.length === 1, 'messages');
    expect(b.received[0]).toEqual({
      ...app,
      entries: app.entries.map((e) => ({ ...e, data: new Uint8Array(e.data) })),
    });
    expect(b.received[1]?.snapshot?.metadata).toEqual(snap.snapshot?.metadata);
    expect(Buffer.from(b.received[1]?.snapshot?.data ?? []).equals(data)).toBe(true);
    expect(a.received[0]).toMatchObject({ type: 'MsgAppResp', reject: true, rejectHint: 7, index: 12 });
    expect(a.infos).toContainEqual({ id: 2, name: 'b', resp: '127.0.0.1:6002', http: '' });
    expect(b.infos).toContainEqual({ id: 1, name: 'a', resp: '127.0.0.1:6001', http: '127.0.0.1:7001' });
    expect(a.unreachable).toEqual([]);
  });

  it('three members: everyone reaches everyone', async () => {
    const nodes = [await startNode(1, 'a'), await startNode(2, 'b'), await startNode(3, 'c')];
    connectAll(nodes);
    for (const n of nodes) for (const o of nodes) if (o !== n) n.t.send([hb(n.id, o.id)]);
    await waitFor(() => nodes.every((n) => n.received.length === 2), 'all messages');
    for (const n of nodes) {
      expect(n.received.map((m) => m.from).sort()).toEqual(nodes.filter((o) => o !== n).map((o) => o.id));
      expect(n.received.every((m) => m.to === n.id)).toBe(true);
    }
  });

  it('batches the sends of one turn into one write, in order, and splits batches over the frame limit', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    connectAll([a, b]);
    await waitFor(() => a.t.isConnected(2), 'connection');
    for (let i = 1; i <= 1000; i++) a.t.send([hb(1, 2, i)]);
    await waitFor(() => b.received.length === 1000, '1000 heartbeats');
    expect(b.received.map((m) => m.commit)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(b.batches).toEqual([1000]); // one frame
    // 20 MiB in one turn: more than one frame can carry.
    const mib = new Uint8Array(1024 * 1024);
    const apps = Array.from({ length: 20 }, (_, i) =>
      message({
        type: 'MsgApp',
        from: 1,
        to: 2,
        term: 1,
        index: i,
        entries: [{ term: 1, index: i + 1, type: 'normal', data: mib }],
      }),
    );
    a.t.send(apps);
    await waitFor(() => b.received.length === 1020, 'twenty 1 MiB appends');
    expect(b.batches.length).toBeGreaterThanOrEqual(3);
    expect(b.received.slice(1000).map((m) => m.index)).toEqual(apps.map((m) => m.index));
  });

  it('reports unreachable peers at most once per flush and reaches a peer that starts late', async () => {
    const port = await freePort();
    const a = await startNode(1, 'a', { peers: [{ id: 2, name: 'b', peerAddr: `127.0.0.1:${port}` }] });
    a.t.send([hb(1, 9), hb(1, 9), hb(1, 9)]); // unknown peer
    await waitFor(() => a.unreachable.length > 0, 'unreachable report');
    expect(a.unreachable).toEqual([9]);
    // b is not up: the first connection fails, the messages queued for it are reported.
    a.t.send([hb(1, 2), hb(1, 2)]);
    await waitFor(() => a.unreachable.includes(2), 'b unreachable');
    expect(a.unreachable.filter((id) => id === 2)).toEqual([2]);
    expect(logged(a, 'warn', /cannot reach peer/)).toBe(true);
    const b = await startNode(2, 'b', { port, peers: [peerOf(a)] });
    await waitFor(() => a.t.isConnected(2), 'reconnect to the late peer');
    a.t.send([hb(1, 2, 42)]);
    await waitFor(() => b.received.length === 1, 'delivery');
    expect(b.received[0]?.commit).toBe(42);
  });

  it('reconnects to a peer that restarts', async () => {
    const a = await startNode(1, 'a');
    let b = await startNode(2, 'b');
    const port = b.t.address().port;
    connectAll([a, b]);
    await waitFor(() => a.t.isConnected(2), 'connection');
    a.t.send([hb(1, 2, 1)]);
    await waitFor(() => b.received.length === 1, 'first delivery');
    await b.t.close();
    await waitFor(() => !a.t.isConnected(2), 'connection loss');
    await waitFor(() => a.unreachable.includes(2), 'b reported unreachable');
    expect(logged(a, 'warn', /connection to peer lost/)).toBe(true);
    b = await startNode(2, 'b', { port, peers: [peerOf(a)] });
    await waitFor(() => a.t.isConnected(2), 'reconnection');
    a.t.send([hb(1, 2, 2)]);
    await waitFor(() => b.received.length === 1, 'delivery after the restart');
    expect(b.received[0]?.commit).toBe(2);
  });

  it('setPeers closes connections to removed members and refuses them afterwards', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    connectAll([a, b]);
    await waitFor(() => a.t.isConnected(2) && b.t.isConnected(1), 'connections');
    b.t.setPeers([]);
    await waitFor(() => logged(b, 'info', /no longer a member/), 'inbound from a dropped');
    expect(b.t.isConnected(1)).toBe(false);
    await waitFor(
      () => logged(b, 'warn', /refusing peer connection.*not a member/),
      'a refused on reconnect',
    );
    await waitFor(() => logged(a, 'warn', /peer refused our connection.*not a member/), 'refusal heard at a');
    a.t.send([hb(1, 2)]);
    await waitFor(() => a.unreachable.includes(2), 'unreachable');
    expect(b.received).toEqual([]);
  });

  it('fails to start on an address in use, with a typed error', async () => {
    const a = await startNode(1, 'a');
    await expect(startNode(2, 'b', { port: a.t.address().port })).rejects.toThrow(TransportStartError);
    await expect(startNode(2, 'b', { port: a.t.address().port })).rejects.toThrow(/already in use/);
  });

  it('drops a message too large for a frame, and messages beyond the queue bound, as unreachable', async () => {
    // A peer that accepts but never answers the hello: messages queue while a is connecting.
    const muted: net.Socket[] = [];
    const mute = net.createServer((s) => {
      muted.push(s.on('error', () => {}));
    });
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    const port = (mute.address() as net.AddressInfo).port;
    try {
      const a = await startNode(1, 'a', { peers: [{ id: 2, name: 'b', peerAddr: `127.0.0.1:${port}` }] });
      const huge = message({
        type: 'MsgSnap',
        from: 1,
        to: 2,
        term: 1,
        snapshot: {
          metadata: {
            index: 1,
            term: 1,
            confState: { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
          },
          data: new Uint8Array(MAX_PEER_FRAME_PAYLOAD_BYTES),
        },
      });
      a.t.send([huge]);
      await waitFor(() => a.unreachable.includes(2), 'oversized message reported');
      expect(logged(a, 'warn', /too large for a frame/)).toBe(true);
      // 1 MiB appends (sharing one buffer: only their size counts) until the queue bound is passed.
      const mib = new Uint8Array(1024 * 1024);
      const n = Math.ceil(PEER_OUTPUT_QUEUE_MAX_BYTES / mib.length) + 1;
      a.unreachable.length = 0;
      a.t.send(
        Array.from({ length: n }, (_, i) =>
          message({
            type: 'MsgApp',
            from: 1,
            to: 2,
            term: 1,
            index: i,
            entries: [{ term: 1, index: i + 1, type: 'normal', data: mib }],
          }),
        ),
      );
      await waitFor(() => a.unreachable.length > 0, 'queue bound reported');
      expect(a.unreachable).toEqual([2]);
      expect(a.t.isConnected(2)).toBe(false);
    } finally {
      for (const s of muted) s.destroy();
      await new Promise((r) => mute.close(r));
    }
  });

  it('times out a connection that sends no hello, and backs off by the Clock', async () => {
    const clock = new ManualClock();
    const b = await startNode(2, 'b', { clock, peers: [{ id: 1, name: 'a', peerAddr: '127.0.0.1:1' }] });
    const s = net.connect({ host: '127.0.0.1', port: b.t.address().port });
    s.on('error', () => {});
    const closed = new Promise((r) => s.on('close', r));
    await new Promise((r) => s.on('connect', r));
    await new Promise((r) => setTimeout(r, 20)); // let b accept it
    clock.advance(HANDSHAKE_TIMEOUT_MS);
    await closed;
    expect(logged(b, 'warn', new RegExp(`no hello within ${HANDSHAKE_TIMEOUT_MS} ms`))).toBe(true);
    // b's connection to a (port 1: refused) is retried only when the Clock says so.
    await waitFor(() => logged(b, 'warn', /cannot reach peer/), 'first failure');
    const attempts = () => b.logs.filter((l) => l.msg === 'connecting to peer').length;
    const before = attempts();
    await new Promise((r) => setTimeout(r, 100));
    expect(attempts()).toBe(before);
    clock.advance(RECONNECT_BACKOFF_MAX_MS + RECONNECT_BACKOFF_MIN_MS);
    expect(attempts()).toBeGreaterThan(before);
  });

  it('asserts on local messages (a programmer error)', async () => {
    const a = await startNode(1, 'a');
    expect(() => a.t.send([message({ type: 'MsgHup' })])).toThrow(AssertionError);
  });
});

describe('TcpTransport handshake refusals', () => {
  it('wrong cluster token: refused and logged on both sides', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b', { token: 'other' });
    connectAll([a, b]);
    await waitFor(() => logged(a, 'warn', /peer refused our connection.*cluster token/), 'refusal at a');
    expect(logged(b, 'warn', /refusing peer connection.*cluster token/)).toBe(true);
    expect(a.t.isConnected(2)).toBe(false);
  });

  it('wrong name: the acceptor is not whom the connector asked for', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    b.t.setPeers([peerOf(a)]);
    a.t.setPeers([{ id: 2, name: 'x', peerAddr: b.addr }]);
    await waitFor(
      () => logged(a, 'warn', /peer refused our connection.*this node is 'b', not 'x'/),
      'refusal at a',
    );
    expect(logged(b, 'warn', /refusing peer connection.*not 'x'/)).toBe(true);
  });

  it('unknown member: the acceptor does not know the connector', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    a.t.setPeers([peerOf(b)]);
    await waitFor(() => logged(a, 'warn', /peer refused our connection.*not a member/), 'refusal at a');
    expect(logged(b, 'warn', /refusing peer connection.*'a' \(id 1\) is not a member/)).toBe(true);
  });

  it('two members configured on one address: the welcome names someone else', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    b.t.setPeers([peerOf(a)]);
    // a believes 'c' (id 3) and 'b' (id 4) live where b (id 2) listens.
    a.t.setPeers([
      { id: 3, name: 'c', peerAddr: b.addr },
      { id: 4, name: 'b', peerAddr: b.addr },
    ]);
    await waitFor(
      () => logged(a, 'warn', /refusing the welcome.*expected 'b' \(id 4\) but reached 'b' \(id 2\)/),
      'a refuses',
    );
    await waitFor(() => logged(b, 'warn', /peer refused our welcome.*expected 'b' \(id 4\)/), 'b hears why');
    await waitFor(
      () => logged(a, 'warn', /peer refused our connection.*this node is 'b', not 'c'/),
      'c refused by b',
    );
    expect(a.t.isConnected(3) || a.t.isConnected(4)).toBe(false);
  });
});

describe('TcpTransport hostile inbound connections', () => {
  /** rawSend opens a raw socket to `n`, writes `bytes`, optionally half-closes, and resolves when n closes it. */
  function rawSend(n: Node, chunks: readonly Buffer[], end = false): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: n.t.address().port }, () => {
        for (const c of chunks) s.write(c);
        if (end) s.end();
      });
      s.on('data', () => {}); // a welcome, if any
      s.on('error', () => {}); // a reset when the transport destroys the connection
      s.on('close', () => resolve());
      setTimeout(() => reject(new Error('the transport did not close the connection')), 4_000).unref();
    });
  }

  const malloryHello = (): Buffer =>
    encodeFrame(
      'hello',
      encodeHello({
        version: PEER_PROTOCOL_VERSION,
        clusterToken: TOKEN,
        fromId: 9,
        fromName: 'mallory',
        toName: 'b',
        resp: '',
        http: '',
      }),
    );

  it('drops bad connections with a warning and keeps serving good peers', async () => {
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    connectAll([a, b]);
    // mallory is a member as far as b knows (its address is nowhere: b's connections to it fail).
    b.t.setPeers([peerOf(a), { id: 9, name: 'mallory', peerAddr: '127.0.0.1:1' }]);
    await waitFor(() => a.t.isConnected(2), 'connection');

    await rawSend(b, [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]);
    await waitFor(
      () => logged(b, 'warn', /peer connection dropped.*(exceeds|unknown frame kind|CRC)/),
      'garbage',
    );

    const oversized = Buffer.alloc(FRAME_HEADER_BYTES);
    oversized.writeUInt32LE(0xffff_ffff, 0);
    oversized[8] = 4;
    await rawSend(b, [oversized]);
    await waitFor(() => logged(b, 'warn', /exceeds the limit/), 'oversized');

    await rawSend(b, [encodeFrame('hello', Buffer.alloc(100)).subarray(0, 50)], true);
    await waitFor(() => logged(b, 'warn', /closed inside a frame \(50 bytes\)/), 'truncated');

    await rawSend(b, [encodeFrame('raft', encodeMessages([hb(9, 2)]))]);
    await waitFor(() => logged(b, 'warn', /raft frame before the hello/), 'raft before hello');

    // A hello, then a raft frame whose payload was damaged after its CRC was computed.
    const corrupt = encodeFrame('raft', encodeMessages([hb(9, 2)]));
    corrupt[FRAME_HEADER_BYTES + 3] = (corrupt[FRAME_HEADER_BYTES + 3] as number) ^ 0x10;
    await rawSend(b, [malloryHello(), corrupt]);
    await waitFor(() => logged(b, 'warn', /fails its CRC/), 'corrupt frame');

    // A hello, then a well-framed payload that does not decode.
    const undecodable = encodeMessages([hb(9, 2)]);
    undecodable[4] = 99; // the type code of the first message
    await rawSend(b, [malloryHello(), encodeFrame('raft', undecodable)]);
    await waitFor(() => logged(b, 'warn', /unknown or local message type code 99/), 'undecodable batch');

    // An oversized raft frame after the hello: bigger than the limit after the handshake too.
    const big = Buffer.alloc(FRAME_HEADER_BYTES);
    big.writeUInt32LE(MAX_PEER_FRAME_PAYLOAD_BYTES + 1, 0);
    big[8] = 4;
    await rawSend(b, [malloryHello(), big]);
    await waitFor(
      () => logged(b, 'warn', new RegExp(`frame of ${MAX_PEER_FRAME_PAYLOAD_BYTES + 1} bytes`)),
      'big frame',
    );

    expect(b.received).toEqual([]);
    a.t.send([hb(1, 2, 5)]);
    await waitFor(() => b.received.length === 1, 'a good peer is still served');
    expect(b.received[0]?.commit).toBe(5);
  });

  it('drops messages not from the handshaken peer or not to this node', async () => {
    const b = await startNode(2, 'b', { peers: [{ id: 9, name: 'mallory', peerAddr: '127.0.0.1:1' }] });
    const s = net.connect({ host: '127.0.0.1', port: b.t.address().port });
    s.on('error', () => {});
    s.write(malloryHello());
    s.write(encodeFrame('raft', encodeMessages([hb(9, 2, 1), hb(1, 2, 2), hb(9, 3, 3), hb(9, 2, 4)])));
    await waitFor(() => b.received.length === 2, 'the good messages');
    expect(b.received.map((m) => m.commit)).toEqual([1, 4]);
    expect(logged(b, 'warn', /messages not from this peer to this node dropped.*"dropped":2/)).toBe(true);
    expect(b.infos).toContainEqual({ id: 9, name: 'mallory', resp: '', http: '' });
    s.destroy();
  });
});
