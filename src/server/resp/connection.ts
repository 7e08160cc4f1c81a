// Connection: one RESP client: its socket, and the dispatch of its commands. Requests are parsed
// incrementally, executed strictly in order, and replied to in order: a reply that reveals a write
// waits until the write is durable, with every later reply behind it (reply-order.ts).
//
// Input: socket reads land in the server's one shared read buffer (read-buffer.ts) when this Node
// allows it, else in fresh 'data' chunks. A shared buffer is read into again at the next read, so
// its bytes are lent to one read's handling only: the commands it completes run at once, on
// views of it, when they are known to keep nothing of their arguments (LENT_ARGS_COMMANDS, in
// the plain state below); any other command gets copies first; and what the parser still holds
// when the read is handled (an incomplete command, commands waiting behind a busy one) it copies
// (RequestParser.own).
//
// Output is flushed once per turn of the event loop (setImmediate): one socket.write, or
// cork/writes/uncork for several chunks (a writev).
//
// Back-pressure: the connection stops executing, and pauses its socket, when its pending output
// (socket buffer plus held replies) exceeds the output limit, when too many replies are held, or
// when it holds more unexecuted request bytes than the read-ahead limit; it resumes when the
// socket drains or held replies are released. So a client that never reads its replies costs a
// bounded amount of memory.
import {
  type ReplyWriter,
  RequestParser,
  RespError,
  RespProtocolError,
  type RespValue,
  type RespVersion,
} from '../../protocol/resp/index.js';
import { assert } from '../../stdx/assert.js';
import { CairnError, ClusterDownError } from '../../storage/errors.js';
import { isDataCommand, mayWrite, needsReadIndex } from './cluster-route.js';
import { arityOk, type CommandSpec, type CommandTable } from './command-table.js';
import { plainSetQueued } from './commands/strings.js';
import { CommandError, ERR_NOAUTH, errorReply, wrongArity } from './errors.js';
import { Forwarder } from './forwarder.js';
import { RUN_WHEN_TXN_IDLE } from './interactive-txn.js';
import type { KeyStore } from './key-store.js';
import { UNKNOWN_ARGS_ECHO_CHARS } from './limits.js';
import { RUN_WHILE_QUEUING } from './multi-queue.js';
import { type Subscriber, Subscriptions } from './pubsub.js';
import { lendReads } from './read-buffer.js';
import { ReplyOrder } from './reply-order.js';
import { Session } from './session.js';
import { isRunnableSet, keyInRun, runOps, SET_RUN_MAX } from './set-run.js';
import type { RespSocket } from './socket.js';
import { type TrackingPeer, type TrackingState, trackRead } from './tracking.js';
import type { ClientState, CommandContext, Held, Outcome, ServerContext } from './types.js';

/**
 * SUBSCRIBED_MODE_COMMANDS: what a RESP2 connection with subscriptions may still send (Redis 7,
 * processCommand); RESP3 connections may send anything (messages are pushes there).
 */
const SUBSCRIBED_MODE_COMMANDS: ReadonlySet<string> = new Set([
  'subscribe',
  'ssubscribe',
  'unsubscribe',
  'sunsubscribe',
  'psubscribe',
  'punsubscribe',
  'ping',
  'quit',
  'reset',
]);

/** CONTAINER_COMMANDS: commands whose errors name the subcommand too (`config|get`, as Redis). */
const CONTAINER_COMMANDS: ReadonlySet<string> = new Set(['client', 'config', 'command', 'pubsub']);

/**
 * LENT_ARGS_COMMANDS: commands whose handlers use their arguments only during the synchronous
 * call, over the plain store (LatestKeyStore): the write pipeline copies keys and values it keeps,
 * keyspace events copy their keys, and their replies (held or not) reference no argument. So they
 * may run on views of the shared read buffer. Anything else gets copies of its arguments when
 * they are views of it (a handler that awaits, a reply that references an argument by size, a
 * queue or a cursor that keeps one). Adding a command here needs that audit.
 */
const LENT_ARGS_COMMANDS: ReadonlySet<string> = new Set([
  'get',
  'set',
  'setex',
  'psetex',
  'incr',
  'decr',
  'incrby',
  'decrby',
  'del',
  'exists',
  'mget',
  'mset',
  'strlen',
]);

/** ownArgs copies a command's arguments out of a buffer that will be reused. */
function ownArgs(args: readonly Buffer[]): Buffer[] {
  const own: Buffer[] = new Array(args.length);
  for (let i = 0; i < args.length; i++) own[i] = Buffer.from(args[i]!);
  return own;
}

/**
 * PREFETCH_KEYS_MAX: keys of one read handed to the store's prefetch at most (prefetchKeys);
 * PREFETCH_COMMANDS_MIN: fewer commands in a read than this, no prefetch. The scratch arrays are
 * shared by every connection: a prefetch is one synchronous call.
 */
const PREFETCH_KEYS_MAX = 64;
const PREFETCH_COMMANDS_MIN = 2;
const PREFETCH_STARTS = new Uint32Array(PREFETCH_KEYS_MAX);
const PREFETCH_ENDS = new Uint32Array(PREFETCH_KEYS_MAX);

/** STOP: runSets ended the batch (a protocol error while it read ahead). */
const STOP = Symbol('stop');

/** FORWARD_RETRY_MS: the pause before a forwarded command refused with CLUSTERDOWN is sent again. */
const FORWARD_RETRY_MS = 50;

const sanitize = (s: string): string => s.replace(/[\r\n]/g, ' ');

/** SECURITY_WARNING_INTERVAL_MS: the cross-protocol warning is logged at most this often (Redis: 60 s). */
const SECURITY_WARNING_INTERVAL_MS = 60_000;
let lastSecurityWarningMs = 0;

/** looksLikeHttp: a command named `POST` or `Host:` (any case) is an HTTP request's line. */
function looksLikeHttp(name: Buffer): boolean {
  if (name.length !== 4 && name.length !== 5) return false;
  const lower = name.toString('latin1').toLowerCase();
  return lower === 'post' || lower === 'host:';
}

/** unknownCommand is Redis's exact message for an unknown command (server.c, processCommand). */
export function unknownCommand(args: readonly Buffer[]): string {
  let echoed = '';
  for (let i = 1; i < args.length && echoed.length < UNKNOWN_ARGS_ECHO_CHARS; i++) {
    echoed += `'${args[i]!.toString('latin1').slice(0, UNKNOWN_ARGS_ECHO_CHARS - echoed.length)}' `;
  }
  const name = args[0]!.toString('latin1').slice(0, 128);
  return sanitize(`ERR unknown command '${name}', with args beginning with: ${echoed}`);
}

/** notAllowedWhileSubscribed: Redis's exact refusal of a command in RESP2 subscribed mode. */
export function notAllowedWhileSubscribed(spec: CommandSpec, args: readonly Buffer[]): string {
  const name =
    CONTAINER_COMMANDS.has(spec.name) && args.length > 1
      ? `${spec.name}|${args[1]!.toString('latin1').toLowerCase()}`
      : spec.name;
  return sanitize(
    `ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`,
  );
}

export class Connection implements CommandContext, Subscriber, TrackingPeer {
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
  /** forwardTail: settles once the last command forwarded to the leader has its outcome. */
  private forwardTail: Promise<void> = Promise.resolve();
  /** forwardsInFlight: commands forwarded to the leader whose replies are not in. */
  private forwardsInFlight = 0;
  /** forwardRefused: on a forwarded connection, a data command was refused with CLUSTERDOWN. */
  private forwardRefused = false;
  readonly pubsub: Subscriptions;
  /** softLimitSince: when the output of this subscriber went above the soft pub/sub limit. */
  private softLimitSince: number | undefined;
  /** executing: a command is between dispatch and its reply (complete or fail); see defer. */
  private executing = false;
  /** deferred: tracking messages caused by the executing command, sent after its reply. */
  private deferred: (() => void)[] = [];
  /** prevCommand: the previous command's name (CLIENT CACHING lasts until a non-CLIENT command). */
  private prevCommand = '';
  /** setRun: runSets' scratch list of a run's commands (emptied after each run). */
  private readonly setRun: Buffer[][] = [];
  /** lending: a read into the shared read buffer is being handled: parsed arguments are views of it. */
  private lending = false;
  /**
   * pumping: pump is executing a batch of commands (those of one read). The batch shares one
   * reading of the clock for when its commands started, and the latencies of the commands it
   * completes are observed at its end with one more (their replies are flushed then too):
   * three readings a command cost 0.14 µs of a 2.8 µs GET at -P 16 (issue 14).
   */
  private pumping = false;
  /** The batch's completed commands, observed at its end (parallel arrays, reused: no object each). */
  private readonly observedCommand: string[] = [];
  private readonly observedStarted: number[] = [];
  private readonly observedOk: boolean[] = [];
  private observedCount = 0;

  constructor(
    private readonly socket: RespSocket,
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
    this.pubsub = new Subscriptions(server.pubsub, this, () => {
      client.sub = this.pubsub.size('channel');
      client.psub = this.pubsub.size('pattern');
      client.ssub = this.pubsub.size('shard');
    });
    socket.setNoDelay(true);
    const readBuffer = server.readBuffer;
    const lent =
      readBuffer !== undefined &&
      lendReads(socket, readBuffer, (buffer, bytes) => this.onLentRead(buffer, bytes));
    if (!lent) socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.pump());
    socket.on('error', (err) => this.server.logger?.debug({ err, client: client.id }, 'client socket error'));
    socket.on('close', () => {
      this.closed = true;
      this.closing = true;
      // Roll back the open transaction and release watches: nobody can commit them any more.
      this.session.close();
      this.pubsub.clear();
      this.forwarder?.close();
      this.server.tracking.disable(this.client.id, this.client.tracking);
      this.client.tracking = undefined;
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

  resetConnection(): void {
    this.session.reset();
    this.pubsub.clear();
    this.server.tracking.disable(this.client.id, this.client.tracking);
    this.client.tracking = undefined;
    // The leader-side state of a forwarded connection (MULTI, WATCH) goes with its link.
    this.forwarder?.close();
    this.forwarder = undefined;
    this.setProtocol(2);
    this.client.name = '';
    this.client.readonlyReads = false;
    this.client.authenticated = this.server.config.requirePass === undefined;
  }

  // ---- Subscriber ------------------------------------------------------------------------------

  deliver(
    kind: 'message' | 'pmessage' | 'smessage',
    pattern: Buffer | undefined,
    channel: Buffer,
    payload: Buffer,
  ): void {
    if (this.closing) return;
    // In order after every reply so far (a held reply's tail included): RESP2 clients read
    // messages and replies from one stream; RESP3 pushes may come anywhere between replies.
    const w = this.w;
    w.pushHeader(pattern === undefined ? 3 : 4);
    w.bulk(kind);
    if (pattern !== undefined) w.bulk(pattern);
    w.bulk(channel);
    w.bulk(payload);
    this.afterOutOfBand('closing subscriber that reached the pub/sub output buffer limit');
  }

  /**
   * afterOutOfBand: after a message that is not a reply (pub/sub, invalidation), close the
   * client if its output passed the pub/sub limit (it does not read), else flush.
   */
  private afterOutOfBand(why: string): void {
    if (this.overPubsubLimit()) {
      this.server.logger?.warn({ client: this.client.id, outputBytes: this.outputBytes }, why);
      this.pubsub.clear();
      this.destroy();
      return;
    }
    this.scheduleFlush();
  }

  // ---- TrackingPeer (tracking.ts) -------------------------------------------------------------

  get id(): number {
    return this.client.id;
  }

  get tracking(): TrackingState | undefined {
    return this.client.tracking;
  }

  get protocol(): 2 | 3 {
    return this.client.protocol;
  }

  get subscribed(): boolean {
    return this.pubsub.total > 0;
  }

  write(message: (w: ReplyWriter) => void): void {
    if (this.closing) return;
    // Like a pub/sub message: after every reply so far, and bounded by the pub/sub output limit.
    message(this.w);
    this.afterOutOfBand('closing client that reached the pub/sub output buffer limit with invalidations');
  }

  afterHeldReplies(fn: () => void): void {
    this.replies.afterReleased(fn);
  }

  defer(fn: () => void): void {
    if (this.executing) this.deferred.push(fn);
    else fn();
  }

  /** finishCommand ends `executing` and sends what the command's own writes deferred. */
  private finishCommand(): void {
    this.executing = false;
    if (this.deferred.length === 0) return;
    const deferred = this.deferred;
    this.deferred = [];
    for (const fn of deferred) fn();
  }

  /** overPubsubLimit applies `client-output-buffer-limit pubsub` (limits.ts, PUBSUB_OUTPUT_*). */
  private overPubsubLimit(): boolean {
    const limits = this.server.limits;
    const bytes = this.outputBytes;
    if (bytes > limits.pubsubOutputHardBytes) return true;
    if (bytes <= limits.pubsubOutputSoftBytes) {
      this.softLimitSince = undefined;
      return false;
    }
    const now = this.server.clock.monotonicMs();
    this.softLimitSince ??= now;
    return now - this.softLimitSince >= limits.pubsubOutputSoftMs;
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

  /** noEvict: CLIENT NO-EVICT ON was sent; the output budget passes this connection over. */
  get noEvict(): boolean {
    return this.client.noEvict;
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
      // The parser takes the chunk over: its arguments are views into it. A socket 'data' chunk
      // is a fresh allocation nobody writes to again; a view of the shared read buffer is lent
      // for this call only, and onLentRead and execute copy what outlives it.
      this.parser.push(chunk);
    } catch (err) {
      this.protocolError(err);
      return;
    }
    if (!this.busy && this.session.store === undefined) this.prefetchKeys();
    this.pump();
  }

  /**
   * prefetchKeys hands the keys of the pipelined commands just read to the store as a hint
   * (Engine.prefetch): their lookups' cache misses then overlap instead of coming one command
   * at a time. Only for two commands or more: a lone command's lookup follows at once.
   */
  private prefetchKeys(): void {
    const n = this.parser.scanKeys(PREFETCH_STARTS, PREFETCH_ENDS);
    if (n >= PREFETCH_COMMANDS_MIN)
      this.server.store.prefetch?.(this.parser.scanned, PREFETCH_STARTS, PREFETCH_ENDS, n);
  }

  /**
   * onLentRead handles one read into the shared read buffer: the bytes are valid only during the
   * call (see the top of the file).
   */
  private onLentRead(buffer: Buffer, bytes: number): void {
    if (!this.closing) {
      this.lending = true;
      try {
        this.onData(buffer.subarray(0, bytes));
      } finally {
        this.lending = false;
        // Before the buffer is read into again: the parser's unexecuted bytes become its own.
        this.parser.own();
      }
    }
    this.server.afterRead?.(buffer);
  }

  /** pump executes the complete commands the parser holds, in order, until blocked. */
  private pump(): void {
    if (this.pumping) {
      // Re-entered from a command of the batch (a reply released at once): the outer call goes on
      // and does the rest.
      this.pumpBatch();
      return;
    }
    this.pumping = true;
    try {
      this.pumpBatch();
    } finally {
      this.pumping = false;
      this.flushObserved();
    }
    this.scheduleFlush();
    this.updateFlow();
    this.finishIfDone();
  }

  /** pumpBatch is pump's loop: the batch reads the clock once, at its first command. */
  private pumpBatch(): void {
    const limits = this.server.limits;
    let started = Number.NaN;
    let wallMs = Number.NaN;
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
      if (Number.isNaN(started)) {
        started = this.server.clock.monotonicMs();
        wallMs = this.server.clock.nowMs();
      }
      // A run ends at the first command that cannot join it, read to find the end: a SET of a
      // key the run holds starts the next run, anything else runs as usual.
      let next: Buffer[] | null | typeof STOP = args;
      let spec = this.table.lookup(args[0]!);
      while (isRunnableSet(spec, next) && this.maySetRun() && !this.closing) {
        next = this.runSets(next, spec as CommandSpec, started, wallMs);
        if (next === null || next === STOP) break;
        spec = this.table.lookup(next[0]!);
      }
      if (next === STOP) break;
      if (next === null || this.closing) continue;
      this.execute(next, started, wallMs, spec);
    }
  }

  /**
   * maySetRun: this connection's SETs may run as runs (set-run.ts): in the plain state only, where
   * a SET is its write and nothing else (no cluster routing, no client tracking of its keys, no
   * MULTI queue, open transaction or idle rollback, no subscribed mode, and authenticated).
   */
  private maySetRun(): boolean {
    return (
      this.server.cluster === undefined &&
      this.client.authenticated &&
      this.client.tracking === undefined &&
      !this.session.queuing &&
      this.session.store === undefined &&
      this.session.rolledBackForIdleness === undefined &&
      !(this.client.protocol === 2 && this.pubsub.total > 0)
    );
  }

  /**
   * runSets runs `first` and the runnable SETs the parser holds after it, as one write when there
   * are two or more (set-run.ts). Returns the command read after them (to run as usual), null when
   * the parser holds no more, STOP after a protocol error (reported, after the run's replies).
   */
  private runSets(
    first: Buffer[],
    spec: CommandSpec,
    started: number,
    wallMs: number,
  ): Buffer[] | null | typeof STOP {
    const run = this.setRun;
    run[0] = first;
    let n = 1;
    let after: Buffer[] | null = null;
    let error: unknown;
    // Each SET holds its reply until the write is durable: a run stays within the held-reply limit.
    const room = Math.min(SET_RUN_MAX, this.server.limits.inflightCommands - this.inflight);
    while (n < room) {
      let next: Buffer[] | null;
      try {
        next = this.parser.next();
      } catch (err) {
        error = err;
        break;
      }
      if (next === null) break;
      if (!isRunnableSet(this.table.lookup(next[0]!), next) || keyInRun(run, n, next[1] as Buffer)) {
        after = next;
        break;
      }
      run[n++] = next;
    }
    if (n === 1) this.execute(first, started, wallMs, spec);
    else this.executeRun(run, n, spec, started, wallMs);
    run.length = 0; // no views of a read kept past it
    if (error !== undefined) {
      this.protocolError(error);
      return STOP;
    }
    return after;
  }

  /**
   * executeRun is execute for run[0..n), runnable SETs of distinct keys: each gets a SET's
   * bookkeeping, event and reply; their writes are one batch of the store.
   */
  private executeRun(run: Buffer[][], n: number, spec: CommandSpec, started: number, wallMs: number): void {
    this.client.lastCommandAt = wallMs;
    this.session.touch(started);
    this.client.lastCommand = spec.name;
    this.prevCommand = spec.name;
    this.executing = true;
    const tracker = this.server.tracking;
    tracker.writer = this.client.id;
    let durable: Promise<void> | undefined;
    try {
      durable = this.store.batch(runOps(run, n));
    } catch (err) {
      durable = Promise.reject(err);
    } finally {
      tracker.writer = undefined;
    }
    assert(durable !== undefined, 'a run of SETs outside a transaction has a durability');
    for (let i = 0; i < n; i++) {
      this.executing = true;
      this.complete(spec, plainSetQueued(this, (run[i] as Buffer[])[1] as Buffer, durable), started);
    }
  }

  /**
   * execute runs one command of a batch that started at `started` (monotonic ms), `wallMs`;
   * `spec` is its command, when the caller has looked it up already.
   */
  private execute(
    lentArgs: Buffer[],
    started: number,
    wallMs: number,
    spec = this.table.lookup(lentArgs[0]!),
  ): void {
    const args = this.lending && !this.mayLend(spec) ? ownArgs(lentArgs) : lentArgs;
    this.client.lastCommandAt = wallMs;
    this.session.touch(started); // the batch's clock reading
    if (spec === undefined) {
      if (looksLikeHttp(args[0]!)) {
        this.crossProtocolAttack();
        return;
      }
      this.client.lastCommand = 'unknown';
      this.session.reject();
      this.fail(undefined, new CommandError(unknownCommand(args)), started);
      return;
    }
    this.client.lastCommand = spec.name;
    const tracking = this.client.tracking;
    if (tracking !== undefined) {
      // CLIENT CACHING applies to the next command, or to a whole MULTI ... EXEC (as Redis).
      if (this.prevCommand !== 'client' && !this.session.queuing) tracking.caching = false;
    }
    this.prevCommand = spec.name;
    if (!arityOk(spec, args.length)) {
      this.refuse(spec, wrongArity(spec.name), started);
      return;
    }
    if (!this.client.authenticated && !spec.flags.includes('no_auth')) {
      this.refuse(spec, new CommandError(ERR_NOAUTH), started);
      return;
    }
    if (this.client.protocol === 2 && this.pubsub.total > 0 && !SUBSCRIBED_MODE_COMMANDS.has(spec.name)) {
      this.refuse(spec, new CommandError(notAllowedWhileSubscribed(spec, args)), started);
      return;
    }
    const idleError = this.session.rolledBackForIdleness;
    if (idleError !== undefined && !RUN_WHEN_TXN_IDLE.has(spec.name)) {
      // Not run outside the transaction it was meant for (see session.ts).
      this.session.reject();
      this.fail(spec, new CommandError(idleError), started);
      return;
    }
    const queued = this.session.queuing && !RUN_WHILE_QUEUING.has(spec.name);
    // Before the read runs, here or forwarded to the leader: a write after this point invalidates.
    if (tracking !== undefined && !queued)
      trackRead(this.server.tracking, this.client, spec, args, this.session.txn !== undefined);
    this.executing = true;
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
      this.finishCommand();
      return;
    }
    let outcome: Outcome | Promise<Outcome>;
    const tracker = this.server.tracking;
    // The writes the handler queues in its synchronous part are this client's (NOLOOP, defer).
    tracker.writer = this.client.id;
    try {
      outcome = spec.handler(this, args);
    } catch (err) {
      tracker.writer = undefined;
      this.fail(spec, err, started);
      return;
    }
    tracker.writer = undefined;
    this.settle(spec, outcome, started);
  }

  /**
   * refuse answers a command refused before it runs (wrong arity, NOAUTH, subscribed mode). A
   * refusal while queuing makes EXEC fail; EXEC refused itself ends the transaction with
   * `EXECABORT Transaction discarded because of: <the error>`, as Redis's execCommandAbort.
   */
  private refuse(spec: CommandSpec, error: CommandError, started: number): void {
    if (spec.name !== 'exec') {
      this.session.reject();
      this.fail(spec, error, started);
      return;
    }
    this.session.abortExec();
    const reason = error.message.startsWith('ERR ') ? error.message.slice(4) : error.message;
    this.fail(spec, new CommandError(`EXECABORT Transaction discarded because of: ${reason}`), started);
  }

  /**
   * mayLend: the command may run on views of the shared read buffer (LENT_ARGS_COMMANDS), in
   * the plain state only: no cluster routing (forwards and ReadIndex waits keep arguments), no
   * client tracking (it remembers keys), no MULTI queue or open transaction (they keep commands).
   */
  private mayLend(spec: CommandSpec | undefined): boolean {
    return (
      spec !== undefined &&
      LENT_ARGS_COMMANDS.has(spec.name) &&
      this.server.cluster === undefined &&
      this.client.tracking === undefined &&
      !this.session.queuing &&
      this.session.store === undefined
    );
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
    if (cluster.removed) {
      // Its state stops at its removal and its peers refuse it: it serves no data, not even by
      // forwarding to the leader it last knew (docs/cluster-ops.md; HTTP's data routes alike).
      this.fail(spec, new ClusterDownError('this member was removed from the cluster'), started);
      return true;
    }
    if (this.client.forwarded && this.forwardRefused) {
      // A command before this one on the forwarded connection was refused: so is this one, so
      // that the forwarding member's retries cannot be overtaken (forwarder.ts, "Order").
      this.fail(
        spec,
        new ClusterDownError('an earlier command on this forwarded connection was refused; retry'),
        started,
      );
      return true;
    }
    // Commands still on their way through the leader keep later ones on the same path.
    if (this.forwarder?.pinned === undefined && this.forwardsInFlight === 0) {
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
    this.forwardPipelined(spec, args, started);
    return true;
  }

  /**
   * forwardPipelined sends the command to the leader and goes on with the next one at once: the
   * reply is held in its place in the reply order until the leader's reply is in (reply-order.ts),
   * so a client's pipeline crosses the extra hop as a pipeline.
   */
  private forwardPipelined(spec: CommandSpec, args: Buffer[], started: number): void {
    const prev = this.forwardTail;
    this.forwardsInFlight++;
    // Kept past this call for retries: copies (the parser's buffers are borrowed).
    const own = args.map((a) => Buffer.from(a));
    const result = this.forwardToLeader(spec, own, prev);
    this.forwardTail = result.then(
      () => {
        this.forwardsInFlight--;
      },
      () => {
        this.forwardsInFlight--;
      },
    );
    let reply: RespValue = null;
    const durable = result.then((r) => {
      reply = r;
    });
    this.complete(spec, { durable, reply: (w) => w.value(reply) }, started);
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

  /**
   * forwardToLeader runs the command on the leader and returns its reply. A CLUSTERDOWN (the
   * command did not run) is retried within the request timeout, once every earlier forwarded
   * command of this connection (`prev`) has its outcome, so retries keep the client's order.
   */
  private async forwardToLeader(spec: CommandSpec, args: Buffer[], prev: Promise<void>): Promise<RespValue> {
    const cluster = this.server.cluster!;
    this.forwarder ??= new Forwarder(
      this.server.upstreams!,
      this.client.id,
      cluster.requestTimeoutMs,
      this.server.clock,
    );
    const forwarder = this.forwarder;
    // The leader's address, or this member's own when it leads now: its commands then come back
    // to it over the same path, behind the ones already sent (no overtaking by a local run).
    const target = async (): Promise<string> =>
      (await cluster.leaderAddress('resp')) ?? cluster.selfAddress('resp');
    const deadline = this.server.clock.monotonicMs() + cluster.requestTimeoutMs;
    let fresh = false;
    for (;;) {
      let reply: RespValue;
      try {
        reply = await forwarder.forward(target, spec.name, args, this.client.protocol, mayWrite(spec), fresh);
      } catch (err) {
        // Not sent (the leader could not be reached, or an earlier command was refused on the
        // connection): wait for the next leader within the timeout, as for a CLUSTERDOWN reply.
        if (!(err instanceof ClusterDownError)) throw err;
        // A member removed meanwhile will have no leader again: refused now, not at the timeout
        // (it is stopping, and its close waits for this reply).
        if (
          forwarder.pinned !== undefined ||
          cluster.removed ||
          this.server.clock.monotonicMs() >= deadline
        ) {
          forwarder.release();
          throw err;
        }
        reply = new RespError(`CLUSTERDOWN ${err.message}`);
      }
      // CLUSTERDOWN promises the command did not run: while leadership settles (the member we
      // sent it to just lost or has not finished taking it), ask again, within the timeout.
      const refused = reply instanceof RespError && reply.code === 'CLUSTERDOWN';
      const retry =
        refused &&
        forwarder.pinned === undefined &&
        !cluster.removed &&
        this.server.clock.monotonicMs() < deadline;
      if (!retry) {
        if (refused) forwarder.release(); // Not retried: later commands need not wait for it.
        return reply;
      }
      await prev;
      fresh = true;
      await new Promise((resolve) => this.server.clock.after(FORWARD_RETRY_MS, () => resolve(undefined)));
    }
  }

  private fail(spec: CommandSpec | undefined, err: unknown, started: number): void {
    if (!(err instanceof CommandError)) this.logUnexpected(spec, err);
    // On a forwarded connection, a data command refused with CLUSTERDOWN refuses every later one
    // (see routeInCluster): the forwarding member retries them in order.
    if (
      this.client.forwarded &&
      spec !== undefined &&
      isDataCommand(spec) &&
      err instanceof CairnError &&
      err.code === 'CLUSTER_DOWN'
    ) {
      this.forwardRefused = true;
    }
    this.w.error(errorReply(err));
    this.observe(spec?.name ?? 'unknown', started, false);
    this.finishCommand();
  }

  private logUnexpected(spec: CommandSpec | undefined, err: unknown): void {
    if (err instanceof Error && err.name === 'AssertionError')
      this.server.logger?.error({ err, command: spec?.name }, 'assertion failed in a command');
    else this.server.logger?.debug({ err, command: spec?.name }, 'command failed');
  }

  private complete(spec: CommandSpec, outcome: Outcome, started: number): void {
    if (outcome === undefined || outcome === null) {
      this.observe(spec.name, started, true);
    } else {
      const held = outcome as Held;
      if (held.durable === undefined) {
        held.reply(this.w);
        this.observe(spec.name, started, true);
      } else this.replies.hold(held.durable, held.reply, this.client.protocol, spec.name, started);
    }
    this.finishCommand();
  }

  private observe(command: string, started: number, ok: boolean): void {
    if (!this.pumping) {
      this.server.metrics.observe(command, 'resp', (this.server.clock.monotonicMs() - started) / 1000, ok);
      return;
    }
    const i = this.observedCount++;
    this.observedCommand[i] = command;
    this.observedStarted[i] = started;
    this.observedOk[i] = ok;
  }

  /** flushObserved observes the latencies of the commands the batch completed, ending now. */
  private flushObserved(): void {
    const n = this.observedCount;
    if (n === 0) return;
    this.observedCount = 0;
    const now = this.server.clock.monotonicMs();
    const metrics = this.server.metrics;
    for (let i = 0; i < n; i++) {
      metrics.observe(
        this.observedCommand[i] as string,
        'resp',
        (now - (this.observedStarted[i] as number)) / 1000,
        this.observedOk[i] as boolean,
      );
    }
  }

  /**
   * crossProtocolAttack drops a connection that speaks HTTP: a web page can make a browser POST
   * to 127.0.0.1:6379, and each line of the body would run as an inline command (Redis 3.2.7's
   * defence, securityWarningCommand: the same two words, the same action). Nothing else of the
   * read runs; the log says so at most once per SECURITY_WARNING_INTERVAL_MS.
   */
  private crossProtocolAttack(): void {
    const now = this.server.clock.monotonicMs();
    if (now - lastSecurityWarningMs >= SECURITY_WARNING_INTERVAL_MS || lastSecurityWarningMs === 0) {
      lastSecurityWarningMs = now;
      this.server.logger?.warn(
        { client: this.client.id, remote: this.client.addr },
        'possible security attack: a client sent an HTTP POST or Host: header to the RESP port; connection dropped',
      );
    }
    this.destroy();
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
