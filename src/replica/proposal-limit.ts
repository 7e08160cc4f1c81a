// The largest proposal a cluster can replicate. An entry travels to the followers inside one
// MsgApp, and a MsgApp inside one peer frame (peer-frame.ts): an entry whose message cannot fit a
// frame is dropped by the transport at every send, so it never commits, and every later write
// waits behind it for ever (`CLUSTERDOWN ... earlier write(s) is not known yet`). An entry over
// the log's own MAX_ENTRY_BYTES is refused when saved, which fails the leader. Both were found
// from outside (a 20 MiB and a 64 MiB PUT); a proposal past the limit is now refused up front,
// with nothing appended.
import { LimitError } from '../storage/errors.js';
import { BATCH_HEADER_BYTES, ENTRY_FIXED_BYTES, MESSAGE_FIXED_BYTES } from './message-codec.js';
import { MAX_PEER_FRAME_PAYLOAD_BYTES } from './peer-frame.js';
import { MAX_ENTRY_BYTES } from './wal-format.js';

/**
 * PROPOSAL_BYTES_MAX: the most data one entry may carry: a frame holding one MsgApp (no context)
 * with that entry alone, and at most the log's entry limit.
 */
export const PROPOSAL_BYTES_MAX = Math.min(
  MAX_ENTRY_BYTES,
  MAX_PEER_FRAME_PAYLOAD_BYTES - BATCH_HEADER_BYTES - MESSAGE_FIXED_BYTES - ENTRY_FIXED_BYTES,
);

/** checkProposal refuses an encoded write the cluster could not replicate, before it is proposed. */
export function checkProposal(data: Uint8Array): void {
  if (data.length > PROPOSAL_BYTES_MAX) {
    throw new LimitError(
      `this write is ${data.length} bytes encoded; a cluster replicates at most ${PROPOSAL_BYTES_MAX} bytes in one write (PROPOSAL_BYTES_MAX): write it in smaller parts`,
    );
  }
}
