// Child process of the crash test: writes as fast as it can in `always` durability and prints
// one line per acknowledged write, until its parent SIGKILLs it.
//
//   node --import tsx test/crash/crash-writer.ts DIR CYCLE
//
// Lines: `ack put KEY VALUE`, `ack batch ID` (its members are ID-0..ID-3 with value ID),
// `ack hot KEY N` (the hot key's value is now N; overwrites make compaction run),
// `ack ttl KEY VALUE` (a put with expiresAt FAR_EXPIRES_AT; every other hot write has it too).
import { openCask } from '../../src/storage/cask/cask-engine.js';
import { pipelined } from '../../src/txn/pipelined-engine.js';

const [dir, cycle] = process.argv.slice(2);
if (dir === undefined || cycle === undefined) throw new Error('usage: crash-writer DIR CYCLE');
const WRITERS = 8;
const cycleTag = cycle.padStart(6, '0');
const b = (s: string) => Buffer.from(s);
/** FAR_EXPIRES_AT: an expiry that never passes during the test (the parent checks it too). */
const FAR_EXPIRES_AT = Date.UTC(2100, 0, 1);

// Behind a write pipeline, as the Db runs it: the pipeline stamps each write.
const db = pipelined(
  await openCask(dir, {
    dataFileBytes: 64 * 1024,
    compactionMinDeadBytes: 32 * 1024,
    compactionDeadRatio: 0.3,
  }),
);
process.stdout.write('ready\n');

async function writer(w: number): Promise<void> {
  for (let i = 0; ; i++) {
    const id = `c${cycle}-w${w}-${i}`;
    if (i % 5 === 0) {
      await db.batch(
        Array.from({ length: 4 }, (_, j) => ({ type: 'put' as const, key: b(`${id}-${j}`), value: b(id) })),
      );
      process.stdout.write(`ack batch ${id}\n`);
    } else if (i % 2 === 0) {
      const key = `hot-w${w}-${i % 10}`;
      const n = `${cycleTag}:${String(i).padStart(9, '0')}`;
      // Every other hot write carries an expiry, so compaction copies records with and without.
      await db.put(b(key), b(n), i % 4 === 0 ? { expiresAt: FAR_EXPIRES_AT } : undefined);
      process.stdout.write(`ack hot ${key} ${n}\n`);
    } else if (i % 4 === 1) {
      await db.put(b(id), b(`value-${id}`), { expiresAt: FAR_EXPIRES_AT });
      process.stdout.write(`ack ttl ${id} value-${id}\n`);
    } else {
      await db.put(b(id), b(`value-${id}`.padEnd(100, '~')));
      process.stdout.write(`ack put ${id} value-${id}\n`);
    }
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
