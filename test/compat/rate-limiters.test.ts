// The rate limiters that sit on Redis (their READMEs' usage): rate-limiter-flexible's
// RateLimiterRedis (ioredis and node-redis), express-rate-limit with rate-limit-redis, and
// @fastify/rate-limit with an ioredis client. Each must let `points` requests through in a
// window, refuse the next ones, and let requests through again once the window has passed.
import type { AddressInfo } from 'node:net';
import fastifyRateLimit from '@fastify/rate-limit';
import express from 'express';
import { rateLimit } from 'express-rate-limit';
import Fastify from 'fastify';
import { type RedisReply, RedisStore } from 'rate-limit-redis';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { createClient } from 'redis';
import { expect, it } from 'vitest';
import { describeTargets, ioredisTo, sleep } from './support.js';

/** WINDOW_MS: every limiter's window: short, so that the suite stays fast. */
const WINDOW_MS = 1000;

describeTargets('rate limiters', (target) => {
  it('rate-limiter-flexible limits per key and resets after its window (ioredis and node-redis)', async () => {
    const ioredis = ioredisTo(target());
    const nodeRedis = createClient({ url: target().url });
    await nodeRedis.connect();
    try {
      for (const [name, limiter] of [
        [
          'ioredis',
          new RateLimiterRedis({ storeClient: ioredis, keyPrefix: 'rlf-io', points: 3, duration: 1 }),
        ],
        [
          'node-redis',
          new RateLimiterRedis({
            storeClient: nodeRedis,
            useRedisPackage: true,
            keyPrefix: 'rlf-nr',
            points: 3,
            duration: 1,
          }),
        ],
      ] as const) {
        const remaining: number[] = [];
        for (let i = 0; i < 3; i++) remaining.push((await limiter.consume('user-1')).remainingPoints);
        expect({ name, remaining }).toEqual({ name, remaining: [2, 1, 0] });
        const refused = await limiter.consume('user-1').catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(RateLimiterRes);
        expect((refused as RateLimiterRes).msBeforeNext).toBeGreaterThan(0);
        expect((refused as RateLimiterRes).msBeforeNext).toBeLessThanOrEqual(1000);
        // Another key has its own budget.
        expect((await limiter.consume('user-2')).remainingPoints).toBe(2);
        await sleep((refused as RateLimiterRes).msBeforeNext + 100);
        expect((await limiter.consume('user-1')).remainingPoints).toBe(2);
        expect((await limiter.get('user-1'))?.consumedPoints).toBe(1);
        await limiter.delete('user-1');
        expect(await limiter.get('user-1')).toBeNull();
      }
    } finally {
      ioredis.disconnect();
      await nodeRedis.close();
    }
  });

  it('express-rate-limit with rate-limit-redis answers 429 past the limit and resets', async () => {
    const client = ioredisTo(target());
    const app = express();
    app.use(
      rateLimit({
        windowMs: WINDOW_MS,
        limit: 3,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        store: new RedisStore({
          sendCommand: (command: string, ...args: string[]) =>
            client.call(command, ...args) as Promise<RedisReply>,
        }),
      }),
    );
    app.get('/', (_req, res) => {
      res.send('ok');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(url)).status);
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      await sleep(WINDOW_MS + 200);
      expect((await fetch(url)).status).toBe(200);
    } finally {
      server.close();
      client.disconnect();
    }
  });

  it('@fastify/rate-limit with redis answers 429 past the limit and resets', async () => {
    const redis = ioredisTo(target());
    const fastify = Fastify();
    await fastify.register(fastifyRateLimit, {
      max: 3,
      timeWindow: WINDOW_MS,
      redis,
      nameSpace: 'compat-fastify-',
      skipOnError: true,
    });
    fastify.get('/', async () => 'ok');
    await fastify.ready();
    try {
      const statuses: number[] = [];
      const remaining: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await fastify.inject({ method: 'GET', url: '/' });
        statuses.push(res.statusCode);
        remaining.push(res.headers['x-ratelimit-remaining'] as string | undefined);
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429]);
      expect(remaining.slice(0, 3)).toEqual(['2', '1', '0']);
      await sleep(WINDOW_MS + 200);
      expect((await fastify.inject({ method: 'GET', url: '/' })).statusCode).toBe(200);
    } finally {
      await fastify.close();
      redis.disconnect();
    }
  });
});
