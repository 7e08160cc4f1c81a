// MemoryTransport: members of one process connected through a hub, for tests of the replica
// layer without sockets. Messages are delivered on a later turn of the event loop (as over a
// network: never re-entrantly), and links can be cut to make partitions.
//
// Snapshots go through the same archive as over TCP (writeArchive into restoreArchive, so the
// receiver gets a verified copy in a fresh staged directory of its own), minus the sockets.
import type { FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { Message, NodeId } from '../raft/index.js';
import { assert } from '../stdx/assert.js';
import type { BackupSource } from '../storage/engine.js';
import { restoreArchive, writeArchive } from '../storage/snapshot-archive.js';
import { removeStagedDir, stagedDirFor } from './snapshot-staging.js';
import type { Peer, PeerInfo, SnapshotSource, Transport, TransportHandlers } from './transport.js';

/** MemoryJoinOptions: what a member receiving snapshots needs. */
export interface MemoryJoinOptions {
  /** snapshotDir: where the member's incoming snapshots are staged; without it they are refused. */
  readonly snapshotDir?: string;
  /** fs: the file system of snapshotDir (default: the real one). */
  readonly fs?: FileSystem;
}

interface Member {
  readonly handlers: TransportHandlers;
  readonly info: PeerInfo;
  readonly options: MemoryJoinOptions;
}

export class MemoryHub {
  constructor(
    /** defer: how a delivery is put off to a later turn (the simulator passes its scheduler). */
    private readonly defer: (fn: () => void) => void = setImmediate,
  ) {}

  private readonly members = new Map<NodeId, Member>();
  /** cut: links that drop every message, as "from>to". */
  private readonly cut = new Set<string>();
  /** drop: when set, messages it matches are lost (e.g. only appends, so heartbeats keep a leader). */
  drop: ((m: Message) => boolean) | undefined;

  join(info: PeerInfo, handlers: TransportHandlers, options: MemoryJoinOptions = {}): Transport {
    this.members.set(info.id, { handlers, info, options });
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

  /**
   * deliverSnapshot restores the archive of `source` into a fresh staged directory of the
   * receiver, on a later turn, and hands it to the receiver's onSnapshot; it resolves whether
   * that happened. A cut link, a message the drop filter matches, an unknown receiver, one
   * without snapshotDir or onSnapshot, or a failed restore: false. The source is always closed.
   */
  async deliverSnapshot(from: NodeId, m: Message, source: SnapshotSource): Promise<boolean> {
    await new Promise<void>((resolve) => this.defer(resolve));
    const reachable = (): Member | undefined => {
      const to = this.members.get(m.to);
      if (this.cut.has(`${from}>${m.to}`) || this.drop?.(m) === true) return undefined;
      if (to?.options.snapshotDir === undefined || to.handlers.onSnapshot === undefined) return undefined;
      return to;
    };
    const receiver = reachable();
    if (receiver === undefined) return false;
    const fs = receiver.options.fs ?? nodeFileSystem;
    const dir = stagedDirFor(receiver.options.snapshotDir as string, m);
    let backup: BackupSource | undefined;
    try {
      backup = await source();
      await restoreArchive(fs, writeArchive(backup), dir);
    } catch {
      await removeStagedDir(fs, dir).catch(() => {});
      return false;
    } finally {
      // A failure to release the cut changes nothing for the receiver, which has its copy.
      await backup?.close().catch(() => {});
    }
    // The link may have been cut, or the receiver gone, while the files were copied.
    const still = reachable();
    if (still !== receiver) {
      await removeStagedDir(fs, dir).catch(() => {});
      return false;
    }
    receiver.handlers.onSnapshot?.(m, dir);
    return true;
  }
}

class MemoryTransport implements Transport {
  private closed = false;
  /** inFlight: peers a snapshot is being sent to (at most one each). */
  private readonly inFlight = new Set<NodeId>();

  constructor(
    private readonly hub: MemoryHub,
    private readonly id: NodeId,
  ) {}

  send(msgs: readonly Message[]): void {
    if (!this.closed) this.hub.deliver(this.id, msgs);
  }

  sendSnapshot(m: Message, source: SnapshotSource, done: (ok: boolean) => void): void {
    assert(m.type === 'MsgSnap', `sendSnapshot of a ${m.type}`);
    if (this.closed || this.inFlight.has(m.to)) {
      setImmediate(() => done(false));
      return;
    }
    this.inFlight.add(m.to);
    void this.hub.deliverSnapshot(this.id, m, source).then(
      (ok) => {
        this.inFlight.delete(m.to);
        done(ok);
      },
      (err: unknown) => {
        // Only a bug gets here (deliverSnapshot catches operating errors): crash loudly.
        this.inFlight.delete(m.to);
        throw err;
      },
    );
  }

  setPeers(_peers: readonly Peer[]): void {}

  close(): Promise<void> {
    this.closed = true;
    this.hub.leave(this.id);
    return Promise.resolve();
  }
}
