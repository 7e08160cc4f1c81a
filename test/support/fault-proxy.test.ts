// The fault proxy against a local echo server that also records what reached it. Timing checks
// assert lower bounds only ("at least the delay"); an upper bound would fail on a busy machine.

import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from './fault-proxy.js';
import { freePort } from './ports.js';

/** QUIET_MS is how long "nothing arrives" is watched for: long enough for loopback to deliver. */
const QUIET_MS = 200;

/** DELAY_MS is the injected delay; timers may fire up to TIMER_SLACK_MS early after rounding. */
const DELAY_MS = 150;
const TIMER_SLACK_MS = 5;

/** WAIT_MS bounds every wait for bytes that should arrive, so a bug fails instead of hanging. */
const WAIT_MS = 10_000;

interface EchoServer {
  readonly port: number;
  /** received is everything each accepted connection has sent, in accept order. */
  readonly received: Buffer[][];
  readonly sockets: net.Socket[];
  close(): Promise<void>;
}

async function startEcho(): Promise<EchoServer> {
  const received: Buffer[][] = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    const mine: Buffer[] = [];
    received.push(mine);
    sockets.push(s);
    s.on('error', () => {});
    s.on('data', (chunk: Buffer) => {
      mine.push(Buffer.from(chunk));
      s.write(chunk);
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    sockets,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Client collects what it reads and whether the connection closed. */
class Client {
  readonly chunks: Buffer[] = [];
  closed = false;
  error: Error | undefined;
  private waiters: (() => void)[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => {
      this.chunks.push(Buffer.from(c));
      this.wake();
    });
    socket.on('error', (e) => {
      this.error = e;
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** waitFor resolves once cond holds, checking after each read or close. */
  async waitFor(cond: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  waitForBytes(n: number): Promise<void> {
    return this.waitFor(() => this.bytes.length >= n, `${n} bytes`);
  }

  waitForClose(): Promise<void> {
    return this.waitFor(() => this.closed, 'the connection to close');
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function waitUntil(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const receivedBy = (echo: EchoServer, i: number): string => Buffer.concat(echo.received[i] ?? []).toString();

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const f of cleanups.reverse()) await f();
  cleanups = [];
});

async function setup(): Promise<{ echo: EchoServer; proxy: FaultProxy }> {
  const echo = await startEcho();
  const proxy = await startFaultProxy({
    listen: { host: '127.0.0.1', port: 0 },
    target: { host: '127.0.0.1', port: echo.port },
  });
  cleanups.push(
    () => echo.close(),
    () => proxy.close(),
  );
  return { echo, proxy };
}

async function connect(proxy: FaultProxy): Promise<Client> {
  const c = await Client.connect(proxy.address());
  cleanups.push(() => void c.socket.destroy());
  return c;
}

describe('fault proxy', () => {
  it('passes bytes through both ways, in order, and forwards a close', async () => {
    const { echo, proxy } = await setup();
    const c = await connect(proxy);
    const data = randomBytes(1024 * 1024);
    c.socket.write(data);
    await c.waitForBytes(data.length);
    expect(c.bytes.equals(data)).toBe(true);
    expect(proxy.connectionCount()).toBe(1);
    c.socket.end();
    await c.waitForClose();
    await waitUntil(() => proxy.connectionCount() === 0, 'the proxy to drop the connection');
    expect(echo.received.length).toBe(1);
  });

  it('blackholeTx drops client-to-target bytes until unblackholed', async () => {
    const { echo, proxy } = await setup();
    const c = await connect(proxy);
    proxy.blackholeTx();
    c.socket.write('lost');
    await sleep(QUIET_MS);
    expect(receivedBy(echo, 0)).toBe('');
    expect(c.bytes.length).toBe(0);
    proxy.unblackholeTx();
    c.socket.write('kept');
    await c.waitForBytes(4);
    expect(c.bytes.toString()).toBe('kept');
    expect(receivedBy(echo, 0)).toBe('kept');
  });

  it('blackholeRx drops target-to-client bytes until unblackholed', async () => {
    const { echo, proxy } = await setup();
    const c = await connect(proxy);
    proxy.blackholeRx();
    c.socket.write('echoed');
    await waitUntil(() => receivedBy(echo, 0) === 'echoed', 'the target to receive');
    await sleep(QUIET_MS);
    expect(c.bytes.length).toBe(0);
    proxy.unblackholeRx();
    c.socket.write('back');
    await c.waitForBytes(4);
    expect(c.bytes.toString()).toBe('back');
  });

  it('delay applies to a live connection, each way, and at least as long as asked', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy);
    proxy.delay(DELAY_MS, 0, 'tx');
    let start = performance.now();
    c.socket.write('a');
    await c.waitForBytes(1);
    expect(performance.now() - start).toBeGreaterThanOrEqual(DELAY_MS - TIMER_SLACK_MS);

    proxy.delay(DELAY_MS); // both ways: a round trip pays it twice
    start = performance.now();
    c.socket.write('b');
    await c.waitForBytes(2);
    expect(performance.now() - start).toBeGreaterThanOrEqual(2 * DELAY_MS - TIMER_SLACK_MS);

    proxy.undelay();
    c.socket.write('c');
    await c.waitForBytes(3);
    expect(c.bytes.toString()).toBe('abc');
  });

  it('delay with jitter keeps byte order within a connection', async () => {
    const { proxy } = await setup();
    proxy.delay(20, 20);
    const c = await connect(proxy);
    let sent = '';
    for (let i = 0; i < 100; i++) {
      const piece = `${i},`;
      sent += piece;
      c.socket.write(piece);
      await new Promise<void>((resolve) => setImmediate(resolve)); // separate chunks
    }
    await c.waitForBytes(sent.length);
    expect(c.bytes.toString()).toBe(sent);
  });

  it('undelay delivers held bytes at once', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy);
    proxy.delay(60_000, 0, 'rx');
    c.socket.write('held');
    await sleep(QUIET_MS);
    expect(c.bytes.length).toBe(0);
    proxy.undelay('rx');
    await c.waitForBytes(4);
    expect(c.bytes.toString()).toBe('held');
  });

  it('dropRate(1) resets a connection on its first chunk; dropRate(0) stops', async () => {
    const { proxy } = await setup();
    proxy.dropRate(1);
    const c = await connect(proxy);
    c.socket.write('x');
    await c.waitForClose();
    expect((c.error as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNRESET');
    expect(c.bytes.length).toBe(0);
    proxy.dropRate(0);
    const d = await connect(proxy);
    d.socket.write('y');
    await d.waitForBytes(1);
    expect(d.bytes.toString()).toBe('y');
  });

  it('pause stops reading both ways; resume carries on where it stopped', async () => {
    const { echo, proxy } = await setup();
    const c = await connect(proxy);
    c.socket.write('1');
    await c.waitForBytes(1);
    proxy.pause();
    c.socket.write('2');
    await sleep(QUIET_MS);
    expect(receivedBy(echo, 0)).toBe('1');
    proxy.resume();
    await c.waitForBytes(2);
    expect(c.bytes.toString()).toBe('12');
  });

  it('resetAll breaks every connection; new ones work', async () => {
    const { proxy } = await setup();
    const a = await connect(proxy);
    const b = await connect(proxy);
    await waitUntil(() => proxy.connectionCount() === 2, 'two connections');
    proxy.resetAll();
    await a.waitForClose();
    await b.waitForClose();
    // An RST, not a FIN: the client sees a reset, as after a real network fault.
    expect((a.error as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNRESET');
    expect(proxy.connectionCount()).toBe(0);
    const c = await connect(proxy);
    c.socket.write('ok');
    await c.waitForBytes(2);
  });

  it('a target that is down or goes down closes the client side, and the proxy carries on', async () => {
    const port = await freePort(); // nothing listens there
    const proxy = await startFaultProxy({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port },
    });
    cleanups.push(() => proxy.close());
    const c = await connect(proxy);
    c.socket.write('anyone?');
    await c.waitForClose();
    const d = await connect(proxy);
    await d.waitForClose();
    expect(proxy.connectionCount()).toBe(0);

    // The target resets a live connection.
    const { echo, proxy: p2 } = await setup();
    const e = await connect(p2);
    e.socket.write('hi');
    await e.waitForBytes(2);
    echo.sockets[0]!.resetAndDestroy();
    await e.waitForClose();
  });

  it('close stops listening', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy);
    await proxy.close();
    await c.waitForClose();
    await expect(Client.connect(proxy.address())).rejects.toThrow();
  });

  it('rejects bad settings', async () => {
    const { proxy } = await setup();
    expect(() => proxy.dropRate(1.5)).toThrow(RangeError);
    expect(() => proxy.delay(-1)).toThrow(RangeError);
  });
});
