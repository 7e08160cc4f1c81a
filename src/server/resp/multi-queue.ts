// The MULTI queue: the commands a client sends between MULTI and EXEC/DISCARD, queued instead of
// run (commands/transactions.ts runs them at EXEC). Session (session.ts) holds one per connection;
// the connection asks it whether to queue a command.
import type { CommandSpec } from './command-table.js';
import { CommandError } from './errors.js';
import { MULTI_QUEUE_BYTES_MAX, MULTI_QUEUE_COMMANDS_MAX } from './limits.js';

/** RUN_WHILE_QUEUING: commands that run at once after MULTI instead of being queued (as Redis). */
export const RUN_WHILE_QUEUING: ReadonlySet<string> = new Set([
  'exec',
  'discard',
  'multi',
  'watch',
  'quit',
  'reset',
]);

export const ERR_EXECABORT = 'EXECABORT Transaction discarded because of previous errors.';
export const ERR_NOT_IN_MULTI_ALLOWED = 'ERR Command not allowed inside a transaction';

export interface QueuedCommand {
  readonly spec: CommandSpec;
  readonly args: Buffer[];
}

/** Queued: what EXEC takes: the commands, and whether one was rejected while queuing. */
export interface Queued {
  readonly commands: readonly QueuedCommand[];
  readonly aborted: boolean;
}

export class MultiQueue {
  private queue: QueuedCommand[] | undefined;
  private queueBytes = 0;
  private aborted = false;

  /** active: between MULTI and EXEC/DISCARD. */
  get active(): boolean {
    return this.queue !== undefined;
  }

  /** start begins queuing (MULTI). */
  start(): void {
    if (this.queue !== undefined) throw new CommandError('ERR MULTI calls can not be nested');
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

  /** take ends MULTI and hands the queue to EXEC. */
  take(): Queued {
    const commands = this.queue;
    if (commands === undefined) throw new CommandError('ERR EXEC without MULTI');
    const aborted = this.aborted;
    this.queue = undefined;
    this.queueBytes = 0;
    this.aborted = false;
    return { commands, aborted };
  }

  /** discard ends MULTI, forgetting the queue (DISCARD). */
  discard(): void {
    if (this.queue === undefined) throw new CommandError('ERR DISCARD without MULTI');
    this.queue = undefined;
    this.queueBytes = 0;
    this.aborted = false;
  }

  /** clear forgets the queue (the connection is gone). */
  clear(): void {
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
