import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EndpointUnreachableError, requestOne } from './admin-client.js';

// A loopback server whose first `failures` connections are reset on their first bytes (a member
// under load, a connection cut mid-request); later ones get a JSON answer.
async function flakyServer(
  failures: number,
): Promise<{ endpoint: string; seen: () => number; close: () => void }> {
  let seen = 0;
  const server = net.createServer((socket) => {
    socket.once('data', () => {
      seen++;
      if (seen <= failures) {
        socket.resetAndDestroy();
        return;
      }
      const body = '{"ok":true}';
      socket.end(
        `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return { endpoint: `127.0.0.1:${port}`, seen: () => seen, close: () => server.close() };
}

describe('requestOne', () => {
  const closers: (() => void)[] = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  it('sends a GET again after a reset connection', async () => {
    const s = await flakyServer(2);
    closers.push(s.close);
    expect(await requestOne(s.endpoint, 'GET', '/v1/status')).toEqual({ ok: true });
    expect(s.seen()).toBe(3);
  });

  it('gives up on a GET after ADMIN_GET_ATTEMPTS resets, naming the cause', async () => {
    const s = await flakyServer(100);
    closers.push(s.close);
    const err = await requestOne(s.endpoint, 'GET', '/v1/status').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EndpointUnreachableError);
    expect((err as Error).message).toMatch(/no answer \(ECONNRESET\)/);
    expect(s.seen()).toBe(3);
  });

  it('never sends a request that may change something twice', async () => {
    const s = await flakyServer(1);
    closers.push(s.close);
    const err = await requestOne(s.endpoint, 'POST', '/v1/cluster/members', { name: 'n4' }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EndpointUnreachableError);
    expect(s.seen()).toBe(1);
  });

  it('does not repeat a refused connection', async () => {
    const s = await flakyServer(0);
    s.close();
    const err = await requestOne(s.endpoint, 'GET', '/v1/status').catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/no answer \(ECONNREFUSED\)$/);
  });
});
