// MemoryTransport: members of one process connected through a hub, for tests of the replica
// layer without sockets. Messages are delivered on a later turn of the event loop (as over a
// network: never re-entrantly), and links can be cut to make partitions.
import type { Message, NodeId } from '../raft/index.js';
import type { Peer, PeerInfo, Transport, TransportHandlers } from './transport.js';

export class MemoryHub {
  constructor(
    /** defer: how a delivery is put off to a later turn (the simulator passes its scheduler). */
    private readonly defer: (fn: () => void) => void = setImmediate,
  ) {}

  private readonly members = new Map<NodeId, { handlers: TransportHandlers; info: PeerInfo }>();
  /** cut: links that drop every message, as "from>to". */
  private readonly cut = new Set<string>();
  /** drop: when set, messages it matches are lost (e.g. only appends, so heartbeats keep a leader). */
  drop: ((m: Message) => boolean) | undefined;

  join(info: PeerInfo, handlers: TransportHandlers): Transport {
    this.members.set(info.id, { handlers, info });
    for (const [id, m] of this.members) {
      if (id === info.id) continue;
      handlers.onPeerInfo(m.info);
      m.handlers.onPeerInfo(info);
    }
    return new MemoryTransport(this, info.id);
  }

  leave(id: NodeId): void {
    this.members.delete(id);
  }

  /** isolate cuts every link to and from id; heal restores them all. */
  isolate(id: NodeId): void {
    for (const other of this.members.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}>${other}`);
      this.cut.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  deliver(from: NodeId, msgs: readonly Message[]): void {
    const byTo = new Map<NodeId, Message[]>();
    for (const m of msgs) {
      if (this.cut.has(`${from}>${m.to}`) || this.drop?.(m) === true) continue;
      let list = byTo.get(m.to);
      if (list === undefined) byTo.set(m.to, (list = []));
      list.push(m);
    }
    this.defer(() => {
      for (const [to, list] of byTo) {
        const member = this.members.get(to);
        if (member === undefined) this.members.get(from)?.handlers.onUnreachable(to);
        else member.handlers.onMessages(list);
      }
    });
  }
}

class MemoryTransport implements Transport {
  private closed = false;

  constructor(
    private readonly hub: MemoryHub,
    private readonly id: NodeId,
  ) {}

  send(msgs: readonly Message[]): void {
    if (!this.closed) this.hub.deliver(this.id, msgs);
  }

  setPeers(_peers: readonly Peer[]): void {}

  close(): Promise<void> {
    this.closed = true;
    this.hub.leave(this.id);
    return Promise.resolve();
  }
}
