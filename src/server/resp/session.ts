// Session: one RESP connection's transaction state: its MULTI queue (multi-queue.ts), its WATCHed
// keys (watch.ts) and its interactive transaction (interactive-txn.ts), and the rules between them
// and the connection. The commands that use it live in commands/transactions.ts; the connection
// asks it whether to queue a command instead of running it, and closes it on disconnect (which
// releases the watch and rolls back the transaction).
//
// Idleness: a watch or an open transaction pins versions in memory, so a connection that holds
// one and sends nothing for `idleMs` (limits.ts, TXN_IDLE_MS) loses it: the transaction is
// rolled back and every later command but TXN.ROLLBACK / TXN.COMMIT (which both end it, COMMIT
// with the error) fails with ERR_TXN_IDLE, so that no command meant for the transaction runs
// outside it by mistake; the watch counts as changed, so EXEC replies nil.
import type { Db } from '../../db/db.js';
import { type Clock, systemClock, type Timer } from '../../io/clock.js';
import type { CommandSpec } from './command-table.js';
import { CommandError } from './errors.js';
import { InteractiveTxn } from './interactive-txn.js';
import type { KeyStore } from './key-store.js';
import { MultiQueue, type Queued } from './multi-queue.js';
import type { TxnKeyStore } from './txn-key-store.js';
import { Watch } from './watch.js';

export class Session {
  private readonly queue = new MultiQueue();
  private watching: Watch | undefined;
  private readonly interactive = new InteractiveTxn();
  /** closed: the connection is gone; nothing may be opened (or pinned) any more. */
  private closed = false;
  private lastActive: number;
  private idleTimer: Timer | undefined;

  constructor(
    private readonly db: Db,
    /** idleMs: see the module comment; 0 never drops anything. */
    private readonly idleMs = 0,
    /** busy: whether the connection is running a command (never idle then, however long). */
    private readonly busy: () => boolean = () => false,
    private readonly clock: Clock = systemClock,
  ) {
    this.lastActive = clock.monotonicMs();
  }

  /** touch: the connection runs (or finished) a command now. */
  touch(now = this.clock.monotonicMs()): void {
    this.lastActive = now;
  }

  /** rolledBackForIdleness: the error every command but RUN_WHEN_TXN_IDLE gets, if any. */
  get rolledBackForIdleness(): string | undefined {
    return this.interactive.rolledBackForIdleness;
  }

  private armIdle(): void {
    if (this.idleMs <= 0 || this.idleTimer !== undefined) return;
    this.idleTimer = this.clock.after(this.idleMs, () => this.onIdleTimer());
  }

  private onIdleTimer(): void {
    this.idleTimer = undefined;
    if (this.watching === undefined && this.interactive.current === undefined) return;
    const idle = this.busy() ? 0 : this.clock.monotonicMs() - this.lastActive;
    if (idle < this.idleMs) {
      this.idleTimer = this.clock.after(this.idleMs - idle, () => this.onIdleTimer());
      return;
    }
    this.interactive.rollBackForIdleness(this.idleMs);
    // The Watch object stays, dropped: its EXEC must fail (Redis clients retry on nil).
    this.watching?.drop();
  }

  /** holdsState: MULTI, WATCH or TXN.BEGIN state lives here (a cluster member runs the rest here too). */
  get holdsState(): boolean {
    return this.queue.active || this.watching !== undefined || this.interactive.current !== undefined;
  }

  /** queuing: between MULTI and EXEC/DISCARD. */
  get queuing(): boolean {
    return this.queue.active;
  }

  /** txn: the open interactive transaction's store (TXN.BEGIN), if any. */
  get txn(): TxnKeyStore | undefined {
    return this.interactive.current;
  }

  /** store: the KeyStore commands of this connection use outside EXEC, when not the server's. */
  get store(): KeyStore | undefined {
    return this.interactive.current;
  }

  multi(): void {
    // A nested MULTI is refused first (by the queue), as before the transaction check.
    if (!this.queue.active && this.interactive.current !== undefined) {
      throw new CommandError('ERR MULTI is not allowed while a TXN.BEGIN transaction is open');
    }
    this.queue.start();
  }

  /** enqueue queues a command for EXEC; refusing one makes EXEC fail with EXECABORT. */
  enqueue(spec: CommandSpec, args: Buffer[]): void {
    this.queue.enqueue(spec, args);
  }

  /** reject notes a command refused while queuing (unknown, wrong arity, NOAUTH): EXEC aborts. */
  reject(): void {
    this.queue.reject();
  }

  /** takeQueue ends MULTI and hands the queue to EXEC. */
  takeQueue(): Queued {
    return this.queue.take();
  }

  discard(): void {
    this.queue.discard();
    this.unwatch();
  }

  /**
   * abortExec: EXEC was refused before it ran (wrong arity, NOAUTH, subscribed mode). As Redis's
   * execCommandAbort, the transaction ends, if one was open, and the watched keys are forgotten.
   */
  abortExec(): void {
    if (this.queue.active) this.queue.discard();
    this.unwatch();
  }

  watch(keys: readonly Buffer[]): void {
    if (this.queue.active) throw new CommandError('ERR WATCH inside MULTI is not allowed');
    if (this.closed) throw new CommandError('ERR connection closed');
    const pipeline = this.db.pipeline;
    const watching = (this.watching ??= new Watch(
      pipeline.mvcc,
      pipeline.mvcc.register('watch'),
      (key) => pipeline.readLatest(key).expiresAt,
      this.db.clock,
    ));
    this.armIdle();
    watching.addKeys(keys);
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
    this.interactive.begin(store);
    this.armIdle();
  }

  /**
   * endTxn detaches the interactive transaction (for TXN.COMMIT / TXN.ROLLBACK); undefined when
   * it was already rolled back for idleness and this is TXN.ROLLBACK (TXN.COMMIT gets the error).
   */
  endTxn(command: 'TXN.COMMIT' | 'TXN.ROLLBACK'): TxnKeyStore | undefined {
    return this.interactive.end(command);
  }

  /** reset: RESET: forget the queue, the watch and the transaction (rolled back); the connection stays. */
  reset(): void {
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.interactive.reset();
    this.unwatch();
    this.queue.clear();
  }

  /** close: the connection is gone: roll back, unwatch, forget the queue. */
  close(): void {
    this.closed = true;
    this.idleTimer?.cancel();
    this.idleTimer = undefined;
    this.interactive.close();
    this.unwatch();
    this.queue.clear();
  }
}
