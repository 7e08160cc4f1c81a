// Typed operating errors of the replica layer. The I/O failures of the WAL reuse the storage
// layer's IoError (the call failed) and StoreFailedError (writes refused until a restart).
import { CairnError, ClusterDownError, CorruptionError } from '../storage/errors.js';

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

// The peer transport's errors. A peer that sends bytes we cannot accept
// (damaged, truncated, hostile, or from an incompatible version) is an operating error: the
// connection is dropped and the process carries on. Programmer errors (sending a local message,
// a term that is not a safe integer) are assertions instead (src/stdx/assert.ts).

/** PeerProtocolError: bytes from a peer do not follow docs/peer-protocol.md. */
export class PeerProtocolError extends Error {
  override name = 'PeerProtocolError';
}

/** TransportStartError: the transport cannot start (address in use, invalid address). */
export class TransportStartError extends Error {
  override name = 'TransportStartError';
}

/**
 * MembershipRefusedError: a membership change the leader will not make (the strict checks,
 * reconfig-check.ts, or an unknown member). Nothing was proposed; the message says why.
 * `kind` 'not-found': the named member does not exist.
 */
export class MembershipRefusedError extends CairnError {
  constructor(
    message: string,
    readonly kind: 'refused' | 'not-found',
  ) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * SnapshotTransferError: a snapshot stream to or from a peer failed: the peer is unreachable,
 * refused it, stopped making progress, or could not stage it. The sender reports the snapshot
 * failed to Raft, which sends it again later; nothing else is affected.
 */
export class SnapshotTransferError extends Error {
  override name = 'SnapshotTransferError';
}

/**
 * EngineRepairingError: this member's engine was damaged and set aside, and it is waiting for a
 * snapshot of the state from another member (docs/cluster.md, "Repairing a damaged engine"):
 * it serves no reads until then. A CLUSTERDOWN: retrying, or asking another member, is safe.
 */
export class EngineRepairingError extends ClusterDownError {
  constructor() {
    super(
      'this member is repairing its damaged engine (waiting for a snapshot of the state from the leader); retry, or read from another member',
    );
  }
}

/**
 * ReadUnconfirmedError: a read this member was asked to confirm (Replica.confirmRead, the
 * cluster's /healthz) did not finish in time: `step` 'quorum' when the leader never confirmed
 * it with a quorum (no leader reachable, or the leader cut off from a majority), 'apply' when it
 * did but this member's apply had not reached the read index (`readIndex`, `applied`: how far).
 * A CLUSTERDOWN: nothing happened, and the member cannot serve a linearizable read now.
 */
export class ReadUnconfirmedError extends ClusterDownError {
  constructor(
    readonly step: 'quorum' | 'apply',
    message: string,
    readonly readIndex: number | undefined,
    readonly applied: number,
  ) {
    super(message);
  }
}

/**
 * RepairSnapshotDamagedError: a snapshot fetched to repair the engine does not open cleanly. It
 * is discarded before the engine is touched; the member asks for another.
 */
export class RepairSnapshotDamagedError extends CorruptionError {}

/**
 * MemberStartRefusedError: a member starting from an empty directory was told by a peer that
 * its id already started (or was removed): its lost directory held votes and entries the
 * cluster may count on, and starting afresh could lose committed writes (start-check.ts).
 * Nothing was created; `cairn serve` exits with EXIT_MEMBER_STARTED_BEFORE.
 */
export class MemberStartRefusedError extends CairnError {
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/**
 * MemberRemovedError: a member whose member.json records that it was removed from the cluster
 * is started again. A removed member never rejoins (its peers refuse it, its id is never
 * reused), so it does not start at all, as etcd's exits, instead of printing the start banner
 * and serving CLUSTER_DOWN. Nothing was opened; `cairn serve` exits with
 * EXIT_MEMBER_STARTED_BEFORE (a supervisor must not restart it in a loop either).
 */
export class MemberRemovedError extends MemberStartRefusedError {
  constructor(name: string, file: string, dir: string) {
    super(
      `member '${name}' was removed from the cluster (${file} records its removal): a removed member never rejoins and serves nothing, so it is not started. Delete ${dir}; to bring this machine back, add it under a new name: cairn member add NEWNAME --peer-url ADDR, then start NEWNAME on an empty directory with --initial-cluster-state existing (docs/cluster-ops.md, "Removing a member")`,
    );
  }
}

/**
 * RemovedMemberStoppedError: a running member learned that it was removed from the cluster
 * (removal.ts) and stopped, as etcd's does: `cairn serve` closed its listeners and exits with
 * EXIT_MEMBER_STARTED_BEFORE (3), the code its next start would be refused with
 * (MemberRemovedError), so that a supervisor does not restart it.
 */
export class RemovedMemberStoppedError extends CairnError {
  constructor(
    /** removal: what the member said of it (describeRemoval) and where its directory is. */
    removal: string,
    dir: string,
    recorded: boolean,
  ) {
    super(
      'CLUSTER_DOWN',
      `${removal}; it stopped. ${recorded ? `${dir} records the removal, so it is not started again` : `member.json in ${dir} could not record the removal: a restart learns it again from the cluster and stops again`}. Delete ${dir}; to bring this machine back, add it under a new name: cairn member add NEWNAME --peer-url ADDR, then start NEWNAME on an empty directory with --initial-cluster-state existing (docs/cluster-ops.md, "Removing a member")`,
    );
  }
}
