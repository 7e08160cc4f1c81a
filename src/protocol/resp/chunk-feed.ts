// ChunkFeed: what both RESP parsers (requests and replies) share: taking ownership of pushed
// chunks, moving to the next queued chunk when the current one is used up, counting what is
// buffered, and the poison state after a protocol error. Subclasses parse `buf` from `pos`.
import type { RespProtocolError } from './errors.js';

export const EMPTY = Buffer.alloc(0);

export abstract class ChunkFeed {
  /** buf, pos: the chunk being parsed and the next byte in it. */
  protected buf: Buffer = EMPTY;
  protected pos = 0;
  /** queue: chunks pushed but not yet reached (only when the caller pushes without draining). */
  private queue: Buffer[] = [];
  private queueHead = 0;
  protected queuedBytes = 0;
  protected poison: RespProtocolError | null = null;

  /**
   * push hands a chunk to the parser, which takes ownership of it: the caller must not modify
   * it afterwards. It never parses. Throws the parser's error if it is poisoned.
   */
  push(chunk: Buffer): void {
    if (this.poison !== null) throw this.poison;
    if (chunk.length === 0) return;
    if (this.pos >= this.buf.length && this.queueHead === this.queue.length) {
      this.carry();
      this.buf = chunk;
      this.pos = 0;
    } else {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    }
  }

  /** error is the error that poisoned the parser, or null. */
  get error(): RespProtocolError | null {
    return this.poison;
  }

  /**
   * advance moves to the next queued chunk once `buf` is used up; it returns false when there is
   * none (more bytes are needed).
   */
  protected advance(): boolean {
    if (this.queueHead === this.queue.length) {
      if (this.queue.length > 0) this.queue = [];
      this.queueHead = 0;
      return false;
    }
    this.carry();
    const chunk = this.queue[this.queueHead]!;
    this.queue[this.queueHead++] = EMPTY;
    this.queuedBytes -= chunk.length;
    this.buf = chunk;
    this.pos = 0;
    return true;
  }

  /**
   * ownUnparsed copies the bytes pushed but not parsed yet (the rest of `buf` and queued
   * chunks), so the caller may reuse what it pushed. The subclass copies what it keeps of the
   * value being parsed (see RequestParser.own), after accounting for `pos` first.
   */
  protected ownUnparsed(): void {
    this.buf = this.pos < this.buf.length ? Buffer.from(this.buf.subarray(this.pos)) : EMPTY;
    this.pos = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i] = Buffer.from(this.queue[i]!);
  }

  /** poisonWith drops every buffered byte and makes every later call throw `error`. */
  protected poisonWith(error: RespProtocolError): RespProtocolError {
    this.poison = error;
    this.buf = EMPTY;
    this.pos = 0;
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    return error;
  }

  /** carry notes, before `buf` is replaced, how much of the value being parsed it held. */
  protected abstract carry(): void;
}
