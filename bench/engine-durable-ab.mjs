// A/B of the cask engine alone across builds: durable puts from 64 writers straight into the
// engine (no write pipeline, no MVCC), for comparing two built trees (`npm run build` in each).
// It speaks both engine write APIs: `write(ts, ops)` (stamped, issue 12 and later) and the older
// `put(key, value)`, so a build from before the write pipeline can be compared with one after.
//
//   node bench/engine-durable-ab.mjs DIR [PUTS]     DIR: a checkout with dist/ built
//
// Issue 12 used it to find the cost of a spread copy per queued write (docs/benchmarks.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** WRITERS, KEYS, VALUE_BYTES: as bench/engine.ts's durable-writes workload. */
const WRITERS = 64;
const KEYS = 100_000;
const VALUE_BYTES = 100;
/** STRIDE: a prime, so the keys written are spread over the key space. */
const STRIDE = 7919;

const root = path.resolve(process.argv[2] ?? '.');
const puts = Number(process.argv[3] ?? 40_000);
const { openCask } = await import(path.join(root, 'dist/src/storage/cask/cask-engine.js'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-ab-'));
const engine = await openCask(dir, {});
const value = Buffer.alloc(VALUE_BYTES, 7);
const key = (i) => Buffer.from(`key-${String(i % KEYS).padStart(10, '0')}`);
let ts = engine.lastTs();
const putOne =
  typeof engine.write === 'function'
    ? (k) => {
        const t = ++ts;
        return engine.write(t, [{ type: 'put', key: k, value, create: t, version: 1 }]);
      }
    : (k) => engine.put(k, value);
let issued = 0;
const writer = async () => {
  while (issued < puts) {
    issued++;
    await putOne(key(issued * STRIDE));
  }
};
const started = performance.now();
await Promise.all(Array.from({ length: WRITERS }, writer));
const ms = performance.now() - started;
console.log(`${root}: ${Math.round((puts / ms) * 1000)} durable puts/s, ${engine.stats().fsyncs} fsyncs`);
await engine.close();
fs.rmSync(dir, { recursive: true, force: true });
