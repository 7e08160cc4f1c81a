// Connection: one RESP client. Requests are parsed incrementally, executed strictly in order,
// and replied to in order.
//
// Durability and reply order. A command that writes (or reads a value whose write is not durable
// yet, see src/db/latest-view.ts) returns a Held reply: it may only be sent once its durability
// promise resolves. The connection does not wait for that before executing the next command:
// later commands run at once (so a pipeline of writes shares one group commit), but their replies
// go into the held reply's "tail" writer and leave only after it. So replies are always in
// request order, and no reply reveals a write before it is durable.
//
// Output is flushed once per turn of the event loop (setImmediate): one socket.write, or
// cork/writes/uncork for several chunks (a writev).
//
// Back-pressure: the connection stops executing, and pauses its socket, when its pending output
// (socket buffer plus held replies) exceeds the output limit, when too many replies are held, or
// when it holds more unexecuted request bytes than the read-ahead limit; it resumes when the
// socket drains or held replies are released. So a client that never reads its replies costs a
// bounded amount of memory.
import type { Socket } from 'node:net';
import {
  ReplyWriter,
  RequestParser,
  RespProtocolError,
  type RespVersion,
} from '../../protocol/resp/index.js';
import { assert } from '../../stdx/assert.js';
import { arityOk, type CommandSpec, type CommandTable } from './command-table.js';
import { CommandError, ERR_NOAUTH, errorReply, wrongArity } from './errors.js';
import { RUN_WHEN_TXN_IDLE } from './interactive-txn.js';
import type { KeyStore } from './key-store.js';
import { UNKNOWN_ARGS_ECHO_CHARS } from './limits.js';
import { RUN_WHILE_QUEUING } from './multi-queue.js';
import { Session } from './session.js';
import type { ClientState, CommandContext, Held, Outcome, ServerContext } from './types.js';

/** Segment: a held reply and the replies of the commands executed after it (its tail). */
interface Segment {
  readonly protocol: RespVersion;
  readonly reply: (w: ReplyWriter) => void;
  readonly tail: ReplyWriter;
  readonly command: string;
  readonly started: number;
  settled: boolean;
  error: unknown;
  /** closedBytes: the tail's size when a later segment closed it (counted in heldBytes). */
  closedBytes: number;
}

/** SEGMENTS_COMPACT_AT: released segments kept at the head of the array before it is compacted. */
const SEGMENTS_COMPACT_AT = 1024;

const sanitize = (s: string): string => s.replace(/[\r\n]/g, ' ');

/** unknownCommand is Redis's exact message for an unknown command (server.c, processCommand). */
export function unknownCommand(args: readonly Buffer[]): string {
  let echoed = '';
  for (let i = 1; i < args.length && echoed.length < UNKNOWN_ARGS_ECHO_CHARS; i++) {
    echoed += `'${args[i]!.toString('latin1').slice(0, UNKNOWN_ARGS_ECHO_CHARS - echoed.length)}' `;
  }
  const name = args[0]!.toString('latin1').slice(0, 128);
  return sanitize(`ERR unknown command '${name}', with args beginning with: ${echoed}`);
}

export class Connection implements CommandContext {
  private readonly parser = new RequestParser();
  private readonly main: ReplyWriter;
  /** out: chunks ready for the socket, before anything still in `main`. */
  private out: Buffer[] = [];
  private outBytes = 0;
  private segments: Segment[] = [];
  private head = 0;
  /** heldBytes: bytes in closed tails of unreleased segments. */
  private heldBytes = 0;
  /** busy: an asynchronous command is executing; the next one waits for it. */
  private busy = false;
  private paused = false;
  /** closing: execute nothing more; close once the replies so far are sent. */
  private closing = false;
  private closed = false;
  private flushScheduled = false;
  private readonly flushNow = (): void => this.flush();
  readonly session: Session;

  constructor(
    private readonly socket: Socket,
    readonly server: ServerContext,
    private readonly table: CommandTable,
    readonly client: ClientState,
  ) {
    this.main = new ReplyWriter(client.protocol);
    this.session = new Session(server.db, server.limits.txnIdleMs, () => this.busy, server.clock);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.on('error', (err) => this.server.logger?.debug({ err, client: client.id }, 'client socket error'));
    socket.on('close', () => {
      this.closed = true;
      this.closing = true;
      // Roll back the open transaction and release watches: nobody can commit them any more.
      this.session.close();
    });
  }

  // ---- CommandContext --------------------------------------------------------------------------

  get store(): KeyStore {
    return this.session.store ?? this.server.store;
  }

  get w(): ReplyWriter {
    return this.head < this.segments.length ? this.segments[this.segments.length - 1]!.tail : this.main;
  }

  setProtocol(version: RespVersion): void {
    this.client.protocol = version;
    this.main.protocol = version;
    this.w.protocol = version;
  }

  closeAfterReply(): void {
    this.closing = true;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** shutdown stops executing commands and closes once in-flight replies are sent (server close). */
  shutdown(): void {
    this.closing = true;
    this.finishIfDone();
  }

  /** destroy cuts the connection now (close() after its grace period). */
  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  /** inflight counts held replies not yet released. */
  get inflight(): number {
    return this.segments.length - this.head;
  }

  /** outputBytes counts reply bytes not yet taken by the client. */
  get outputBytes(): number {
    const tail = this.head < this.segments.length ? this.w.pendingBytes : 0;
    return this.socket.writableLength + this.outBytes + this.main.pendingBytes + this.heldBytes + tail;
  }

  get queryBufferBytes(): number {
    return this.parser.bufferedBytes;
  }

  // ---- input and execution ---------------------------------------------------------------------

  private onData(chunk: Buffer): void {
    if (this.closing) return;
    try {
      // The parser takes the chunk over: its arguments are views into it. That is safe because a
      // socket 'data' chunk is a fresh allocation nobody writes to again (no `onread` buffer, no
      // pool), and what outlives a command copies its arguments (the MULTI queue, the store's
      // overlay and index, SCAN cursors). Reading into a reused buffer would need all of them
      // (and replies over 8 KiB that reference an argument) to be revisited.
      this.parser.push(chunk);
    } catch (err) {
      this.protocolError(err);
      return;
    }
    this.pump();
  }

  /** pump executes the complete commands the parser holds, in order, until blocked. */
  private pump(): void {
    const limits = this.server.limits;
    while (!this.busy && !this.closing) {
      if (this.inflight >= limits.inflightCommands || this.outputBytes > limits.outputBufferBytes) break;
      let args: Buffer[] | null;
      try {
        // Before AUTH, a client may not announce more than a few small arguments (entry 7 of
        // defects-2026-12.md; Redis's CVE-2021-32675 fix): nothing big is buffered for strangers.
        this.parser.restrict(!this.client.authenticated);
        args = this.parser.next();
      } catch (err) {
        this.protocolError(err);
        break;
      }
      if (args === null) {
        if (this.parser.bufferedBytes > limits.queryBufferBytes) {
          this.server.logger?.warn(
            { client: this.client.id },
            'closing client that reached the query buffer limit',
          );
          this.w.error('ERR Protocol error: query buffer limit exceeded');
          this.closing = true;
        }
        break;
      }
      this.execute(args);
    }
    this.scheduleFlush();
    this.updateFlow();
    this.finishIfDone();
  }

  private execute(args: Buffer[]): void {
    const started = this.server.clock.monotonicMs();
    const spec = this.table.lookup(args[0]!);
    this.client.lastCommandAt = this.server.clock.nowMs();
    this.session.touch();
    if (spec === undefined) {
      this.client.lastCommand = 'unknown';
      this.session.reject();
      this.fail(undefined, new CommandError(unknownCommand(args)), started);
      return;
    }
    this.client.lastCommand = spec.name;
    if (!arityOk(spec, args.length)) {
      this.session.reject();
      this.fail(spec, wrongArity(spec.name), started);
      return;
    }
    if (!this.client.authenticated && !spec.flags.includes('no_auth')) {
      this.session.reject();
      this.fail(spec, new CommandError(ERR_NOAUTH), started);
      return;
    }
    const idleError = this.session.rolledBackForIdleness;
    if (idleError !== undefined && !RUN_WHEN_TXN_IDLE.has(spec.name)) {
      // Not run outside the transaction it was meant for (see session.ts).
      this.session.reject();
      this.fail(spec, new CommandError(idleError), started);
      return;
    }
    if (this.session.queuing && !RUN_WHILE_QUEUING.has(spec.name)) {
      // After MULTI: queue for EXEC (a refusal makes EXEC fail with EXECABORT).
      try {
        this.session.enqueue(spec, args);
      } catch (err) {
        this.fail(spec, err, started);
        return;
      }
      // Not observed here: EXEC counts the command when it runs it (as Redis's commandstats).
      this.w.simple('QUEUED');
      return;
    }
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = spec.handler(this, args);
    } catch (err) {
      this.fail(spec, err, started);
      return;
    }
    if (outcome instanceof Promise) {
      this.busy = true;
      outcome.then(
        (o) => {
          this.busy = false;
          this.session.touch(); // a long command is not idleness
          this.complete(spec, o, started);
          this.pump();
        },
        (err: unknown) => {
          this.busy = false;
          this.session.touch();
          this.fail(spec, err, started);
          this.pump();
        },
      );
      return;
    }
    this.complete(spec, outcome, started);
  }

  private fail(spec: CommandSpec | undefined, err: unknown, started: number): void {
    if (!(err instanceof CommandError)) this.logUnexpected(spec, err);
    this.w.error(errorReply(err));
    this.observe(spec?.name ?? 'unknown', started, false);
  }

  private logUnexpected(spec: CommandSpec | undefined, err: unknown): void {
    if (err instanceof Error && err.name === 'AssertionError')
      this.server.logger?.error({ err, command: spec?.name }, 'assertion failed in a command');
    else this.server.logger?.debug({ err, command: spec?.name }, 'command failed');
  }

  private complete(spec: CommandSpec, outcome: Outcome, started: number): void {
    if (outcome === undefined || outcome === null) {
      this.observe(spec.name, started, true);
      return;
    }
    const held = outcome as Held;
    if (held.durable === undefined) {
      held.reply(this.w);
      this.observe(spec.name, started, true);
      return;
    }
    if (this.head < this.segments.length) {
      const last = this.segments[this.segments.length - 1]!;
      last.closedBytes = last.tail.pendingBytes;
      this.heldBytes += last.closedBytes;
    }
    const seg: Segment = {
      protocol: this.client.protocol,
      reply: held.reply,
      tail: new ReplyWriter(this.client.protocol),
      command: spec.name,
      started,
      settled: false,
      error: undefined,
      closedBytes: 0,
    };
    this.segments.push(seg);
    held.durable.then(
      () => {
        seg.settled = true;
        this.release();
      },
      (err: unknown) => {
        seg.settled = true;
        seg.error = err ?? new Error('write failed');
        this.release();
      },
    );
  }

  /** release moves settled held replies at the head, with their tails, to the output. */
  private release(): void {
    while (this.head < this.segments.length && this.segments[this.head]!.settled) {
      const seg = this.segments[this.head]!;
      this.segments[this.head] = undefined as unknown as Segment;
      this.head++;
      this.heldBytes -= seg.closedBytes;
      this.takeMain();
      const protocol = this.main.protocol;
      this.main.protocol = seg.protocol;
      if (seg.error === undefined) seg.reply(this.main);
      else {
        this.logUnexpected(undefined, seg.error);
        this.main.error(errorReply(seg.error));
      }
      this.main.protocol = protocol;
      this.observe(seg.command, seg.started, seg.error === undefined);
      this.takeMain();
      for (const chunk of seg.tail.takeChunks()) {
        this.out.push(chunk);
        this.outBytes += chunk.length;
      }
    }
    if (this.head === this.segments.length) {
      this.segments = [];
      this.head = 0;
      assert(this.heldBytes === 0, 'held bytes are counted exactly');
    } else if (this.head >= SEGMENTS_COMPACT_AT && this.head * 2 >= this.segments.length) {
      this.segments = this.segments.slice(this.head);
      this.head = 0;
    }
    this.pump();
  }

  private takeMain(): void {
    if (this.main.pendingBytes === 0) return;
    for (const chunk of this.main.takeChunks()) {
      this.out.push(chunk);
      this.outBytes += chunk.length;
    }
  }

  private observe(command: string, started: number, ok: boolean): void {
    this.server.metrics.observe(command, 'resp', (this.server.clock.monotonicMs() - started) / 1000, ok);
  }

  private protocolError(err: unknown): void {
    const message = err instanceof RespProtocolError ? err.message : 'Protocol error';
    this.server.logger?.debug({ client: this.client.id, message }, 'protocol error, closing client');
    this.w.error(`ERR ${message}`);
    this.closing = true;
    this.scheduleFlush();
    this.finishIfDone();
  }

  // ---- output ----------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    if (this.outBytes === 0 && this.main.pendingBytes === 0) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    this.takeMain();
    const chunks = this.out;
    this.out = [];
    this.outBytes = 0;
    if (chunks.length === 1) this.socket.write(chunks[0]!);
    else if (chunks.length > 1) {
      this.socket.cork();
      for (const chunk of chunks) this.socket.write(chunk);
      this.socket.uncork();
    }
    if (!this.closing) this.pump();
    else this.finishIfDone();
  }

  /** updateFlow pauses or resumes reading from the socket (see the top of the file). */
  private updateFlow(): void {
    if (this.closed) return;
    const limits = this.server.limits;
    const blocked = this.busy || this.inflight >= limits.inflightCommands;
    const outputFull = this.outputBytes > limits.outputBufferBytes;
    const shouldPause =
      this.closing || outputFull || (blocked && this.parser.bufferedBytes > limits.readAheadBytes);
    if (shouldPause && !this.paused) {
      this.paused = true;
      this.socket.pause();
    } else if (!shouldPause && this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** finishIfDone ends the socket once closing and every reply so far has been handed to it. */
  private finishIfDone(): void {
    if (!this.closing || this.closed || this.busy || this.inflight > 0) return;
    if (this.flushScheduled) return; // flush() calls back here
    this.takeMain();
    if (this.out.length > 0) {
      this.flush();
      return;
    }
    this.closed = true;
    // Close, not only half-close, once the last reply is handed to the kernel: a client that
    // keeps its side open (an idle pool connection, redis-cli waiting on stdin) would otherwise
    // hold the server's shutdown for the whole grace period (defects-2026-12.md, entry 14).
    // Redis closes the descriptor too.
    this.socket.end(() => this.socket.destroy());
  }
}
