// Db write paths through the write pipeline (the LatestView before issue 12): set, expire (read-modify-write) and delete of N keys,
// C calls in flight at a time, durability 'never' so that the JavaScript cost is what is
// measured, not the disk. For A/B runs of two builds (e.g. before and after a change to the
// write path), `--dist DIR` loads the built tree `DIR/dist/src/index.js` instead of src/.
//
//   npx tsx bench/db-writes.ts [--keys N] [--dist DIR]
//
// Issue 10 used it to price the copies of borrowed keys and values (docs/benchmarks.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { argValue, loadApi } from './build-under-test.js';

/** KEYS_DEFAULT, IN_FLIGHT, VALUE_BYTES: the workload. */
const KEYS_DEFAULT = 200_000;
const IN_FLIGHT = 100;
const VALUE_BYTES = 100;

const n = Number(argValue('--keys') ?? KEYS_DEFAULT);
const dist = argValue('--dist');
const api = await loadApi(dist);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-db-writes-'));
const db = await api.open(dir, { durability: 'never', autoCompact: false });
const value = Buffer.alloc(VALUE_BYTES, 7);
const keys = Array.from({ length: n }, (_, i) => Buffer.from(`key:${String(i).padStart(8, '0')}`));

async function phase(name: string, call: (key: Buffer) => Promise<unknown>): Promise<string> {
  const started = performance.now();
  for (let i = 0; i < n; i += IN_FLIGHT) {
    const calls: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(n, i + IN_FLIGHT); j++) calls.push(call(keys[j]!));
    await Promise.all(calls);
  }
  return `${name} ${Math.round((n / (performance.now() - started)) * 1000)} ops/s`;
}

try {
  const results = [
    await phase('set', (k) => db.set(k, value)),
    await phase('expire', (k) => db.expire(k, { ttlMs: 10_000_000 })),
    await phase('delete', (k) => db.delete(k)),
  ];
  console.log(`${dist ?? 'src'}: ${results.join(', ')} (${n} keys)`);
} finally {
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
