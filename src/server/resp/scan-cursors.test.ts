import { describe, expect, it } from 'vitest';
import { ScanCursors } from './scan-cursors.js';

const b = (s: string) => Buffer.from(s);

describe('ScanCursors', () => {
  it("a long iteration holds two cursors, so it cannot evict another client's (entry 12)", () => {
    const cursors = new ScanCursors(4);
    const other = cursors.save(b('other-1'));
    // One iteration of 100 calls, each continuing from the cursor the previous call gave.
    let cursor = cursors.save(b('k0'));
    for (let i = 1; i < 100; i++) {
      const previous = cursor;
      cursor = cursors.save(b(`k${i}`), previous);
      // The call before may be retried: its cursor is still there.
      expect(cursors.get(previous)?.toString()).toBe(`k${i - 1}`);
    }
    expect(cursors.size).toBe(3);
    expect(cursors.get(other)?.toString()).toBe('other-1');
    expect(cursors.get(cursor)?.toString()).toBe('k99');
  });

  it('forgets the oldest cursor once full, and copies the keys it keeps', () => {
    const cursors = new ScanCursors(2);
    const key = b('a');
    const first = cursors.save(key);
    key.fill(0x7a);
    expect(cursors.get(first)?.toString()).toBe('a');
    cursors.save(b('b'));
    cursors.save(b('c'));
    expect(cursors.get(first)).toBeUndefined();
    expect(cursors.size).toBe(2);
  });
});
