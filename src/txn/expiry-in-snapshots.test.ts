// Expiry seen through snapshots and transactions (issue 15, part 1): a version keeps the expiry
// it was written with, in the version history too, and one whose expiry has passed reads as
// absent by the store's clock, as everywhere else.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { open } from '../db/db.js';
import { ManualClock } from '../io/manual-clock.js';

const T0 = 1_700_000_000_000;

describe('expiry through snapshots and transactions', () => {
  it('a snapshot reads an overwritten version with its expiry, and as absent once it passed', async () => {
    const clock = new ManualClock(T0);
    const db = await open(tmpDir('snap-ttl'), { clock });
    try {
      await db.set('k', 'old', { expiresAt: T0 + 100 });
      await db.set('plain', 'x');
      const snap = await db.snapshot();
      await db.set('k', 'new'); // the old version moves to the history, with its expiry
      expect(await snap.getString('k')).toBe('old');
      expect(await snap.expiry('k')).toBe(T0 + 100);
      expect(await snap.expiry('plain')).toBeNull();
      expect(await snap.expiry('missing')).toBeUndefined();
      clock.set(T0 + 101);
      expect(await snap.get('k')).toBeUndefined();
      expect(await snap.expiry('k')).toBeUndefined();
      const keys: string[] = [];
      for await (const [key] of snap.scan()) keys.push(key.toString());
      expect(keys).toEqual(['plain']);
      snap.release();
      expect(await db.getString('k')).toBe('new');
    } finally {
      await db.close();
    }
  });

  it("a transaction's set takes Db.set's expiry options, ttlMs on the store's clock", async () => {
    const clock = new ManualClock(T0);
    const db = await open(tmpDir('tx-ttl-options'), { clock });
    try {
      await db.transaction(async (tx) => {
        tx.set('ttl', 'a', { ttlMs: 100 });
        tx.set('at', 'b', { expiresAt: T0 + 200 });
        tx.set('number', 'c', T0 + 300); // the absolute form stays
        tx.set('none', 'd', {});
      });
      expect(await db.expiry('ttl')).toBe(T0 + 100);
      expect(await db.expiry('at')).toBe(T0 + 200);
      expect(await db.expiry('number')).toBe(T0 + 300);
      expect(await db.expiry('none')).toBeNull();
      clock.set(T0 + 150);
      expect(await db.get('ttl')).toBeUndefined();
      expect(await db.getString('at')).toBe('b');
      // Refused as Db.set refuses them, and nothing is buffered.
      const tx = await db.begin();
      expect(() => tx.set('x', 'v', { ttl: 5 } as never)).toThrow(/unknown option ttl/);
      expect(() => tx.set('x', 'v', { ttlMs: 5, expiresAt: T0 })).toThrow(/not both/);
      expect(() => tx.set('x', 'v', { ttlMs: -1 })).toThrow(/ttlMs must be a positive integer/);
      expect(() => tx.set('x', 'v', 'soon' as never)).toThrow(/expiresAt must be/);
      expect(tx.writeCount).toBe(0);
      tx.rollback();
    } finally {
      await db.close();
    }
  });

  it('a transaction sees expiries of what it read and what it wrote, and can keep them', async () => {
    const clock = new ManualClock(T0);
    const db = await open(tmpDir('tx-ttl'), { clock });
    try {
      await db.set('counter', '1', { expiresAt: T0 + 5_000 });
      await db.transaction(async (tx) => {
        expect(await tx.expiry('counter')).toBe(T0 + 5_000);
        expect(tx.expiryOf('counter')).toBe(T0 + 5_000);
        const n = Number(await tx.getString('counter'));
        // A read-modify-write that keeps the TTL, as INCR does.
        tx.set('counter', String(n + 1), tx.expiryOf('counter'));
        tx.set('fresh', 'v', T0 + 9_000);
        expect(await tx.expiry('fresh')).toBe(T0 + 9_000);
        tx.delete('fresh');
        expect(await tx.expiry('fresh')).toBeUndefined();
      });
      expect(await db.getString('counter')).toBe('2');
      expect(await db.expiry('counter')).toBe(T0 + 5_000);
    } finally {
      await db.close();
    }
  });

  // Found from outside: a transaction kept answering a key it had read once its expiry passed
  // (its remembered read), where a snapshot and the store read it as absent.
  it('a key a transaction read, or wrote with an expiry, reads as absent once the expiry passes', async () => {
    const clock = new ManualClock(T0);
    const db = await open(tmpDir('tx-ttl-passes'), { clock });
    try {
      await db.set('session', 'token', { expiresAt: T0 + 200 });
      const tx = await db.begin();
      const snap = await db.snapshot();
      expect(await tx.getString('session')).toBe('token');
      expect(await snap.getString('session')).toBe('token');
      tx.set('mine', 'v', T0 + 300);
      expect(await tx.getString('mine')).toBe('v');
      clock.set(T0 + 400);
      expect(await tx.get('session')).toBeUndefined();
      expect(await tx.has('session')).toBe(false);
      expect(await tx.expiry('session')).toBeUndefined();
      expect(await tx.get('mine')).toBeUndefined();
      expect(await snap.get('session')).toBeUndefined();
      expect(await db.get('session')).toBeUndefined();
      tx.set('copy', (await tx.getString('session')) ?? 'none');
      await tx.commit();
      snap.release();
      expect(await db.getString('copy')).toBe('none');
    } finally {
      await db.close();
    }
  });
});
