import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';

describe('Prng', () => {
  it('replays exactly from a seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    for (let i = 0; i < 100; i++) expect(a.u32()).toBe(b.u32());
  });
  it('differs across seeds and stays in range', () => {
    const a = new Prng(1);
    const b = new Prng(2);
    expect(a.u32()).not.toBe(b.u32());
    for (let i = 0; i < 1000; i++) {
      const v = a.range(3, 7);
      expect(v).toBeGreaterThanOrEqual(3);
      expect(v).toBeLessThanOrEqual(7);
      expect(a.float()).toBeLessThan(1);
    }
  });
});
