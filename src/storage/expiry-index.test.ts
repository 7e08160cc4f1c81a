import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExpiryIndex, isExpired } from './expiry-index.js';

describe('ExpiryIndex', () => {
  it('follows Redis: a key is expired only once now passes its expiresAt', () => {
    expect(isExpired(100, 100)).toBe(false);
    expect(isExpired(100, 101)).toBe(true);
  });

  it('peekDue lists the soonest current expired entries and changes nothing', () => {
    const op = fc.oneof(
      fc.record({
        t: fc.constant('set' as const),
        k: fc.integer({ min: 0, max: 19 }),
        at: fc.integer({ min: 0, max: 50 }),
      }),
      fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 19 }) }),
      fc.record({
        t: fc.constant('peek' as const),
        now: fc.integer({ min: 0, max: 60 }),
        max: fc.integer({ min: 0, max: 25 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const index = new ExpiryIndex();
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.t === 'set') {
            index.set(`k${o.k}`, o.at);
            model.set(`k${o.k}`, o.at);
          } else if (o.t === 'del') {
            index.delete(`k${o.k}`);
            model.delete(`k${o.k}`);
          } else {
            const expected = [...model.values()].filter((at) => isExpired(at, o.now)).sort((a, b) => a - b);
            const peeked = index.peekDue(o.now, o.max);
            expect(peeked.map((e) => e.expiresAt)).toEqual(expected.slice(0, o.max));
            for (const e of peeked) expect(model.get(e.name)).toBe(e.expiresAt);
            expect(new Set(peeked.map((e) => e.name)).size).toBe(peeked.length);
            // Nothing changed: the same question gets the same answer.
            expect(index.peekDue(o.now, o.max)).toEqual(peeked);
            expect(index.expiredCount(o.now)).toBe(expected.length);
          }
          index.checkInvariants();
          expect(index.size).toBe(model.size);
        }
      }),
    );
  });

  it('matches a Map model under sets, deletes, takes, requeues and counts', () => {
    const op = fc.oneof(
      fc.record({
        t: fc.constant('set' as const),
        k: fc.integer({ min: 0, max: 9 }),
        at: fc.integer({ min: 0, max: 50 }),
      }),
      fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 9 }) }),
      fc.record({
        t: fc.constant('take' as const),
        now: fc.integer({ min: 0, max: 60 }),
        max: fc.integer({ min: 1, max: 4 }),
        keep: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const index = new ExpiryIndex();
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.t === 'set') {
            index.set(`k${o.k}`, o.at);
            model.set(`k${o.k}`, o.at);
          } else if (o.t === 'del') {
            index.delete(`k${o.k}`);
            model.delete(`k${o.k}`);
          } else {
            const expected = [...model.values()].filter((at) => isExpired(at, o.now)).length;
            expect(index.expiredCount(o.now)).toBe(expected);
            const taken = index.takeDue(o.now, o.max);
            expect(taken.length).toBe(Math.min(o.max, expected));
            for (let i = 1; i < taken.length; i++) {
              expect(taken[i]!.expiresAt).toBeGreaterThanOrEqual(taken[i - 1]!.expiresAt);
            }
            // Taken entries still count until they are deleted or handed back.
            expect(index.expiredCount(o.now)).toBe(expected);
            for (const e of taken) {
              if (o.keep) {
                index.requeue(e);
              } else {
                index.deleteEntry(e);
                index.done(e);
                model.delete(e.name);
              }
            }
          }
          index.checkInvariants();
          expect(index.size).toBe(model.size);
          for (const [k, at] of model) expect(index.get(k)).toBe(at);
        }
      }),
    );
  });

  it('keeps the heap bounded when the same keys get new expiries over and over', () => {
    const index = new ExpiryIndex();
    for (let i = 0; i < 100_000; i++) index.set(`k${i % 10}`, i);
    index.checkInvariants();
    expect(index.size).toBe(10);
    // Stale entries are dropped by rebuilds: the heap stays within the documented bound.
    expect((index as unknown as { heap: unknown[] }).heap.length).toBeLessThanOrEqual(2 * 10 + 1024 + 1);
    expect(index.takeDue(Number.MAX_SAFE_INTEGER, 100).map((e) => e.expiresAt)).toEqual(
      Array.from({ length: 10 }, (_, i) => 99_990 + i),
    );
  });

  it('keeps the mean time to expiry exact through sets, replacements and deletes', () => {
    const index = new ExpiryIndex();
    const now = 1_800_000_000_000;
    expect(index.avgTtlMs(now)).toBe(0);
    index.set('a', now + 1_000);
    index.set('b', now + 3_000);
    expect(index.avgTtlMs(now)).toBe(2_000);
    index.set('a', now + 5_000); // replaced, not added
    expect(index.avgTtlMs(now)).toBe(4_000);
    index.delete('b');
    expect(index.avgTtlMs(now)).toBe(5_000);
    expect(index.avgTtlMs(now + 6_000)).toBe(0); // never negative
    index.delete('a');
    expect(index.avgTtlMs(now)).toBe(0);
    index.set('c', now + 10);
    expect(index.avgTtlMs(now)).toBe(10);
  });
});
