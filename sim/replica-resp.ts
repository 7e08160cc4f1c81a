// RESP in the replica simulator (docs/replica-sim.md, "RESP and forwarding"): each member's
// process runs the real RESP server (src/server/resp) over its Db, on the simulated sockets
// (sim/replica-sockets.ts), fronting its member through SimFront; clients' commands sent to any
// member reach the leader through the real forwarder. SimRespLinks are the clients' connections.

import type { Db } from '../src/db/db.js';
import type { Clock } from '../src/io/clock.js';
import { encodeCommand, INCOMPLETE, ReplyParser, type RespValue } from '../src/protocol/resp/index.js';
import type { NodeId } from '../src/raft/index.js';
import { leaderAddress } from '../src/replica/leader-address.js';
import type { MemberView } from '../src/replica/member.js';
import type { Membership } from '../src/replica/membership.js';
import { REQUEST_TIMEOUT_MS, type Replica } from '../src/replica/replica.js';
import type { ClusterFront } from '../src/server/resp/cluster-front.js';
import { createRespServer, type RespServer } from '../src/server/resp/server.js';
import type { SimProcess } from './replica-scheduler.js';
import type { SimSocket, SimSockets } from './replica-sockets.js';

/** RESP_PORT: every member's RESP port (members are told apart by host name: n1, n2, ...). */
export const RESP_PORT = 6379;

/** respAddress: member `id`'s RESP address. */
export function respAddress(id: NodeId): string {
  return `n${id}:${RESP_PORT}`;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/** SimFront: a simulated member as its RESP server sees it (what ClusterMember gives `cairn serve`). */
class SimFront implements ClusterFront {
  readonly identity: { readonly id: NodeId; readonly name: string; readonly clusterId: string };
  readonly requestTimeoutMs = REQUEST_TIMEOUT_MS;

  constructor(
    id: NodeId,
    readonly replica: Replica,
    private readonly membership: Membership,
    private readonly clock: Clock,
    private readonly isRemoved: () => boolean,
  ) {
    this.identity = { id, name: `n${id}`, clusterId: 'sim' };
  }

  get removed(): boolean {
    return this.isRemoved();
  }

  leaderAddress(kind: 'resp' | 'http'): Promise<string | undefined> {
    return leaderAddress(
      {
        replica: this.replica,
        clock: this.clock,
        requestTimeoutMs: this.requestTimeoutMs,
        selfId: this.identity.id,
        removed: this.isRemoved,
        // Addresses are fixed in the simulation (their exchange in handshakes is not simulated).
        addressOf: (id, k) => (k === 'resp' ? respAddress(id) : ''),
      },
      kind,
    );
  }

  selfAddress(): string {
    return respAddress(this.identity.id);
  }

  members(): MemberView[] {
    const st = this.replica.status();
    return [...st.voters, ...st.learners].map((id) => ({
      id,
      name: `n${id}`,
      peerAddr: `sim:${id}`,
      resp: respAddress(id),
      http: '',
      role: st.voters.includes(id) ? 'voter' : 'learner',
      started: this.membership.isStarted(id),
    }));
  }

  member(id: NodeId): MemberView | undefined {
    return this.members().find((m) => m.id === id);
  }
}

/** MemberParts: what a member's RESP server runs over. */
export interface MemberParts {
  readonly id: NodeId;
  readonly proc: SimProcess;
  readonly clock: Clock;
  readonly replica: Replica;
  readonly db: Db;
  readonly membership: Membership;
  readonly removed: () => boolean;
}

/** serveResp starts member's RESP server, listening at its address until its process dies. */
export function serveResp(sockets: SimSockets, m: MemberParts): RespServer {
  const host = { node: m.id, proc: m.proc };
  const server = createRespServer({
    db: m.db,
    version: 'sim',
    clock: m.clock,
    cluster: new SimFront(m.id, m.replica, m.membership, m.clock, m.removed),
    dial: sockets.dialer(host),
    logger: quiet,
  });
  sockets.listen(respAddress(m.id), host, (socket) => server.accept(socket));
  return server;
}

/** LinkLostError: the connection to the member closed before the reply came (the outcome is unknown). */
export class LinkLostError extends Error {}

/** Link: one client connection to one member: commands pipelined, replies in order. */
class Link {
  private readonly parser = new ReplyParser();
  private readonly waiters: { resolve(v: RespValue): void; reject(e: Error): void }[] = [];
  readonly ready: Promise<void>;
  closed = false;

  constructor(readonly socket: SimSocket) {
    this.ready = new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (err) => reject(new LinkLostError(err.message)));
    });
    this.ready.catch(() => {});
    socket.on('data', (chunk) => {
      this.parser.push(chunk);
      for (;;) {
        const reply = this.parser.next();
        if (reply === INCOMPLETE) break;
        this.waiters.shift()?.resolve(reply);
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w.reject(new LinkLostError('connection to the member lost'));
    });
  }

  async call(args: readonly string[]): Promise<RespValue> {
    await this.ready;
    if (this.closed) throw new LinkLostError('connection to the member lost');
    return new Promise<RespValue>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.socket.write(encodeCommand(args));
    });
  }
}

/** SimRespLinks: the simulation's clients' connections, one per client and member, reopened when lost. */
export class SimRespLinks {
  private readonly links = new Map<string, Link>();

  constructor(private readonly sockets: SimSockets) {}

  /**
   * call sends one command as client `who` to the member at `address` (on the client's connection
   * to it, opened if needed); its reply, or LinkLostError. Commands called in one turn are
   * pipelined.
   */
  call(who: string, address: string, args: readonly string[]): Promise<RespValue> {
    const key = `${who}@${address}`;
    let link = this.links.get(key);
    if (link === undefined || link.closed) {
      link = new Link(this.sockets.connect({ node: undefined, proc: undefined }, address));
      this.links.set(key, link);
    }
    return link.call(args);
  }

  /** drop closes client `who`'s connection to `address` (with whatever state it held there). */
  drop(who: string, address: string): void {
    const key = `${who}@${address}`;
    this.links.get(key)?.socket.destroy();
    this.links.delete(key);
  }
}
