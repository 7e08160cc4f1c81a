// The HTTP API over real sockets: what app.inject cannot show (one connection carrying several
// requests, requests that never finish, the number of connections, closing with clients left).
import * as net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { createMetrics } from '../metrics.js';
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
): Promise<{ app: FastifyInstance; port: number }> {
  const metrics = createMetrics(db, { defaultMetrics: false });
  const app = createHttpApp({ db, metrics, version: 't', ...extra });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as net.AddressInfo).port };
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
