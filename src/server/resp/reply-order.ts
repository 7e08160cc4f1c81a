// Reply order: a connection's replies, held until the writes they reveal are durable, and sent in
// request order.
//
// A command that writes (or reads a value whose write is not durable yet, see
// src/txn/write-pipeline.ts) returns a Held reply: it may only be sent once its durability promise
// resolves. The connection does not wait for that before executing the next command: later
// commands run at once (so a pipeline of writes shares one group commit), but their replies go
// into the held reply's "tail" writer and leave only after it. So replies are always in request
// order, and no reply reveals a write before it is durable.
//
// ReplyOrder owns the writers and the chunks ready for the socket; the connection (connection.ts)
// writes immediate replies into `w`, hands it held ones, and takes the ready chunks to send.
import { ReplyWriter, type RespVersion } from '../../protocol/resp/index.js';
import { assert } from '../../stdx/assert.js';
import { errorReply } from './errors.js';

/** Segment: a held reply and the replies of the commands executed after it (its tail). */
interface Segment {
  readonly protocol: RespVersion;
  readonly reply: (w: ReplyWriter) => void;
  /** tail: made when the first reply after this one is written (most held replies get none). */
  tail: ReplyWriter | undefined;
  readonly command: string;
  readonly started: number;
  settled: boolean;
  error: unknown;
  /** closedBytes: the tail's size when a later segment closed it (counted in heldBytes). */
  closedBytes: number;
  /** after: run once this segment is released (afterReleased). */
  after: (() => void)[] | undefined;
}

/** SEGMENTS_COMPACT_AT: released segments kept at the head of the array before it is compacted. */
const SEGMENTS_COMPACT_AT = 1024;

/**
 * Released is called for each held reply as it is released, in order: `error` is why its write
 * failed (the client got an error reply instead), undefined when it succeeded.
 */
export type Released = (command: string, started: number, error: unknown) => void;

export class ReplyOrder {
  private readonly main: ReplyWriter;
  /** out: chunks ready for the socket, before anything still in `main`. */
  private out: Buffer[] = [];
  private outBytes = 0;
  private segments: Segment[] = [];
  private head = 0;
  /** heldBytes: bytes in closed tails of unreleased segments. */
  private heldBytes = 0;
  /**
   * waiting: the newest segments held on one durability promise, settled by one pair of
   * callbacks (writes of one group commit share a promise; issue 14).
   */
  private waiting: { durable: Promise<void>; segments: Segment[] } | undefined;

  constructor(
    protocol: RespVersion,
    private readonly released: Released,
    /** afterRelease: called once released replies are ready (the connection sends and resumes). */
    private readonly afterRelease: () => void,
  ) {
    this.main = new ReplyWriter(protocol);
  }

  /** w: the writer for an immediate reply, in order after everything before it. */
  get w(): ReplyWriter {
    if (this.head === this.segments.length) return this.main;
    const last = this.segments[this.segments.length - 1]!;
    last.tail ??= new ReplyWriter(last.protocol);
    return last.tail;
  }

  setProtocol(version: RespVersion): void {
    this.main.protocol = version;
    this.w.protocol = version;
  }

  /** tailBytes: bytes written after the newest held reply. */
  private get tailBytes(): number {
    return this.head < this.segments.length
      ? (this.segments[this.segments.length - 1]!.tail?.pendingBytes ?? 0)
      : 0;
  }

  /** inflight counts held replies not yet released. */
  get inflight(): number {
    return this.segments.length - this.head;
  }

  /** pendingBytes counts reply bytes not yet handed to the socket (ready, written or held). */
  get pendingBytes(): number {
    return this.outBytes + this.main.pendingBytes + this.heldBytes + this.tailBytes;
  }

  /** hasOutput: whether anything can be sent now. */
  get hasOutput(): boolean {
    return this.outBytes !== 0 || this.main.pendingBytes !== 0;
  }

  /**
   * hold queues a reply that may only be sent once `durable` resolves, written in `protocol`;
   * replies written to `w` from now on follow it.
   */
  hold(
    durable: Promise<void>,
    reply: (w: ReplyWriter) => void,
    protocol: RespVersion,
    command: string,
    started: number,
  ): void {
    if (this.head < this.segments.length) {
      const last = this.segments[this.segments.length - 1]!;
      last.closedBytes = last.tail?.pendingBytes ?? 0;
      this.heldBytes += last.closedBytes;
    }
    const seg: Segment = {
      protocol,
      reply,
      tail: undefined,
      command,
      started,
      settled: false,
      error: undefined,
      closedBytes: 0,
      after: undefined,
    };
    this.segments.push(seg);
    const waiting = this.waiting;
    if (waiting !== undefined && waiting.durable === durable) {
      waiting.segments.push(seg);
      return;
    }
    const segments = [seg];
    this.waiting = { durable, segments };
    durable.then(
      () => this.settle(durable, segments, undefined),
      (err: unknown) => this.settle(durable, segments, err ?? new Error('write failed')),
    );
  }

  /** settle marks segments held on one promise settled, then releases what can go. */
  private settle(durable: Promise<void>, segments: readonly Segment[], error: unknown): void {
    if (this.waiting?.durable === durable) this.waiting = undefined;
    for (const seg of segments) {
      seg.settled = true;
      seg.error = error;
    }
    this.release();
  }

  /** afterReleased runs `fn` once every reply held so far is released (at once when none is). */
  afterReleased(fn: () => void): void {
    if (this.head === this.segments.length) {
      fn();
      return;
    }
    const last = this.segments[this.segments.length - 1]!;
    last.after ??= [];
    last.after.push(fn);
  }

  /** gather moves immediate replies to the ready chunks; true when any chunk is ready. */
  gather(): boolean {
    this.takeMain();
    return this.out.length > 0;
  }

  /** takeReady hands over every chunk that can be sent now, in order. */
  takeReady(): Buffer[] {
    this.takeMain();
    const chunks = this.out;
    this.out = [];
    this.outBytes = 0;
    return chunks;
  }

  /** release moves settled held replies at the head, with their tails, to the output. */
  private release(): void {
    while (this.head < this.segments.length && this.segments[this.head]!.settled) {
      const seg = this.segments[this.head]!;
      this.segments[this.head] = undefined as unknown as Segment;
      this.head++;
      this.heldBytes -= seg.closedBytes;
      // Released replies go on after what `main` holds, in the same slab: a pipeline of held
      // replies (16 SETs of one read) becomes one chunk and one socket write, not a writev of
      // 16 (issue 14). Only a tail, written elsewhere, needs main's bytes moved out first.
      const protocol = this.main.protocol;
      this.main.protocol = seg.protocol;
      if (seg.error === undefined) seg.reply(this.main);
      else this.main.error(errorReply(seg.error));
      this.main.protocol = protocol;
      this.released(seg.command, seg.started, seg.error);
      if (seg.tail !== undefined) {
        this.takeMain();
        for (const chunk of seg.tail.takeChunks()) {
          this.out.push(chunk);
          this.outBytes += chunk.length;
        }
      }
      if (seg.after !== undefined) for (const fn of seg.after) fn();
    }
    if (this.head === this.segments.length) {
      this.segments = [];
      this.head = 0;
      assert(this.heldBytes === 0, 'held bytes are counted exactly');
    } else if (this.head >= SEGMENTS_COMPACT_AT && this.head * 2 >= this.segments.length) {
      this.segments = this.segments.slice(this.head);
      this.head = 0;
    }
    this.afterRelease();
  }

  private takeMain(): void {
    if (this.main.pendingBytes === 0) return;
    for (const chunk of this.main.takeChunks()) {
      this.out.push(chunk);
      this.outBytes += chunk.length;
    }
  }
}
