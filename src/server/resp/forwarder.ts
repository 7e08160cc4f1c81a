// Forwarder: how a cluster member that is not the leader runs a client's command anyway: it sends
// the command, as the client sent it, over a connection of its own to the leader's RESP port and
// relays the reply (docs/cluster.md, "Every member accepts every command"). One upstream
// connection per client connection, so connection state that lives on the leader (MULTI, WATCH,
// TXN.BEGIN) stays with the client that opened it. A client's pipeline stays a pipeline: each
// command goes upstream as soon as it is read, and replies return in order.
//
// Order under failure. CLUSTERDOWN promises a command did not run, so it is retried; a retry must
// not overtake a later command of the same client. The leader therefore refuses every command
// after a CLUSTERDOWN on a forwarded connection (connection.ts); here that connection is retired,
// a first attempt that would go on it is refused without being sent, and the connection retries
// each refused command only after every earlier one has its outcome (connection.ts).
//
// The upstream connection first authenticates (members share --requirepass) and then says
// CAIRN.FORWARDED: the leader then never forwards that connection's commands again, so a stale
// view of who leads cannot make a loop; a member that is no longer the leader answers
// CLUSTERDOWN and the client retries.
//
// Errors: a lost or timed-out upstream turns a write into UNCERTAIN (it may have been applied)
// and a read into CLUSTERDOWN (nothing happened). Replies are decoded and re-encoded in the
// client's protocol (the upstream speaks the same version, set with HELLO), so RESP2's two
// nulls (nil bulk and nil array) both come back as a nil bulk; clients treat them alike.
import * as net from 'node:net';
import type { Clock, Timer } from '../../io/clock.js';
import {
  encodeCommand,
  INCOMPLETE,
  ReplyParser,
  RespError,
  type RespValue,
  type RespVersion,
} from '../../protocol/resp/index.js';
import { ClusterDownError, UncertainError } from '../../storage/errors.js';
import { TxnConflictError } from '../../txn/errors.js';

/** FORWARD_CONNECT_TIMEOUT_MS: a leader that does not accept within this is treated as down. */
export const FORWARD_CONNECT_TIMEOUT_MS = 2_000;

/** Commands after which the client's state on the leader pins its upstream connection. */
const PINS = new Set(['multi', 'watch', 'txn.begin']);
const UNPINS = new Set(['exec', 'discard', 'unwatch', 'txn.commit', 'txn.rollback']);
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
    private readonly socket: net.Socket,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.fail());
    socket.on('close', () => this.fail());
  }

  static connect(addr: string, clock: Clock): Promise<Upstream> {
    const at = addr.lastIndexOf(':');
    const host = addr.slice(0, at).replace(/^\[|\]$/g, '');
    const port = Number(addr.slice(at + 1));
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
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

  /** call sends one command; the reply (an error reply included) resolves it. */
  call(args: readonly (Buffer | string)[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(new Error('upstream closed'));
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.socket.write(encodeCommand(args));
    });
  }

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

export class Forwarder {
  private upstream: Upstream | undefined;
  /** sendChain: the previous command's send (not its reply): commands leave in call order. */
  private sendChain: Promise<void> = Promise.resolve();
  /** pinned: the client has state on the leader (MULTI, WATCH, TXN.BEGIN): keep this upstream. */
  private pinnedTo: string | undefined;

  constructor(
    private readonly password: string | undefined,
    private readonly timeoutMs: number,
    private readonly clock: Clock,
  ) {}

  /** pinned: the address the client's leader-side state lives at, if any. */
  get pinned(): string | undefined {
    return this.pinnedTo;
  }

  /**
   * forward runs one command on the leader (`target` resolves its address) and returns its
   * reply. Commands are pipelined: each is written to the upstream connection as soon as the
   * one before it was written, without waiting for replies, so calls must be made in the
   * client's order; the replies come back in that order. `fresh`: every earlier command of this
   * client has its outcome (a retry): a retired connection is left for a new one.
   */
  async forward(
    target: () => Promise<string>,
    name: string,
    args: readonly Buffer[],
    protocol: RespVersion,
    isWrite: boolean,
    fresh = false,
  ): Promise<RespValue> {
    const encoded = args.map((a) => Buffer.from(a)); // The client's buffers are borrowed.
    // Sends are serialized (address, connection, HELLO, write), replies are awaited outside.
    const sent = this.sendChain.then(() => this.send(target, encoded, protocol, fresh));
    this.sendChain = sent.then(noop, noop);
    let timer: Timer | undefined;
    try {
      const { up, reply: replied } = await sent;
      const reply = await new Promise<RespValue>((resolve, reject) => {
        timer = this.clock.after(this.timeoutMs, () => {
          up.close();
          reject(new Error(`no reply from the leader within ${this.timeoutMs} ms`));
        });
        replied.then(resolve, reject);
      });
      if (!(reply instanceof RespError)) {
        if (PINS.has(name)) this.pinnedTo = up.addr;
        else if (UNPINS.has(name)) this.pinnedTo = undefined;
      } else {
        if (name === 'exec' || name === 'txn.commit') this.pinnedTo = undefined;
        // The member refuses every later command on this connection (see Upstream.poisoned).
        if (reply.code === 'CLUSTERDOWN') up.retire();
      }
      return reply;
    } catch (err) {
      if (err instanceof ClusterDownError || err instanceof TxnConflictError) throw err;
      const why = (err as Error).message;
      if (this.pinnedTo !== undefined) {
        this.pinnedTo = undefined;
        if (!isWrite && name !== 'exec' && name !== 'txn.commit') {
          throw new TxnConflictError(`${why}; the transaction is gone, retry it`);
        }
      }
      if (isWrite || name === 'exec' || name === 'txn.commit') {
        throw new UncertainError(`${why}: the command may or may not have been applied`);
      }
      throw new ClusterDownError(`${why}: the command did not run`);
    } finally {
      timer?.cancel();
    }
  }

  /**
   * send writes one command to the upstream connection, opening one first when needed, and
   * returns the promise of its reply. A connection with replies still due, or holding the
   * client's transaction, is kept even if the leader moved: its commands answer for themselves.
   * A retired one takes no new command: a first attempt is refused as CLUSTERDOWN without being
   * sent (commands before it were refused too, and retries keep the client's order), a retry
   * goes to a new connection.
   */
  private async send(
    target: () => Promise<string>,
    encoded: readonly Buffer[],
    protocol: RespVersion,
    fresh: boolean,
  ): Promise<{ up: Upstream; reply: Promise<RespValue> }> {
    let up = this.upstream;
    if (up?.poisoned === true) {
      if (this.pinnedTo !== undefined) {
        // The client's MULTI, WATCH or transaction lived on that connection, which the leader
        // no longer serves: it is gone, as when the connection is lost.
        this.pinnedTo = undefined;
        this.upstream = undefined;
        throw new TxnConflictError(
          'the leader refused a command of this transaction; the transaction is gone, retry it',
        );
      }
      if (!fresh)
        throw new ClusterDownError('an earlier command was refused on this connection to the leader');
      up = this.upstream = undefined;
    }
    const keep = up !== undefined && !up.closed && (up.pending > 0 || this.pinnedTo !== undefined);
    if (!keep) {
      const addr = this.pinnedTo ?? (await target());
      if (up !== undefined && (up.closed || up.addr !== addr)) {
        up.close();
        up = this.upstream = undefined;
      }
      if (up === undefined) {
        if (this.pinnedTo !== undefined) {
          this.pinnedTo = undefined;
          throw new TxnConflictError(
            'the connection to the leader was lost; the transaction is gone, retry it',
          );
        }
        up = this.upstream = await this.open(addr);
      }
    }
    const use = up as Upstream;
    if (use.closed && this.pinnedTo !== undefined) {
      this.pinnedTo = undefined;
      throw new TxnConflictError('the connection to the leader was lost; the transaction is gone, retry it');
    }
    if (use.protocol !== protocol) {
      const hello = await use.call(['HELLO', String(protocol)]);
      if (hello instanceof RespError)
        throw new ClusterDownError(`the leader refused HELLO ${protocol}: ${hello.message}`);
      use.protocol = protocol;
    }
    return { up: use, reply: use.call(encoded) };
  }

  close(): void {
    this.upstream?.close();
    this.upstream = undefined;
  }

  private open(addr: string): Promise<Upstream> {
    return openMemberLink(addr, this.password, this.clock);
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
): Promise<Upstream> {
  const up = await Upstream.connect(addr, clock);
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
