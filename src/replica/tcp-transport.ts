// TcpTransport: Raft messages between members over TCP (docs/peer-protocol.md).
//
// Each member listens on its peer address and keeps one outbound connection to every other
// member, used only for sending; the connections peers open to it are only read from. Two
// one-way connections per pair keep the two directions independent (no tie-breaking when both
// sides connect at once, no head-of-line blocking of one direction by the other) at the cost of
// one more socket, which a cluster of 3 or 5 members does not notice.
//
// Probes: with options.onPeerRoundTrip, a PeerProber (peer-probe.ts) keeps one more outbound
// connection per peer for round-trip pings; an accepted connection whose first frame after the
// handshake is a ping is a probe connection: every ping is answered with its pong, nothing else.
//
// Sending: send() queues messages per peer; one setImmediate per event-loop turn flushes every
// queue, each as one corked write (a writev) of one or more raft frames. setImmediate, not the
// Clock: the flush is "at the end of this turn", not a time, and the simulator does not use this
// transport. Every other timer (reconnect backoff, handshake timeout) goes through the Clock.
//
// Failures: Raft tolerates lost messages, so nothing here retries a message. While a peer cannot
// be reached its messages are dropped and onUnreachable(id) is reported, at most once per peer
// per flush; the outbound connection is retried with capped exponential backoff. A peer that
// sends anything we cannot accept (a corrupt or oversized frame, bytes before the handshake, a
// batch that does not decode) loses that connection with a warning; the process carries on.
//
// Snapshots: sendSnapshot opens a connection of its own per snapshot (snapshot-sender.ts), so a
// stream of gigabytes never delays a heartbeat. An accepted connection becomes a snapshot stream
// when its first frame after the handshake is a snapshot begin; the chunks that follow are fed,
// with backpressure, to restoreArchive, which verifies them into a fresh staged directory
// (snapshot-staging.ts) that is handed to onSnapshot. One is received at a time.
import * as net from 'node:net';
import type { Clock, Timer } from '../io/clock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { LOCAL_MESSAGES, type Message, type NodeId } from '../raft/types.js';
import { AssertionError, assert } from '../stdx/assert.js';
import { restoreArchive } from '../storage/snapshot-archive.js';
import { ChunkQueue } from './chunk-queue.js';
import { PeerProtocolError, SnapshotTransferError, TransportStartError } from './errors.js';
import {
  checkHello,
  checkWelcome,
  decodeHello,
  decodeRefuse,
  decodeWelcome,
  encodeRefuse,
  encodeWelcome,
  helloFrame as helloFrameFor,
  isRemovedRefusal,
  MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES,
  PEER_PROTOCOL_VERSION,
} from './handshake.js';
import { hexId } from './log-ids.js';
import {
  BATCH_HEADER_BYTES,
  decodeMessages,
  encodedMessageSize,
  encodeMessagesInto,
} from './message-codec.js';
import { parseHostPort } from './peer-address.js';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameReader,
  MAX_PEER_FRAME_PAYLOAD_BYTES,
  sealFrame,
} from './peer-frame.js';
import { decodePing, PeerProber } from './peer-probe.js';
import {
  decodeSnapshotPart,
  encodeSnapshotAck,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES,
} from './snapshot-frame.js';
import { SnapshotSender } from './snapshot-sender.js';
import { prepareStagingDir, removeStagedDir, stagedDirFor } from './snapshot-staging.js';
import {
  decodeStatusRequest,
  encodeStartAnswer,
  encodeStartStatus,
  legacyStatus,
  START_CHECK_VERSION,
  type StartAnswer,
} from './start-check.js';
import type { Peer, PeerInfo, SnapshotSource, Transport, TransportHandlers } from './transport.js';

/** RECONNECT_BACKOFF_MIN_MS: the first retry after a failed connection; a restarting peer is back soon. */
export const RECONNECT_BACKOFF_MIN_MS = 50;
/** RECONNECT_BACKOFF_MAX_MS: the cap of the doubling backoff, twice the 1 s election timeout. */
export const RECONNECT_BACKOFF_MAX_MS = 2_000;
/** HANDSHAKE_TIMEOUT_MS: connect plus hello/welcome must finish within this, on either side. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * PEER_OUTPUT_QUEUE_MAX_BYTES bounds what waits for one peer: queued messages plus bytes the
 * socket has not written yet. Four maximal frames: Raft's own flow control (max inflight bytes)
 * keeps a healthy follower far below it; a peer that stops reading hits it and is reported
 * unreachable instead of growing our memory.
 */
export const PEER_OUTPUT_QUEUE_MAX_BYTES = 4 * MAX_PEER_FRAME_PAYLOAD_BYTES;
/** MAX_INBOUND_CONNECTIONS: a cluster needs one per peer; more are refused (a misbehaving client). */
export const MAX_INBOUND_CONNECTIONS = 64;
/**
 * SNAPSHOT_IDLE_MS: a snapshot stream that makes no progress this long (no byte received and
 * none consumed by the restore on the receiver; no write drained and no byte received on the
 * sender) is aborted. Generous: a stream only stalls this long when a side is gone or stuck.
 */
export const SNAPSHOT_IDLE_MS = 30_000;
/** MAX_INBOUND_SNAPSHOTS: snapshots received at once; Raft needs one, and each takes disk. */
export const MAX_INBOUND_SNAPSHOTS = 1;
/**
 * SNAPSHOT_RECEIVE_QUEUE_MAX_BYTES: archive bytes received but not yet taken by the restore
 * above which the connection stops reading (the sender then blocks on TCP's window); it reads
 * again once the restore took it down to half.
 */
export const SNAPSHOT_RECEIVE_QUEUE_MAX_BYTES = 4 * SNAPSHOT_CHUNK_BYTES;

/** TransportLogger: the part of a pino logger the transport uses. */
export interface TransportLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface TcpTransportOptions {
  /** self: this member's id and name and its client addresses (sent in handshakes). */
  readonly self: { readonly id: NodeId; readonly name: string; readonly resp: string; readonly http: string };
  /** listen: the peer address to listen on, "host:port" (port 0 picks a free one). */
  readonly listen: string;
  readonly clusterToken: string;
  /** peers: the other members (not this one). */
  readonly peers: readonly Peer[];
  readonly handlers: TransportHandlers;
  readonly logger: TransportLogger;
  readonly clock: Clock;
  /**
   * snapshotDir: where incoming snapshots are staged, one fresh subdirectory each (created if
   * missing; staged directories a crash left are deleted at start). Without it, and without a
   * handlers.onSnapshot, incoming snapshot streams are refused.
   */
  readonly snapshotDir?: string;
  /** isRemoved: whether a peer id was removed from the cluster (its hello gets REMOVED_REFUSAL). */
  readonly isRemoved?: (id: NodeId) => boolean;
  /** removalIndex: the index of the change that removed a peer id, when known (named in its refusal). */
  readonly removalIndex?: (id: NodeId) => number | undefined;
  /** snapshotIdleMs: SNAPSHOT_IDLE_MS unless a test wants it shorter. */
  readonly snapshotIdleMs?: number;
  /**
   * startStatus: what this member knows of peer `id`'s start, the answer to a start check
   * (start-check.ts); it may take a while (a ReadIndex round) but settles within
   * START_CHECK_CONFIRM_MS. Without it a status-request is a protocol error (the connection drops).
   */
  readonly startStatus?: (id: NodeId) => Promise<StartAnswer>;
  /**
   * onPeerRoundTrip: told the round trip of every answered probe to a peer (peer-probe.ts);
   * without it no probe connections are opened (probes from peers are answered either way).
   */
  readonly onPeerRoundTrip?: (peer: Peer, seconds: number) => void;
  /** probeIntervalMs: PROBE_INTERVAL_MS unless a test wants it shorter. */
  readonly probeIntervalMs?: number;
}

/** SnapshotStats: counters of snapshot streams since the transport started. */
export interface SnapshotStats {
  /** snapshotsSent: streams the receiver acknowledged as staged. */
  readonly snapshotsSent: number;
  /** snapshotsReceived: streams staged and handed to onSnapshot. */
  readonly snapshotsReceived: number;
  /** snapshotsFailed: streams that failed or were refused, sending or receiving. */
  readonly snapshotsFailed: number;
  /** snapshotBytesSent: archive bytes handed to sockets (failed streams included). */
  readonly snapshotBytesSent: number;
}

export interface TcpTransport extends Transport {
  /** address is where the transport listens (the port chosen when listen asked for port 0). */
  address(): { host: string; port: number };
  /** isConnected says whether the outbound connection to `id` has finished its handshake. */
  isConnected(id: NodeId): boolean;
  snapshotStats(): SnapshotStats;
  /** dials: outbound peer connections attempted (first attempts and reconnects). */
  readonly dials: number;
}

/** createTcpTransport listens on options.listen and starts connecting to the peers. */
export async function createTcpTransport(options: TcpTransportOptions): Promise<TcpTransport> {
  let at: { host: string; port: number };
  try {
    at = parseHostPort(options.listen);
  } catch (err) {
    throw new TransportStartError((err as Error).message);
  }
  if (options.snapshotDir !== undefined) {
    let stale: string[];
    try {
      stale = await prepareStagingDir(options.snapshotDir);
    } catch (err) {
      throw new TransportStartError(
        `cannot prepare the snapshot staging directory ${options.snapshotDir}: ${(err as Error).message}`,
      );
    }
    if (stale.length > 0) {
      options.logger.info({ dir: options.snapshotDir, removed: stale }, 'removed stale staged snapshots');
    }
  }
  const transport = new TcpTransportImpl(options);
  await transport.listen(at.host, at.port, options.listen);
  transport.setPeers(options.peers);
  return transport;
}

type OutboundState = 'connecting' | 'ready' | 'backoff' | 'closed';

/** Outbound is the sending side of one peer: its connection, its queue and its backoff. */
interface Outbound {
  readonly peer: Peer;
  readonly host: string;
  readonly port: number;
  state: OutboundState;
  socket: net.Socket | undefined;
  reader: FrameReader;
  /** timer: the handshake timeout while connecting, the reconnect delay in backoff. */
  timer: Timer | undefined;
  pending: Message[];
  pendingBytes: number;
  backoffMs: number;
  /** failures since the last handshake; the first is logged as a warning, the rest as debug. */
  failures: number;
  /** lastRefusal: the reason of the last refusal since the last handshake (logged once each). */
  lastRefusal?: string | undefined;
}

/**
 * Inbound is one connection a peer opened to us. Its first frame after the handshake decides
 * what it is: `raft` frames (we only read), or one snapshot stream (we answer one ack).
 */
interface Inbound {
  readonly socket: net.Socket;
  readonly remote: string;
  readonly reader: FrameReader;
  /** peer is set once the hello is accepted. */
  peer: { readonly id: NodeId; readonly name: string } | undefined;
  mode: 'new' | 'raft' | 'snapshot' | 'status' | 'probe';
  /** snapshot: the stream being received on a snapshot connection. */
  snapshot: IncomingSnapshot | undefined;
  timer: Timer | undefined;
  /** refused: a refusal or ack was sent and the socket is ending; anything more it sends is ignored. */
  refused: boolean;
  dropped: boolean;
}

/** IncomingSnapshot: a snapshot stream being restored into `dir`. */
interface IncomingSnapshot {
  readonly message: Message;
  readonly dir: string;
  readonly queue: ChunkQueue;
  /** idle: aborts the stream when nothing moves for snapshotIdleMs (until the end frame). */
  idle: Timer | undefined;
  /** task: the restore and what follows it; close() waits for it. */
  task: Promise<void>;
}

/** OutgoingSnapshot: a snapshot being sent to one peer. */
interface OutgoingSnapshot {
  readonly sender: SnapshotSender;
  task: Promise<void>;
}

class TcpTransportImpl implements TcpTransport {
  private readonly server: net.Server;
  private readonly outbound = new Map<NodeId, Outbound>();
  private readonly inbound = new Set<Inbound>();
  /** unreachable: peers to report at the next flush (at most once each per flush). */
  private readonly unreachable = new Set<NodeId>();
  private flushScheduled: NodeJS.Immediate | undefined;
  private closed = false;
  /** outgoing: the snapshot in flight to each peer (at most one per peer). */
  private readonly outgoing = new Map<NodeId, OutgoingSnapshot>();
  /** incoming: snapshots being received (at most MAX_INBOUND_SNAPSHOTS). */
  private readonly incoming = new Set<IncomingSnapshot>();
  dials = 0;
  private readonly stats = {
    snapshotsSent: 0,
    snapshotsReceived: 0,
    snapshotsFailed: 0,
    snapshotBytesSent: 0,
  };

  /** prober: the round-trip probes to every peer, when options.onPeerRoundTrip wants them. */
  private readonly prober: PeerProber | undefined;

  constructor(private readonly opts: TcpTransportOptions) {
    this.server = net.createServer((socket) => this.accept(socket));
    const onRoundTrip = opts.onPeerRoundTrip;
    this.prober =
      onRoundTrip === undefined
        ? undefined
        : new PeerProber({
            self: opts.self,
            clusterToken: opts.clusterToken,
            clock: opts.clock,
            logger: opts.logger,
            onRoundTrip: (peer, seconds) => this.callHandler(() => onRoundTrip(peer, seconds)),
            intervalMs: opts.probeIntervalMs,
          });
  }

  listen(host: string, port: number, text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EADDRINUSE')
          reject(new TransportStartError(`peer address ${text} is already in use`));
        else reject(new TransportStartError(`cannot listen on peer address ${text}: ${err.message}`));
      };
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        // Errors after listening (rare: EMFILE on accept) are logged; the transport carries on.
        this.server.on('error', (err) => this.opts.logger.error({ err: err.message }, 'peer listener error'));
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  isConnected(id: NodeId): boolean {
    return this.outbound.get(id)?.state === 'ready';
  }

  snapshotStats(): SnapshotStats {
    return { ...this.stats };
  }

  send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      assert(!LOCAL_MESSAGES.has(m.type), `local message ${m.type} cannot be sent to a peer`);
      if (this.closed) return;
      const out = this.outbound.get(m.to);
      if (out === undefined || out.state === 'backoff' || out.state === 'closed') {
        if (out === undefined)
          this.opts.logger.debug({ to: hexId(m.to), type: m.type }, 'message to an unknown peer dropped');
        this.unreachable.add(m.to);
        continue;
      }
      const size = encodedMessageSize(m);
      if (BATCH_HEADER_BYTES + size > MAX_PEER_FRAME_PAYLOAD_BYTES) {
        this.opts.logger.warn(
          { peer: out.peer.name, type: m.type, bytes: size },
          'message too large for a frame, dropped',
        );
        this.unreachable.add(m.to);
        continue;
      }
      if (out.pendingBytes + (out.socket?.writableLength ?? 0) + size > PEER_OUTPUT_QUEUE_MAX_BYTES) {
        this.opts.logger.debug(
          { peer: out.peer.name, type: m.type },
          'peer output queue full, message dropped',
        );
        this.unreachable.add(m.to);
        continue;
      }
      out.pending.push(m);
      out.pendingBytes += size;
    }
    this.scheduleFlush();
  }

  setPeers(peers: readonly Peer[]): void {
    assert(!this.closed, 'setPeers after close');
    const parsed = new Map<NodeId, { peer: Peer; host: string; port: number }>();
    for (const peer of peers) {
      assert(peer.id !== this.opts.self.id, 'the peer list must not contain this node');
      assert(!parsed.has(peer.id), `peer id ${peer.id} listed twice`);
      parsed.set(peer.id, { peer, ...parseHostPort(peer.peerAddr) }); // throws before anything changes
    }
    for (const [id, out] of this.outbound) {
      const next = parsed.get(id);
      if (
        next === undefined ||
        next.peer.name !== out.peer.name ||
        next.peer.peerAddr !== out.peer.peerAddr
      ) {
        this.stopOutbound(out);
        this.outbound.delete(id);
        this.outgoing.get(id)?.sender.abort('the peer is no longer a member');
      }
    }
    for (const [id, { peer, host, port }] of parsed) {
      if (this.outbound.has(id)) continue;
      const out: Outbound = {
        peer,
        host,
        port,
        state: 'backoff',
        socket: undefined,
        reader: new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES),
        timer: undefined,
        pending: [],
        pendingBytes: 0,
        backoffMs: RECONNECT_BACKOFF_MIN_MS,
        failures: 0,
      };
      this.outbound.set(id, out);
      this.connect(out);
    }
    for (const conn of this.inbound) {
      if (conn.peer !== undefined && !this.isMember(conn.peer.id, conn.peer.name)) {
        this.dropInbound(conn, 'info', 'peer is no longer a member');
      }
    }
    this.prober?.setPeers(peers);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.prober?.close();
    if (this.flushScheduled !== undefined) clearImmediate(this.flushScheduled);
    this.flushScheduled = undefined;
    for (const out of this.outbound.values()) this.stopOutbound(out);
    this.outbound.clear();
    for (const conn of this.inbound) this.dropInbound(conn, 'debug', 'transport closed');
    for (const o of this.outgoing.values()) o.sender.abort('transport closed');
    // The streams end promptly once their sockets are gone: a restore cleans up what it wrote,
    // a sender closes its source.
    const tasks = [...this.outgoing.values(), ...this.incoming].map((x) => x.task);
    await Promise.all([new Promise<void>((resolve) => this.server.close(() => resolve())), ...tasks]);
  }

  // --- sending snapshots ---------------------------------------------------------------------

  sendSnapshot(m: Message, source: SnapshotSource, done: (ok: boolean) => void): void {
    assert(m.type === 'MsgSnap', `sendSnapshot of a ${m.type}`);
    const out = this.outbound.get(m.to);
    let refusal: string | undefined;
    if (this.closed) refusal = 'the transport is closed';
    else if (out === undefined) refusal = 'not a member';
    else if (this.outgoing.has(m.to)) refusal = 'a snapshot to this peer is already in flight';
    else if (1 + BATCH_HEADER_BYTES + encodedMessageSize(m) > MAX_PEER_FRAME_PAYLOAD_BYTES)
      refusal = 'the MsgSnap does not fit in a frame';
    if (refusal !== undefined || out === undefined) {
      this.opts.logger.warn({ to: hexId(m.to), reason: refusal }, 'snapshot not sent');
      this.stats.snapshotsFailed++;
      // A later turn, like every other report: the caller may be in the middle of a Ready.
      setImmediate(() => this.callHandler(() => done(false)));
      return;
    }
    const sender = new SnapshotSender({
      host: out.host,
      port: out.port,
      peer: out.peer,
      hello: this.helloFrame(out.peer),
      message: m,
      source,
      clock: this.opts.clock,
      handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      idleMs: this.opts.snapshotIdleMs ?? SNAPSHOT_IDLE_MS,
      onBytes: (n) => {
        this.stats.snapshotBytesSent += n;
      },
    });
    const index = m.snapshot?.metadata.index;
    const entry: OutgoingSnapshot = { sender, task: Promise.resolve() };
    this.outgoing.set(m.to, entry);
    this.opts.logger.info({ peer: out.peer.name, index }, 'sending snapshot');
    // run() starts in a later turn (it awaits before its first callback), so done is never re-entrant.
    entry.task = sender.run().then(
      () => this.finishSend(m.to, entry, true, undefined, done),
      (err: unknown) => this.finishSend(m.to, entry, false, err, done),
    );
  }

  private finishSend(
    to: NodeId,
    entry: OutgoingSnapshot,
    ok: boolean,
    err: unknown,
    done: (ok: boolean) => void,
  ): void {
    if (this.outgoing.get(to) === entry) this.outgoing.delete(to);
    if (err instanceof AssertionError) throw err;
    const peer = this.outbound.get(to)?.peer.name ?? hexId(to);
    if (ok) {
      this.stats.snapshotsSent++;
      this.opts.logger.info({ peer }, 'snapshot sent');
    } else {
      this.stats.snapshotsFailed++;
      this.opts.logger.warn(
        { peer, reason: err instanceof Error ? err.message : String(err) },
        'snapshot to peer failed',
      );
    }
    this.callHandler(() => done(ok));
  }

  // --- sending -------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled !== undefined || this.closed) return;
    this.flushScheduled = setImmediate(() => this.flush());
  }

  /**
   * flushNow writes the queued messages now rather than at the end of the turn: the driver calls
   * it after a leader's appends, which would otherwise wait for the next turn of the event loop
   * (a turn is queued behind every client's I/O on a busy leader). Unreachable peers are still
   * reported by the scheduled flush, never from inside the driver's step.
   */
  flushNow(): void {
    if (this.closed) return;
    this.writeQueues();
  }

  /** flush writes every ready peer's queue as one corked write, then reports unreachable peers. */
  private flush(): void {
    this.flushScheduled = undefined;
    if (this.closed) return;
    this.writeQueues();
    const ids = [...this.unreachable];
    this.unreachable.clear();
    for (const id of ids) this.callHandler(() => this.opts.handlers.onUnreachable(id));
  }

  private writeQueues(): void {
    for (const out of this.outbound.values()) {
      if (out.state !== 'ready' || out.pending.length === 0) continue; // connecting: keep the queue
      const socket = out.socket as net.Socket;
      const msgs = out.pending;
      out.pending = [];
      out.pendingBytes = 0;
      socket.cork();
      let batch: Message[] = [];
      let batchBytes = BATCH_HEADER_BYTES;
      for (const m of msgs) {
        const size = encodedMessageSize(m);
        if (batch.length > 0 && batchBytes + size > MAX_PEER_FRAME_PAYLOAD_BYTES) {
          socket.write(raftFrame(batch, batchBytes));
          batch = [];
          batchBytes = BATCH_HEADER_BYTES;
        }
        batch.push(m);
        batchBytes += size;
      }
      if (batch.length > 0) socket.write(raftFrame(batch, batchBytes));
      socket.uncork();
    }
  }

  /** helloFrame: what every connection we open to `peer` starts with (message or snapshot). */
  private helloFrame(peer: Peer): Buffer {
    return helloFrameFor(this.opts.self, this.opts.clusterToken, peer.name);
  }

  private connect(out: Outbound): void {
    const { logger } = this.opts;
    this.dials++;
    out.state = 'connecting';
    out.reader = new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES);
    const socket = net.connect({ host: out.host, port: out.port });
    out.socket = socket;
    socket.setNoDelay(true);
    out.timer = this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () =>
      this.failOutbound(out, socket, `no welcome within ${HANDSHAKE_TIMEOUT_MS} ms`),
    );
    socket.on('connect', () => socket.write(this.helloFrame(out.peer)));
    socket.on('data', (chunk: Buffer) => this.onOutboundData(out, socket, chunk));
    socket.on('error', (err) => this.failOutbound(out, socket, err.message));
    socket.on('close', () => this.failOutbound(out, socket, 'connection closed'));
    logger.debug({ peer: out.peer.name, addr: out.peer.peerAddr }, 'connecting to peer');
  }

  private onOutboundData(out: Outbound, socket: net.Socket, chunk: Buffer): void {
    if (out.socket !== socket) return;
    const { logger } = this.opts;
    try {
      out.reader.push(chunk);
      for (let f = out.reader.next(); f !== undefined; f = out.reader.next()) {
        if (out.state !== 'connecting')
          throw new PeerProtocolError(`unexpected ${f.kind} frame after the welcome`);
        if (f.kind === 'refuse') {
          const { reason } = decodeRefuse(f.payload);
          // Once per reason until a handshake succeeds: a member started before `member add`
          // is refused at every retry, which logged several warnings a second.
          const repeated = out.lastRefusal === reason;
          out.lastRefusal = reason;
          (repeated ? logger.debug : logger.warn).call(
            logger,
            { peer: out.peer.name, addr: out.peer.peerAddr, reason },
            'peer refused our connection',
          );
          this.failOutbound(out, socket, `refused: ${reason}`, 'silent');
          if (isRemovedRefusal(reason)) {
            const by = out.peer.id;
            this.callHandler(() => this.opts.handlers.onRemoved?.(by, reason));
          }
          return;
        }
        if (f.kind !== 'welcome') throw new PeerProtocolError(`${f.kind} frame instead of a welcome`);
        const welcome = decodeWelcome(f.payload);
        const reason = checkWelcome(welcome, out.peer);
        if (reason !== undefined) {
          logger.warn(
            { peer: out.peer.name, addr: out.peer.peerAddr, reason },
            'refusing the welcome of a peer',
          );
          // Tell the other side why, then close; a peer that never closes its side is cut off.
          socket.end(encodeFrame('refuse', encodeRefuse(reason)));
          this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () => socket.destroy());
          this.failOutbound(out, socket, `refused: ${reason}`, 'silent', false);
          return;
        }
        out.state = 'ready';
        out.timer?.cancel();
        out.timer = undefined;
        out.backoffMs = RECONNECT_BACKOFF_MIN_MS;
        out.failures = 0;
        out.lastRefusal = undefined;
        logger.info({ peer: out.peer.name, addr: out.peer.peerAddr }, 'connected to peer');
        const info: PeerInfo = { id: welcome.id, name: welcome.name, resp: welcome.resp, http: welcome.http };
        this.callHandler(() => this.opts.handlers.onPeerInfo(info));
        if (out.pending.length > 0) this.scheduleFlush();
      }
    } catch (err) {
      if (!(err instanceof PeerProtocolError)) throw err;
      logger.warn(
        { peer: out.peer.name, addr: out.peer.peerAddr, reason: err.message },
        'protocol error from peer',
      );
      this.failOutbound(out, socket, err.message, 'silent');
    }
  }

  /**
   * failOutbound ends the connection attempt or connection `socket` (if it is still the peer's
   * current one), drops the queue, reports the peer unreachable and schedules a reconnect.
   * `destroy` false leaves a socket that is already ending (with a refusal) to finish.
   */
  private failOutbound(
    out: Outbound,
    socket: net.Socket,
    reason: string,
    level: 'auto' | 'silent' = 'auto',
    destroy = true,
  ): void {
    if (out.socket !== socket || out.state === 'closed') return;
    if (destroy) socket.destroy();
    out.socket = undefined;
    out.timer?.cancel();
    const wasReady = out.state === 'ready';
    if (wasReady || out.pending.length > 0) this.unreachable.add(out.peer.id);
    out.pending = [];
    out.pendingBytes = 0;
    if (level === 'auto') {
      const fields = { peer: out.peer.name, addr: out.peer.peerAddr, reason };
      if (wasReady) this.opts.logger.warn(fields, 'connection to peer lost');
      else if (out.failures === 0) this.opts.logger.warn(fields, 'cannot reach peer; retrying');
      else this.opts.logger.debug(fields, 'cannot reach peer');
    }
    out.failures++;
    out.state = 'backoff';
    const delay = out.backoffMs;
    out.backoffMs = Math.min(RECONNECT_BACKOFF_MAX_MS, out.backoffMs * 2);
    out.timer = this.opts.clock.after(delay, () => {
      if (out.state === 'backoff' && !this.closed) this.connect(out);
    });
    this.scheduleFlush();
  }

  private stopOutbound(out: Outbound): void {
    out.state = 'closed';
    out.timer?.cancel();
    out.timer = undefined;
    out.socket?.destroy();
    out.socket = undefined;
    out.pending = [];
    out.pendingBytes = 0;
  }

  // --- receiving -----------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.inbound.size >= MAX_INBOUND_CONNECTIONS) {
      this.opts.logger.warn({ remote, limit: MAX_INBOUND_CONNECTIONS }, 'too many peer connections; refused');
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const conn: Inbound = {
      socket,
      remote,
      reader: new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES),
      peer: undefined,
      mode: 'new',
      snapshot: undefined,
      timer: undefined,
      refused: false,
      dropped: false,
    };
    this.inbound.add(conn);
    conn.timer = this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () => {
      if (conn.peer === undefined)
        this.dropInbound(conn, 'warn', `no hello within ${HANDSHAKE_TIMEOUT_MS} ms`);
    });
    socket.on('data', (chunk: Buffer) => this.onInboundData(conn, chunk));
    socket.on('error', (err) => this.dropInbound(conn, 'debug', err.message));
    socket.on('close', () => {
      if (!conn.dropped && !conn.refused && conn.reader.buffered > 0) {
        this.dropInbound(conn, 'warn', `connection closed inside a frame (${conn.reader.buffered} bytes)`);
      }
      this.dropInbound(conn, 'debug', 'connection closed');
    });
  }

  private onInboundData(conn: Inbound, chunk: Buffer): void {
    if (conn.dropped || conn.refused) return;
    const { logger, self } = this.opts;
    try {
      conn.reader.push(chunk);
      for (
        let f = conn.reader.next();
        f !== undefined && !conn.dropped && !conn.refused;
        f = conn.reader.next()
      ) {
        const peer = conn.peer;
        if (peer === undefined) {
          if (f.kind !== 'hello') throw new PeerProtocolError(`${f.kind} frame before the hello`);
          this.onHello(conn, f.payload);
        } else if (f.kind === 'snapshot' && (conn.mode === 'new' || conn.mode === 'snapshot')) {
          this.onSnapshotFrame(conn, peer, f.payload);
        } else if (f.kind === 'raft' && (conn.mode === 'new' || conn.mode === 'raft')) {
          if (conn.mode === 'new') this.becomeRaft(conn, peer.id);
          const msgs = decodeMessages(f.payload);
          const good = msgs.filter((m) => m.to === self.id && m.from === peer.id);
          if (good.length < msgs.length) {
            const bad = msgs.find((m) => m.to !== self.id || m.from !== peer.id) as Message;
            logger.warn(
              {
                remote: conn.remote,
                peer: peer.name,
                dropped: msgs.length - good.length,
                to: hexId(bad.to),
                from: hexId(bad.from),
              },
              'messages not from this peer to this node dropped',
            );
          }
          if (good.length > 0) this.callHandler(() => this.opts.handlers.onMessages(good));
        } else if (f.kind === 'ping' && (conn.mode === 'new' || conn.mode === 'probe')) {
          // A probe connection (peer-probe.ts): every ping is answered at once with its nonce. A
          // new one replaces an older one of the same peer (half-open after the peer's machine died).
          decodePing(f.payload);
          if (conn.mode === 'new') {
            for (const other of this.inbound) {
              if (other !== conn && other.peer?.id === peer.id && other.mode === 'probe')
                this.dropInbound(other, 'debug', 'replaced by a new probe connection');
            }
          }
          conn.mode = 'probe';
          conn.socket.write(encodeFrame('pong', f.payload));
        } else if (f.kind === 'status-request' && conn.mode === 'new') {
          this.answerStatus(conn, peer, decodeStatusRequest(f.payload));
        } else if (f.kind === 'refuse') {
          const { reason } = decodeRefuse(f.payload);
          logger.warn({ remote: conn.remote, peer: peer.name, reason }, 'peer refused our welcome');
          this.dropInbound(conn, 'silent', reason);
        } else {
          throw new PeerProtocolError(`unexpected ${f.kind} frame`);
        }
      }
    } catch (err) {
      if (!(err instanceof PeerProtocolError)) throw err;
      this.dropInbound(conn, 'warn', err.message);
    }
  }

  private onHello(conn: Inbound, payload: Buffer): void {
    const { logger, self, clusterToken } = this.opts;
    const hello = decodeHello(payload);
    const reason = checkHello(hello, {
      name: self.name,
      clusterToken,
      isMember: (id, name) => this.isMember(id, name),
      isRemoved: this.opts.isRemoved,
      removalIndex: this.opts.removalIndex,
    });
    if (reason !== undefined) {
      logger.warn(
        { remote: conn.remote, fromId: hexId(hello.fromId), fromName: hello.fromName, reason },
        'refusing peer connection',
      );
      // The refusal, then close. The connection stays in `inbound` until it is closed, so
      // close() can destroy it; a peer that never closes its side is cut off by the timer.
      conn.refused = true;
      conn.timer?.cancel();
      conn.timer = this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () =>
        this.dropInbound(conn, 'debug', 'refused'),
      );
      conn.socket.end(encodeFrame('refuse', encodeRefuse(reason)));
      return;
    }
    conn.timer?.cancel();
    conn.timer = undefined;
    conn.peer = { id: hello.fromId, name: hello.fromName };
    conn.reader.setMaxPayload(MAX_PEER_FRAME_PAYLOAD_BYTES);
    conn.socket.write(
      encodeFrame(
        'welcome',
        encodeWelcome({
          version: PEER_PROTOCOL_VERSION,
          id: self.id,
          name: self.name,
          resp: self.resp,
          http: self.http,
        }),
      ),
    );
    logger.info({ remote: conn.remote, peer: hello.fromName }, 'peer connected');
    const info: PeerInfo = { id: hello.fromId, name: hello.fromName, resp: hello.resp, http: hello.http };
    this.callHandler(() => this.opts.handlers.onPeerInfo(info));
  }

  /**
   * becomeRaft makes `conn` the message connection of peer `id`. A peer that restarted may leave
   * its old connection half-open; the new one replaces it. Decided at the first raft frame, not
   * at the hello, because only then is it known not to be a snapshot stream, which runs beside
   * the message connection.
   */
  private becomeRaft(conn: Inbound, id: NodeId): void {
    conn.mode = 'raft';
    for (const other of this.inbound) {
      if (other !== conn && other.peer?.id === id && other.mode === 'raft')
        this.dropInbound(other, 'info', 'replaced by a new connection');
    }
  }

  /**
   * answerStatus answers a start check (start-check.ts) and closes: the peer's only question on
   * this connection. The answer may wait for a ReadIndex round (bounded by the member); the
   * connection is dropped if it is still open after HANDSHAKE_TIMEOUT_MS. An asker of version 1
   * gets the old status frame, or nothing when the answer is unconfirmed. Logged, since it is
   * asked only by a member starting from an empty directory.
   */
  private answerStatus(
    conn: Inbound,
    peer: { readonly id: NodeId; readonly name: string },
    version: 1 | 2,
  ): void {
    const startStatus = this.opts.startStatus;
    if (startStatus === undefined) throw new PeerProtocolError('a start check this member does not answer');
    conn.mode = 'status';
    conn.refused = true;
    conn.timer?.cancel();
    conn.timer = this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () =>
      this.dropInbound(conn, 'debug', 'start status not sent in time'),
    );
    const answered = (answer: StartAnswer): void => {
      if (conn.dropped) return;
      this.opts.logger[answer.answer === 'started' ? 'warn' : 'info'](
        { peer: peer.name, version, ...answer },
        answer.answer === 'started'
          ? 'a member that already started asked to start afresh: told it so (its start is refused)'
          : 'answered the start check of a member starting from an empty directory',
      );
      conn.timer?.cancel();
      conn.timer = this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () =>
        this.dropInbound(conn, 'debug', 'start status sent'),
      );
      if (version === START_CHECK_VERSION) {
        conn.socket.end(encodeFrame('start-answer', encodeStartAnswer(answer)));
        return;
      }
      const legacy = legacyStatus(answer);
      if (legacy === undefined) conn.socket.end();
      else conn.socket.end(encodeFrame('status', encodeStartStatus(legacy)));
    };
    startStatus(peer.id).then(answered, (err: unknown) => {
      this.opts.logger.warn({ peer: peer.name, err }, 'could not answer a start check');
      answered({ answer: 'unconfirmed', index: 0, term: 0 });
    });
  }

  // --- receiving snapshots -------------------------------------------------------------------

  private onSnapshotFrame(
    conn: Inbound,
    peer: { readonly id: NodeId; readonly name: string },
    payload: Buffer,
  ): void {
    const part = decodeSnapshotPart(payload);
    if (conn.mode === 'new') {
      if (part.part !== 'begin') throw new PeerProtocolError(`snapshot ${part.part} frame before a begin`);
      conn.mode = 'snapshot';
      this.beginSnapshot(conn, peer, part.message);
      return;
    }
    const snap = conn.snapshot;
    assert(snap !== undefined, 'a snapshot connection without its snapshot');
    if (snap.queue.isEnded) throw new PeerProtocolError(`snapshot ${part.part} frame after the end`);
    if (part.part === 'chunk') {
      snap.queue.push(part.bytes);
      this.touchSnapshot(conn, snap);
      // Stop reading while the restore is behind; onTake resumes.
      if (snap.queue.queuedBytes > SNAPSHOT_RECEIVE_QUEUE_MAX_BYTES) conn.socket.pause();
    } else if (part.part === 'end') {
      // From here on the work is local (the last checks, fsyncs); the connection may go.
      snap.idle?.cancel();
      snap.idle = undefined;
      snap.queue.end();
    } else {
      throw new PeerProtocolError(`snapshot ${part.part} frame from the sender`);
    }
  }

  /** snapshotRefusal says why `m` from `peer` cannot be received now, or undefined. */
  private snapshotRefusal(peer: { readonly id: NodeId }, m: Message): string | undefined {
    if (m.to !== this.opts.self.id || m.from !== peer.id)
      return `a MsgSnap from ${m.from} to ${m.to} on a connection from ${peer.id} to ${this.opts.self.id}`;
    if (this.opts.snapshotDir === undefined || this.opts.handlers.onSnapshot === undefined)
      return 'this member does not receive snapshots';
    if (this.incoming.size >= MAX_INBOUND_SNAPSHOTS) return 'another snapshot is being received';
    return undefined;
  }

  private beginSnapshot(
    conn: Inbound,
    peer: { readonly id: NodeId; readonly name: string },
    m: Message,
  ): void {
    const reason = this.snapshotRefusal(peer, m);
    if (reason !== undefined) {
      this.stats.snapshotsFailed++;
      this.opts.logger.warn({ remote: conn.remote, peer: peer.name, reason }, 'snapshot refused');
      this.endWithAck(conn, false, reason);
      return;
    }
    const snapshotDir = this.opts.snapshotDir as string;
    conn.reader.setMaxPayload(SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES);
    const snap: IncomingSnapshot = {
      message: m,
      dir: stagedDirFor(snapshotDir, m),
      queue: new ChunkQueue(() => {
        this.touchSnapshot(conn, snap);
        if (conn.socket.isPaused() && snap.queue.queuedBytes <= SNAPSHOT_RECEIVE_QUEUE_MAX_BYTES / 2)
          conn.socket.resume();
      }),
      idle: undefined,
      task: Promise.resolve(),
    };
    conn.snapshot = snap;
    this.incoming.add(snap);
    this.touchSnapshot(conn, snap);
    this.opts.logger.info(
      { peer: peer.name, index: m.snapshot?.metadata.index, dir: snap.dir },
      'receiving snapshot',
    );
    snap.task = this.receiveSnapshot(conn, peer, snap);
  }

  /** touchSnapshot restarts the idle timer of a stream still expecting bytes. */
  private touchSnapshot(conn: Inbound, snap: IncomingSnapshot): void {
    if (snap.queue.isEnded || conn.dropped) return;
    snap.idle?.cancel();
    const idleMs = this.opts.snapshotIdleMs ?? SNAPSHOT_IDLE_MS;
    snap.idle = this.opts.clock.after(idleMs, () =>
      this.dropInbound(conn, 'warn', `snapshot stream idle for ${idleMs} ms`),
    );
  }

  /**
   * receiveSnapshot restores the stream into the staged directory, then hands it over and acks;
   * on any failure it deletes the directory and (if the connection is still there) acks the
   * reason. The slot is freed only once the directory is handed over or gone.
   */
  private async receiveSnapshot(
    conn: Inbound,
    peer: { readonly name: string },
    snap: IncomingSnapshot,
  ): Promise<void> {
    let failure: string | undefined;
    try {
      const summary = await restoreArchive(nodeFileSystem, snap.queue, snap.dir);
      if (this.closed) failure = 'transport closed';
      else
        this.opts.logger.info(
          { peer: peer.name, dir: snap.dir, files: summary.files, bytes: summary.bytes, keys: summary.keys },
          'snapshot staged',
        );
    } catch (err) {
      if (err instanceof AssertionError) throw err;
      failure = err instanceof Error ? err.message : String(err);
    }
    snap.idle?.cancel();
    snap.idle = undefined;
    // Nothing more is read for a stream that failed (its queue is ignored) or was staged.
    conn.refused = true;
    if (failure === undefined) {
      this.incoming.delete(snap);
      this.stats.snapshotsReceived++;
      const onSnapshot = this.opts.handlers.onSnapshot;
      assert(onSnapshot !== undefined, 'a snapshot was received without a handler');
      this.callHandler(() => onSnapshot.call(this.opts.handlers, snap.message, snap.dir));
      this.endWithAck(conn, true, '');
      return;
    }
    this.stats.snapshotsFailed++;
    this.opts.logger.warn(
      { remote: conn.remote, peer: peer.name, reason: failure },
      'snapshot receive failed',
    );
    try {
      await removeStagedDir(nodeFileSystem, snap.dir);
    } catch (err) {
      this.opts.logger.error(
        { dir: snap.dir, err: err instanceof Error ? err.message : String(err) },
        'cannot remove a failed staged snapshot (it is removed at the next start)',
      );
    }
    this.incoming.delete(snap);
    this.endWithAck(conn, false, failure);
  }

  /** endWithAck sends the ack of a snapshot stream and closes; a sender that lingers is cut off. */
  private endWithAck(conn: Inbound, ok: boolean, reason: string): void {
    conn.refused = true;
    if (conn.dropped) return;
    conn.timer?.cancel();
    conn.timer = this.opts.clock.after(HANDSHAKE_TIMEOUT_MS, () =>
      this.dropInbound(conn, 'debug', 'ack sent'),
    );
    conn.socket.resume(); // a paused socket would never see the sender close
    conn.socket.end(encodeSnapshotAck(ok, reason));
  }

  private dropInbound(conn: Inbound, level: 'debug' | 'info' | 'warn' | 'silent', reason: string): void {
    if (conn.dropped) return;
    conn.dropped = true;
    conn.timer?.cancel();
    this.inbound.delete(conn);
    conn.socket.destroy();
    const snap = conn.snapshot;
    if (snap !== undefined) {
      snap.idle?.cancel();
      snap.idle = undefined;
      snap.queue.fail(new SnapshotTransferError(`the snapshot stream broke: ${reason}`));
    }
    if (level !== 'silent') {
      this.opts.logger[level](
        { remote: conn.remote, peer: conn.peer?.name, reason },
        'peer connection dropped',
      );
    }
  }

  private isMember(id: NodeId, name: string): boolean {
    const out = this.outbound.get(id);
    return out !== undefined && out.peer.name === name;
  }

  /**
   * callHandler runs a handler from an event callback. An operating error thrown by the driver is
   * logged rather than crashing the process from inside a socket event; an AssertionError is a
   * bug and is rethrown, to crash loudly as assertions do everywhere.
   */
  private callHandler(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof AssertionError) throw err;
      this.opts.logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        'transport handler failed',
      );
    }
  }
}

/** raftFrame encodes a batch of `payloadBytes` (encodedMessagesSize) as one raft frame, in place. */
function raftFrame(batch: readonly Message[], payloadBytes: number): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes);
  const end = encodeMessagesInto(batch, buf, FRAME_HEADER_BYTES);
  assert(end === buf.length, 'raft frame size was miscounted');
  sealFrame(buf, 'raft');
  return buf;
}
