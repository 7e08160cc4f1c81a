// PendingWrites keeps each key's queued writes until they settle. A settled write leaves its
// key's list and lets go of what it held (its value, revision and durability), so that nothing
// still holding the write keeps them alive (pending-writes.ts, `dropped`).
import { describe, expect, it } from 'vitest';
import type { Revision } from '../storage/engine.js';
import { PendingWrites, type Queued } from './pending-writes.js';

const rev = (ts: number): Revision => ({ mod: ts, create: ts, version: 1 });
const never = new Promise<void>(() => {});

function put(p: PendingWrites, k: string, ts: number, value: string): Queued {
  return p.addOne([k], ts, Buffer.from(value), undefined, 0, rev(ts), never);
}

function expectDropped(q: Queued): void {
  for (const node of q.nodes) {
    expect(node.listed).toBe(false);
    expect(node.value).toBeUndefined();
    expect(node.revision).toBeUndefined();
    expect(node.durable).toBeUndefined();
    expect(node.older).toBeUndefined();
    expect(node.newer).toBeUndefined();
  }
}

describe('PendingWrites', () => {
  it('a durable write leaves, with every older write of its key; a newer one stays whole', () => {
    const p = new PendingWrites();
    const a = put(p, 'k', 1, 'a');
    const b = put(p, 'k', 2, 'b');
    const c = put(p, 'k', 3, 'c');
    p.settle(b, true);
    expectDropped(a);
    expectDropped(b);
    const newest = p.newest('k');
    expect(newest?.value?.toString()).toBe('c');
    expect(newest?.older).toBeUndefined();
    expect(newest?.durable).toBe(never);
    p.settle(a, true); // already dropped: nothing changes
    expect(p.newest('k')?.value?.toString()).toBe('c');
    p.settle(c, true);
    expectDropped(c);
    expect(p.keys).toBe(0);
  });

  it('a failed write leaves alone: readers fall back to the older pending write', () => {
    const p = new PendingWrites();
    const a = put(p, 'k', 1, 'a');
    const b = put(p, 'k', 2, 'b');
    p.settle(b, false);
    expectDropped(b);
    expect(p.newest('k')?.value?.toString()).toBe('a');
    expect(p.newest('k')?.newer).toBeUndefined();
    p.settle(a, false);
    expectDropped(a);
    expect(p.newest('k')).toBeUndefined();
  });

  it('settled() resolves once every write added before it has settled, in any order', async () => {
    const p = new PendingWrites();
    const a = put(p, 'x', 1, 'a');
    const b = put(p, 'y', 2, 'b');
    let done = false;
    const settled = p.settled().then(() => {
      done = true;
    });
    p.settle(b, true);
    await Promise.resolve();
    expect(done).toBe(false);
    p.settle(a, true);
    await settled;
    expect(done).toBe(true);
  });
});
