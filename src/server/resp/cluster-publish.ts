// ClusterPublisher: PUBLISH on a cluster member reaches the subscribers of every member
// (docs/pubsub.md, "Cluster"). The member delivers locally, then sends `CAIRN.PUBLISH channel
// message` to every other member over one long-lived link each (forwarder.ts, openMemberLink),
// and answers the sum of the receivers. CAIRN.PUBLISH delivers locally only, so nothing loops.
//
// Not replicated through Raft on purpose: pub/sub is fire-and-forget in Redis. One FIFO link per
// member keeps one publisher member's messages in order at every member. A member that does not
// answer within PUBLISH_FANOUT_TIMEOUT_MS counts 0 receivers and its link is reopened for the
// next message: a partition loses messages rather than stalling publishers.
//
// Reopening a link is where order could break: what was written on the old link before it was
// given up may still arrive (the kernel keeps retransmitting an orphaned socket's data after a
// partition heals) after messages sent on the new one. So every fanned-out message carries its
// publisher's origin (member id and incarnation) and a sequence number, and a receiver drops one
// that is not newer than the last it delivered from that origin (FanIn): late means lost, never
// out of order.
import type { Clock, Timer } from '../../io/clock.js';
import type { ClusterFront } from './cluster-front.js';
import { openMemberLink, type Upstream } from './forwarder.js';
import type { Dial } from './socket.js';

/** PUBLISH_FANOUT_TIMEOUT_MS: how long PUBLISH waits for another member's receiver count. */
export const PUBLISH_FANOUT_TIMEOUT_MS = 1_000;

/**
 * FANIN_ORIGINS_MAX: how many publishers' last sequence numbers a member remembers. An origin is
 * a member's incarnation (a restart is a new one), so this bounds memory over many restarts; the
 * least recently heard origin is forgotten first.
 */
export const FANIN_ORIGINS_MAX = 1024;

/**
 * FanIn: the receiving side's order filter. accept(origin, seq) is true, and records `seq`, only
 * when `seq` is above every sequence number already accepted from `origin`.
 */
export class FanIn {
  /** last: origin -> the highest sequence number delivered; in order of last use (Map order). */
  private readonly last = new Map<string, number>();

  accept(origin: string, seq: number): boolean {
    const last = this.last.get(origin);
    if (last !== undefined && seq <= last) return false;
    this.last.delete(origin);
    this.last.set(origin, seq);
    if (this.last.size > FANIN_ORIGINS_MAX) {
      const oldest = this.last.keys().next();
      if (oldest.done !== true) this.last.delete(oldest.value);
    }
    return true;
  }
}

export class ClusterPublisher {
  /** links: one per member RESP address, opened at the first message to it. */
  private readonly links = new Map<string, Promise<Upstream>>();
  private closed = false;
  /**
   * origin: this publisher as receivers know it: the member's id and this incarnation's start
   * time (a restarted member's sequence numbers start again at 1 under a new origin). From the
   * server's clock, not a random source, so that a simulated run replays exactly.
   */
  readonly origin: string;
  /** seq: the last sequence number sent (every message gets the next, whatever its receivers). */
  private seq = 0;

  constructor(
    private readonly member: ClusterFront,
    private readonly password: string | undefined,
    private readonly clock: Clock,
    private readonly dial: Dial,
  ) {
    this.origin = `${member.identity.id}@${clock.nowMs()}`;
  }

  /** publish sends the message to every other member; resolves to `local` plus their receivers. */
  publish(channel: Buffer, payload: Buffer, local: number): number | Promise<number> {
    const self = this.member.identity.id;
    const others = this.member.members().filter((m) => m.id !== self && m.resp !== '');
    if (others.length === 0 || this.closed) return local;
    // Sent after an await (the link): the caller's buffers are borrowed.
    const args = [
      Buffer.from('CAIRN.PUBLISH'),
      Buffer.from(channel),
      Buffer.from(payload),
      Buffer.from(this.origin),
      Buffer.from(String(++this.seq)),
    ];
    return Promise.all(others.map((m) => this.send(m.resp, args))).then((counts) =>
      counts.reduce((sum, n) => sum + n, local),
    );
  }

  close(): void {
    this.closed = true;
    for (const link of this.links.values())
      link.then(
        (up) => up.close(),
        () => {},
      );
    this.links.clear();
  }

  private async send(addr: string, args: readonly Buffer[]): Promise<number> {
    let link = this.links.get(addr);
    if (link === undefined) {
      link = openMemberLink(addr, this.password, this.clock, this.dial);
      this.links.set(addr, link);
    }
    let timer: Timer | undefined;
    try {
      const up = await link;
      if (up.closed) throw new Error('link closed');
      const reply = await new Promise((resolve, reject) => {
        timer = this.clock.after(PUBLISH_FANOUT_TIMEOUT_MS, () => {
          up.close();
          reject(new Error('no answer'));
        });
        up.call(args).then(resolve, reject);
      });
      return typeof reply === 'number' ? reply : 0;
    } catch {
      // Down, unreachable, slow or refusing: 0 receivers there; the next message reconnects.
      if (this.links.get(addr) === link) this.links.delete(addr);
      return 0;
    } finally {
      timer?.cancel();
    }
  }
}
