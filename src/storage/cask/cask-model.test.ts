// Property test: random sequences of put, delete, batch, scan, compaction and close/reopen,
// checked step by step against a plain Map. Small data files make rotation and compaction
// happen constantly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined, type PipelinedCask } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { compareBytes } from '../../stdx/bytes.js';
import type { BatchOp } from '../../txn/write-pipeline.js';

const keyArb = fc.stringMatching(/^[a-d]{0,3}$/).map((s) => Buffer.from(s));
const valueArb = fc.uint8Array({ maxLength: 300 }).map((v) => Buffer.from(v));
const opArb = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('put' as const), key: keyArb, value: valueArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key: keyArb }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('batch' as const),
      ops: fc.array(
        fc.oneof(
          fc.record({ type: fc.constant('put' as const), key: keyArb, value: valueArb }),
          fc.record({ type: fc.constant('delete' as const), key: keyArb }),
        ),
        { maxLength: 6 },
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('scan' as const),
      start: fc.option(keyArb, { nil: undefined }),
      end: fc.option(keyArb, { nil: undefined }),
      limit: fc.option(fc.nat(10), { nil: undefined }),
      reverse: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('compact' as const) }) },
);

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('cask engine against a Map model', () => {
  it('agrees on every step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: 80 }), async (ops) => {
        const dir = tmpDir('model');
        // A small value cache, so that hits, misses and evictions are checked against the model too.
        const options = {
          dataFileBytes: 4096,
          compactionMinDeadBytes: 2048,
          compactionDeadRatio: 0.3,
          cacheBytes: 4096,
        };
        let db: PipelinedCask = await openCaskPipelined(dir, options);
        const model = new Map<string, Buffer>();
        try {
          for (const step of ops) {
            switch (step.op) {
              case 'put':
                await db.put(step.key, step.value);
                model.set(hex(step.key), step.value);
                break;
              case 'delete':
                expect(await db.delete(step.key)).toBe(model.delete(hex(step.key)));
                break;
              case 'batch': {
                await db.batch(step.ops as BatchOp[]);
                for (const op of step.ops) {
                  if (op.type === 'put') model.set(hex(op.key), op.value);
                  else model.delete(hex(op.key));
                }
                break;
              }
              case 'scan': {
                const got: string[] = [];
                for await (const [k, v] of db.scan(step)) got.push(`${hex(k)}=${hex(v)}`);
                let want = [...model.entries()]
                  .map(([k, v]) => [Buffer.from(k, 'hex'), v] as const)
                  .filter(([k]) => step.start === undefined || compareBytes(k, step.start) >= 0)
                  .filter(([k]) => step.end === undefined || compareBytes(k, step.end) < 0)
                  .sort((a, b) => compareBytes(a[0], b[0]));
                if (step.reverse) want = want.reverse();
                if (step.limit !== undefined) want = want.slice(0, step.limit);
                expect(got).toEqual(want.map(([k, v]) => `${hex(k)}=${hex(v)}`));
                break;
              }
              case 'reopen':
                await db.close();
                db = await openCaskPipelined(dir, options);
                expect(db.engine.recovery.problems.filter((p) => p.kind !== 'retired-file')).toEqual([]);
                break;
              case 'compact':
                await db.compact();
                break;
            }
          }
          expect(db.stats().keys).toBe(model.size);
          for (const [k, v] of model) expect(await db.get(Buffer.from(k, 'hex'))).toEqual(v);
        } finally {
          await db.close();
        }
      }),
      { numRuns: 150 },
    );
  });
});
