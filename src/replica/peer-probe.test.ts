import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../io/clock.js';
import { message, type NodeId } from '../raft/types.js';
import { decodeHello, encodeWelcome, helloFrame, PEER_PROTOCOL_VERSION } from './handshake.js';
import { encodeMessages } from './message-codec.js';
import { encodeFrame, FrameReader, type PeerFrame } from './peer-frame.js';
import { PeerProber } from './peer-probe.js';
import { createTcpTransport, type TcpTransport } from './tcp-transport.js';
import type { Peer } from './transport.js';

const TOKEN = 'probe-token';
const open: { close(): unknown }[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((x) => x.close()));
});

interface Logged {
  readonly level: string;
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

function logger(into: Logged[]) {
  const at =
    (level: string) =>
    (obj: object, msg: string): void => {
      into.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** startMember: a transport that probes its peers every `intervalMs` and records the round trips. */
async function startMember(id: NodeId, name: string, intervalMs = 50) {
  const trips: { peer: string; seconds: number }[] = [];
  const logs: Logged[] = [];
  const received: unknown[] = [];
  const t: TcpTransport = await createTcpTransport({
    self: { id, name, resp: `127.0.0.1:${6000 + id}`, http: '' },
    listen: '127.0.0.1:0',
    clusterToken: TOKEN,
    peers: [],
    handlers: { onMessages: (msgs) => received.push(...msgs), onUnreachable: () => {}, onPeerInfo: () => {} },
    logger: logger(logs),
    clock: systemClock,
    onPeerRoundTrip: (peer, seconds) => trips.push({ peer: peer.name, seconds }),
    probeIntervalMs: intervalMs,
  });
  open.push(t);
  return { id, name, t, addr: `127.0.0.1:${t.address().port}`, trips, logs, received };
}

async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * fakePeer: a listener that welcomes any hello as member `name` and then hands every frame to
 * `onFrame` (which may answer through the socket): a peer that misbehaves on purpose.
 */
async function fakePeer(
  id: NodeId,
  name: string,
  onFrame: (f: PeerFrame, socket: net.Socket) => void,
): Promise<{ addr: string; accepted: () => number }> {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    const reader = new FrameReader(1 << 20);
    let welcomed = false;
    socket.on('error', () => {});
    socket.on('data', (chunk) => {
      reader.push(chunk);
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        if (!welcomed && f.kind === 'hello') {
          decodeHello(f.payload);
          welcomed = true;
          socket.write(
            encodeFrame(
              'welcome',
              encodeWelcome({ version: PEER_PROTOCOL_VERSION, id, name, resp: '', http: '' }),
            ),
          );
        } else onFrame(f, socket);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  open.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
  return { addr: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, accepted: () => accepted };
}

describe('peer round-trip probes', () => {
  it('measures the round trip to every peer, both ways, from the first connection on', async () => {
    const a = await startMember(1, 'a');
    const b = await startMember(2, 'b');
    a.t.setPeers([{ id: 2, name: 'b', peerAddr: b.addr }]);
    b.t.setPeers([{ id: 1, name: 'a', peerAddr: a.addr }]);
    await until(() => a.trips.length >= 3 && b.trips.length >= 3, 'three round trips each way');
    for (const { trips, other } of [
      { trips: a.trips, other: 'b' },
      { trips: b.trips, other: 'a' },
    ]) {
      for (const trip of trips) {
        expect(trip.peer).toBe(other);
        // Loopback on a test machine: above zero, far below a second.
        expect(trip.seconds).toBeGreaterThan(0);
        expect(trip.seconds).toBeLessThan(1);
      }
    }
  });

  it("replaces an older probe connection of the same peer (a restarted peer's is left half-open)", async () => {
    const b = await startMember(2, 'b');
    b.t.setPeers([{ id: 1, name: 'a', peerAddr: '127.0.0.1:1' }]);
    const hello = helloFrame({ id: 1, name: 'a', resp: '', http: '' }, TOKEN, 'b');
    const probe = async (): Promise<{ socket: net.Socket; closed: Promise<void> }> => {
      const socket = net.connect({ host: '127.0.0.1', port: b.t.address().port });
      socket.on('error', () => {});
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      const reader = new FrameReader(1 << 20);
      const pong = new Promise<void>((resolve) =>
        socket.on('data', (chunk) => {
          reader.push(chunk);
          for (let f = reader.next(); f !== undefined; f = reader.next()) if (f.kind === 'pong') resolve();
        }),
      );
      socket.on('connect', () => socket.write(Buffer.concat([hello, encodeFrame('ping', Buffer.alloc(8))])));
      await pong;
      return { socket, closed };
    };
    const first = await probe();
    const second = await probe();
    await first.closed; // dropped by the transport once the second one pinged
    expect(second.socket.destroyed).toBe(false);
    second.socket.destroy();
  });

  it('stops probing a peer that is no longer a member', async () => {
    const a = await startMember(1, 'a');
    const b = await startMember(2, 'b');
    a.t.setPeers([{ id: 2, name: 'b', peerAddr: b.addr }]);
    b.t.setPeers([{ id: 1, name: 'a', peerAddr: a.addr }]);
    await until(() => a.trips.length >= 1, 'a first round trip');
    a.t.setPeers([]);
    const seen = a.trips.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(a.trips.length).toBe(seen);
  });

  it('answers pings without probing itself when the member wants no round trips', async () => {
    const silent = await createTcpTransport({
      self: { id: 2, name: 'b', resp: '127.0.0.1:6002', http: '' },
      listen: '127.0.0.1:0',
      clusterToken: TOKEN,
      peers: [],
      handlers: { onMessages: () => {}, onUnreachable: () => {}, onPeerInfo: () => {} },
      logger: logger([]),
      clock: systemClock,
    });
    open.push(silent);
    const a = await startMember(1, 'a');
    silent.setPeers([{ id: 1, name: 'a', peerAddr: a.addr }]);
    a.t.setPeers([{ id: 2, name: 'b', peerAddr: `127.0.0.1:${silent.address().port}` }]);
    await until(() => a.trips.length >= 2, 'round trips to a member without probes of its own');
  });

  it('drops a probe connection whose ping is malformed or which sends an unexpected frame, and serves the next', async () => {
    const b = await startMember(2, 'b');
    b.t.setPeers([{ id: 1, name: 'a', peerAddr: '127.0.0.1:1' }]);
    const hello = helloFrame({ id: 1, name: 'a', resp: '', http: '' }, TOKEN, 'b');
    // A short ping, a pong sent to the side that answers, and Raft messages on a probe connection.
    const heartbeat = message({ type: 'MsgHeartbeat', from: 1, to: 2, term: 1 });
    const raftAfterPing = Buffer.concat([
      encodeFrame('ping', Buffer.alloc(8)),
      encodeFrame('raft', encodeMessages([heartbeat])),
    ]);
    for (const bad of [
      encodeFrame('ping', Buffer.alloc(3)),
      encodeFrame('pong', Buffer.alloc(8)),
      raftAfterPing,
    ]) {
      const socket = net.connect({ host: '127.0.0.1', port: b.t.address().port });
      const closed = new Promise<void>((r) => socket.on('close', () => r()));
      socket.on('error', () => {});
      socket.resume(); // read the welcome, or the end never shows
      socket.on('connect', () => socket.write(Buffer.concat([hello, bad])));
      await closed;
    }
    const warnings = b.logs.filter((l) => l.level === 'warn').map((l) => String(l.obj.reason ?? l.msg));
    expect(warnings.some((w) => w.includes('a ping or pong of 3 bytes'))).toBe(true);
    expect(warnings.some((w) => w.includes('unexpected pong frame'))).toBe(true);
    expect(warnings.some((w) => w.includes('unexpected raft frame'))).toBe(true);
    expect(b.received).toEqual([]);
    // A well-formed probe is still answered, with its own nonce.
    const socket = net.connect({ host: '127.0.0.1', port: b.t.address().port });
    socket.on('error', () => {});
    const reader = new FrameReader(1 << 20);
    const pong = new Promise<Buffer>((resolve) =>
      socket.on('data', (chunk) => {
        reader.push(chunk);
        for (let f = reader.next(); f !== undefined; f = reader.next())
          if (f.kind === 'pong') resolve(Buffer.from(f.payload));
      }),
    );
    const nonce = Buffer.from([7, 0, 0, 0, 0, 0, 0, 0]);
    socket.on('connect', () => socket.write(Buffer.concat([hello, encodeFrame('ping', nonce)])));
    expect(await pong).toEqual(nonce);
    socket.destroy();
  });

  it('ends a probe connection whose welcome or pong does not come, or whose pong answers no ping, and dials again', async () => {
    const logs: Logged[] = [];
    const trips: number[] = [];
    // One peer that never answers, one that answers with a nonce nobody sent.
    const mute = await fakePeer(2, 'mute', () => {});
    const liar = await fakePeer(3, 'liar', (f, socket) => {
      if (f.kind === 'ping') socket.write(encodeFrame('pong', Buffer.alloc(8, 0xee)));
    });
    // And one that accepts connections and never says a word, not even a welcome.
    let silentAccepted = 0;
    const silentServer = net.createServer((socket) => {
      silentAccepted++;
      socket.on('error', () => {});
      socket.resume(); // reads and drops the hello, so that the prober's close ends it
    });
    await new Promise<void>((r) => silentServer.listen(0, '127.0.0.1', () => r()));
    open.push({ close: () => new Promise<void>((r) => silentServer.close(() => r())) });
    const silentAddr = `127.0.0.1:${(silentServer.address() as net.AddressInfo).port}`;
    const prober = new PeerProber({
      self: { id: 1, name: 'a', resp: '', http: '' },
      clusterToken: TOKEN,
      clock: systemClock,
      logger: logger(logs),
      onRoundTrip: (_peer: Peer, seconds) => trips.push(seconds),
      intervalMs: 30,
      timeoutMs: 100,
    });
    open.push(prober);
    prober.setPeers([
      { id: 2, name: 'mute', peerAddr: mute.addr },
      { id: 3, name: 'liar', peerAddr: liar.addr },
      { id: 4, name: 'silent', peerAddr: silentAddr },
    ]);
    await until(
      () => mute.accepted() >= 3 && liar.accepted() >= 3 && silentAccepted >= 3,
      'three dials of each',
    );
    expect(trips).toEqual([]);
    const reasons = logs.map((l) => String(l.obj.reason));
    expect(reasons.some((r) => r.includes('no pong within 100 ms'))).toBe(true);
    expect(reasons.some((r) => r.includes('a pong that answers no ping in flight'))).toBe(true);
    expect(reasons.some((r) => r.includes('not connected and welcomed within 100 ms'))).toBe(true);
  });
});
