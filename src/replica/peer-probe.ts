// PeerProber: the round-trip time to every peer, measured the way etcd's prober does
// (etcd_network_peer_round_trip_time_seconds): each member keeps one probe connection to every
// other member, apart from its message connection, and every PROBE_INTERVAL_MS sends a `ping`
// that the peer answers at once with a `pong` carrying the same nonce (docs/peer-protocol.md,
// "Probes"). The time from ping to pong is the network's round trip plus the peer's event loop
// getting to it: what a heartbeat and its response take too, measured whatever the Raft roles
// and however idle the cluster.
//
// One ping is in flight per peer. One without its pong after PROBE_TIMEOUT_MS ends the
// connection (a stuck or half-open link; the next interval dials again), as does a connection
// not welcomed within it (a peer whose packets vanish leaves a connect hanging), and is not observed:
// the histogram holds answered probes, as etcd's. A peer that refuses the hello, or a build before
// probes (which drops a connection at an unknown frame kind), is dialed again each interval and
// logged at debug: the message connection's own log already says why a peer cannot be reached.
import * as net from 'node:net';
import type { Clock, Timer } from '../io/clock.js';
import type { NodeId } from '../raft/types.js';
import { writeU64LE } from '../stdx/u64.js';
import { PeerProtocolError } from './errors.js';
import {
  checkWelcome,
  decodeRefuse,
  decodeWelcome,
  helloFrame,
  MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES,
} from './handshake.js';
import { parseHostPort } from './peer-address.js';
import { encodeFrame, FrameReader } from './peer-frame.js';
import type { Peer } from './transport.js';

/** PROBE_INTERVAL_MS: between two pings to a peer (etcd probes every few seconds). */
export const PROBE_INTERVAL_MS = 5_000;
/** PROBE_TIMEOUT_MS: a ping unanswered this long ends its connection (five election timeouts). */
export const PROBE_TIMEOUT_MS = 5_000;
/** PING_PAYLOAD_BYTES: a ping and its pong carry one u64 nonce, nothing else. */
export const PING_PAYLOAD_BYTES = 8;

/** decodePing checks a ping's (or pong's) payload: exactly one nonce. */
export function decodePing(payload: Uint8Array): void {
  if (payload.length !== PING_PAYLOAD_BYTES)
    throw new PeerProtocolError(`a ping or pong of ${payload.length} bytes (${PING_PAYLOAD_BYTES} expected)`);
}

export interface ProberLogger {
  debug(obj: object, msg: string): void;
}

export interface PeerProberOptions {
  readonly self: { readonly id: NodeId; readonly name: string; readonly resp: string; readonly http: string };
  readonly clusterToken: string;
  readonly clock: Clock;
  readonly logger: ProberLogger;
  /** onRoundTrip: told each answered probe's round trip, in seconds. */
  readonly onRoundTrip: (peer: Peer, seconds: number) => void;
  /** intervalMs, timeoutMs: PROBE_INTERVAL_MS and PROBE_TIMEOUT_MS unless a test wants them shorter. */
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}

/** Probe: the probe connection to one peer. */
interface Probe {
  readonly peer: Peer;
  socket: net.Socket | undefined;
  reader: FrameReader;
  welcomed: boolean;
  /** dialedMs: when the connection was opened (monotonic ms): a welcome must come within the timeout. */
  dialedMs: number;
  /** inFlight: the ping waiting for its pong: its nonce and when it left (monotonic ms). */
  inFlight: { readonly nonce: Buffer; readonly sentMs: number } | undefined;
}

export class PeerProber {
  private readonly probes = new Map<NodeId, Probe>();
  private readonly ticker: Timer;
  private readonly timeoutMs: number;
  private nextNonce = 1;
  private closed = false;

  constructor(private readonly opts: PeerProberOptions) {
    this.timeoutMs = opts.timeoutMs ?? PROBE_TIMEOUT_MS;
    this.ticker = opts.clock.every(opts.intervalMs ?? PROBE_INTERVAL_MS, () => this.tick());
  }

  /** setPeers probes exactly these peers from now on (a removed one's connection is closed). */
  setPeers(peers: readonly Peer[]): void {
    if (this.closed) return;
    const next = new Map(peers.map((p) => [p.id, p]));
    for (const [id, probe] of this.probes) {
      const p = next.get(id);
      if (p === undefined || p.name !== probe.peer.name || p.peerAddr !== probe.peer.peerAddr) {
        this.drop(probe, 'the peer changed');
        this.probes.delete(id);
      }
    }
    for (const peer of peers) {
      if (this.probes.has(peer.id)) continue;
      const probe: Probe = {
        peer,
        socket: undefined,
        reader: new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES),
        welcomed: false,
        dialedMs: 0,
        inFlight: undefined,
      };
      this.probes.set(peer.id, probe);
      this.dial(probe);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.ticker.cancel();
    for (const probe of this.probes.values()) this.drop(probe, 'closed');
    this.probes.clear();
  }

  /** tick: a ping to every welcomed peer, a dial to every unconnected one, an end to stuck ones. */
  private tick(): void {
    const now = this.opts.clock.monotonicMs();
    for (const probe of this.probes.values()) {
      if (probe.socket === undefined) this.dial(probe);
      else if (!probe.welcomed && now - probe.dialedMs >= this.timeoutMs)
        this.drop(probe, `not connected and welcomed within ${this.timeoutMs} ms`);
      else if (probe.inFlight !== undefined && now - probe.inFlight.sentMs >= this.timeoutMs)
        this.drop(probe, `no pong within ${this.timeoutMs} ms`);
      else if (probe.welcomed && probe.inFlight === undefined) this.ping(probe);
    }
  }

  private dial(probe: Probe): void {
    if (this.closed) return;
    const { peer } = probe;
    let socket: net.Socket;
    try {
      const at = parseHostPort(peer.peerAddr);
      socket = net.connect({ host: at.host, port: at.port });
    } catch (err) {
      this.opts.logger.debug({ peer: peer.name, reason: (err as Error).message }, 'cannot probe peer');
      return;
    }
    probe.socket = socket;
    probe.reader = new FrameReader(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES);
    probe.welcomed = false;
    probe.dialedMs = this.opts.clock.monotonicMs();
    probe.inFlight = undefined;
    socket.setNoDelay(true);
    const { self, clusterToken } = this.opts;
    socket.on('connect', () => socket.write(helloFrame(self, clusterToken, peer.name)));
    socket.on('data', (chunk: Buffer) => {
      if (probe.socket === socket) this.onData(probe, chunk);
    });
    socket.on('error', (err) => {
      if (probe.socket === socket) this.drop(probe, err.message);
    });
    socket.on('close', () => {
      if (probe.socket === socket) this.drop(probe, 'connection closed');
    });
  }

  private onData(probe: Probe, chunk: Buffer): void {
    try {
      probe.reader.push(chunk);
      for (
        let f = probe.reader.next();
        f !== undefined && probe.socket !== undefined;
        f = probe.reader.next()
      ) {
        if (f.kind === 'welcome' && !probe.welcomed) {
          const why = checkWelcome(decodeWelcome(f.payload), probe.peer);
          if (why !== undefined) throw new PeerProtocolError(why);
          probe.welcomed = true;
          this.ping(probe); // the first round trip right away, not an interval later
        } else if (f.kind === 'refuse' && !probe.welcomed) {
          throw new PeerProtocolError(`refused: ${decodeRefuse(f.payload).reason}`);
        } else if (f.kind === 'pong' && probe.welcomed) {
          decodePing(f.payload);
          const sent = probe.inFlight;
          if (sent === undefined || !sent.nonce.equals(f.payload))
            throw new PeerProtocolError('a pong that answers no ping in flight');
          probe.inFlight = undefined;
          const seconds = (this.opts.clock.monotonicMs() - sent.sentMs) / 1000;
          this.opts.onRoundTrip(probe.peer, seconds);
        } else {
          throw new PeerProtocolError(`unexpected ${f.kind} frame on a probe connection`);
        }
      }
    } catch (err) {
      if (!(err instanceof PeerProtocolError)) throw err;
      this.drop(probe, err.message);
    }
  }

  private ping(probe: Probe): void {
    const socket = probe.socket;
    if (socket === undefined) return;
    const nonce = Buffer.alloc(PING_PAYLOAD_BYTES);
    writeU64LE(nonce, this.nextNonce++, 0);
    probe.inFlight = { nonce, sentMs: this.opts.clock.monotonicMs() };
    socket.write(encodeFrame('ping', nonce));
  }

  private drop(probe: Probe, reason: string): void {
    const socket = probe.socket;
    if (socket === undefined) return;
    probe.socket = undefined;
    probe.welcomed = false;
    probe.inFlight = undefined;
    socket.destroy();
    if (!this.closed)
      this.opts.logger.debug({ peer: probe.peer.name, reason }, 'peer probe connection ended');
  }
}
