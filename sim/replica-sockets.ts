// SimSockets: TCP connections for the replica simulator's RESP servers (docs/replica-sim.md, "RESP
// and forwarding"): the clients' connections to members, and the members' links to the leader
// that forward commands (src/server/resp/forwarder.ts). A connection is two SimSocket ends;
// each direction is a byte stream delivered in order, every write after a delay the network
// draws (ReplicaNet's), never lost, duplicated or reordered, as TCP gives.
//
// Faults, as a TCP connection sees them:
// - a process that dies takes its sockets with it: the other end sees 'close' one network delay
//   later (the kernel's reset), and bytes in flight to the dead end are lost;
// - bytes that arrive over a cut link between two members reset the connection (a connection
//   whose packets cannot get through times out; the simulator does not wait that long): both
//   ends see 'close';
// - a connection to an address nobody listens on (the member is down) is refused ('error'); one
//   over a cut link is never answered (the dialer's own timeout ends it).
// Clients of the simulation are not members: their links are never cut, only closed by the
// death of the member at the other end.
import type { NodeId } from '../src/raft/index.js';
import type { Dial, RespSocket } from '../src/server/resp/socket.js';
import type { ReplicaNet } from './replica-net.js';
import type { SimProcess, SimScheduler } from './replica-scheduler.js';

/** Host: one end's owner: a member's process, or a client of the simulation (no process, no node). */
export interface Host {
  readonly node: NodeId | undefined;
  readonly proc: SimProcess | undefined;
}

interface Listener {
  readonly host: Host & { readonly proc: SimProcess };
  readonly accept: (socket: RespSocket) => void;
}

export class SimSockets {
  private readonly listeners = new Map<string, Listener>();
  /**
   * opened, memberLinks, reset, refused: connections established (memberLinks: by a member, to
   * forward or publish), reset by a fault or a death, and refused.
   */
  opened = 0;
  memberLinks = 0;
  reset = 0;
  refused = 0;

  constructor(
    readonly sched: SimScheduler,
    private readonly net: ReplicaNet,
    /** trace: the simulator's trace (connections opened, refused, reset). */
    readonly trace: (line: string) => void,
  ) {}

  /** listen: `accept` gets every connection to `address` until the process dies. */
  listen(
    address: string,
    host: Host & { readonly proc: SimProcess },
    accept: (socket: RespSocket) => void,
  ): void {
    const l: Listener = { host, accept };
    this.listeners.set(address, l);
    host.proc.onDeath(() => {
      if (this.listeners.get(address) === l) this.listeners.delete(address);
    });
  }

  /** dialer: how `from` connects (a member's Dial for its RESP server, or a client's). */
  dialer(from: Host): Dial {
    return (host, port) => this.connect(from, `${host}:${port}`);
  }

  /** connect opens a connection from `from` to `address`: 'connect' or 'error' follows. */
  connect(from: Host, address: string): SimSocket {
    const local = new SimSocket(this, from, address);
    this.after(local, this.net.latency(), () => {
      const l = this.listeners.get(address);
      if (l === undefined || !l.host.proc.alive) {
        this.refused++;
        this.trace(`${describe(from)} -> ${address}: refused`);
        this.after(local, this.net.latency(), () => local.fail(new Error(`connect ECONNREFUSED ${address}`)));
        return;
      }
      if (this.cut(from, l.host)) return; // unanswered: the dialer's timeout ends it
      const remote = new SimSocket(this, l.host, `client of ${address}`);
      remote.peer = local;
      local.peer = remote;
      this.opened++;
      if (from.node !== undefined) this.memberLinks++;
      this.trace(`${describe(from)} -> ${address}: connected (${l.host.proc.name})`);
      l.accept(remote);
      this.after(local, this.net.latency(), () => {
        if (!local.closed) local.emit('connect');
      });
    });
    return local;
  }

  /** cut: whether the link between two hosts is cut (only members' links are). */
  cut(a: Host, b: Host): boolean {
    if (a.node === undefined || b.node === undefined || a.node === b.node) return false;
    return this.net.isCut(a.node, b.node) || this.net.isCut(b.node, a.node);
  }

  /** delay: one segment's network delay. */
  delay(): number {
    return this.net.latency();
  }

  /** after runs fn after `ms` in the life of `socket`'s owner (nothing runs in a dead process). */
  after(socket: SimSocket, ms: number, fn: () => void): void {
    this.sched.at(ms, () => {
      if (socket.host.proc?.alive !== false) fn();
    });
  }
}

type Handler = (...args: never[]) => void;

/** SimSocket: one end of a simulated TCP connection (the RespSocket a connection or link uses). */
export class SimSocket implements RespSocket {
  peer: SimSocket | undefined;
  closed = false;
  private readonly handlers = new Map<string, { fn: Handler; once: boolean }[]>();
  /** arrival: when the last segment sent to this end arrives (deliveries keep their order). */
  private arrival = 0;
  private paused = false;
  private readonly inbox: Buffer[] = [];
  /** finished: the other end ended; this end closes once the inbox is delivered. */
  private finished = false;
  readonly writableLength = 0;
  readonly remotePort = 0;
  readonly localAddress = 'sim';
  readonly localPort = 0;

  constructor(
    private readonly sockets: SimSockets,
    readonly host: Host,
    readonly remoteAddress: string,
  ) {
    host.proc?.onDeath(() => this.lost());
  }

  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'connect' | 'drain' | 'close', listener: () => void): this;
  on(event: string, listener: Handler): this {
    return this.add(event, listener, false);
  }

  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'connect', listener: () => void): this;
  once(event: string, listener: Handler): this {
    return this.add(event, listener, true);
  }

  removeAllListeners(event: string): this {
    this.handlers.delete(event);
    return this;
  }

  emit(event: string, ...args: unknown[]): void {
    const list = this.handlers.get(event);
    if (list === undefined) return;
    this.handlers.set(
      event,
      list.filter((h) => !h.once),
    );
    for (const h of list) (h.fn as (...a: unknown[]) => void)(...args);
  }

  write(chunk: Buffer): boolean {
    const peer = this.peer;
    if (this.closed || peer === undefined) return true;
    // The caller's buffer is borrowed: what travels is a copy.
    peer.receive(Buffer.from(chunk), this);
    return true;
  }

  cork(): void {}
  uncork(): void {}

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.sockets.after(this, 0, () => this.drainInbox());
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  end(data?: string | (() => void), callback?: () => void): this {
    const cb = typeof data === 'function' ? data : callback;
    if (typeof data === 'string') this.write(Buffer.from(data));
    const peer = this.peer;
    if (!this.closed && peer !== undefined) peer.finAfterData();
    this.sockets.after(this, 0, () => {
      cb?.();
      this.close();
    });
    return this;
  }

  destroy(): this {
    const peer = this.peer;
    if (!this.closed && peer !== undefined)
      this.sockets.after(peer, this.sockets.delay(), () => peer.close());
    this.close();
    return this;
  }

  /** fail: the connection could not be made. */
  fail(err: Error): void {
    if (this.closed) return;
    this.emit('error', err);
    this.close();
  }

  private add(event: string, fn: Handler, once: boolean): this {
    const list = this.handlers.get(event) ?? [];
    list.push({ fn, once });
    this.handlers.set(event, list);
    return this;
  }

  /** receive schedules bytes from `from` to arrive here in order. */
  private receive(bytes: Buffer, from: SimSocket): void {
    const at = Math.max(this.sockets.sched.now + this.sockets.delay(), this.arrival);
    this.arrival = at;
    this.sockets.after(this, at - this.sockets.sched.now, () => {
      if (this.closed) return;
      if (this.sockets.cut(from.host, this.host)) {
        this.sockets.reset++;
        this.sockets.trace(`${describe(from.host)} -> ${this.remoteAddress}: reset (link cut)`);
        from.destroy();
        this.close();
        return;
      }
      this.inbox.push(bytes);
      this.drainInbox();
    });
  }

  /** finAfterData: the other end ended; this end closes once what it sent before has arrived. */
  private finAfterData(): void {
    const at = Math.max(this.sockets.sched.now + this.sockets.delay(), this.arrival);
    this.arrival = at;
    this.sockets.after(this, at - this.sockets.sched.now, () => {
      this.finished = true;
      this.drainInbox();
    });
  }

  private drainInbox(): void {
    while (!this.paused && !this.closed && this.inbox.length > 0)
      this.emit('data', this.inbox.shift() as Buffer);
    if (this.finished && this.inbox.length === 0) this.close();
  }

  /** close: closed at once; 'close' is emitted on a later turn, as Node's sockets do. */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox.length = 0;
    this.sockets.after(this, 0, () => this.emit('close'));
  }

  /** lost: this end's process died: the other end sees a reset one delay later. */
  private lost(): void {
    if (this.closed) return;
    this.closed = true;
    const peer = this.peer;
    if (peer !== undefined) {
      this.sockets.reset++;
      this.sockets.after(peer, this.sockets.delay(), () => peer.close());
    }
  }
}

/** describe names a host in traces: its process, or "client". */
function describe(h: Host): string {
  return h.proc?.name ?? 'client';
}
