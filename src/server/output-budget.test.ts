// OutputBudget evicts the largest holders, and only while the sum is past the budget.
import { describe, expect, it } from 'vitest';
import { OutputBudget } from './output-budget.js';

class Holder {
  destroyed = false;
  noEvict = false;
  constructor(
    readonly name: string,
    public outputBytes: number,
  ) {}
  destroy(): void {
    this.destroyed = true;
  }
}

describe('OutputBudget', () => {
  it('evicts the largest holders until the rest fit, and nobody while within', () => {
    const evicted: string[] = [];
    const budget = new OutputBudget<Holder>(100, (h, bytes) => evicted.push(`${h.name}:${bytes}`), 60_000);
    const [a, b, c, d] = [new Holder('a', 30), new Holder('b', 50), new Holder('c', 20), new Holder('d', 0)];
    for (const h of [a, b, c, d]) budget.add(h);
    expect(budget.sweep()).toBe(0); // exactly at the budget
    a.outputBytes = 60; // 130 in all: b (the largest, 50) would leave 80; a (60) goes first
    expect(budget.sweep()).toBe(1);
    expect(evicted).toEqual(['a:60']);
    expect([a.destroyed, b.destroyed, c.destroyed, d.destroyed]).toEqual([true, false, false, false]);
    // An evicted holder is no longer counted.
    expect(budget.sweep()).toBe(0);
    b.outputBytes = 500;
    c.outputBytes = 400;
    expect(budget.sweep()).toBe(2);
    expect(evicted).toEqual(['a:60', 'b:500', 'c:400']);
    expect(d.destroyed).toBe(false); // holds nothing
    budget.close();
  });

  it('never evicts a no-evict holder (CLIENT NO-EVICT ON) but counts its bytes', () => {
    const evicted: string[] = [];
    const budget = new OutputBudget<Holder>(100, (h) => evicted.push(h.name), 60_000);
    const [a, b, c] = [new Holder('a', 120), new Holder('b', 30), new Holder('c', 5)];
    a.noEvict = true;
    for (const h of [a, b, c]) budget.add(h);
    // 155 in all: a is the largest but exempt; b goes, then c, and a alone stays past the budget.
    expect(budget.sweep()).toBe(2);
    expect(evicted).toEqual(['b', 'c']);
    expect(a.destroyed).toBe(false);
    a.noEvict = false;
    expect(budget.sweep()).toBe(1);
    expect(a.destroyed).toBe(true);
    budget.close();
  });

  it('forgets a holder deleted (a closed connection)', () => {
    const budget = new OutputBudget<Holder>(10, () => {}, 60_000);
    const h = new Holder('h', 1000);
    budget.add(h);
    budget.delete(h);
    expect(budget.sweep()).toBe(0);
    expect(h.destroyed).toBe(false);
    budget.close();
  });

  it('refuses a budget that is not a positive byte count', () => {
    expect(() => new OutputBudget(0, () => {})).toThrow();
    expect(() => new OutputBudget(1.5, () => {})).toThrow();
  });
});
