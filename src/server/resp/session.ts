// Session: one RESP connection's transaction state: the MULTI queue, the WATCHed keys and the
// open interactive transaction (TXN.BEGIN). The commands that use it live in
// commands/transactions.ts; the connection asks it whether to queue a command instead of running
// it, and closes it on disconnect (which releases the watch and rolls back the transaction).
//
// Idleness: a watch or an open transaction pins versions in memory, so a connection that holds
// one and sends nothing for `idleMs` (limits.ts, TXN_IDLE_MS) loses it: the transaction is
// rolled back and every later command but TXN.ROLLBACK / TXN.COMMIT (which both end it, COMMIT
// with the error) fails with ERR_TXN_IDLE, so that no command meant for the transaction runs
// outside it by mistake; the watch counts as changed, so EXEC replies nil.
import type { Db } from '../../db/db.js';
import { keyOf, type Mvcc, type Registration } from '../../txn/mvcc.js';
import type { CommandSpec } from './command-table.js';
import { CommandError } from './errors.js';
import type { KeyStore } from './key-store.js';
import { MULTI_QUEUE_BYTES_MAX, MULTI_QUEUE_COMMANDS_MAX, WATCHED_KEYS_MAX } from './limits.js';
import type { TxnKeyStore } from './txn-key-store.js';

/** RUN_WHILE_QUEUING: commands that run at once after MULTI instead of being queued (as Redis). */
export const RUN_WHILE_QUEUING: ReadonlySet<string> = new Set(['exec', 'discard', 'multi', 'watch', 'quit']);

export const ERR_EXECABORT = 'EXECABORT Transaction discarded because of previous errors.';
export const ERR_NOT_IN_MULTI_ALLOWED = 'ERR Command not allowed inside a transaction';

/** RUN_WHEN_TXN_IDLE: the commands that still run after an idle transaction was rolled back. */
export const RUN_WHEN_TXN_IDLE: ReadonlySet<string> = new Set(['txn.rollback', 'txn.commit', 'quit']);

function errTxnIdle(idleMs: number): string {
  return `ERR the transaction was rolled back after ${idleMs} ms idle; TXN.ROLLBACK ends it`;
}

export interface QueuedCommand {
  readonly spec: CommandSpec;
  readonly args: Buffer[];
}

/** Queued: what EXEC takes: the commands, and whether one was rejected while queuing. */
export interface Queued {
  readonly commands: readonly QueuedCommand[];
  readonly aborted: boolean;
}

/**
 * Watch: the keys a client WATCHed, each with the commit timestamp current when it was watched.
 * The registration keeps the store tracking the last write of every key (mvcc.lastWrite) from
 * the first WATCH on, so `changed()` can tell whether any watched key was written since.
 */
export class Watch {
  private readonly keys = new Map<string, number>();
  /** dropped: released for idleness; EXEC must fail as if a key had changed. */
  private dropped = false;

  constructor(
    private readonly mvcc: Mvcc,
    private readonly reg: Registration,
  ) {}

  get size(): number {
    return this.keys.size;
  }

  add(key: Buffer): void {
    const k = keyOf(key);
    // Watching a key again keeps the first watch (as Redis: the key is already watched).
    if (!this.keys.has(k)) this.keys.set(k, this.mvcc.lastTs);
  }

  /** changed: was any watched key written since it was watched? Synchronous (see EXEC). */
  changed(): boolean {
    if (this.dropped) return true;
    for (const [k, ts] of this.keys) if (this.mvcc.changedSince(k, ts)) return true;
    return false;
  }

  release(): void {
    this.mvcc.release(this.reg);
  }

  /** drop releases the watch early (idleness); it then always reports a change. */
  drop(): void {
    this.dropped = true;
    this.release();
  }
}

export class Session {
  private queue: QueuedCommand[] | undefined;
  private queueBytes = 0;
  private aborted = false;
  private watching: Watch | undefined;
  private interactive: TxnKeyStore | undefined;
  /** closed: the connection is gone; nothing may be opened (or pinned) any more. */
  private closed = false;
  /** idleError: set when an idle transaction was rolled back, until TXN.ROLLBACK/COMMIT. */
  private idleError: string | undefined;
  private lastActive = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: Db,
    /** idleMs: see the module comment; 0 never drops anything. */
    private readonly idleMs = 0,
    /** busy: whether the connection is running a command (never idle then, however long). */
    private readonly busy: () => boolean = () => false,
  ) {}

  /** touch: the connection runs (or finished) a command now. */
  touch(): void {
    this.lastActive = performance.now();
  }

  /** rolledBackForIdleness: the error every command but RUN_WHEN_TXN_IDLE gets, if any. */
  get rolledBackForIdleness(): string | undefined {
    return this.idleError;
  }

  private armIdle(): void {
    if (this.idleMs <= 0 || this.idleTimer !== undefined) return;
    this.idleTimer = setTimeout(() => this.onIdleTimer(), this.idleMs);
    this.idleTimer.unref();
  }

  private onIdleTimer(): void {
    this.idleTimer = undefined;
    if (this.watching === undefined && this.interactive === undefined) return;
    const idle = this.busy() ? 0 : performance.now() - this.lastActive;
    if (idle < this.idleMs) {
      this.idleTimer = setTimeout(() => this.onIdleTimer(), this.idleMs - idle);
      this.idleTimer.unref();
      return;
    }
    if (this.interactive !== undefined) {
      this.interactive.tx.rollback();
      this.interactive = undefined;
      this.idleError = errTxnIdle(this.idleMs);
    }
    // The Watch object stays, dropped: its EXEC must fail (Redis clients retry on nil).
    this.watching?.drop();
  }

  /** queuing: between MULTI and EXEC/DISCARD. */
  get queuing(): boolean {
    return this.queue !== undefined;
  }

  /** txn: the open interactive transaction's store (TXN.BEGIN), if any. */
  get txn(): TxnKeyStore | undefined {
    return this.interactive;
  }

  /** store: the KeyStore commands of this connection use outside EXEC, when not the server's. */
  get store(): KeyStore | undefined {
    return this.interactive;
  }

  multi(): void {
    if (this.queue !== undefined) throw new CommandError('ERR MULTI calls can not be nested');
    if (this.interactive !== undefined) {
      throw new CommandError('ERR MULTI is not allowed while a TXN.BEGIN transaction is open');
    }
    this.queue = [];
    this.queueBytes = 0;
    this.aborted = false;
  }

  /** enqueue queues a command for EXEC; refusing one makes EXEC fail with EXECABORT. */
  enqueue(spec: CommandSpec, args: Buffer[]): void {
    const queue = this.queue;
    if (queue === undefined) throw new Error('enqueue outside MULTI');
    if (spec.flags.includes('no_multi')) {
      this.aborted = true;
      throw new CommandError(ERR_NOT_IN_MULTI_ALLOWED);
    }
    let bytes = 0;
    for (const a of args) bytes += a.length;
    if (queue.length >= MULTI_QUEUE_COMMANDS_MAX || this.queueBytes + bytes > MULTI_QUEUE_BYTES_MAX) {
      this.aborted = true;
      throw new CommandError(
        `ERR MULTI queue limit reached (${MULTI_QUEUE_COMMANDS_MAX} commands, ${MULTI_QUEUE_BYTES_MAX} bytes)`,
      );
    }
    this.queueBytes += bytes;
    queue.push({ spec, args: copyArgs(args, bytes) });
  }

  /** reject notes a command refused while queuing (unknown, wrong arity, NOAUTH): EXEC aborts. */
  reject(): void {
    if (this.queue !== undefined) this.aborted = true;
  }

  /** takeQueue ends MULTI and hands the queue to EXEC. */
  takeQueue(): Queued {
    const commands = this.queue;
    if (commands === undefined) throw new CommandError('ERR EXEC without MULTI');
    const aborted = this.aborted;
    this.queue = undefined;
    this.queueBytes = 0;
    this.aborted = false;
    return { commands, aborted };
  }

  discard(): void {
    if (this.queue === undefined) throw new CommandError('ERR DISCARD without MULTI');
    this.queue = undefined;
    this.queueBytes = 0;
    this.aborted = false;
    this.unwatch();
  }

  watch(keys: readonly Buffer[]): void {
    if (this.queue !== undefined) throw new CommandError('ERR WATCH inside MULTI is not allowed');
    if (this.closed) throw new CommandError('ERR connection closed');
    const watching = (this.watching ??= new Watch(
      this.db.pipeline.mvcc,
      this.db.pipeline.mvcc.register('watch'),
    ));
    this.armIdle();
    for (const key of keys) {
      if (watching.size >= WATCHED_KEYS_MAX) {
        throw new CommandError(`ERR too many watched keys (at most ${WATCHED_KEYS_MAX})`);
      }
      watching.add(key);
    }
  }

  /** takeWatch hands the watch to EXEC (which releases it): commands it runs cannot change it. */
  takeWatch(): Watch | undefined {
    const w = this.watching;
    this.watching = undefined;
    return w;
  }

  unwatch(): void {
    this.watching?.release();
    this.watching = undefined;
  }

  begin(store: TxnKeyStore): void {
    // TXN.BEGIN awaits the snapshot; the client may have disconnected meanwhile, and then nobody
    // would ever end this transaction (it would pin old versions forever).
    if (this.closed) {
      store.tx.rollback();
      throw new CommandError('ERR connection closed');
    }
    if (this.interactive !== undefined) {
      store.tx.rollback();
      throw new CommandError('ERR a transaction is already open on this connection');
    }
    this.interactive = store;
    this.armIdle();
  }

  /**
   * endTxn detaches the interactive transaction (for TXN.COMMIT / TXN.ROLLBACK); undefined when
   * it was already rolled back for idleness and this is TXN.ROLLBACK (TXN.COMMIT gets the error).
   */
  endTxn(command: 'TXN.COMMIT' | 'TXN.ROLLBACK'): TxnKeyStore | undefined {
    const idleError = this.idleError;
    if (idleError !== undefined) {
      this.idleError = undefined;
      if (command === 'TXN.COMMIT') throw new CommandError(idleError);
      return undefined;
    }
    const store = this.interactive;
    if (store === undefined) throw new CommandError(`ERR ${command} without TXN.BEGIN`);
    this.interactive = undefined;
    return store;
  }

  /** close: the connection is gone: roll back, unwatch, forget the queue. */
  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.interactive?.tx.rollback();
    this.interactive = undefined;
    this.unwatch();
    this.queue = undefined;
  }
}

/**
 * copyArgs copies a queued command's arguments into one buffer of their own (views into it).
 * The parser's arguments are views of the socket chunk they arrived in: kept until EXEC, each
 * would pin its whole chunk (up to 64 KiB) in memory while the queue limit counts only the
 * argument bytes, so a client could hold thousands of times MULTI_QUEUE_BYTES_MAX. One copy
 * also makes the queue independent of how the connection manages its chunks.
 */
function copyArgs(args: readonly Buffer[], bytes: number): Buffer[] {
  const own = Buffer.allocUnsafeSlow(bytes);
  const out: Buffer[] = new Array(args.length);
  let at = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    own.set(a, at);
    out[i] = own.subarray(at, at + a.length);
    at += a.length;
  }
  return out;
}
