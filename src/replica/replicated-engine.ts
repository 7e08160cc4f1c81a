// ReplicatedEngine: the Engine seam of a cluster member (docs/cluster.md, "Effects at the engine
// seam"). The write pipeline above it is unchanged: it decides every write (value, commit
// timestamp, revision, expiry) on the leader and hands it to `write`, which proposes it to the
// Raft group and resolves once a quorum has it on disk and this member applied it to the local
// engine. Reads are the local engine's, that is the applied state, which is what "durable"
// means for a cluster: committed by a quorum and applied here.
//
// Only the ready leader writes (Replica.leaderReady); elsewhere `write` fails with
// ClusterDownError before anything is proposed, and the servers forward commands to the leader
// instead of running them. The expiry cycle lists due keys only on the ready leader, so expiry is
// decided by the leader's clock and replicated as ordinary deletes.
import type {
  BackupInfo,
  BackupSource,
  Engine,
  EngineStats,
  Entry,
  Revision,
  ScanRange,
  Stored,
  WriteOp,
} from '../storage/engine.js';
import { ClusterDownError, InvalidArgumentError } from '../storage/errors.js';
import { checkTs } from '../storage/revision.js';
import { EngineRepairingError } from './errors.js';
import type { Replica } from './replica.js';

export class ReplicatedEngine implements Engine {
  readonly name: string;
  private closing: Promise<void> | undefined;

  constructor(
    /** local: the member's own engine; a snapshot from the leader replaces it (Replica.onEngine). */
    private local: Engine,
    readonly replica: Replica,
    /** onClose: stops the transport and the log once the replica has stopped. */
    private readonly onClose: () => Promise<void>,
  ) {
    this.name = local.name;
    replica.onInstalling.add(() => {
      this.installing = true;
    });
    replica.onEngine.add((engine) => {
      this.local = engine;
      this.installing = false;
    });
  }

  /**
   * installing: a snapshot from the leader is replacing the local engine (closed meanwhile).
   * Local reads (READONLY, ?consistency=serializable) get a ClusterDownError saying so, which
   * clients retry, rather than the closed engine's "store is closed".
   */
  private installing = false;

  private readAsync<T>(read: (engine: Engine) => Promise<T>): Promise<T> {
    try {
      return read(this.readable());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * readable: the local engine, unless a snapshot install has it closed, or it is the empty
   * engine of a member repairing its damaged one (its reads would miss every key).
   */
  private readable(): Engine {
    if (this.replica.repairing) throw new EngineRepairingError();
    if (this.installing) {
      throw new ClusterDownError('this member is installing a snapshot from the leader; retry shortly');
    }
    return this.local;
  }

  /** localEngine: the engine this member applies to now (snapshot installs close and replace it). */
  get localEngine(): Engine {
    return this.local;
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.readAsync((e) => e.get(key));
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    return this.readable().getSync(key);
  }

  has(key: Uint8Array): Promise<boolean> {
    return this.readAsync((e) => e.has(key));
  }

  getStored(key: Uint8Array): Promise<Stored | undefined> {
    return this.readAsync((e) => e.getStored(key));
  }

  getStoredSync(key: Uint8Array): Stored | undefined {
    return this.readable().getStoredSync(key);
  }

  expiry(key: Uint8Array): Promise<number | null | undefined> {
    return this.readAsync((e) => e.expiry(key));
  }

  revisionSync(key: Uint8Array): Revision | undefined {
    return this.readable().revisionSync(key);
  }

  lastTs(): number {
    return Math.max(this.local.lastTs(), this.replica.lastProposedTs);
  }

  write(ts: number, ops: readonly WriteOp[]): Promise<void> {
    checkTs(ts, this.lastTs());
    return this.replica.propose(ts, ops);
  }

  checkWriteAllowed(): void {
    this.replica.checkWritable();
  }

  writeFailure(): Error | undefined {
    return this.local.writeFailure?.();
  }

  readBarrier(): Promise<void> {
    return this.replica.linearizable();
  }

  dueExpiries(nowMs: number, max: number): Uint8Array[] {
    return this.replica.leaderReady ? this.local.dueExpiries(nowMs, max) : [];
  }

  scan(range?: ScanRange): AsyncIterableIterator<Entry> {
    return this.readable().scan(range);
  }

  flush(): Promise<void> {
    return this.local.flush();
  }

  compact(): Promise<void> {
    return this.local.compact();
  }

  stats(): EngineStats {
    return this.local.stats();
  }

  /**
   * backup and backupSource copy the local engine: the state this member applied. A caller that
   * wants every acknowledged write first waits for replica.linearizable() (routes-snapshot.ts).
   */
  backup(dir: string): Promise<BackupInfo> {
    if (this.replica.repairing) return Promise.reject(new EngineRepairingError());
    if (this.local.backup === undefined) return Promise.reject(noBackup(this.local));
    return this.local.backup(dir);
  }

  backupSource(): Promise<BackupSource> {
    if (this.replica.repairing) return Promise.reject(new EngineRepairingError());
    if (this.local.backupSource === undefined) return Promise.reject(noBackup(this.local));
    return this.local.backupSource();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.replica.close();
        await this.onClose();
      } finally {
        await this.local.close();
      }
    })();
    return this.closing;
  }
}

function noBackup(engine: Engine): InvalidArgumentError {
  return new InvalidArgumentError(`the ${engine.name} engine cannot be backed up online`);
}
