// redlock (README "Usage"): a lock excludes a second holder until it is released or expires,
// extends, and `using` runs a routine under the lock. Redlock's scripts run through EVALSHA/EVAL.
import type { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
// @ts-expect-error redlock 5's package.json "exports" has no "types": its dist/index.d.ts is out of reach under NodeNext
import * as redlockModule from 'redlock';
import { expect, it } from 'vitest';
import { describeTargets, ioredisTo, sleep } from './support.js';

/** The part of redlock 5's API used here (its own typings: node_modules/redlock/dist/index.d.ts). */
interface Lock {
  readonly value: string;
  release(): Promise<unknown>;
  extend(duration: number): Promise<Lock>;
}
interface RedlockClient extends EventEmitter {
  acquire(resources: string[], duration: number): Promise<Lock>;
  using<T>(resources: string[], duration: number, routine: () => Promise<T>): Promise<T>;
  quit(): Promise<void>;
}
const { default: Redlock, ExecutionError } = redlockModule as {
  default: new (clients: Redis[], settings: { retryCount: number }) => RedlockClient;
  ExecutionError: new (...args: never[]) => Error;
};

describeTargets('redlock', (target) => {
  it('excludes a second holder, extends, releases, and expires', async () => {
    const clientA = ioredisTo(target());
    const clientB = ioredisTo(target());
    // Two processes' worth of redlock, one client each, no retries: contention shows at once.
    const a = new Redlock([clientA], { retryCount: 0 });
    const b = new Redlock([clientB], { retryCount: 0 });
    a.on('error', () => {});
    b.on('error', () => {});
    try {
      let lock = await a.acquire(['res:1'], 5000);
      expect(await clientA.get('res:1')).toBe(lock.value);
      await expect(b.acquire(['res:1'], 5000)).rejects.toBeInstanceOf(ExecutionError);
      lock = await lock.extend(5000);
      expect(await clientA.pttl('res:1')).toBeGreaterThan(4000);
      await expect(b.acquire(['res:1'], 5000)).rejects.toBeInstanceOf(ExecutionError);
      // Releasing with someone else's value does nothing (the release script compares).
      await clientB.eval(
        'if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end',
        1,
        'res:1',
        'not-the-value',
      );
      expect(await clientA.exists('res:1')).toBe(1);
      await lock.release();
      expect(await clientA.exists('res:1')).toBe(0);
      const second = await b.acquire(['res:1'], 5000);
      await second.release();
      // A lock that is not released expires with its duration.
      await a.acquire(['res:2'], 200);
      await expect(b.acquire(['res:2'], 5000)).rejects.toBeInstanceOf(ExecutionError);
      await sleep(300);
      const after = await b.acquire(['res:2'], 5000);
      await after.release();
      // Multi-resource locks and `using`.
      const order: string[] = [];
      await a.using(['r:x', 'r:y'], 2000, async () => {
        order.push('in');
        await expect(b.acquire(['r:y'], 1000)).rejects.toBeInstanceOf(ExecutionError);
      });
      order.push('out');
      expect(order).toEqual(['in', 'out']);
      expect(await clientA.exists('r:x', 'r:y')).toBe(0);
    } finally {
      await a.quit().catch(() => {});
      await b.quit().catch(() => {});
    }
  });
});
