// RespSocket: the part of a TCP socket the RESP server's connections and a member's links to
// other members (forwarder.ts) use. `net.Socket` is one; the replica simulator passes sockets of
// its own (sim/replica-sockets.ts), so that a seed runs the real connections and the real
// forwarding to the leader over its simulated network (docs/replica-sim.md, "RESP and
// forwarding").
import * as net from 'node:net';

export interface RespSocket {
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'connect' | 'drain' | 'close', listener: () => void): this;
  once(event: 'error', listener: (err: Error) => void): this;
  once(event: 'connect', listener: () => void): this;
  removeAllListeners(event: 'error'): this;
  /** write queues bytes to send; false when the queue is past the high-water mark ('drain' follows). */
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  pause(): this;
  resume(): this;
  setNoDelay(noDelay?: boolean): this;
  /** end sends what is queued (and `data`, if given), then closes; `callback` once it is sent. */
  end(data?: string | (() => void), callback?: () => void): this;
  destroy(): this;
  /** writableLength: bytes queued and not yet handed to the kernel. */
  readonly writableLength: number;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
}

/** Dial opens a connection to host:port; the socket says 'connect' or 'error'. */
export type Dial = (host: string, port: number) => RespSocket;

/** tcpDial: the machine's TCP. */
export const tcpDial: Dial = (host, port) => net.connect({ host, port });
