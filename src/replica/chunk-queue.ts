// ChunkQueue: the bridge between a socket's 'data' events (push) and a consumer that pulls an
// async iterable (restoreArchive). It holds what the consumer has not taken yet; the producer
// reads `queuedBytes` to pause its socket above a bound, and `onTake` tells it when the consumer
// made room (to resume) or made progress at all (an idle timer).
//
// The queue keeps the chunks it is given by reference until they are taken: the producer must
// hand it chunks of their own (decodeSnapshotPart copies), never views of a buffer it reuses.
import { assert } from '../stdx/assert.js';

export class ChunkQueue implements AsyncIterable<Uint8Array> {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private ended = false;
  private error: Error | undefined;
  private wake: (() => void) | undefined;
  private iterated = false;

  constructor(
    /** onTake runs after the consumer took a chunk (queuedBytes is already lower). */
    private readonly onTake: () => void = () => {},
  ) {}

  /** queuedBytes: bytes pushed and not yet taken. */
  get queuedBytes(): number {
    return this.bytes;
  }

  /** isEnded: end() was called (the producer has nothing more). */
  get isEnded(): boolean {
    return this.ended;
  }

  push(chunk: Buffer): void {
    if (this.ended || this.error !== undefined) return;
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    this.poke();
  }

  /** end: no more chunks; the consumer sees the end once it took every chunk. */
  end(): void {
    this.ended = true;
    this.poke();
  }

  /**
   * fail: the consumer's next pull throws `err` (chunks not taken are dropped). A queue that
   * already ended is complete, so failing it afterwards changes nothing.
   */
  fail(err: Error): void {
    if (this.ended || this.error !== undefined) return;
    this.error = err;
    this.chunks.length = 0;
    this.bytes = 0;
    this.poke();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    // One consumer: two would split the stream between them.
    assert(!this.iterated, 'a ChunkQueue is iterated once');
    this.iterated = true;
    for (;;) {
      if (this.error !== undefined) throw this.error;
      const chunk = this.chunks.shift();
      if (chunk !== undefined) {
        this.bytes -= chunk.length;
        this.onTake();
        yield chunk;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
