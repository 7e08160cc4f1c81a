// EngineFailureLatch: a store that failed in the background fails the member's Replica, at once
// or as soon as there is one; a write that failed and was repaired in place does not.
import { describe, expect, it } from 'vitest';
import { IoError } from '../storage/errors.js';
import { EngineFailureLatch } from './engine-failure.js';

function replica() {
  const failures: unknown[] = [];
  return { failures, engineFailed: (err: unknown) => failures.push(err) };
}

describe('EngineFailureLatch', () => {
  it('fails the Replica when the store fails, not when one write failed and was repaired', () => {
    const latch = new EngineFailureLatch();
    const r = replica();
    latch.attach(r);
    latch.observe({ type: 'write-failed', detail: { error: 'EIO', failed: false } });
    latch.observe({ type: 'compaction-failed', detail: { error: 'ENOSPC' } });
    expect(r.failures).toEqual([]);
    latch.observe({ type: 'write-failed', detail: { error: 'Error: EIO: fdatasync', failed: true } });
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toBeInstanceOf(IoError);
    expect(String(r.failures[0])).toContain('EIO: fdatasync');
  });

  it('holds a failure that comes before the Replica exists, and delivers it on attach', () => {
    const latch = new EngineFailureLatch();
    latch.observe({ type: 'write-failed', detail: { error: 'first', failed: true } });
    latch.observe({ type: 'write-failed', detail: { error: 'second', failed: true } });
    const r = replica();
    latch.attach(r);
    expect(r.failures).toHaveLength(1);
    expect(String(r.failures[0])).toContain('first');
  });
});
