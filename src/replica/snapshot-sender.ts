// SnapshotSender: one snapshot stream to one peer, on a connection of its own
// (docs/peer-protocol.md, "Snapshots"): connect, hello/welcome as on every peer connection, then
// begin, the archive of the engine's files in chunk frames, end, and wait for the receiver's ack.
//
// Memory: the archive is read a piece at a time (writeArchive reads files in 1 MiB steps) and
// every write respects the socket's backpressure (we wait for 'drain'), so at most about one
// piece plus the socket's high-water mark is held, whatever the size of the store.
//
// Failure: every operating error (refused, reset, a protocol error, no progress for idleMs, an
// error ack, the source failing) rejects run() with an error saying why; abort() does the same
// from outside. The source is opened only once the peer has welcomed us, and always closed.
import * as net from 'node:net';
import type { Clock, Timer } from '../io/clock.js';
import type { Message } from '../raft/types.js';
import type { BackupSource } from '../storage/engine.js';
import { writeArchive } from '../storage/snapshot-archive.js';
import { PeerProtocolError, SnapshotTransferError } from './errors.js';
import { checkWelcome, decodeRefuse, decodeWelcome, MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES } from './handshake.js';
import { type FrameKind, FrameReader } from './peer-frame.js';
import {
  decodeSnapshotPart,
  encodeSnapshotBegin,
  encodeSnapshotChunks,
  encodeSnapshotEnd,
  SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES,
} from './snapshot-frame.js';
import type { SnapshotSource } from './transport.js';

export interface SnapshotSenderOptions {
  readonly host: string;
  readonly port: number;
  /** peer: whom the welcome must come from. */
  readonly peer: { readonly id: number; readonly name: string };
  /** hello: our hello frame (the transport builds it, as for its message connections). */
  readonly hello: Buffer;
  readonly message: Message;
  readonly source: SnapshotSource;
  readonly clock: Clock;
  /** handshakeTimeoutMs: connect plus hello/welcome. */
  readonly handshakeTimeoutMs: number;
  /** idleMs: the stream fails when no write drains and no byte arrives for this long. */
  readonly idleMs: number;
  /** onBytes: archive bytes handed to the socket (counters). */
  readonly onBytes: (n: number) => void;
}

interface Received {
  readonly kind: FrameKind;
  /** payload: a copy (the reader's frames are views of its buffer). */
  readonly payload: Buffer;
}

export class SnapshotSender {
  private socket: net.Socket | undefined;
  private readonly reader = new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES);
  private readonly inbox: Received[] = [];
  private broken: Error | undefined;
  private wake: (() => void) | undefined;
  private timer: Timer | undefined;
  /** streaming: past the handshake, where any progress restarts the idle timer. */
  private streaming = false;
  /** ended: the end frame is written; the receiver's answer is due. */
  private ended = false;

  constructor(private readonly opts: SnapshotSenderOptions) {}

  /** abort fails the stream now (a run() in progress rejects with `reason`). */
  abort(reason: string): void {
    this.fail(new SnapshotTransferError(reason));
  }

  /** run streams the snapshot; it resolves once the receiver acknowledged it as staged. */
  async run(): Promise<void> {
    let backup: BackupSource | undefined;
    try {
      await this.handshake();
      backup = await this.opts.source();
      this.check();
      await this.stream(backup);
    } finally {
      this.streaming = false;
      this.timer?.cancel();
      this.timer = undefined;
      if (this.broken === undefined) this.socket?.end();
      else this.socket?.destroy();
      await backup?.close();
    }
  }

  private async handshake(): Promise<void> {
    const { host, port, hello, handshakeTimeoutMs, peer } = this.opts;
    this.arm(handshakeTimeoutMs, `no welcome within ${handshakeTimeoutMs} ms`);
    const socket = net.connect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write(hello));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.progress());
    socket.on('error', (err) => this.fail(new SnapshotTransferError(err.message)));
    socket.on('close', () => this.fail(new SnapshotTransferError('connection closed')));
    const first = await this.nextFrame();
    if (first.kind === 'refuse')
      throw new SnapshotTransferError(`refused: ${decodeRefuse(first.payload).reason}`);
    if (first.kind !== 'welcome') throw new PeerProtocolError(`${first.kind} frame instead of a welcome`);
    const reason = checkWelcome(decodeWelcome(first.payload), peer);
    if (reason !== undefined) throw new SnapshotTransferError(`refusing the welcome: ${reason}`);
    this.reader.setMaxPayload(SNAPSHOT_CHUNK_FRAME_PAYLOAD_BYTES);
  }

  private async stream(backup: BackupSource): Promise<void> {
    this.streaming = true;
    this.armIdle();
    await this.write(encodeSnapshotBegin(this.opts.message));
    for await (const piece of writeArchive(backup)) {
      for (const frame of encodeSnapshotChunks(piece)) await this.write(frame);
      this.opts.onBytes(piece.length);
    }
    await this.write(encodeSnapshotEnd());
    this.ended = true;
    const failure = answerError(await this.nextFrame());
    if (failure !== undefined) throw failure;
  }

  /** write hands a frame to the socket and, when the socket asks for it, waits for 'drain'. */
  private async write(frame: Buffer): Promise<void> {
    this.check();
    const socket = this.socket as net.Socket;
    if (!socket.write(frame)) await this.until(() => !socket.writableNeedDrain);
    this.progress();
  }

  private async nextFrame(): Promise<Received> {
    await this.until(() => this.inbox.length > 0);
    return this.inbox.shift() as Received;
  }

  private onData(chunk: Buffer): void {
    if (this.broken !== undefined) return;
    try {
      this.reader.push(chunk);
      for (let f = this.reader.next(); f !== undefined; f = this.reader.next()) {
        this.inbox.push({ kind: f.kind, payload: Buffer.from(f.payload) });
      }
      // An answer before our end is a refusal or a failure (a bad chunk, a full disk): stop
      // sending, and fail with the receiver's reason rather than with the close that follows.
      const early = this.inbox[0];
      if (this.streaming && !this.ended && early !== undefined) {
        this.fail(answerError(early) ?? new PeerProtocolError('a snapshot ack before the end'));
        return;
      }
    } catch (err) {
      if (!(err instanceof PeerProtocolError)) throw err;
      this.fail(err);
      return;
    }
    this.progress();
  }

  /**
   * until waits for `cond` (re-checked at every socket event), or throws once the stream broke.
   * cond first: an ack that arrived just before the receiver closed still counts.
   */
  private async until(cond: () => boolean): Promise<void> {
    for (;;) {
      if (cond()) return;
      this.check();
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private check(): void {
    if (this.broken !== undefined) throw this.broken;
  }

  private fail(err: Error): void {
    if (this.broken !== undefined) return;
    this.broken = err;
    this.timer?.cancel();
    this.socket?.destroy();
    this.poke();
  }

  /** progress: something moved; restart the idle timer (after the handshake) and wake a waiter. */
  private progress(): void {
    if (this.streaming && this.broken === undefined) this.armIdle();
    this.poke();
  }

  private armIdle(): void {
    this.arm(this.opts.idleMs, `no progress for ${this.opts.idleMs} ms`);
  }

  private arm(ms: number, reason: string): void {
    this.timer?.cancel();
    this.timer = this.opts.clock.after(ms, () => this.fail(new SnapshotTransferError(reason)));
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/** answerError: what the receiver's answer to a stream says went wrong (undefined: staged). */
function answerError(reply: Received): Error | undefined {
  if (reply.kind === 'refuse')
    return new SnapshotTransferError(`refused: ${decodeRefuse(reply.payload).reason}`);
  if (reply.kind !== 'snapshot')
    return new PeerProtocolError(`${reply.kind} frame instead of a snapshot ack`);
  const part = decodeSnapshotPart(reply.payload);
  if (part.part !== 'ack') return new PeerProtocolError(`snapshot ${part.part} frame instead of an ack`);
  return part.ok ? undefined : new SnapshotTransferError(`the receiver failed: ${part.reason}`);
}
