// Connection: one RESP client: its socket, and the dispatch of its commands. Requests are parsed
// incrementally, executed strictly in order, and replied to in order: a reply that reveals a write
// waits until the write is durable, with every later reply behind it (reply-order.ts).
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
  type ReplyWriter,
  RequestParser,
  RespError,
  RespProtocolError,
  type RespValue,
  type RespVersion,
} from '../../protocol/resp/index.js';
import { ClusterDownError } from '../../storage/errors.js';
import { isDataCommand, mayWrite, needsReadIndex } from './cluster-route.js';
import { arityOk, type CommandSpec, type CommandTable } from './command-table.js';
import { CommandError, ERR_NOAUTH, errorReply, wrongArity } from './errors.js';
import { Forwarder } from './forwarder.js';
import { RUN_WHEN_TXN_IDLE } from './interactive-txn.js';
import type { KeyStore } from './key-store.js';
import { UNKNOWN_ARGS_ECHO_CHARS } from './limits.js';
import { RUN_WHILE_QUEUING } from './multi-queue.js';
import { ReplyOrder } from './reply-order.js';
import { Session } from './session.js';
import type { ClientState, CommandContext, Held, Outcome, ServerContext } from './types.js';

/** FORWARD_RETRY_MS: the pause before a forwarded command refused with CLUSTERDOWN is sent again. */
const FORWARD_RETRY_MS = 50;

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
  private readonly replies: ReplyOrder;
  /** busy: an asynchronous command is executing; the next one waits for it. */
  private busy = false;
  private paused = false;
  /** closing: execute nothing more; close once the replies so far are sent. */
  private closing = false;
  private closed = false;
  private flushScheduled = false;
  private readonly flushNow = (): void => this.flush();
  readonly session: Session;
  /** forwarder: this connection's link to the cluster leader, once a command needed it. */
  private forwarder: Forwarder | undefined;

  constructor(
    private readonly socket: Socket,
    readonly server: ServerContext,
    private readonly table: CommandTable,
    readonly client: ClientState,
  ) {
    this.replies = new ReplyOrder(
      client.protocol,
      (command, started, error) => {
        if (error !== undefined) this.logUnexpected(undefined, error);
        this.observe(command, started, error === undefined);
      },
      () => this.pump(),
    );
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
      this.forwarder?.close();
    });
  }

  // ---- CommandContext --------------------------------------------------------------------------

  get store(): KeyStore {
    return this.session.store ?? this.server.store;
  }

  get w(): ReplyWriter {
    return this.replies.w;
  }

  setProtocol(version: RespVersion): void {
    this.client.protocol = version;
    this.replies.setProtocol(version);
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
    return this.replies.inflight;
  }

  /** outputBytes counts reply bytes not yet taken by the client. */
  get outputBytes(): number {
    return this.socket.writableLength + this.replies.pendingBytes;
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
    if (this.server.cluster !== undefined && isDataCommand(spec) && this.routeInCluster(spec, args, started))
      return;
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
    this.settle(spec, outcome, started);
  }

  /** settle completes a command: at once, or once its promise settles (the connection waits). */
  private settle(spec: CommandSpec, outcome: Outcome | Promise<Outcome>, started: number): void {
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

  // ---- cluster routing (docs/cluster.md, "Every member accepts every command") ----------------

  /**
   * routeInCluster decides where a data command runs on a cluster member, and returns false to
   * run it here as usual. The ready leader runs everything, reads after a ReadIndex round
   * (linearizable) unless READONLY; a READONLY connection reads from this member's state; state
   * the connection holds here (MULTI, WATCH, TXN.BEGIN) keeps its commands here (a write then
   * fails with CLUSTERDOWN if leadership moved); everything else goes to the leader.
   */
  private routeInCluster(spec: CommandSpec, args: Buffer[], started: number): boolean {
    const cluster = this.server.cluster!;
    const readonly = spec.flags.includes('readonly');
    if (this.forwarder?.pinned === undefined) {
      if (this.session.holdsState) return false;
      if (cluster.replica.leaderReady) {
        if (!needsReadIndex(spec) || (readonly && this.client.readonlyReads)) return false;
        this.settle(spec, this.afterReadIndexIfNeeded(spec, args), started);
        return true;
      }
      if (readonly && this.client.readonlyReads) return false;
      if (this.client.forwarded) {
        // Another member sent this here as the leader: run it once this member is ready (a
        // new leader applying its first entry), never forward it on.
        this.settle(spec, this.whenLeader(spec, args), started);
        return true;
      }
    }
    this.settle(spec, this.forwardToLeader(spec, args), started);
    return true;
  }

  private async whenLeader(spec: CommandSpec, args: Buffer[]): Promise<Outcome> {
    const cluster = this.server.cluster!;
    if (cluster.replica.status().role !== 'leader') {
      throw new ClusterDownError('this member is not the leader; retry');
    }
    if ((await cluster.leaderAddress('resp')) !== undefined) {
      throw new ClusterDownError('this member is no longer the leader; retry');
    }
    return this.afterReadIndexIfNeeded(spec, args);
  }

  private async afterReadIndexIfNeeded(spec: CommandSpec, args: Buffer[]): Promise<Outcome> {
    if (needsReadIndex(spec) && !(spec.flags.includes('readonly') && this.client.readonlyReads)) {
      await this.server.cluster!.replica.linearizable();
    }
    return spec.handler(this, args);
  }

  private async forwardToLeader(spec: CommandSpec, args: Buffer[]): Promise<Outcome> {
    const cluster = this.server.cluster!;
    let addr = this.forwarder?.pinned;
    if (addr === undefined) {
      addr = await cluster.leaderAddress('resp');
      if (addr === undefined) {
        // This member became the ready leader while the command waited: run it here.
        return this.afterReadIndexIfNeeded(spec, args);
      }
    }
    this.forwarder ??= new Forwarder(
      this.server.config.requirePass,
      cluster.requestTimeoutMs,
      this.server.clock,
    );
    const deadline = this.server.clock.monotonicMs() + cluster.requestTimeoutMs;
    for (;;) {
      let reply: RespValue;
      try {
        reply = await this.forwarder.forward(addr, spec.name, args, this.client.protocol, mayWrite(spec));
      } catch (err) {
        // Could not reach the member we believed led (it died or left): nothing was sent, so
        // wait for the next leader within the timeout, as for a CLUSTERDOWN reply.
        if (!(err instanceof ClusterDownError) || this.forwarder.pinned !== undefined) throw err;
        if (this.server.clock.monotonicMs() >= deadline) throw err;
        reply = new RespError(`CLUSTERDOWN ${err.message}`);
      }
      // CLUSTERDOWN promises the command did not run: while leadership settles (the member we
      // sent it to just lost or has not finished taking it), ask again, within the timeout.
      const retry =
        reply instanceof RespError &&
        reply.code === 'CLUSTERDOWN' &&
        this.forwarder.pinned === undefined &&
        this.server.clock.monotonicMs() < deadline;
      if (!retry) return { durable: undefined, reply: (w) => w.value(reply) };
      await new Promise((resolve) => this.server.clock.after(FORWARD_RETRY_MS, () => resolve(undefined)));
      const next = await cluster.leaderAddress('resp');
      if (next === undefined) return this.afterReadIndexIfNeeded(spec, args);
      addr = next;
    }
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
    this.replies.hold(held.durable, held.reply, this.client.protocol, spec.name, started);
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
    if (!this.replies.hasOutput) return;
    this.flushScheduled = true;
    setImmediate(this.flushNow);
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    const chunks = this.replies.takeReady();
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
    if (this.replies.gather()) {
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
