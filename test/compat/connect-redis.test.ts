// connect-redis + express-session (README "Full setup"): a session survives across requests,
// is stored under the prefix with the cookie's TTL, and is gone after the session is destroyed.
import type { AddressInfo } from 'node:net';
import { RedisStore } from 'connect-redis';
import express from 'express';
import session from 'express-session';
import { createClient } from 'redis';
import { expect, it } from 'vitest';
import { describeTargets } from './support.js';

declare module 'express-session' {
  interface SessionData {
    views: number;
  }
}

describeTargets('connect-redis with express-session', (target) => {
  it('keeps a session across requests in the store and destroys it', async () => {
    const redisClient = createClient({ url: target().url });
    await redisClient.connect();
    const redisStore = new RedisStore({ client: redisClient, prefix: 'myapp:' });
    const app = express();
    app.use(
      session({
        store: redisStore,
        resave: false,
        saveUninitialized: false,
        secret: 'keyboard cat',
        cookie: { maxAge: 60_000 },
      }),
    );
    app.get('/views', (req, res) => {
      req.session.views = (req.session.views ?? 0) + 1;
      res.json({ views: req.session.views });
    });
    app.get('/logout', (req, res) => {
      req.session.destroy(() => res.json({ ok: true }));
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const first = await fetch(`${base}/views`);
      expect(await first.json()).toEqual({ views: 1 });
      const cookie = first.headers.get('set-cookie')!.split(';')[0]!;
      const sid = decodeURIComponent(cookie.split('=')[1]!).slice(2).split('.')[0]!;
      for (const n of [2, 3]) {
        const res = await fetch(`${base}/views`, { headers: { cookie } });
        expect(await res.json()).toEqual({ views: n });
      }
      // A request without the cookie is a new session.
      expect(await (await fetch(`${base}/views`)).json()).toEqual({ views: 1 });
      // Stored under the prefix, as JSON, with the cookie's lifetime as TTL.
      const stored = JSON.parse((await redisClient.get(`myapp:${sid}`))!);
      expect(stored.views).toBe(3);
      const ttl = await redisClient.ttl(`myapp:${sid}`);
      expect(ttl).toBeGreaterThan(50);
      expect(ttl).toBeLessThanOrEqual(60);
      expect(await redisStore.length()).toBe(2);
      await fetch(`${base}/logout`, { headers: { cookie } });
      expect(await redisClient.exists(`myapp:${sid}`)).toBe(0);
      expect(await (await fetch(`${base}/views`, { headers: { cookie } })).json()).toEqual({ views: 1 });
    } finally {
      server.close();
      await redisClient.flushAll();
      await redisClient.close();
    }
  });
});
