// Forwarder: how a cluster member that is not the leader runs a client's command anyway: it sends
// the command, as the client sent it, over a connection of its own to the leader's RESP port and
// relays the reply (docs/cluster.md, "Every member accepts every command"). One upstream
// connection per client connection, so connection state that lives on the leader (MULTI, WATCH,
// TXN.BEGIN) stays with the client that opened it.
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

interface Waiter {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

class Upstream {
  private readonly parser = new ReplyParser();
  private readonly waiters: Waiter[] = [];
  closed = false;
  protocol: RespVersion = 2;

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

  /** forward runs one command on the member at `addr` and returns its reply. */
  async forward(
    addr: string,
    name: string,
    args: readonly Buffer[],
    protocol: RespVersion,
    isWrite: boolean,
  ): Promise<RespValue> {
    const target = this.pinnedTo ?? addr;
    let up = this.upstream;
    if (up !== undefined && (up.closed || up.addr !== target)) {
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
      up = this.upstream = await this.open(target);
    }
    const encoded = args.map((a) => Buffer.from(a)); // The client's buffers are borrowed.
    let timer: Timer | undefined;
    try {
      if (up.protocol !== protocol) {
        const hello = await up.call(['HELLO', String(protocol)]);
        if (hello instanceof RespError)
          throw new ClusterDownError(`the leader refused HELLO ${protocol}: ${hello.message}`);
        up.protocol = protocol;
      }
      const reply = await new Promise<RespValue>((resolve, reject) => {
        timer = this.clock.after(this.timeoutMs, () => {
          up.close();
          reject(new Error(`no reply from the leader within ${this.timeoutMs} ms`));
        });
        up.call(encoded).then(resolve, reject);
      });
      if (!(reply instanceof RespError)) {
        if (PINS.has(name)) this.pinnedTo = target;
        else if (UNPINS.has(name)) this.pinnedTo = undefined;
      } else if (name === 'exec' || name === 'txn.commit') {
        this.pinnedTo = undefined;
      }
      return reply;
    } catch (err) {
      if (err instanceof ClusterDownError) throw err;
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

  close(): void {
    this.upstream?.close();
    this.upstream = undefined;
  }

  private async open(addr: string): Promise<Upstream> {
    const up = await Upstream.connect(addr, this.clock);
    try {
      if (this.password !== undefined) {
        const ok = await up.call(['AUTH', this.password]);
        if (ok instanceof RespError)
          throw new ClusterDownError(`the leader refused this member's AUTH: ${ok.message}`);
      }
      const marked = await up.call(['CAIRN.FORWARDED']);
      if (marked instanceof RespError)
        throw new ClusterDownError(`the leader refused forwarding: ${marked.message}`);
      return up;
    } catch (err) {
      up.close();
      if (err instanceof ClusterDownError) throw err;
      throw new ClusterDownError(`lost the leader at ${addr} while connecting: ${(err as Error).message}`);
    }
  }
}
