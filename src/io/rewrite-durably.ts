// rewriteDurably makes bytes of a file durable that an earlier process may have failed to sync.
//
// After a failed fsync Linux marks the dirty pages clean without writing them (lost-writeback.ts,
// "fsyncgate"): the next process opening the file reads the bytes from the page cache, and an
// fsync of its own returns success without writing them; a power cut then takes them. Only a
// write dirties the pages again. So a store that reads, at open after an unclean shutdown, bytes
// past the point it knows was synced, and is about to trust them (serve them, count them as
// persisted, snapshot them), first writes them back where they are and then fdatasyncs. The bytes
// written are the bytes read, so the rewrite changes nothing a reader can see; it costs a
// sequential read from the page cache and a write and sync of the range.
import type { File } from './file-system.js';

/** REWRITE_CHUNK_BYTES: the rewrite reads and writes back this much at a time (one buffer). */
export const REWRITE_CHUNK_BYTES = 1024 * 1024;

/** RewriteShortReadError: the file ended before the range to rewrite did (it shrank meanwhile). */
export class RewriteShortReadError extends Error {
  constructor(path: string, at: number, to: number) {
    super(`${path} ended at byte ${at} while rewriting it up to byte ${to}: did something else truncate it?`);
    this.name = 'RewriteShortReadError';
  }
}

/**
 * rewriteDurably writes bytes [from, to) of `file` back in place, then fdatasyncs the file (also
 * when the range is empty, so that a caller's truncation or other writes are synced with it).
 */
export async function rewriteDurably(file: File, from: number, to: number): Promise<void> {
  if (to > from) {
    const chunk = Buffer.allocUnsafe(Math.min(REWRITE_CHUNK_BYTES, to - from));
    for (let at = from; at < to; ) {
      const want = Math.min(chunk.length, to - at);
      const n = await file.read(chunk, 0, want, at);
      if (n <= 0) throw new RewriteShortReadError(file.path, at, to);
      await file.write(chunk.subarray(0, n), at);
      at += n;
    }
  }
  await file.datasync();
}
