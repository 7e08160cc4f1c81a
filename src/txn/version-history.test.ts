import { describe, expect, it } from 'vitest';
import { VersionHistory } from './version-history.js';

const b = (s: string) => Buffer.from(s);

describe('VersionHistory', () => {
  it('looks up the value that covers a timestamp', () => {
    const h = new VersionHistory();
    h.add('k', 10, b('v0'), 0, 0);
    h.add('k', 20, b('v10'), 10, 0);
    h.add('k', 30, undefined, 20, 0);
    expect(h.lookup('k', 5)?.value).toEqual(b('v0'));
    expect(h.lookup('k', 10)?.value).toEqual(b('v10'));
    expect(h.lookup('k', 25)?.value).toBeUndefined();
    expect(h.lookup('k', 25)).toBeDefined();
    expect(h.lookup('k', 30)).toBeUndefined();
    expect(h.lookup('other', 1)).toBeUndefined();
  });

  it('walks keys in byte order in both directions within bounds', () => {
    const h = new VersionHistory();
    for (const k of ['d', 'b', 'a', 'c']) h.add(k, 1, undefined, 0, 0);
    expect(h.nextKey(undefined, true, undefined, false)).toBe('a');
    expect(h.nextKey('b', true, undefined, false)).toBe('b');
    expect(h.nextKey('b', false, undefined, false)).toBe('c');
    expect(h.nextKey('c', false, 'd', false)).toBeUndefined();
    expect(h.nextKey(undefined, false, undefined, true)).toBe('d');
    expect(h.nextKey('c', false, undefined, true)).toBe('b');
    expect(h.nextKey('c', true, undefined, true)).toBe('c');
    expect(h.nextKey('b', false, 'b', true)).toBeUndefined();
  });

  it('drops from the oldest end in capture order, and prunes anywhere', () => {
    const h = new VersionHistory();
    h.add('a', 1, b('a0'), 0, 0);
    h.add('b', 2, b('b0'), 0, 0);
    h.add('a', 3, b('a1'), 1, 0);
    h.add('c', 4, b('c0'), 0, 0);
    expect(h.dropOldest((e) => e.validTo <= 2)).toBe(2);
    expect(h.size).toBe(2);
    expect(h.keyCount).toBe(2);
    expect(h.lookup('a', 0)?.value).toEqual(b('a1'));
    expect(h.nextKey(undefined, true, undefined, false)).toBe('a');
    expect(h.prune((e) => e.k !== 'a')).toBe(3);
    expect(h.size).toBe(1);
    expect(h.nextKey(undefined, true, undefined, false)).toBe('c');
    // The queue skips what the full prune removed.
    expect(h.dropOldest(() => true)).toBe(4);
    expect(h.size).toBe(0);
    expect(h.keyCount).toBe(0);
  });

  it('rewrites versions that came from a failed write', () => {
    const h = new VersionHistory();
    h.add('k', 10, b('base'), 0, 0); // the failed write at 10 replaced 'base'
    h.add('k', 11, b('lost'), 10, 0); // the write at 11 replaced the failed write's value
    h.failed('k', 10, () => ({ value: b('engine'), expiresAt: undefined }));
    expect(h.lookup('k', 10)?.value).toEqual(b('base'));
    const g = new VersionHistory();
    g.add('k', 11, b('lost'), 10, 0); // the failed write itself was not captured
    g.failed('k', 10, () => ({ value: b('engine'), expiresAt: 5_000 }));
    expect(g.lookup('k', 10)?.value).toEqual(b('engine'));
    // The value a failed write replaced comes back with its own expiry.
    expect(g.lookup('k', 10)?.expiresAt).toBe(5_000);
  });
});
