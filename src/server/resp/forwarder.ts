// Forwarder: how a cluster member that is not the leader runs a client's command anyway: it sends
// the command, as the client sent it, to the leader's RESP port and relays the reply
// (docs/cluster.md, "Every member accepts every command"). Commands that need no state on the
// leader go over a few links the member shares among all its clients (UpstreamPool); from MULTI,
// WATCH or TXN.BEGIN until that state ends, a client's commands go over a connection of its own,
// where the state lives. A client's pipeline stays a pipeline: each command goes upstream as soon
// as it is read, and replies return in order.
//
// Order under failure. CLUSTERDOWN promises a command did not run, so it is retried; a retry must
// not overtake a later command of the same client. The leader therefore refuses every command
// after a CLUSTERDOWN on a forwarded connection (connection.ts); here that link is retired, a
// client moves to another link only once its commands on the old one are all answered, every
// first attempt after a refusal of the client is refused without being sent, and the connection
// retries each refused command only after every earlier one has its outcome (connection.ts).
//
// The upstream connection first authenticates (members share --requirepass) and then says
// CAIRN.FORWARDED: the leader then never forwards that connection's commands again, so a stale
// view of who leads cannot make a loop; a member that is no longer the leader answers
// CLUSTERDOWN and the client retries.
//
// Errors: a lost or timed-out upstream turns a write into UNCERTAIN (it may have been applied)
// and a read into CLUSTERDOWN (nothing happened). A timeout closes the link it happened on: on a
// shared link the other clients' commands on it end as on a lost link (a leader silent for the
// whole request timeout has failed them all alike). Replies are decoded and re-encoded in the
// client's protocol (the upstream speaks the same version, set with HELLO), so RESP2's two
// nulls (nil bulk and nil array) both come back as a nil bulk; clients treat them alike.
import type { Clock, Timer } from '../../io/clock.js';
import {
  encodeCommand,
  INCOMPLETE,
  ReplyParser,
  RespError,
  type RespValue,
  type RespVersion,
} from '../../protocol/resp/index.js';
import { assert } from '../../stdx/assert.js';
import { ClusterDownError, UncertainError } from '../../storage/errors.js';
import { TxnConflictError } from '../../txn/errors.js';
import type { Dial, RespSocket } from './socket.js';

/** FORWARD_CONNECT_TIMEOUT_MS: a leader that does not accept within this is treated as down. */
export const FORWARD_CONNECT_TIMEOUT_MS = 2_000;

/** Commands after which the client's state on the leader pins its upstream connection. */
const PINS = new Set(['multi', 'watch', 'txn.begin']);
const UNPINS = new Set(['exec', 'discard', 'unwatch', 'txn.commit', 'txn.rollback']);
/** BUFFERS: commands after which the client's commands are queued, not run (MULTI, TXN.BEGIN). */
const BUFFERS = new Set(['multi', 'txn.begin']);
/** COMMITS: commands that apply a transaction (run what the state held). */
const COMMITS = new Set(['exec', 'txn.commit']);
/** ABANDONS: commands that end a transaction without applying it: answered OK once it is lost. */
const ABANDONS = new Set(['discard', 'unwatch', 'txn.rollback']);
const noop = (): void => {};

interface Waiter {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

/** Upstream: one RESP connection to another member, commands pipelined, replies in order. */
export class Upstream {
  private readonly parser = new ReplyParser();
  private readonly waiters: Waiter[] = [];
  closed = false;
  protocol: RespVersion = 2;
  /**
   * poisoned: a command on it was answered CLUSTERDOWN, after which the member refuses every
   * later command on this connection (connection.ts, `forwardRefused`): no new command goes on
   * it, and it closes once its replies are in.
   */
  poisoned = false;

  /** pending: commands sent whose replies have not arrived. */
  get pending(): number {
    return this.waiters.length;
  }

  /** retire stops new commands going on this connection and closes it once it is drained. */
  retire(): void {
    this.poisoned = true;
    if (this.waiters.length === 0) this.close();
  }

  constructor(
    readonly addr: string,
    private readonly socket: RespSocket,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.fail());
    socket.on('close', () => this.fail());
  }

  static connect(addr: string, clock: Clock, dial: Dial): Promise<Upstream> {
    const at = addr.lastIndexOf(':');
    const host = addr.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(at + 1));
    return new Promise((resolve, reject) => {
      const socket = dial(host, port);
      socket.setNoDelay(true);
      const timer = clock.after(FORWARD_CONNECT_TIMEOUT_MS, () => {
        socket.destroy();
        reject(new ClusterDownError(`the leader at ${addr} did not accept a connection`));
      });
      socket.once('connect', () => {
        timer.cancel();
        socket.removeAllListeners('error');
        resolve(new Upstream(addr, socket));
      });
      socket.once('error', (err) => {
        timer.cancel();
        reject(new ClusterDownError(`cannot reach the leader at ${addr}: ${err.message}`));
      });
    });
  }

  /**
   * call sends one command; the reply (an error reply included) resolves it. Commands are
   * written once per turn of the event loop (setImmediate), so the commands of every client that
   * shares this link in that turn leave in one system call.
   */
  call(args: readonly (Buffer | string)[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(new Error('upstream closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.out.push(encodeCommand(args));
      if (this.out.length === 1) setImmediate(this.flushNow);
    });
  }

  private readonly out: Buffer[] = [];
  private readonly flushNow = (): void => {
    if (this.closed || this.out.length === 0) return;
    const batch = this.out.length === 1 ? this.out[0]! : Buffer.concat(this.out);
    this.out.length = 0;
    this.socket.write(batch);
  };

  close(): void {
    this.socket.destroy();
    this.fail();
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
      for (;;) {
        const reply = this.parser.next();
        if (reply === INCOMPLETE) break;
        this.waiters.shift()?.resolve(reply);
        if (this.poisoned && this.waiters.length === 0) this.close();
      }
    } catch {
      this.close();
    }
  }

  private fail(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    for (const w of this.waiters.splice(0)) w.reject(new Error('connection to the leader lost'));
  }
}

/**
 * FORWARD_LINKS: shared connections from a member to the leader per protocol version. Clients'
 * unpinned commands share them (spread by client id), so the leader serves a few deep pipelines
 * instead of one connection per client of every follower: one socket read and one write per link
 * per turn instead of per client, and forwarded clients do not count against the leader's
 * `maxclients`. More than one, so one slow reply (a large SCAN) holds back a quarter of the
 * followers' clients, not all of them.
 */
export const FORWARD_LINKS = 4;

/**
 * UpstreamPool: a member's shared links to the leader (FORWARD_LINKS per address and protocol).
 * A link that was refused (poisoned) or lost is replaced by a new one on the next request; the
 * old one closes once its replies are in.
 */
export class UpstreamPool {
  private readonly links = new Map<string, Promise<Upstream>>();
  private closed = false;

  constructor(
    readonly password: string | undefined,
    private readonly clock: Clock,
    readonly dial: Dial,
  ) {}

  /** get returns an open, unrefused link to `addr` speaking `protocol`, opening one if needed. */
  async get(addr: string, protocol: RespVersion, slot: number): Promise<Upstream> {
    if (this.closed) throw new ClusterDownError('this member is shutting down');
    const key = `${protocol}|${slot % FORWARD_LINKS}|${addr}`;
    const known = this.links.get(key);
    if (known !== undefined) {
      const up = await known.catch(() => undefined);
      if (up !== undefined && !up.closed && !up.poisoned) return up;
      if (this.links.get(key) !== known) return this.get(addr, protocol, slot);
      this.links.delete(key);
    }
    const opening = this.open(addr, protocol);
    this.links.set(key, opening);
    opening.catch(() => {
      if (this.links.get(key) === opening) this.links.delete(key);
    });
    const up = await opening;
    if (this.closed) up.close();
    return up;
  }

  close(): void {
    this.closed = true;
    for (const link of this.links.values()) link.then((up) => up.close(), noop);
    this.links.clear();
  }

  private async open(addr: string, protocol: RespVersion): Promise<Upstream> {
    const up = await openMemberLink(addr, this.password, this.clock, this.dial);
    if (protocol !== up.protocol) {
      const hello = await up.call(['HELLO', String(protocol)]);
      if (hello instanceof RespError) {
        up.close();
        throw new ClusterDownError(`the leader refused HELLO ${protocol}: ${hello.message}`);
      }
      up.protocol = protocol;
    }
    return up;
  }
}

/** Attempt: one forward() call's bookkeeping. */
interface Attempt {
  /** sent: the command went out on a link (counted in Forwarder.inFlight until it settles). */
  sent: boolean;
  /** owes: it was refused (did not run) and is counted in Forwarder.owed. */
  owes: boolean;
  /**
   * inState: sent while the client held state on the leader (after MULTI, WATCH or TXN.BEGIN):
   * it belongs to that state, so it is never retried elsewhere, where the state is not.
   */
  inState: boolean;
  /** buffered: sent inside MULTI or TXN.BEGIN, where it is queued, not run (only EXEC runs it). */
  buffered: boolean;
}

/**
 * Forwarder: one client connection's path to the leader. Unpinned commands go on the member's
 * shared links (UpstreamPool); from MULTI, WATCH or TXN.BEGIN until the state ends, commands go
 * on a connection of the client's own ("dedicated"), where that state lives on the leader.
 *
 * Order. A client's commands are sent in call order (sendChain). While any of them awaits its
 * reply, the next goes on the same link, or waits until they are all in before it moves to
 * another (a new leader, a refused or lost link, pinning): two links could reorder them. After a
 * refusal (a CLUSTERDOWN reply, or refused unsent), every later first attempt of the client is
 * refused unsent too (`owed`) until the refused ones have been retried, in order, by the caller.
 */
export class Forwarder {
  /** dedicated: the client's own connection, for commands that pin state on the leader. */
  private dedicated: Upstream | undefined;
  /** last: the link the client's newest command went on. */
  private last: Upstream | undefined;
  /** inFlight: commands sent whose outcome forward() has not settled yet. */
  private inFlight = 0;
  private idleWaiters: (() => void)[] = [];
  /** owed: refused commands (they did not run) whose retry has not been sent yet. */
  private owed = 0;
  /** sendChain: the previous command's send (not its reply): commands leave in call order. */
  private sendChain: Promise<void> = Promise.resolve();
  /** pinned: the client has state on the leader (MULTI, WATCH, TXN.BEGIN): keep this upstream. */
  private pinnedTo: string | undefined;
  /** buffering: inside MULTI or TXN.BEGIN on the leader (commands are queued there). */
  private buffering = false;
  /**
   * lost: why the client's state on the leader was lost (a lost or refused link, a leader
   * change), if it was. Until the client ends the transaction itself (EXEC, DISCARD, UNWATCH,
   * TXN.COMMIT, TXN.ROLLBACK, RESET), every command is refused with CONFLICT without being sent:
   * otherwise the rest of a pipelined MULTI ... EXEC ran one by one on the leader, outside any
   * transaction and past its WATCH (found 2026-12-06: a transfer applied half, an account below
   * zero).
   */
  private lost: string | undefined;

  constructor(
    private readonly pool: UpstreamPool,
    /** slot: which of the shared links this client uses (its client id). */
    private readonly slot: number,
    private readonly timeoutMs: number,
    private readonly clock: Clock,
  ) {}

  /** pinned: the address the client's leader-side state lives at, if any. */
  get pinned(): string | undefined {
    return this.pinnedTo;
  }

  /**
   * forward runs one command on the leader (`target` resolves its address) and returns its
   * reply. Commands are pipelined: each is written as soon as the one before it was written,
   * without waiting for replies, so calls must be made in the client's order; the replies come
   * back in that order. `args` must be the caller's own (kept until the reply is in).
   *
   * Refusals: an outcome that is a CLUSTERDOWN reply or a thrown ClusterDownError (the command
   * did not run) is owed: the caller must either forward the same command again with `fresh`
   * (after every earlier command of the client has its outcome), or call `release()` once.
   */
  async forward(
    target: () => Promise<string>,
    name: string,
    args: readonly Buffer[],
    protocol: RespVersion,
    isWrite: boolean,
    fresh = false,
  ): Promise<RespValue> {
    if (fresh) this.release();
    const attempt: Attempt = { sent: false, owes: false, inState: false, buffered: false };
    // Sends are serialized (address, connection, HELLO, write), replies are awaited outside.
    const sent = this.sendChain.then(() => this.send(target, name, args, protocol, fresh, attempt));
    this.sendChain = sent.then(noop, noop);
    let timer: Timer | undefined;
    try {
      const { up, reply: replied } = await sent;
      // Answered here, unsent: a lost transaction ended by DISCARD, UNWATCH or TXN.ROLLBACK.
      if (up === undefined) return await replied;
      const reply = await new Promise<RespValue>((resolve, reject) => {
        timer = this.clock.after(this.timeoutMs, () => {
          up.close();
          reject(new Error(`no reply from the leader within ${this.timeoutMs} ms`));
        });
        replied.then(resolve, reject);
      });
      if (reply instanceof RespError && reply.code === 'CLUSTERDOWN') {
        // The member refuses every later command on this connection (see Upstream.poisoned).
        up.retire();
        // A command of the client's state did not run, and cannot run anywhere else: the
        // state is gone (a leader that lost its leadership refuses EXEC, which was then retried
        // on the new leader and answered "EXEC without MULTI").
        if (attempt.inState) throw this.loseState(name, `the leader refused it (${reply.message})`);
        this.owe(attempt);
        return reply;
      }
      // Queued inside MULTI (UNWATCH, say): it changes nothing until EXEC runs it.
      if (reply === 'QUEUED') return reply;
      if (!(reply instanceof RespError)) {
        if (PINS.has(name)) this.pinnedTo = up.addr;
        else if (UNPINS.has(name)) this.pinnedTo = undefined;
        if (BUFFERS.has(name)) this.buffering = true;
      }
      // EXEC and TXN.COMMIT end the state whatever they answer (EXECABORT, a conflict).
      if (COMMITS.has(name) || (UNPINS.has(name) && !(reply instanceof RespError))) {
        if (COMMITS.has(name)) this.pinnedTo = undefined;
        this.buffering = false;
      }
      return reply;
    } catch (err) {
      const failure = this.failure(err, name, isWrite, attempt);
      if (failure instanceof ClusterDownError) this.owe(attempt);
      throw failure;
    } finally {
      timer?.cancel();
      // After the refusal is counted, so that a command waiting to move to another link sees it.
      if (attempt.sent && --this.inFlight === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }

  /** release: a refused command will not be retried (see forward). */
  release(): void {
    assert(this.owed > 0, 'a refusal released twice');
    this.owed--;
  }

  private owe(attempt: Attempt): void {
    if (attempt.owes) return;
    attempt.owes = true;
    this.owed++;
  }

  /**
   * failure: the error a command that got no reply ends with (see "Errors" above). One of the
   * client's state loses that state: a queued command (inside MULTI or TXN.BEGIN) or a read is
   * CONFLICT, since it ran nothing; EXEC, TXN.COMMIT, or a write after WATCH may have run.
   */
  private failure(err: unknown, name: string, isWrite: boolean, attempt: Attempt): Error {
    if (err instanceof TxnConflictError) return err;
    if (err instanceof ClusterDownError) {
      // Not sent, or refused before it ran: within the state, the state is gone.
      return attempt.inState ? this.loseState(name, err.message) : err;
    }
    const why = (err as Error).message;
    const ranMaybe = COMMITS.has(name) || (isWrite && !attempt.buffered);
    if (attempt.inState) {
      const conflict = this.loseState(name, why);
      if (!ranMaybe) return conflict;
    }
    if (ranMaybe) return new UncertainError(`${why}: the command may or may not have been applied`);
    return new ClusterDownError(`${why}: the command did not run`);
  }

  /**
   * loseState: the client's state on the leader is gone (`why`). Unless `name` ends the state
   * itself, later commands are refused until the client ends it (`lost`). Returns the conflict
   * the command answers.
   */
  private loseState(name: string, why: string): TxnConflictError {
    this.pinnedTo = undefined;
    this.buffering = false;
    this.dedicated?.close();
    this.dedicated = undefined;
    // EXEC, DISCARD and the like end the transaction as the client sees it; anything else
    // leaves it lost until one of them comes.
    this.lost = UNPINS.has(name) ? undefined : why;
    return new TxnConflictError(`${why}; the transaction is gone, retry it`);
  }

  /**
   * send writes one command to its link and returns the promise of its reply. The link: the
   * client's dedicated connection while it holds state on the leader (or for the command that
   * creates that state), else a shared one. A link with the client's replies still due is kept
   * even if the leader moved: its commands answer for themselves; moving to another waits until
   * they are all in.
   */
  private async send(
    target: () => Promise<string>,
    name: string,
    args: readonly Buffer[],
    protocol: RespVersion,
    fresh: boolean,
    attempt: Attempt,
  ): Promise<{ up: Upstream | undefined; reply: Promise<RespValue> }> {
    for (;;) {
      if (this.lost !== undefined) {
        // In call order (sends are serialized): everything sent before the loss has gone.
        const why = this.lost;
        if (UNPINS.has(name)) this.lost = undefined;
        if (ABANDONS.has(name)) return { up: undefined, reply: Promise.resolve('OK') };
        throw new TxnConflictError(
          UNPINS.has(name)
            ? `${why}; the transaction is gone, retry it`
            : `${why}; the transaction is gone: EXEC, DISCARD or UNWATCH ends it, then retry it`,
        );
      }
      const dedicated = this.pinnedTo !== undefined || PINS.has(name);
      const keepLast =
        this.last !== undefined &&
        this.inFlight > 0 &&
        !this.last.closed &&
        !this.last.poisoned &&
        (this.last === this.dedicated) === dedicated;
      if (!keepLast && this.inFlight > 0) {
        await new Promise<void>((wake) => this.idleWaiters.push(wake));
        continue;
      }
      if (!fresh && this.owed > 0) {
        this.owe(attempt);
        throw new ClusterDownError('an earlier command was refused by the leader; retry');
      }
      let up: Upstream;
      if (keepLast) up = this.last!;
      else if (dedicated) up = await this.dedicatedLink(target, protocol, name);
      else up = await this.pool.get(await target(), protocol, this.slot);
      // Opening a link awaited: another command of this client may have gone out meanwhile? No:
      // sends are serialized, so nothing of this client was sent since the checks above.
      this.last = up;
      this.inFlight++;
      attempt.sent = true;
      attempt.inState = this.pinnedTo !== undefined;
      attempt.buffered = this.buffering;
      return { up, reply: up.call(args) };
    }
  }

  /** dedicatedLink: the client's own connection to the leader, opened (and HELLO'd) as needed. */
  private async dedicatedLink(
    target: () => Promise<string>,
    protocol: RespVersion,
    name: string,
  ): Promise<Upstream> {
    let up = this.dedicated;
    if (up?.poisoned === true || up?.closed === true) {
      up?.close();
      up = this.dedicated = undefined;
      if (this.pinnedTo !== undefined) {
        // The client's MULTI, WATCH or transaction lived on that connection, which the leader
        // no longer serves (or which was lost): it is gone.
        throw this.loseState(name, 'the connection to the leader was refused or lost');
      }
    }
    if (up === undefined && this.pinnedTo !== undefined) {
      throw this.loseState(name, 'the connection to the leader was lost');
    }
    if (this.pinnedTo === undefined) {
      const addr = await target();
      if (up !== undefined && up.addr !== addr) {
        up.close();
        up = this.dedicated = undefined;
      }
      up ??= this.dedicated = await openMemberLink(addr, this.pool.password, this.clock, this.pool.dial);
    }
    const use = up as Upstream;
    if (use.protocol !== protocol) {
      const hello = await use.call(['HELLO', String(protocol)]);
      if (hello instanceof RespError)
        throw new ClusterDownError(`the leader refused HELLO ${protocol}: ${hello.message}`);
      use.protocol = protocol;
    }
    return use;
  }

  /** close drops the client's own connection (and with it its state on the leader). */
  close(): void {
    this.dedicated?.close();
    this.dedicated = undefined;
    this.pinnedTo = undefined;
    this.buffering = false;
    this.lost = undefined;
  }
}

/**
 * openMemberLink opens a connection to another member's RESP port as a member: authenticated
 * with the shared password and marked CAIRN.FORWARDED, so nothing sent on it is forwarded again
 * (the command forwarder's upstreams, the PUBLISH fan-out's links).
 */
export async function openMemberLink(
  addr: string,
  password: string | undefined,
  clock: Clock,
  dial: Dial,
): Promise<Upstream> {
  const up = await Upstream.connect(addr, clock, dial);
  try {
    if (password !== undefined) {
      const ok = await up.call(['AUTH', password]);
      if (ok instanceof RespError)
        throw new ClusterDownError(`the member at ${addr} refused AUTH: ${ok.message}`);
    }
    const marked = await up.call(['CAIRN.FORWARDED']);
    if (marked instanceof RespError)
      throw new ClusterDownError(`the member at ${addr} refused forwarding: ${marked.message}`);
    return up;
  } catch (err) {
    up.close();
    if (err instanceof ClusterDownError) throw err;
    throw new ClusterDownError(`lost the member at ${addr} while connecting: ${(err as Error).message}`);
  }
}
