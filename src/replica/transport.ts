// Transport carries Raft messages between cluster members. The driver hands it the messages of
// each Ready and receives, through TransportHandlers, what peers send. Two implementations: TCP
// (tcp-transport.ts) and, for the simulator, an in-memory network behind the same interface.
// Snapshots travel beside the messages: sendSnapshot streams a MsgSnap with a copy of the
// engine's files, and the receiver hands both to onSnapshot once they are staged and verified.
import type { Message, NodeId } from '../raft/types.js';
import type { BackupSource } from '../storage/engine.js';

/** SnapshotSource opens a consistent cut of the local engine to stream (Engine.backupSource). */
export type SnapshotSource = () => Promise<BackupSource>;

/** Peer is a member this node sends to. */
export interface Peer {
  readonly id: NodeId;
  readonly name: string;
  /** peerAddr is where the peer listens for other members, "host:port". */
  readonly peerAddr: string;
}

/** PeerInfo is what a handshake tells about a member: where its clients reach it. */
export interface PeerInfo {
  readonly id: NodeId;
  readonly name: string;
  /** resp is the member's RESP address "host:port". */
  readonly resp: string;
  /** http is the member's HTTP address "host:port", or "" when it serves none. */
  readonly http: string;
}

export interface TransportHandlers {
  /** onMessages receives decoded, validated messages; m.to is this node and m.from the sending peer. */
  onMessages(msgs: Message[]): void;
  /** onUnreachable: a message to id could not be delivered (feed it to RawNode.reportUnreachable). */
  onUnreachable(id: NodeId): void;
  /** onPeerInfo: learned from a handshake (the client addresses of a peer). */
  onPeerInfo(info: PeerInfo): void;
  /**
   * onSnapshot: a MsgSnap arrived together with its engine files, restored and verified into
   * `dir` (a fresh directory the receiver owns from now on: it installs or deletes it).
   * Optional: a receiver without it refuses snapshot streams (the sender sees a failure).
   */
  onSnapshot?(m: Message, dir: string): void;
  /**
   * onRemoved: a peer refused this member because it was removed from the cluster (`by`: its id;
   * `reason`: the refusal, which names the removing change's index when the peer knows it).
   */
  onRemoved?(by: NodeId, reason: string): void;
}

export interface Transport {
  /**
   * send queues messages; it never blocks and never throws on an operating error (an unknown or
   * unreachable peer, a full queue: the message is dropped and reported unreachable, which Raft
   * tolerates). Queued messages are flushed once per event-loop turn, one socket write per peer.
   * A local message type is a programmer error (an assertion).
   */
  send(msgs: readonly Message[]): void;
  /**
   * flushNow (optional) writes what send queued now instead of at the end of the turn; never
   * throws, never calls a handler. The driver calls it after a leader's appends.
   */
  flushNow?(): void;
  /**
   * sendSnapshot streams `m` (a MsgSnap) and the engine files `source` opens to m.to on a
   * connection of its own; `done(true)` once the receiver staged and acknowledged it, `done(false)`
   * on any failure (the caller reports it to Raft: RawNode.reportSnapshot). Never throws on
   * operating errors. At most one snapshot in flight per peer: a second call while one is in
   * flight calls done(false) at once. `done` is never called re-entrantly (always on a later
   * turn), and `source` is opened only once the receiver is reached, and then always closed.
   */
  sendSnapshot(m: Message, source: SnapshotSource, done: (ok: boolean) => void): void;
  /** setPeers replaces the member list (membership changes); connections to removed peers close. */
  setPeers(peers: readonly Peer[]): void;
  /** close stops listening, closes every connection and drops queued messages. */
  close(): Promise<void>;
}
