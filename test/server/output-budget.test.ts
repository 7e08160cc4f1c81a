// Clients that ask for large values and do not read them cannot make the server hold more than its
// output budget (src/server/output-budget.ts): past it, the connection holding the most unread
// reply bytes is closed, the others keep their replies, and the eviction is counted. Over RESP
// and over HTTP. (Found from outside: a slow reader held its whole response for ever, so many of
// them could run the server out of memory.) The budget is lowered here.
import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { createHttpApp } from '../../src/server/http/index.js';
import { createMetrics } from '../../src/server/metrics.js';
import { tmpDir } from '../support/tmp-dir.js';
import { connectIoredis, RawClient, type Running, startServer } from './support.js';

/** VALUE_BYTES: one large value; BUDGET_BYTES: what all clients together may hold. */
const VALUE_BYTES = 8 * 1024 * 1024;
const BUDGET_BYTES = 16 * 1024 * 1024;

const get = (key: string) => `*2\r\n$3\r\nGET\r\n$${key.length}\r\n${key}\r\n`;

/** until polls `pred` every 20 ms for up to `ms`. */
async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the output budget over RESP', () => {
  let r: Running;
  beforeAll(async () => {
    // The per-connection output limit raised, so that one client can hold several replies.
    r = await startServer({
      limits: { clientOutputBytes: BUDGET_BYTES, outputBufferBytes: 64 * 1024 * 1024 },
    });
    await r.db.set('big', Buffer.alloc(VALUE_BYTES, 0x61));
  });
  afterAll(() => r.stop());

  it('closes the client holding the most; a client within reads all of its reply', async () => {
    const small = await RawClient.connect(r.port);
    const large = await RawClient.connect(r.port);
    small.socket.pause();
    large.socket.pause();
    small.send(get('big'));
    large.send(get('big').repeat(4));
    await until(() => large.socket.destroyed || large.closed || r.server.clientCount < 2);
    large.socket.resume();
    await large.waitClosed();
    expect(large.received.length).toBeLessThan(4 * VALUE_BYTES);
    // The other keeps its connection and gets its whole reply once it reads.
    small.socket.resume();
    const header = `$${VALUE_BYTES}\r\n`;
    const text = await small.until((t) => t.length >= header.length + VALUE_BYTES + 2, 10_000);
    expect(text.startsWith(header)).toBe(true);
    expect(small.closed).toBe(false);
    const c = await connectIoredis(r.port);
    try {
      expect(await c.info('stats')).toMatch(/^evicted_clients:1\r?$/m);
      expect(await c.get('big')).toHaveLength(VALUE_BYTES);
    } finally {
      c.disconnect();
      small.close();
    }
  });
});

describe('the output budget over HTTP', () => {
  it('closes the connection holding the most unread response bytes; the other reads its answer', async () => {
    const db = await open(tmpDir('output-budget-http'));
    const metrics = createMetrics(db, { defaultMetrics: false });
    const app = createHttpApp({ db, metrics, version: '0.0.0-test', clientOutputBytes: BUDGET_BYTES });
    try {
      await db.set('small', Buffer.alloc(VALUE_BYTES / 2, 0x61));
      await db.set('large', Buffer.alloc(3 * VALUE_BYTES, 0x62));
      await app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = app.server.address() as net.AddressInfo;
      const connect = async (key: string) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        await new Promise((resolve) => s.once('connect', resolve));
        s.pause();
        s.write(`GET /v1/kv/${key} HTTP/1.1\r\nHost: x\r\n\r\n`);
        return s;
      };
      const small = await connect('small');
      const large = await connect('large');
      const largeClosed = new Promise<void>((resolve) => large.once('close', () => resolve()));
      await until(() => metrics.snapshot().evictedClients.http === 1);
      large.resume();
      await largeClosed;
      // The small answer (4 MiB: within the budget) arrives whole once its client reads.
      const chunks: Buffer[] = [];
      small.on('data', (c: Buffer) => chunks.push(c));
      small.resume();
      await until(() => Buffer.concat(chunks).includes(Buffer.alloc(VALUE_BYTES / 2, 0x61)));
      expect(Buffer.concat(chunks).toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
      expect(small.destroyed).toBe(false);
      expect(metrics.snapshot().evictedClients.http).toBe(1);
      small.destroy();
    } finally {
      await app.close();
      await db.close();
    }
  });
});
