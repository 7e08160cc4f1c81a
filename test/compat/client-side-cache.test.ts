// node-redis's client-side caching (its README's `clientSideCache` on RESP3): reads are served
// from the cache until the server's invalidation says a key changed (CLIENT TRACKING, see
// docs/tracking.md); ioredis hears the same invalidations on RESP2 through REDIRECT.
import { BasicClientSideCache, createClient } from 'redis';
import { expect, it } from 'vitest';
import { describeTargets, ioredisTo } from './support.js';

async function until(check: () => Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describeTargets('client-side caching', (target) => {
  it('node-redis clientSideCache hits until a write invalidates the key', async () => {
    const cache = new BasicClientSideCache({ ttl: 0, maxEntries: 0, evictPolicy: 'LRU' });
    const client = createClient({ url: target().url, RESP: 3, clientSideCache: cache });
    await client.connect();
    const other = ioredisTo(target());
    try {
      await other.set('csc:1', 'a');
      expect(await client.get('csc:1')).toBe('a');
      expect(await client.get('csc:1')).toBe('a');
      expect(cache.stats().hitCount).toBe(1);
      await other.set('csc:1', 'b');
      await until(async () => (await client.get('csc:1')) === 'b');
      await other.flushall();
      await until(async () => (await client.get('csc:1')) === null);
    } finally {
      other.disconnect();
      await client.close();
    }
  });

  it('ioredis on RESP2 receives invalidations on __redis__:invalidate with REDIRECT', async () => {
    const sub = ioredisTo(target());
    const data = ioredisTo(target());
    try {
      const heard: string[][] = [];
      sub.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | null) =>
        heard.push((keys ?? []).map(String)),
      );
      const id = (await sub.client('ID')) as number;
      await sub.subscribe('__redis__:invalidate');
      await data.call('CLIENT', 'TRACKING', 'ON', 'REDIRECT', String(id));
      await data.get('csc:2');
      await data.set('csc:2', 'x'); // the tracking client's own write invalidates too (no NOLOOP)
      await until(async () => heard.length === 1);
      expect(heard).toEqual([['csc:2']]);
    } finally {
      sub.disconnect();
      data.disconnect();
    }
  });
});
