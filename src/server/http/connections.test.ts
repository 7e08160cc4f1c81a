// The HTTP API over real sockets: what app.inject cannot show (one connection carrying several
// requests, requests that never finish, the number of connections, closing with clients left).
import * as net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { createMetrics, type Metrics } from '../metrics.js';
import { createHttpApp, type HttpAppOptions } from './app.js';

let db: Db;

beforeAll(async () => {
  db = await open(tmpDir('http-connections'));
});

afterAll(async () => {
  await db.close();
});

/** Response: one parsed HTTP/1.1 response. */
interface Response {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * parseResponses reads the complete responses at the start of `text` (bodies framed by
 * Content-Length, which every answer of the API has).
 */
function parseResponses(text: string): Response[] {
  const out: Response[] = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return out;
    const [statusLine = '', ...lines] = text.slice(at, end).split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (text.length < end + 4 + length) return out;
    out.push({
      status: Number(statusLine.split(' ')[1]),
      headers,
      body: text.slice(end + 4, end + 4 + length),
    });
    at = end + 4 + length;
  }
}

/** Conn: a raw connection that collects what the server sends. */
class Conn {
  readonly socket: net.Socket;
  text = '';
  closed = false;
  private readonly closedPromise: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.setEncoding('latin1');
    this.socket.on('data', (d: string) => {
      this.text += d;
    });
    this.socket.on('error', () => {});
    this.closedPromise = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closed = true;
        resolve();
      }),
    );
  }

  connected(): Promise<void> {
    return new Promise((resolve) => this.socket.once('connect', () => resolve()));
  }

  /** responses waits for `n` complete responses. */
  async responses(n: number): Promise<Response[]> {
    await expect.poll(() => parseResponses(this.text).length, { timeout: 5000, interval: 2 }).toBe(n);
    return parseResponses(this.text);
  }

  whenClosed(): Promise<void> {
    return this.closedPromise;
  }
}

async function listening(
  extra: Partial<HttpAppOptions> = {},
): Promise<{ app: FastifyInstance; port: number; metrics: Metrics }> {
  const metrics = createMetrics(db, { defaultMetrics: false });
  const app = createHttpApp({ db, metrics, version: 't', ...extra });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as net.AddressInfo).port, metrics };
}

const put = (key: string, value: string): string =>
  `PUT /v1/kv/${key} HTTP/1.1\r\nHost: x\r\nContent-Length: ${value.length}\r\n\r\n${value}`;
const get = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

describe('pipelined requests run in order', () => {
  it('a GET pipelined behind a PUT of the same key sees the PUT', async () => {
    const { app, port } = await listening();
    try {
      for (let trial = 0; trial < 30; trial++) {
        const conn = new Conn(port);
        const value = `value-${trial}`;
        conn.socket.write(put('pipe', value) + get('/v1/kv/pipe'));
        const [first, second] = await conn.responses(2);
        conn.socket.destroy();
        expect(first?.status).toBe(204);
        expect(second?.status, `trial ${trial}`).toBe(200);
        expect(second?.body, `trial ${trial}`).toBe(value);
      }
    } finally {
      await app.close();
    }
  });

  it('a listing pipelined behind a PUT sees the PUT', async () => {
    const { app, port } = await listening();
    try {
      for (let trial = 0; trial < 10; trial++) {
        const conn = new Conn(port);
        const value = `listed-${trial}`;
        conn.socket.write(put('pipelist', value) + get('/v1/kv?prefix=pipelist'));
        const [, listing] = await conn.responses(2);
        conn.socket.destroy();
        expect(JSON.parse(listing?.body ?? '')).toEqual({ items: [{ key: 'pipelist', value }] });
      }
    } finally {
      await app.close();
    }
  });
});

describe('requests that never finish', () => {
  it('answers 408 REQUEST_TIMEOUT to a body short of its Content-Length, and to an endless chunked body', async () => {
    const { app, port } = await listening({ requestTimeoutMs: 300 });
    try {
      const short = new Conn(port);
      short.socket.write('PUT /v1/kv/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
      const chunked = new Conn(port);
      chunked.socket.write('PUT /v1/kv/endless HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
      const drip = setInterval(() => {
        if (!chunked.closed) chunked.socket.write('1\r\na\r\n');
      }, 50);
      try {
        for (const conn of [short, chunked]) {
          const [answer] = await conn.responses(1);
          expect(answer?.status).toBe(408);
          expect(JSON.parse(answer?.body ?? '').error.code).toBe('REQUEST_TIMEOUT');
          await conn.whenClosed();
        }
      } finally {
        clearInterval(drip);
      }
      expect(await db.get('stalled')).toBeUndefined();
      expect(await db.get('endless')).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it('close() cuts the connections still busy after the grace, instead of waiting for them', async () => {
    const { app, port, metrics } = await listening({ closeGraceMs: 200 });
    const stalled = new Conn(port);
    stalled.socket.write('PUT /v1/kv/held HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
    await expect.poll(() => metrics.snapshot().connectedClients.http).toBe(1);
    // Let the server read the request's start, so that it is in flight, not idle.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    const outcome = await Promise.race([
      app.close().then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5000)),
    ]);
    if (outcome !== 'closed') stalled.socket.destroy();
    expect(outcome).toBe('closed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    await stalled.whenClosed();
  });
});

describe('the number of connections', () => {
  it('closes connections past maxConnections on arrival and counts them as rejected', async () => {
    const { app, port, metrics } = await listening({ maxConnections: 2 });
    const conns: Conn[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const conn = new Conn(port);
        await conn.connected();
        conns.push(conn);
      }
      await expect.poll(() => metrics.snapshot().connectedClients.http).toBe(2);
      const extra = new Conn(port);
      conns.push(extra);
      await extra.whenClosed();
      expect(metrics.snapshot().rejectedConnections).toBe(1);
      // The connections within the limit still serve.
      conns[0]?.socket.write(get('/healthz'));
      const [health] = (await conns[0]?.responses(1)) ?? [];
      expect(health?.status).toBe(200);
    } finally {
      for (const conn of conns) conn.socket.destroy();
      await app.close();
    }
  });
});
