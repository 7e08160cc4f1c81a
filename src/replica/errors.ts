// Typed operating errors of the replica layer. The I/O failures of the WAL reuse the storage
// layer's IoError (the call failed) and StoreFailedError (writes refused until a restart).
import { CairnError } from '../storage/errors.js';

/**
 * WalCorruptError: the WAL holds damage that recovery may not repair on its own: a bad frame or
 * header in a sealed segment, a missing segment, a gap in the entry indexes, or a batch that
 * breaks the log's rules. Recovery changed nothing on disk; entries that may have been
 * acknowledged are never dropped to get past it.
 */
export class WalCorruptError extends CairnError {
  constructor(
    /** file is the segment (a path) where the damage was found. */
    readonly file: string,
    /** offset is the byte offset in it of the damaged frame or header. */
    readonly offset: number,
    readonly reason: string,
  ) {
    super('CORRUPTION', `WAL corrupt at ${file} offset ${offset}: ${reason}`);
  }
}
