// A user's invalid option is an operating error (InvalidArgumentError naming the option), never an
// AssertionError (a programmer error), whichever way the cask engine is opened: db-options.test.ts
// covers Db.open, which validates before it reaches the engine; this covers the engine's own
// entry point (benchmarks, tools and tests open it directly), and that it agrees with the lmdb
// adapter on the options they share.
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { AssertionError } from '../../stdx/assert.js';
import { InvalidArgumentError } from '../errors.js';
import { openLmdb } from '../lmdb/lmdb-engine.js';
import { openCask } from './cask-engine.js';

async function refusal(open: () => Promise<unknown>): Promise<unknown> {
  return open().then(
    () => {
      throw new Error('the open was not refused');
    },
    (err: unknown) => err,
  );
}

/** SHARED: options of every engine, each value invalid. */
const SHARED: [string, unknown][] = [
  ['durability', 'Always'],
  ['syncIntervalMs', 0],
  ['syncIntervalMs', Number.NaN],
  ['fs', 5],
  ['clock', 'now'],
];

/** CASK_ONLY: the cask engine's own options, each value invalid (in type, range or integrality). */
const CASK_ONLY: [string, unknown][] = [
  ['dataFileBytes', 1],
  ['dataFileBytes', 4096.5],
  ['dataFileBytes', 2 ** 40],
  ['autoCompact', 'yes'],
  ['compactionDeadRatio', 0],
  ['compactionDeadRatio', Number.NaN],
  ['compactionMinDeadBytes', -1],
  ['compactionStepMs', -1],
  ['compactionStepMs', 0.5],
  ['compactionStepMs', 1001],
  ['syncOnEventLoop', 1],
  ['loop', 'fast'],
  ['loop', { now: () => 0 }],
  ['cacheBytes', -1],
  ['cacheBytes', 1.5],
  ['cacheBytes', Number.POSITIVE_INFINITY],
  ['onEvent', 'log'],
  ['debugChecks', 'on'],
  ['readOnly', 'yes'],
];

describe('invalid cask options', () => {
  it('are refused with InvalidArgumentError naming the option, not AssertionError, opening nothing', async () => {
    for (const [name, value] of [...SHARED, ...CASK_ONLY]) {
      const dir = tmpDir('cask-opt');
      const err = await refusal(() => openCask(dir, { [name]: value }));
      expect(err, `${name}: ${String(value)}`).toBeInstanceOf(InvalidArgumentError);
      expect(err).not.toBeInstanceOf(AssertionError);
      expect((err as Error).message).toContain(`option ${name} must be`);
      expect(fs.readdirSync(dir), name).toEqual([]);
    }
  });

  it('are refused as the lmdb adapter refuses the same option', async () => {
    for (const [name, value] of SHARED) {
      const cask = await refusal(() => openCask(tmpDir('cask-opt'), { [name]: value }));
      const lmdb = await refusal(() => openLmdb(tmpDir('lmdb-opt'), { [name]: value }));
      expect(lmdb, name).toBeInstanceOf(InvalidArgumentError);
      expect(cask, name).toBeInstanceOf(InvalidArgumentError);
      expect((cask as Error).message).toBe((lmdb as Error).message);
    }
  });
});
