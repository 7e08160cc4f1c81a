// A fault-injecting TCP proxy for multi-process robustness tests (CLUSTER.md §3.3 item 41), after
// etcd's pkg/proxy: every connection accepted on the listen address is forwarded to the target,
// and the controls below act on live connections and on those accepted later.
//
// Directions: tx is client → target, rx is target → client.
//
// - blackhole: bytes read in that direction are discarded (the connection stays up). A FIN is
//   still forwarded, so a closing peer does not leave a half-open connection behind.
// - delay(ms, jitterMs): each chunk is held for ms ± jitterMs (uniform, at least 0), but never
//   overtakes the chunk before it, so byte order within a connection holds.
// - dropRate(p): dropping bytes inside a TCP stream would corrupt every protocol's framing and
//   test the framing code rather than the system, so a "drop" here resets the whole connection
//   (RST both ways) with probability p for each chunk read; the application sees what a lossy
//   network eventually does to it: a broken connection it must re-establish.
// - pause/resume: stop reading from both sides of every connection; the kernel's buffers fill
//   and the senders block, as when a process is stopped.
// - resetAll: RST every connection now.
//
// The proxy never throws on a peer's error: if the target refuses or resets, the client side is
// closed, and the other way round. Loopback only in tests.

import * as net from 'node:net';

export type Direction = 'tx' | 'rx' | 'both';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface FaultProxyOptions {
  /** listen is where clients connect; port 0 picks a free one (read it with address()). */
  readonly listen: Endpoint;
  readonly target: Endpoint;
  /** random returns a number in [0, 1) for jitter and drops; default Math.random. */
  readonly random?: () => number;
}

export interface FaultProxy {
  /** address returns the port the proxy listens on. */
  address(): number;
  blackholeTx(): void;
  unblackholeTx(): void;
  blackholeRx(): void;
  unblackholeRx(): void;
  /** delay holds chunks for ms ± jitterMs in direction (default both). */
  delay(ms: number, jitterMs?: number, direction?: Direction): void;
  /** undelay delivers held chunks now, in order, and stops delaying in direction (default both). */
  undelay(direction?: Direction): void;
  /** dropRate resets a connection with probability p per chunk read in direction (default both); 0 stops. */
  dropRate(p: number, direction?: Direction): void;
  pause(): void;
  resume(): void;
  /** resetAll resets (RST) every open connection. */
  resetAll(): void;
  /** connectionCount is the number of open proxied connections. */
  connectionCount(): number;
  /** close stops listening and resets every connection. */
  close(): Promise<void>;
}

/**
 * QUEUED_BYTES_MAX bounds the bytes a delayed direction holds per connection; past it the proxy
 * stops reading that direction's source until the queue drains, so a fast sender under a long
 * delay meets back-pressure instead of growing the test process without bound.
 */
export const QUEUED_BYTES_MAX = 4 * 1024 * 1024;

interface DirectionSettings {
  blackhole: boolean;
  delayMs: number;
  jitterMs: number;
  dropP: number;
}

interface Held {
  readonly chunk: Buffer;
  due: number;
}

/** Pipe moves bytes from src to dst in one direction of one connection. */
class Pipe {
  private readonly queue: Held[] = [];
  private queuedBytes = 0;
  /** lastDue is the due time of the last chunk queued: a later chunk is never due before it. */
  private lastDue = 0;
  private timer: NodeJS.Timeout | undefined;
  private srcEnded = false;
  private dstBlocked = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly settings: DirectionSettings,
    private readonly proxy: ProxyState,
    private readonly link: Link,
  ) {
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => {
      this.srcEnded = true;
      this.flush();
    });
    dst.on('drain', () => {
      this.dstBlocked = false;
      this.updateFlow();
    });
  }

  private onData(chunk: Buffer): void {
    if (this.link.closed) return;
    if (this.settings.dropP > 0 && this.proxy.random() < this.settings.dropP) {
      this.link.reset();
      return;
    }
    if (this.settings.blackhole) return;
    const now = performance.now();
    const { delayMs, jitterMs } = this.settings;
    const hold = Math.max(0, delayMs + (jitterMs > 0 ? (2 * this.proxy.random() - 1) * jitterMs : 0));
    const due = Math.max(now + hold, this.lastDue);
    this.lastDue = due;
    // The chunk is kept past this call, so it is copied (socket reads are borrowed, DESIGN §2).
    this.queue.push({ chunk: hold > 0 ? Buffer.from(chunk) : chunk, due });
    this.queuedBytes += chunk.length;
    this.flush();
  }

  /** flush writes every chunk that is due, then waits for the next one or for the end. */
  flush(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.link.closed) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      if (!this.dst.write(chunk)) this.dstBlocked = true;
    }
    const head = this.queue[0];
    if (head !== undefined) this.timer = setTimeout(() => this.flush(), Math.max(0, head.due - now));
    else if (this.srcEnded && !this.dst.writableEnded) this.dst.end();
    this.updateFlow();
  }

  /** deliverNow makes every held chunk due now (undelay), keeping their order. */
  deliverNow(): void {
    for (const h of this.queue) h.due = 0;
    this.lastDue = 0;
    this.flush();
  }

  /** updateFlow reads from src unless paused, blocked on dst, or holding too much. */
  updateFlow(): void {
    if (this.src.destroyed) return;
    const stop = this.proxy.paused || this.dstBlocked || this.queuedBytes > QUEUED_BYTES_MAX;
    if (stop) this.src.pause();
    else this.src.resume();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}

interface ProxyState {
  paused: boolean;
  readonly random: () => number;
  readonly tx: DirectionSettings;
  readonly rx: DirectionSettings;
  readonly links: Set<Link>;
}

/** resetSocket sends an RST where it can (a connected TCP socket), else just destroys. */
function resetSocket(s: net.Socket): void {
  if (s.destroyed) return;
  try {
    s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

/** Link is one proxied connection: the accepted client socket and the socket to the target. */
class Link {
  closed = false;
  readonly tx: Pipe;
  readonly rx: Pipe;

  constructor(
    private readonly client: net.Socket,
    private readonly target: net.Socket,
    private readonly proxy: ProxyState,
  ) {
    this.tx = new Pipe(client, target, proxy.tx, proxy, this);
    this.rx = new Pipe(target, client, proxy.rx, proxy, this);
    // A peer's error (ECONNREFUSED, ECONNRESET, EPIPE) closes the other side, never the test.
    client.on('error', () => this.close());
    target.on('error', () => this.close());
    // Once either socket is fully closed the connection is over: close the other one too.
    client.on('close', () => this.close());
    target.on('close', () => this.close());
    this.tx.updateFlow();
    this.rx.updateFlow();
  }

  /** close ends the connection after the bytes already written; held bytes are discarded. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.tx.stop();
    this.rx.stop();
    this.client.destroy();
    this.target.destroy();
    this.proxy.links.delete(this);
  }

  /** reset ends the connection with an RST on both sides. */
  reset(): void {
    if (this.closed) return;
    resetSocket(this.client);
    resetSocket(this.target);
    this.close();
  }
}

function directions(d: Direction, state: ProxyState): DirectionSettings[] {
  return d === 'both' ? [state.tx, state.rx] : d === 'tx' ? [state.tx] : [state.rx];
}

function pipes(d: Direction, link: Link): Pipe[] {
  return d === 'both' ? [link.tx, link.rx] : d === 'tx' ? [link.tx] : [link.rx];
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const fresh = (): DirectionSettings => ({ blackhole: false, delayMs: 0, jitterMs: 0, dropP: 0 });
  const state: ProxyState = {
    paused: false,
    random: options.random ?? Math.random,
    tx: fresh(),
    rx: fresh(),
    links: new Set(),
  };
  // allowHalfOpen: a client's FIN is forwarded as a FIN, and the other direction keeps flowing.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const target = net.connect({ host: options.target.host, port: options.target.port, allowHalfOpen: true });
    state.links.add(new Link(client, target, state));
  });
  server.on('error', () => {
    // After listening, a server error (EMFILE on accept) must not crash the test process; the
    // connection attempt just fails for that client.
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listen.port, options.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;

  const checkRate = (p: number): void => {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`drop rate must be in [0, 1], got ${p}`);
  };
  const checkMs = (ms: number, name: string): void => {
    if (!(Number.isFinite(ms) && ms >= 0))
      throw new RangeError(`${name} must be a finite number >= 0, got ${ms}`);
  };

  return {
    address: () => port,
    blackholeTx: () => void (state.tx.blackhole = true),
    unblackholeTx: () => void (state.tx.blackhole = false),
    blackholeRx: () => void (state.rx.blackhole = true),
    unblackholeRx: () => void (state.rx.blackhole = false),
    delay(ms, jitterMs = 0, direction = 'both') {
      checkMs(ms, 'delay');
      checkMs(jitterMs, 'jitter');
      for (const s of directions(direction, state)) {
        s.delayMs = ms;
        s.jitterMs = jitterMs;
      }
    },
    undelay(direction = 'both') {
      for (const s of directions(direction, state)) {
        s.delayMs = 0;
        s.jitterMs = 0;
      }
      for (const link of state.links) for (const p of pipes(direction, link)) p.deliverNow();
    },
    dropRate(p, direction = 'both') {
      checkRate(p);
      for (const s of directions(direction, state)) s.dropP = p;
    },
    pause() {
      state.paused = true;
      for (const link of state.links) for (const p of pipes('both', link)) p.updateFlow();
    },
    resume() {
      state.paused = false;
      for (const link of state.links) for (const p of pipes('both', link)) p.updateFlow();
    },
    resetAll() {
      for (const link of [...state.links]) link.reset();
    },
    connectionCount: () => state.links.size,
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const link of [...state.links]) link.reset();
      });
    },
  };
}
