// ReplicaNet: the simulated network between Replica members, behind the Transport interface
// (src/replica/transport.ts). Every message is encoded with the peer codec on send and decoded on
// delivery (members share no objects, as over TCP), and each is delivered on its own after a
// delay drawn from the seed: drops, duplicates, delays and the reordering long delays cause, and
// partitions (directed links cut; a link cut while a message is in flight loses it). A message
// to a member that is down, or over a cut link, is reported unreachable to its sender, as the
// TCP transport does for a peer it cannot connect to.
import type { Message, NodeId } from '../src/raft/index.js';
import { decodeMessages, encodeMessages } from '../src/replica/message-codec.js';
import type { Peer, SnapshotSource, Transport, TransportHandlers } from '../src/replica/transport.js';
import type { Prng } from '../src/stdx/prng.js';
import type { BackupSource } from '../src/storage/engine.js';
import type { NetworkOptions } from './network.js';
import type { SimProcess } from './replica-scheduler.js';

/** SnapshotFile: one engine file of a snapshot in transit (the simulator copies bytes, no archive). */
export interface SnapshotFile {
  readonly name: string;
  readonly bytes: Buffer;
}

/** Stager: writes a snapshot's files durably into a fresh staging directory of the receiver; returns it. */
export type Stager = (m: Message, files: readonly SnapshotFile[]) => Promise<string>;

interface Endpoint {
  readonly proc: SimProcess;
  readonly handlers: TransportHandlers;
  readonly stage: Stager | undefined;
}

export class ReplicaNet {
  options: NetworkOptions;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  /** cut: directed links that lose every message, "from>to". */
  private readonly cut = new Set<string>();
  sent = 0;
  dropped = 0;
  delivered = 0;
  /** onDeliver: the simulator's trace hook (one line per delivered message). */
  onDeliver: ((m: Message) => void) | undefined;

  constructor(
    private readonly prng: Prng,
    options: NetworkOptions,
  ) {
    this.options = options;
  }

  snapshotsSent = 0;
  snapshotsLost = 0;

  join(id: NodeId, proc: SimProcess, handlers: TransportHandlers, stage?: Stager): Transport {
    this.endpoints.set(id, { proc, handlers, stage });
    return new NetTransport(this, id, proc);
  }

  leave(id: NodeId, proc: SimProcess): void {
    if (this.endpoints.get(id)?.proc === proc) this.endpoints.delete(id);
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** reachable: whether a message from `from` would reach `to` now (it is up, the link is not cut). */
  reachable(from: NodeId, to: NodeId): boolean {
    const dest = this.endpoints.get(to);
    return dest?.proc.alive === true && !this.isCut(from, to);
  }

  /** latency: one message's delay as the network draws it (for exchanges beside Raft: the start check). */
  latency(): number {
    return this.delay();
  }

  /** partition cuts every link between the groups (and heals every other link). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.cut.clear();
    for (const g of groups)
      for (const h of groups) if (g !== h) for (const a of g) for (const b of h) this.cut.add(`${a}>${b}`);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  heal(): void {
    this.cut.clear();
  }

  private delay(): number {
    const o = this.options;
    if (o.longDelayRate > 0 && this.prng.chance(o.longDelayRate))
      return this.prng.range(o.delayMsMin, o.longDelayMsMax);
    return this.prng.range(o.delayMsMin, o.delayMsMax);
  }

  send(from: NodeId, proc: SimProcess, msgs: readonly Message[]): void {
    for (const m of msgs) {
      this.sent++;
      if (this.isCut(from, m.to) || !this.endpoints.has(m.to)) {
        this.dropped++;
        proc.defer(() => this.endpoints.get(from)?.handlers.onUnreachable(m.to));
        continue;
      }
      if (this.options.dropRate > 0 && this.prng.chance(this.options.dropRate)) {
        this.dropped++;
        continue;
      }
      const bytes = encodeMessages([m]);
      const copies = this.options.duplicateRate > 0 && this.prng.chance(this.options.duplicateRate) ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        proc.sched.at(this.delay(), () => this.deliver(from, m.to, bytes));
      }
    }
  }

  /**
   * sendSnapshot: the sender reads the engine files (its own disk I/O), then, after one network
   * delay, the receiver stages them and steps the message. Lost (done(false)) when the link is
   * cut or the receiver is down at either end of the delay, staging fails (an injected fault), or
   * the receiver dies while staging (the real sender sees its connection reset: without this, the
   * leader waited on the snapshot forever and the member never caught up, seed 344031376); a
   * sender that crashed meanwhile is never told.
   */
  sendSnapshot(
    from: NodeId,
    proc: SimProcess,
    m: Message,
    source: () => Promise<BackupSource>,
    done: (ok: boolean) => void,
  ): void {
    let finished = false;
    const finish = (ok: boolean): void => {
      if (finished) return;
      finished = true;
      if (!ok) this.snapshotsLost++;
      proc.defer(() => {
        if (proc.alive) done(ok);
      });
    };
    const bytes = encodeMessages([m]);
    void readAll(source).then(
      (files) => {
        if (!proc.alive) return;
        this.snapshotsSent++;
        proc.sched.at(this.delay(), () => {
          const dest = this.endpoints.get(m.to);
          if (dest === undefined || !dest.proc.alive || this.isCut(from, m.to) || dest.stage === undefined) {
            finish(false);
            return;
          }
          const msg = decodeMessages(bytes)[0] as Message;
          // A dead process's file operations never settle: its death ends the transfer.
          const unwatch = dest.proc.onDeath(() => finish(false));
          dest.stage(msg, files).then(
            (dir) => {
              unwatch();
              if (!dest.proc.alive) return finish(false);
              this.onDeliver?.(msg);
              dest.handlers.onSnapshot?.(msg, dir);
              finish(true);
            },
            () => {
              unwatch();
              finish(false);
            },
          );
        });
      },
      () => finish(false),
    );
  }

  private deliver(from: NodeId, to: NodeId, bytes: Buffer): void {
    const dest = this.endpoints.get(to);
    if (dest === undefined || !dest.proc.alive || this.isCut(from, to)) {
      this.dropped++;
      return;
    }
    const msgs = decodeMessages(bytes);
    this.delivered++;
    for (const m of msgs) this.onDeliver?.(m);
    dest.handlers.onMessages(msgs);
  }
}

class NetTransport implements Transport {
  private closed = false;

  constructor(
    private readonly net: ReplicaNet,
    private readonly id: NodeId,
    private readonly proc: SimProcess,
  ) {}

  send(msgs: readonly Message[]): void {
    if (!this.closed && this.proc.alive) this.net.send(this.id, this.proc, msgs);
  }

  setPeers(_peers: readonly Peer[]): void {}

  sendSnapshot(m: Message, source: SnapshotSource, done: (ok: boolean) => void): void {
    if (this.closed || !this.proc.alive) return;
    this.net.sendSnapshot(this.id, this.proc, m, source, done);
  }

  close(): Promise<void> {
    this.closed = true;
    this.net.leave(this.id, this.proc);
    return Promise.resolve();
  }
}

/** readAll reads every file of a backup source into memory (simulated stores are small) and closes it. */
async function readAll(source: () => Promise<BackupSource>): Promise<SnapshotFile[]> {
  const src = await source();
  try {
    const out: SnapshotFile[] = [];
    for (const f of src.files) {
      const bytes = Buffer.alloc(f.size);
      let at = 0;
      while (at < f.size) {
        const n = await src.read(f.name, bytes, at, f.size - at, at);
        if (n === 0) throw new Error(`${f.name} ended at ${at} of ${f.size} bytes`);
        at += n;
      }
      out.push({ name: f.name, bytes });
    }
    return out;
  } finally {
    await src.close();
  }
}
