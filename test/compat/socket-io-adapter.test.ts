// @socket.io/redis-adapter (README usage with node-redis, and with ioredis): two socket.io
// servers share rooms through the server's pub/sub, so a room broadcast from one reaches a client
// connected to the other, and fetchSockets on one server sees the other's sockets (a request
// answered over pub/sub, counting servers with PUBSUB NUMSUB).
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { io as connectClient, type Socket } from 'socket.io-client';
import { expect, it } from 'vitest';
import { describeTargets, ioredisTo, type Target } from './support.js';

interface Instance {
  readonly io: Server;
  readonly http: HttpServer;
  readonly port: number;
  close(): Promise<void>;
}

async function nodeRedisInstance(target: Target): Promise<Instance> {
  const pubClient = createClient({ url: target.url });
  const subClient = pubClient.duplicate();
  await Promise.all([pubClient.connect(), subClient.connect()]);
  return listen(createAdapter(pubClient, subClient), async () => {
    await Promise.all([pubClient.close(), subClient.close()]);
  });
}

async function ioredisInstance(target: Target): Promise<Instance> {
  const pubClient = ioredisTo(target);
  const subClient = pubClient.duplicate();
  return listen(createAdapter(pubClient, subClient), async () => {
    pubClient.disconnect();
    subClient.disconnect();
  });
}

async function listen(
  adapter: ReturnType<typeof createAdapter>,
  closeClients: () => Promise<void>,
): Promise<Instance> {
  const http = createServer();
  const io = new Server(http, { adapter });
  io.on('connection', (socket) => {
    void socket.join('room1');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  return {
    io,
    http,
    port: (http.address() as AddressInfo).port,
    async close() {
      await io.close();
      await closeClients();
    },
  };
}

describeTargets('socket.io redis adapter', (target) => {
  for (const [flavour, make] of [
    ['node-redis', nodeRedisInstance],
    ['ioredis', ioredisInstance],
  ] as const) {
    it(`delivers a room broadcast from one server to a client of another (${flavour})`, async () => {
      const one = await make(target());
      const two = await make(target());
      let client: Socket | undefined;
      try {
        client = connectClient(`http://127.0.0.1:${two.port}`, { transports: ['websocket'] });
        await new Promise<void>((r) => client!.once('connect', () => r()));
        // Both adapters have subscribed (each counts the servers by PUBSUB NUMSUB).
        const adapter = one.io.of('/').adapter as unknown as { serverCount(): Promise<number> };
        const deadline = Date.now() + 3000;
        while ((await adapter.serverCount()) < 2 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 10));
        // The join happens on server two; server one learns of the socket only through the server.
        const remote = await one.io.in('room1').fetchSockets();
        expect(remote.map((s) => s.id)).toEqual([client.id]);
        const got = new Promise<unknown[]>((r) => client!.once('hello', (...args: unknown[]) => r(args)));
        one.io.to('room1').emit('hello', 'world', { n: 1 });
        expect(await got).toEqual(['world', { n: 1 }]);
        // A room nobody on either server is in reaches nobody.
        let stray = false;
        client.once('nope', () => {
          stray = true;
        });
        one.io.to('room2').emit('nope');
        const ping = new Promise<void>((r) => client!.once('ping2', () => r()));
        one.io.to('room1').emit('ping2');
        await ping;
        expect(stray).toBe(false);
      } finally {
        client?.disconnect();
        await one.close();
        await two.close();
      }
    });
  }
});
