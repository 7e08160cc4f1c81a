// A/B of hot-key transactions across builds, in one process: CLIENTS concurrent serializable
// read-modify-write transactions on HOT_KEYS keys through the embedded API (conflicts and
// retries included), for comparing two built trees (`npm run build` in each). The Db API is the
// same on both sides of the write pipeline change, so any two builds compare.
//
//   node bench/txn-hot-ab.mjs DIR [COMMITS] [DURABILITY]     DIR: a checkout with dist/ built
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const CLIENTS = 16;
const HOT_KEYS = 10;
/** ATTEMPTS_MAX: retries a transaction may take before giving up (none gives up at this load). */
const ATTEMPTS_MAX = 1000;

const root = path.resolve(process.argv[2] ?? '.');
const commits = Number(process.argv[3] ?? 20_000);
const durability = process.argv[4] ?? 'never';
const { open } = await import(path.join(root, 'dist/src/index.js'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-hot-'));
const db = await open(dir, { durability });
for (let k = 0; k < HOT_KEYS; k++) await db.set(`hot${k}`, '0');
// A fixed linear congruential sequence: the same keys in the same order for every build.
let seed = 1;
const next = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed;
};
let done = 0;
let retries = 0;
const client = async () => {
  while (done < commits) {
    const k = `hot${next() % HOT_KEYS}`;
    let attempt = 0;
    await db.transaction(
      async (tx) => {
        if (attempt++ > 0) retries++;
        const v = Number((await tx.get(k))?.toString() ?? '0');
        tx.set(k, String(v + 1));
      },
      { isolation: 'serializable', maxAttempts: ATTEMPTS_MAX },
    );
    done++;
  }
};
const started = performance.now();
await Promise.all(Array.from({ length: CLIENTS }, client));
const ms = performance.now() - started;
console.log(`${root}: ${Math.round((done / ms) * 1000)} commits/s, ${retries} retries (${durability})`);
await db.close();
fs.rmSync(dir, { recursive: true, force: true });
