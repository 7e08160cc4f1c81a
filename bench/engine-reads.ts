// engine-reads: random reads of two or more engines, interleaved, for a ratio that survives a
// shared machine. bench/engine.ts measures each engine's reads in its own stretch of time, so a
// neighbour's burst lands on one engine only (the same build measured 0.2x to 0.9x lmdb within
// ten minutes on 2026-12-05); here every engine's store is filled first (as engine.ts's fill
// random: 16-byte keys, 100-byte values, batches of 1000, durability 'always'), then the reads
// alternate between the engines in slices of SLICE_READS, each engine's slices timed and summed,
// so every engine sees the same neighbours.
//
//   npx tsx bench/engine-reads.ts [--keys N] [--reads R] [--engines cask,lmdb-flushed]
//                                 [--cache-bytes B]     (cask's value cache; default: the engine's)
//
// Each read is an awaited get() of a random existing key, as in engine.ts.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Prng } from '../src/stdx/prng.js';
import type { PipelinedEngine } from '../src/txn/pipelined-engine.js';
import { type EngineName, isEngineName, loadEngine } from './engines.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
const FILL_BATCH_OPS = 1000;
/** SLICE_READS: reads of one engine before the next engine's turn. */
const SLICE_READS = 5_000;
const KEY_PREFIX = Buffer.from('cairnkey', 'latin1');
const SEED = 0xca1e;

function keyOf(index: number): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  KEY_PREFIX.copy(key, 0);
  key.writeBigUInt64BE(BigInt(index), 8);
  return key;
}

interface Args {
  readonly keys: number;
  readonly reads: number;
  readonly engines: readonly EngineName[];
  readonly cacheBytes: number | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  let keys = 100_000;
  let reads: number | undefined;
  let engines: EngineName[] = ['cask', 'lmdb-flushed'];
  let cacheBytes: number | undefined;
  for (let i = 0; i < argv.length; i += 2) {
    const [arg, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${arg} needs a value`);
    if (arg === '--keys' || arg === '--reads' || arg === '--cache-bytes') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${arg} needs a count`);
      if (arg === '--keys') keys = n;
      else if (arg === '--reads') reads = n;
      else cacheBytes = n;
    } else if (arg === '--engines') {
      const names = value.split(',');
      const unknown = names.filter((n) => !isEngineName(n));
      if (unknown.length > 0) throw new Error(`unknown engine(s): ${unknown.join(', ')}`);
      engines = names.filter(isEngineName);
    } else throw new Error(`unknown argument: ${arg}`);
  }
  return { keys, reads: reads ?? keys, engines, cacheBytes };
}

async function fill(engine: PipelinedEngine, n: number): Promise<void> {
  const prng = new Prng(SEED);
  const values = Array.from({ length: 1024 }, () => {
    const value = Buffer.allocUnsafe(VALUE_BYTES);
    for (let i = 0; i < VALUE_BYTES; i += 4) value.writeUInt32LE(prng.u32(), i);
    return value;
  });
  const order = Array.from({ length: n }, (_, i) => i);
  prng.shuffle(order);
  for (let base = 0; base < n; base += FILL_BATCH_OPS) {
    await engine.batch(
      order.slice(base, base + FILL_BATCH_OPS).map((i) => ({
        type: 'put' as const,
        key: keyOf(i),
        value: values[i % values.length] as Buffer,
      })),
    );
  }
}

async function main(): Promise<void> {
  const { keys: n, reads, engines, cacheBytes } = parseArgs(process.argv.slice(2));
  const opened: { name: EngineName; engine: PipelinedEngine; dir: string; ms: number }[] = [];
  try {
    for (const name of engines) {
      const open = await loadEngine(name);
      if (open instanceof Error) throw open;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairn-reads-${name}-`));
      // The cache option means something to cask only (an object, so no excess-property check).
      const options =
        name === 'cask' && cacheBytes !== undefined
          ? { durability: 'always' as const, cacheBytes }
          : { durability: 'always' as const };
      const engine = await open(dir, options);
      opened.push({ name, engine, dir, ms: 0 });
      await fill(engine, n);
      // cask builds its point index in the background after an open; a filled store has it.
      await (engine.engine as { pointIndexBuilt?: () => Promise<void> }).pointIndexBuilt?.();
      console.error(`${name}: filled ${n} keys`);
    }
    const picks = new Prng(SEED + 2);
    const sequence = Uint32Array.from({ length: reads }, () => picks.int(n));
    for (let from = 0; from < reads; from += SLICE_READS) {
      const to = Math.min(reads, from + SLICE_READS);
      // Alternate which engine goes first, so neither always follows the other's slice.
      const order = (from / SLICE_READS) % 2 === 0 ? opened : [...opened].reverse();
      for (const e of order) {
        const started = performance.now();
        for (let i = from; i < to; i++) {
          if ((await e.engine.get(keyOf(sequence[i] as number))) === undefined)
            throw new Error(`${e.name}: a read missed an existing key`);
        }
        e.ms += performance.now() - started;
      }
    }
    const base = opened.find((e) => e.name !== 'cask') ?? opened[0];
    for (const e of opened) {
      const rate = reads / (e.ms / 1000);
      const ratio = base === undefined ? 1 : base.ms / e.ms;
      console.log(
        `${e.name.padEnd(14)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} reads/s  ${((e.ms * 1000) / reads).toFixed(2)} µs/read  ${ratio.toFixed(2)}x ${base?.name}`,
      );
    }
  } finally {
    for (const e of opened) {
      await e.engine.close();
      fs.rmSync(e.dir, { recursive: true, force: true });
    }
  }
}

await main();
