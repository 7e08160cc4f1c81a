// @keyv/redis with keyv, and cache-manager over it (their READMEs' usage): get/set/delete,
// values that expire after their TTL, namespaces, and cache-manager's wrap and ttl.
import KeyvRedis, { createKeyv } from '@keyv/redis';
import { createCache } from 'cache-manager';
import { Keyv } from 'keyv';
import { expect, it } from 'vitest';
import { describeTargets, ioredisTo, sleep } from './support.js';

describeTargets('@keyv/redis and cache-manager', (target) => {
  it('keyv stores, reads, expires and deletes values in the server', async () => {
    const keyv = createKeyv(target().url, { namespace: 'compat' });
    const raw = ioredisTo(target());
    try {
      expect(await keyv.set('foo', { n: 1, s: 'bar' })).toBe(true);
      expect(await keyv.get('foo')).toEqual({ n: 1, s: 'bar' });
      expect(await keyv.has('foo')).toBe(true);
      // Really in the server, under the namespace.
      const keys = await raw.keys('*foo*');
      expect(keys).toHaveLength(1);
      expect(keys[0]).toContain('compat');
      await keyv.set('short', 'lived', 150);
      expect(await raw.pttl(keys[0]!.replace('foo', 'short'))).toBeGreaterThan(0);
      expect(await keyv.get('short')).toBe('lived');
      await sleep(300);
      expect(await keyv.get('short')).toBeUndefined();
      expect(await keyv.delete('foo')).toBe(true);
      expect(await keyv.get('foo')).toBeUndefined();
      expect(await raw.exists(keys[0]!)).toBe(0);
      await keyv.set('a', 1);
      await keyv.set('b', 2);
      await keyv.clear();
      expect(await keyv.get('a')).toBeUndefined();
    } finally {
      await keyv.disconnect();
      raw.disconnect();
    }
  });

  it('cache-manager gets, sets with a TTL, wraps and deletes', async () => {
    const store = new KeyvRedis(target().url);
    const cache = createCache({ stores: [new Keyv({ store, namespace: 'cm' })] });
    try {
      await cache.set('user:1', { name: 'ada' }, 10_000);
      expect(await cache.get('user:1')).toEqual({ name: 'ada' });
      const expires = await cache.ttl('user:1');
      expect(expires).toBeGreaterThan(Date.now() + 5_000);
      let calls = 0;
      const load = async () => {
        calls++;
        return 'computed';
      };
      expect(await cache.wrap('w', load, 10_000)).toBe('computed');
      expect(await cache.wrap('w', load, 10_000)).toBe('computed');
      expect(calls).toBe(1);
      await cache.set('brief', 'x', 150);
      await sleep(300);
      expect(await cache.get('brief')).toBeUndefined();
      expect(await cache.del('user:1')).toBe(true);
      expect(await cache.get('user:1')).toBeUndefined();
      const many = await cache.mget(['w', 'none']);
      expect(many).toEqual(['computed', undefined]);
    } finally {
      await cache.disconnect();
    }
  });
});
