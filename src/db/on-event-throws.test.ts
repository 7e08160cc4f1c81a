// An onEvent listener that throws (a logger with a bug) must not change what the store does.
// Found from outside: a listener that threw made open() fail at the 'recovered' event, failed
// every compaction (at 'compaction-start': the store never reclaimed space, retrying for ever in
// the background), and, after a write that failed and was undone, turned the undone failure into
// StoreFailedError (the throw landed in the undo's catch), refusing every write until reopen.
// The listener's error is reported as a process warning instead.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem } from '../io/faulty-file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { CaskEvent } from '../storage/cask/cask-options.js';
import { IoError } from '../storage/errors.js';
import { open } from './db.js';

describe('an onEvent listener that throws', () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    warnings.push(w.message);
  };
  beforeEach(() => {
    warnings.length = 0;
    process.on('warning', onWarning);
  });
  afterEach(() => {
    process.off('warning', onWarning);
  });

  const throwing = (seen: string[]) => (event: CaskEvent) => {
    seen.push(event.type);
    throw new Error(`listener bug at ${event.type}`);
  };

  it('does not fail open, compaction or the writes after an undone failed write', async () => {
    const dir = tmpDir('on-event-throws');
    const fs = new FaultyFileSystem(nodeFileSystem);
    const seen: string[] = [];
    const db = await open(dir, {
      fs,
      onEvent: throwing(seen),
      dataFileBytes: 4096,
      autoCompact: false,
    });
    try {
      expect(seen).toContain('recovered');
      for (let i = 0; i < 100; i++) await db.set(`k${i % 10}`, 'x'.repeat(200));
      await db.compact();
      expect(seen).toContain('compaction-start');
      expect(seen).toContain('compaction-done');
      expect(db.stats().compactions).toBe(1);

      fs.inject({ op: 'write', code: 'ENOSPC', path: /\.data$/ });
      const failed = await db.set('lost', 'v').catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(IoError);
      expect(seen).toContain('write-failed');
      // The failure was undone: the store takes writes again.
      await db.set('after', 'v');
      expect((await db.get('after'))?.toString()).toBe('v');
      expect(await db.get('lost')).toBeUndefined();
    } finally {
      await db.close();
    }
    // Each throw was reported, naming the event.
    await new Promise((resolve) => setImmediate(resolve));
    expect(
      warnings.some((w) => /onEvent listener threw .*'recovered'.*listener bug at recovered/.test(w)),
    ).toBe(true);
    const again = await open(dir);
    expect(again.stats().keys).toBe(11);
    await again.close();
  });
});
