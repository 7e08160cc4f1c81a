// CaskEngine.readStringInto, the GET path that hands a string to the reply without copying it
// first (issue 14): it must agree with getStoredSync on every key, cached or not, expired, of
// another type or absent, and hand over bytes only for the call.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openCaskPipelined } from '../../../test/support/pipelined-cask.js';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { ManualClock } from '../../io/manual-clock.js';
import { type BorrowedValueSink, READ_INTO } from '../engine.js';
import { ValueType } from '../value-type.js';

const b = (s: string) => Buffer.from(s);

/** Sink keeps a copy of what it is lent, and the view itself, to check it was only lent. */
class Sink implements BorrowedValueSink {
  copies: Buffer[] = [];
  bulkBorrowed(value: Buffer): void {
    this.copies.push(Buffer.from(value));
  }
}

describe('CaskEngine.readStringInto', () => {
  it('agrees with getStoredSync for strings, hashes, expired and absent keys, cached or not (property)', async () => {
    const clock = new ManualClock();
    for (const cacheBytes of [0, 4096]) {
      const db = await openCaskPipelined(tmpDir('read-into'), { clock, autoCompact: false, cacheBytes });
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              key: fc.constantFrom('a', 'b', 'c', 'd'),
              op: fc.constantFrom('put', 'hash', 'ttl', 'delete', 'tick'),
              size: fc.nat({ max: 600 }),
            }),
            { maxLength: 30 },
          ),
          async (ops) => {
            for (const { key, op, size } of ops) {
              if (op === 'put') await db.put(b(key), Buffer.alloc(size, key));
              else if (op === 'hash')
                await db.pipeline.put(b(key), Buffer.alloc(size + 1, 1), undefined, ValueType.HASH);
              else if (op === 'ttl')
                await db.pipeline.put(b(key), Buffer.alloc(size, 't'), clock.nowMs() + 10);
              else if (op === 'delete') await db.delete(b(key));
              else clock.advance(7);
              for (const k of ['a', 'b', 'c', 'd']) {
                const sink = new Sink();
                const stored = db.getStoredSync(b(k));
                const into = db.engine.readStringInto(b(k), sink);
                if (stored === undefined) {
                  expect(into).toBe(READ_INTO.ABSENT);
                  expect(sink.copies).toEqual([]);
                } else if ((stored.valueType ?? 0) !== 0) {
                  expect(into).toBe(READ_INTO.OTHER);
                  expect(sink.copies).toEqual([]);
                } else {
                  expect(into).toBe(READ_INTO.WRITTEN);
                  expect(sink.copies).toEqual([Buffer.from(stored.value)]);
                }
              }
            }
          },
        ),
        { numRuns: 60 },
      );
      await db.close();
    }
  });

  it('refuses a closed store and an oversized key as getStoredSync does', async () => {
    const db = await openCaskPipelined(tmpDir('read-into'), { autoCompact: false });
    const long = Buffer.alloc(70_000, 1);
    expect(() => db.engine.readStringInto(long, new Sink())).toThrow(/limit/);
    await db.close();
    expect(() => db.engine.readStringInto(b('a'), new Sink())).toThrow(/closed/);
  });
});
