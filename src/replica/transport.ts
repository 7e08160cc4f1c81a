// Transport: how a member's Raft messages reach its peers. The TCP transport (tcp-transport.ts)
// is the real one; tests and the simulator substitute in-memory ones.
import type { Message, NodeId } from '../raft/index.js';

export interface Peer {
  readonly id: NodeId;
  readonly name: string;
  /** peerAddr: "host:port" of the peer's Raft port. */
  readonly peerAddr: string;
}

/** PeerInfo: what a peer told about itself in the handshake (its client addresses). */
export interface PeerInfo {
  readonly id: NodeId;
  readonly name: string;
  /** resp: "host:port" of the peer's RESP port. */
  readonly resp: string;
  /** http: "host:port" of the peer's HTTP port, or "" when it serves none. */
  readonly http: string;
}

export interface TransportHandlers {
  /** onMessages: decoded, validated messages addressed to this member. */
  onMessages(msgs: Message[]): void;
  /** onUnreachable: a message to id could not be delivered. */
  onUnreachable(id: NodeId): void;
  /** onPeerInfo: a peer's client addresses, learned from a handshake. */
  onPeerInfo(info: PeerInfo): void;
}

export interface Transport {
  /** send queues messages; never throws, never blocks; flushed once per event-loop turn. */
  send(msgs: readonly Message[]): void;
  /** setPeers replaces the member list (membership changes). */
  setPeers(peers: readonly Peer[]): void;
  close(): Promise<void>;
}
