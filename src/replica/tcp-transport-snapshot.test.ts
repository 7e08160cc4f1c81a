// Snapshot streams between TCP transports (docs/peer-protocol.md, "Snapshots"): a real cask store
// travels from one transport to another and opens with the same contents; a receiver that takes
// no snapshots, a sender that goes away mid-stream, a stalled stream, damaged or oversized
// chunks, a second stream at once and a MsgSnap that lies about its ends all fail cleanly: the
// sender's done(false) once, its source closed, no staged directory left, and the receiver
// still serving messages and the next snapshot. Loopback only.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { systemClock } from '../io/clock.js';
import { type Message, message, type NodeId } from '../raft/types.js';
import { openCask } from '../storage/cask/cask-engine.js';
import type { BackupSource, Engine, WriteOp } from '../storage/engine.js';
import { writeArchive } from '../storage/snapshot-archive.js';
import { decodeWelcome, encodeHello, encodeWelcome, PEER_PROTOCOL_VERSION } from './handshake.js';
import { encodeMessages } from './message-codec.js';
import { encodeFrame, FRAME_HEADER_BYTES, FrameReader } from './peer-frame.js';
import {
  decodeSnapshotPart,
  encodeSnapshotBegin,
  encodeSnapshotChunks,
  encodeSnapshotEnd,
  SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES,
} from './snapshot-frame.js';
import { STAGED_DIR_PREFIX } from './snapshot-staging.js';
import { createTcpTransport, type TcpTransport } from './tcp-transport.js';
import type { Peer, SnapshotSource } from './transport.js';

const TOKEN = 'snap-token';
const open: TcpTransport[] = [];
const engines: Engine[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close()));
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

interface LogLine {
  readonly level: string;
  readonly text: string;
}

interface Node {
  readonly id: NodeId;
  readonly name: string;
  readonly t: TcpTransport;
  readonly addr: string;
  readonly snapshotDir: string | undefined;
  readonly received: Message[];
  readonly snapshots: { m: Message; dir: string }[];
  readonly logs: LogLine[];
}

async function startNode(
  id: NodeId,
  name: string,
  options: { snapshotDir?: string; idleMs?: number; peers?: Peer[] } = {},
): Promise<Node> {
  const received: Message[] = [];
  const snapshots: { m: Message; dir: string }[] = [];
  const logs: LogLine[] = [];
  const log =
    (level: string) =>
    (obj: object, msg: string): void => {
      logs.push({ level, text: `${msg} ${JSON.stringify(obj)}` });
    };
  const t = await createTcpTransport({
    self: { id, name, resp: '', http: '' },
    listen: '127.0.0.1:0',
    clusterToken: TOKEN,
    peers: options.peers ?? [],
    handlers: {
      onMessages: (msgs) => received.push(...msgs),
      onUnreachable: () => {},
      onPeerInfo: () => {},
      onSnapshot: (m, dir) => snapshots.push({ m, dir }),
    },
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    clock: systemClock,
    ...(options.snapshotDir === undefined ? {} : { snapshotDir: options.snapshotDir }),
    ...(options.idleMs === undefined ? {} : { snapshotIdleMs: options.idleMs }),
  });
  open.push(t);
  return {
    id,
    name,
    t,
    addr: `127.0.0.1:${t.address().port}`,
    snapshotDir: options.snapshotDir,
    received,
    snapshots,
    logs,
  };
}

const peerOf = (n: Node): Peer => ({ id: n.id, name: n.name, peerAddr: n.addr });

function connect(a: Node, b: Node): void {
  a.t.setPeers([peerOf(b)]);
  b.t.setPeers([peerOf(a)]);
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const logged = (n: Node, level: string, pattern: RegExp): boolean =>
  n.logs.some((l) => l.level === level && pattern.test(l.text));

const snapMsg = (from: NodeId, to: NodeId, index = 50): Message =>
  message({
    type: 'MsgSnap',
    from,
    to,
    term: 2,
    snapshot: {
      metadata: {
        index,
        term: 2,
        confState: {
          voters: [from, to],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: Uint8Array.of(7, 7),
    },
  });

const hb = (from: NodeId, to: NodeId, commit: number): Message =>
  message({ type: 'MsgHeartbeat', from, to, term: 2, commit });

const key = (i: number): Buffer => Buffer.from(`key-${i}`);
const value = (i: number, bytes: number): Buffer => Buffer.alloc(bytes, `v${i}-`);

/** WRITE_BATCH_KEYS: keys per write when a test store is filled (one fsync each). */
const WRITE_BATCH_KEYS = 25;

/** makeStore: a cask store of `keys` keys of `valueBytes` each, over several data files. */
async function makeStore(keys: number, valueBytes: number): Promise<Engine> {
  const engine = await openCask(tmpDir('snap-src'), { dataFileBytes: 64 * 1024 });
  engines.push(engine);
  for (let i = 0; i < keys; i += WRITE_BATCH_KEYS) {
    const ts = i + 1;
    const ops: WriteOp[] = [];
    for (let k = i; k < Math.min(keys, i + WRITE_BATCH_KEYS); k++)
      ops.push({ type: 'put', key: key(k), value: value(k, valueBytes), create: ts, version: 1 });
    await engine.write(ts, ops);
  }
  return engine;
}

/** Tracked: a SnapshotSource that counts closes and can hold reads (to stall or break a stream). */
interface Tracked {
  readonly source: SnapshotSource;
  closes: number;
  bytesRead: number;
  /** beforeRead runs before every read of file bytes (a test may wait in it). */
  beforeRead: (bytesRead: number) => Promise<void>;
}

function tracked(engine: Engine): Tracked {
  const tr: Tracked = {
    closes: 0,
    bytesRead: 0,
    beforeRead: async () => {},
    source: async () => {
      const inner = await (engine.backupSource as () => Promise<BackupSource>).call(engine);
      return {
        engine: inner.engine,
        files: inner.files,
        keys: inner.keys,
        lastTs: inner.lastTs,
        read: async (name, buffer, offset, length, position) => {
          await tr.beforeRead(tr.bytesRead);
          const n = await inner.read(name, buffer, offset, length, position);
          tr.bytesRead += n;
          return n;
        },
        close: async () => {
          tr.closes++;
          await inner.close();
        },
      };
    },
  };
  return tr;
}

/** send runs sendSnapshot and resolves with what done said, checking done came once and not re-entrantly. */
async function send(t: TcpTransport, m: Message, source: SnapshotSource): Promise<boolean> {
  let calls = 0;
  let returned = false;
  let reentrant = false;
  const ok = await new Promise<boolean>((resolve) => {
    t.sendSnapshot(m, source, (result) => {
      calls++;
      if (!returned) reentrant = true;
      resolve(result);
    });
    returned = true;
  });
  await new Promise((r) => setTimeout(r, 20));
  expect(calls).toBe(1);
  expect(reentrant).toBe(false);
  return ok;
}

const staged = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.startsWith(STAGED_DIR_PREFIX));

async function expectSameStore(dir: string, keys: number, valueBytes: number): Promise<void> {
  const copy = await openCask(dir);
  try {
    for (let i = 0; i < keys; i++) {
      const got = await copy.get(key(i));
      expect(got === undefined ? undefined : Buffer.from(got).equals(value(i, valueBytes))).toBe(true);
    }
    expect(await copy.get(Buffer.from('absent'))).toBeUndefined();
  } finally {
    await copy.close();
  }
}

describe('TcpTransport snapshots', () => {
  it('streams a cask store to a peer, which stages a verified copy that opens with the same keys', async () => {
    const engine = await makeStore(300, 2_000); // ~600 KB over several data files and chunks
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b', { snapshotDir: tmpDir('snap-b') });
    connect(a, b);
    const src = tracked(engine);
    const m = snapMsg(1, 2);
    expect(await send(a.t, m, src.source)).toBe(true);
    expect(src.closes).toBe(1);
    await waitFor(() => b.snapshots.length === 1, 'the handler');
    const got = b.snapshots[0] as { m: Message; dir: string };
    expect(got.m).toEqual({ ...m, snapshot: { ...m.snapshot, data: Uint8Array.of(7, 7) } });
    expect(path.dirname(got.dir)).toBe(b.snapshotDir);
    await expectSameStore(got.dir, 300, 2_000);
    expect(a.t.snapshotStats()).toMatchObject({ snapshotsSent: 1, snapshotsFailed: 0 });
    expect(a.t.snapshotStats().snapshotBytesSent).toBeGreaterThan(600_000);
    expect(b.t.snapshotStats()).toMatchObject({ snapshotsReceived: 1, snapshotsFailed: 0 });

    // The message connection is untouched by the snapshot connection beside it.
    a.t.send([hb(1, 2, 4)]);
    await waitFor(() => b.received.length === 1, 'a message after the snapshot');
    expect(logged(b, 'info', /replaced/)).toBe(false);
  });

  it('a receiver without a snapshot directory refuses: done(false), the source closed', async () => {
    const engine = await makeStore(10, 100);
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b');
    connect(a, b);
    const src = tracked(engine);
    expect(await send(a.t, snapMsg(1, 2), src.source)).toBe(false);
    expect(src.closes).toBe(1);
    expect(logged(a, 'warn', /snapshot to peer failed.*does not receive snapshots/)).toBe(true);
    expect(logged(b, 'warn', /snapshot refused/)).toBe(true);
    expect(b.snapshots).toEqual([]);
  });

  it('an unknown peer, or one already being sent to: done(false) on a later turn, source never opened', async () => {
    const engine = await makeStore(20, 20_000);
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b', { snapshotDir: tmpDir('snap-b') });
    connect(a, b);
    let opened = 0;
    const never: SnapshotSource = () => {
      opened++;
      return Promise.reject(new Error('not to be opened'));
    };
    const unknown = send(a.t, snapMsg(1, 7), never);
    const slow = tracked(engine);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    slow.beforeRead = () => held;
    const first = send(a.t, snapMsg(1, 2), slow.source);
    const second = send(a.t, snapMsg(1, 2), never);
    expect(await unknown).toBe(false);
    expect(await second).toBe(false);
    release();
    expect(await first).toBe(true);
    expect(opened).toBe(0);
    expect(slow.closes).toBe(1);
  });

  it('a sender that goes away mid-stream: done(false), no staged directory, the receiver serves on', async () => {
    const engine = await makeStore(200, 10_000); // ~2 MB: many chunks
    const snapshotDir = tmpDir('snap-b');
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b', { snapshotDir });
    connect(a, b);
    const src = tracked(engine);
    let closing: Promise<void> | undefined;
    src.beforeRead = async (bytes) => {
      if (bytes > 500_000 && closing === undefined) {
        // Wait until the receiver is writing, then close the sender's transport under the stream.
        await waitFor(() => staged(snapshotDir).length === 1, 'a staged directory');
        closing = a.t.close();
      }
    };
    expect(await send(a.t, snapMsg(1, 2), src.source)).toBe(false);
    await closing;
    expect(src.closes).toBe(1);
    await waitFor(() => logged(b, 'warn', /snapshot receive failed.*broke/), 'the receiver gives up');
    await waitFor(() => staged(snapshotDir).length === 0, 'the staged directory removed');
    expect(b.snapshots).toEqual([]);

    // A restarted a (same member, new address) reaches b with messages and a whole snapshot.
    const a2 = await startNode(1, 'a');
    connect(a2, b);
    a2.t.send([hb(1, 2, 9)]);
    await waitFor(() => b.received.some((m) => m.commit === 9), 'a message from the restarted member');
    const src2 = tracked(engine);
    expect(await send(a2.t, snapMsg(1, 2), src2.source)).toBe(true);
    await waitFor(() => b.snapshots.length === 1, 'the second snapshot');
    await expectSameStore((b.snapshots[0] as { dir: string }).dir, 200, 10_000);
    expect(b.t.snapshotStats()).toMatchObject({ snapshotsReceived: 1, snapshotsFailed: 1 });
  });

  it('a stalled stream times out on the receiver: directory removed, sender told', async () => {
    const engine = await makeStore(50, 10_000);
    const snapshotDir = tmpDir('snap-b');
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b', { snapshotDir, idleMs: 200 });
    connect(a, b);
    const src = tracked(engine);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    src.beforeRead = (bytes) => (bytes > 100_000 ? held : Promise.resolve());
    const result = send(a.t, snapMsg(1, 2), src.source);
    await waitFor(() => logged(b, 'warn', /snapshot stream idle for 200 ms/), 'the idle timeout');
    await waitFor(() => staged(snapshotDir).length === 0, 'the staged directory removed');
    release(); // the sender's read returns, and its next write finds the connection gone
    expect(await result).toBe(false);
    expect(src.closes).toBe(1);
  });

  it('a receiver that stops reading times the sender out; the source is closed', async () => {
    const engine = await makeStore(200, 40_000); // 8 MB: more than the socket buffers hold
    // A "peer" that welcomes and then reads nothing more.
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => {});
      s.once('data', () => {
        s.write(
          encodeFrame(
            'welcome',
            encodeWelcome({ version: PEER_PROTOCOL_VERSION, id: 2, name: 'b', resp: '', http: '' }),
          ),
        );
        s.pause();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const a = await startNode(1, 'a', {
        idleMs: 300,
        peers: [{ id: 2, name: 'b', peerAddr: `127.0.0.1:${(server.address() as net.AddressInfo).port}` }],
      });
      const src = tracked(engine);
      expect(await send(a.t, snapMsg(1, 2), src.source)).toBe(false);
      expect(src.closes).toBe(1);
      expect(logged(a, 'warn', /snapshot to peer failed.*no progress for 300 ms/)).toBe(true);
      expect(src.bytesRead).toBeLessThan(8_000_000); // it waited for the socket, not read it all
    } finally {
      // A paused socket does not notice its peer is gone; close() would wait for it.
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });

  it('stale staged directories are removed at start; other entries are left alone', async () => {
    const snapshotDir = path.join(tmpDir('snap-stale'), 'staging');
    fs.mkdirSync(path.join(snapshotDir, `${STAGED_DIR_PREFIX}1-2-3-abc`), { recursive: true });
    fs.writeFileSync(path.join(snapshotDir, `${STAGED_DIR_PREFIX}1-2-3-abc`, '0000000001.data'), 'x');
    fs.writeFileSync(path.join(snapshotDir, 'keep.txt'), 'y');
    const b = await startNode(2, 'b', { snapshotDir });
    expect(fs.readdirSync(snapshotDir)).toEqual(['keep.txt']);
    expect(logged(b, 'info', /removed stale staged snapshots/)).toBe(true);
    // A missing directory is created.
    const fresh = path.join(tmpDir('snap-new'), 'a', 'b');
    await startNode(3, 'c', { snapshotDir: fresh });
    expect(fs.statSync(fresh).isDirectory()).toBe(true);
  });
});

describe('TcpTransport hostile snapshot streams', () => {
  /** Mallory: a raw client that does the handshake as member 9 and then writes what a test wants. */
  interface Mallory {
    readonly socket: net.Socket;
    /** acks: the snapshot acks received (ok, reason). */
    readonly acks: { ok: boolean; reason: string }[];
    closed: boolean;
  }

  async function mallory(b: Node): Promise<Mallory> {
    const socket = net.connect({ host: '127.0.0.1', port: b.t.address().port });
    const reader = new FrameReader();
    const m: Mallory = { socket, acks: [], closed: false };
    let welcomed = false;
    socket.on('error', () => {});
    socket.on('close', () => {
      m.closed = true;
    });
    socket.on('data', (chunk: Buffer) => {
      reader.push(chunk);
      for (let f = reader.next(); f !== undefined; f = reader.next()) {
        if (f.kind === 'welcome') {
          decodeWelcome(f.payload);
          welcomed = true;
        } else if (f.kind === 'snapshot') {
          const part = decodeSnapshotPart(f.payload);
          if (part.part === 'ack') m.acks.push({ ok: part.ok, reason: part.reason });
        }
      }
    });
    socket.write(
      encodeFrame(
        'hello',
        encodeHello({
          version: PEER_PROTOCOL_VERSION,
          clusterToken: TOKEN,
          fromId: 9,
          fromName: 'mallory',
          toName: b.name,
          resp: '',
          http: '',
        }),
      ),
    );
    await waitFor(() => welcomed, 'the welcome');
    return m;
  }

  async function archiveOf(engine: Engine): Promise<Buffer> {
    const source = await (engine.backupSource as () => Promise<BackupSource>).call(engine);
    try {
      const parts: Buffer[] = [];
      for await (const p of writeArchive(source)) parts.push(p);
      return Buffer.concat(parts);
    } finally {
      await source.close();
    }
  }

  async function receiver(idleMs?: number): Promise<{ b: Node; snapshotDir: string }> {
    const snapshotDir = tmpDir('snap-b');
    const b = await startNode(2, 'b', {
      snapshotDir,
      peers: [{ id: 9, name: 'mallory', peerAddr: '127.0.0.1:1' }],
      ...(idleMs === undefined ? {} : { idleMs }),
    });
    return { b, snapshotDir };
  }

  it('a damaged byte in the archive: failed ack naming the checksum, nothing staged, no crash', async () => {
    const archive = await archiveOf(await makeStore(100, 3_000));
    const { b, snapshotDir } = await receiver();
    const m = await mallory(b);
    archive[archive.length >> 1] = (archive[archive.length >> 1] as number) ^ 0x01; // frames are intact
    m.socket.write(encodeSnapshotBegin(snapMsg(9, 2)));
    for (const f of encodeSnapshotChunks(archive)) m.socket.write(f);
    m.socket.write(encodeSnapshotEnd());
    await waitFor(() => m.acks.length === 1 && m.closed, 'the ack and close');
    expect(m.acks[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/checksum/) });
    expect(staged(snapshotDir)).toEqual([]);
    expect(b.snapshots).toEqual([]);

    // A truncated archive (end too early) fails the same way.
    const m2 = await mallory(b);
    m2.socket.write(encodeSnapshotBegin(snapMsg(9, 2)));
    for (const f of encodeSnapshotChunks(archive.subarray(0, 5_000))) m2.socket.write(f);
    m2.socket.write(encodeSnapshotEnd());
    await waitFor(() => m2.acks.length === 1, 'the ack');
    expect(m2.acks[0]).toMatchObject({ ok: false, reason: expect.stringMatching(/truncated/) });
    expect(staged(snapshotDir)).toEqual([]);
  });

  it('an oversized chunk frame or a chunk before the begin ends the connection and removes the directory', async () => {
    const archive = await archiveOf(await makeStore(10, 100));
    const { b, snapshotDir } = await receiver();
    const m = await mallory(b);
    m.socket.write(encodeSnapshotBegin(snapMsg(9, 2)));
    m.socket.write(encodeSnapshotChunks(archive.subarray(0, 100))[0] as Buffer);
    await waitFor(() => staged(snapshotDir).length === 1, 'the staged directory');
    const big = Buffer.alloc(FRAME_HEADER_BYTES);
    big.writeUInt32LE(SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES + 1, 0);
    big[8] = 5;
    m.socket.write(big);
    await waitFor(() => m.closed, 'the close');
    expect(logged(b, 'warn', /exceeds the limit/)).toBe(true);
    await waitFor(() => staged(snapshotDir).length === 0, 'the staged directory removed');

    const m2 = await mallory(b);
    m2.socket.write(encodeSnapshotChunks(archive.subarray(0, 10))[0] as Buffer);
    await waitFor(() => m2.closed, 'the close');
    expect(logged(b, 'warn', /snapshot chunk frame before a begin/)).toBe(true);

    // A raft frame on a snapshot stream is a protocol error too.
    const m3 = await mallory(b);
    m3.socket.write(encodeSnapshotBegin(snapMsg(9, 2)));
    m3.socket.write(encodeFrame('raft', encodeMessages([hb(9, 2, 1)])));
    await waitFor(() => m3.closed, 'the close');
    await waitFor(() => staged(snapshotDir).length === 0, 'the staged directory removed');
    expect(b.received).toEqual([]);
  });

  it('a MsgSnap not from the connected member or not to this node is refused', async () => {
    const { b, snapshotDir } = await receiver();
    const m = await mallory(b);
    m.socket.write(encodeSnapshotBegin(snapMsg(1, 2)));
    await waitFor(() => m.acks.length === 1, 'the ack');
    expect(m.acks[0]).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/from 1 to 2 on a connection from 9/),
    });
    const m2 = await mallory(b);
    m2.socket.write(encodeSnapshotBegin(snapMsg(9, 3)));
    await waitFor(() => m2.acks.length === 1, 'the ack');
    expect(m2.acks[0]?.ok).toBe(false);
    expect(staged(snapshotDir)).toEqual([]);
  });

  it('one snapshot at a time: a second is refused while the first is open; afterwards one goes through', async () => {
    const engine = await makeStore(30, 1_000);
    const archive = await archiveOf(engine);
    const snapshotDir = tmpDir('snap-b');
    const a = await startNode(1, 'a');
    const b = await startNode(2, 'b', {
      snapshotDir,
      peers: [peerOf(a), { id: 9, name: 'mallory', peerAddr: '127.0.0.1:1' }],
    });
    a.t.setPeers([peerOf(b)]);
    const m = await mallory(b);
    m.socket.write(encodeSnapshotBegin(snapMsg(9, 2)));
    m.socket.write(encodeSnapshotChunks(archive.subarray(0, 1000))[0] as Buffer);
    await waitFor(() => staged(snapshotDir).length === 1, 'the first stream staging');
    const src = tracked(engine);
    expect(await send(a.t, snapMsg(1, 2), src.source)).toBe(false);
    expect(logged(a, 'warn', /another snapshot is being received/)).toBe(true);
    expect(src.closes).toBe(1);

    m.socket.destroy();
    await waitFor(() => staged(snapshotDir).length === 0, 'the first stream cleaned up');
    expect(await send(a.t, snapMsg(1, 2), tracked(engine).source)).toBe(true);
    await waitFor(() => b.snapshots.length === 1, 'the handler');
  });

  it('a hostile stream that stalls is cut off by the idle timeout', async () => {
    const { b, snapshotDir } = await receiver(150);
    const m = await mallory(b);
    m.socket.write(encodeSnapshotBegin(snapMsg(9, 2)));
    await waitFor(() => m.closed, 'the close');
    expect(logged(b, 'warn', /idle for 150 ms/)).toBe(true);
    await waitFor(() => staged(snapshotDir).length === 0, 'the staged directory removed');
  });
});
