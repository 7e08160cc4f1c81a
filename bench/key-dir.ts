// key-dir: the key directory's operations on their own, cold (each on a key at random among
// many, so every step of a search misses the CPU caches, as under a server's load). Times:
// inserts of new keys, sets and gets of present keys through the point index, and gets through
// the tree alone (the point index off: an open's first moments, scans' seeks, writes of new
// keys). Keys as redis-benchmark writes them ("key:" and 12 digits: long shared prefixes) and
// 16 random bytes. Not a test: compare two builds by running it from each, alternated.
//
//   npx tsx bench/key-dir.ts [--keys N] [--rounds R]
import { Prng } from '../src/stdx/prng.js';
import { KeyDir } from '../src/storage/cask/key-dir.js';

/** OPS_PER_ROUND: operations timed per row and round. */
const OPS_PER_ROUND = 200_000;

function parseArgs(argv: readonly string[]): { keys: number; rounds: number } {
  let keys = 1_000_000;
  let rounds = 3;
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--keys' && Number.isSafeInteger(value) && value > 0) keys = value;
    else if (argv[i] === '--rounds' && Number.isSafeInteger(value) && value > 0) rounds = value;
    else throw new Error(`usage: key-dir.ts [--keys N] [--rounds R] (at ${argv[i]})`);
    i++;
  }
  return { keys, rounds };
}

function redisKey(i: number): Buffer {
  return Buffer.from(`key:${String(i).padStart(12, '0')}`, 'latin1');
}

function randomKey(prng: Prng): Buffer {
  return Buffer.from(prng.bytes(16));
}

/** timeEach: µs per call of `fn` over `keys`. */
function timeEach(keys: readonly Buffer[], fn: (key: Buffer, i: number) => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < keys.length; i++) fn(keys[i] as Buffer, i);
  return Number(process.hrtime.bigint() - start) / 1000 / keys.length;
}

function measure(name: string, all: Buffer[], prng: Prng): Record<string, number> {
  const n = all.length;
  // The directory holds all but the last OPS_PER_ROUND keys; those are the inserts.
  const present = all.slice(0, n - OPS_PER_ROUND);
  const fresh = all.slice(n - OPS_PER_ROUND);
  const tree = new KeyDir();
  const sorted = [...present].sort(Buffer.compare);
  for (let i = 0; i < sorted.length; i++) tree.set(sorted[i] as Buffer, 1, i, 100, i + 1, i + 1, 1);
  const picks = Array.from({ length: OPS_PER_ROUND }, () => present[prng.int(present.length)] as Buffer);
  const row: Record<string, number> = {};
  row[`${name}: get, tree only`] = timeEach(picks, (k) => tree.get(k));
  while (!tree.buildPointIndex(1 << 20)) {}
  row[`${name}: get, point index`] = timeEach(picks, (k) => tree.get(k));
  row[`${name}: set of a present key`] = timeEach(picks, (k, i) => tree.set(k, 2, i, 100, n + i, 1, 2));
  row[`${name}: insert of a new key`] = timeEach(fresh, (k, i) => tree.set(k, 3, i, 100, 2 * n + i, 1, 1));
  return row;
}

function main(): void {
  const { keys, rounds } = parseArgs(process.argv.slice(2));
  const prng = new Prng(0x6b6579);
  const redis = Array.from({ length: keys + OPS_PER_ROUND }, (_, i) => redisKey(i));
  prng.shuffle(redis);
  const random = Array.from({ length: keys + OPS_PER_ROUND }, () => randomKey(prng));
  const results = new Map<string, number[]>();
  for (let r = 0; r < rounds; r++) {
    for (const [name, all] of [
      ['redis-style keys', redis],
      ['random 16-byte keys', random],
    ] as const) {
      for (const [row, us] of Object.entries(measure(name, all, prng))) {
        const list = results.get(row) ?? [];
        list.push(us);
        results.set(row, list);
      }
    }
  }
  console.log(`key directory, ${keys.toLocaleString('en-US')} keys, µs per operation (rounds: ${rounds}):`);
  for (const [row, list] of results)
    console.log(`  ${row.padEnd(44)} ${list.map((v) => v.toFixed(2)).join('  ')}`);
}

main();
