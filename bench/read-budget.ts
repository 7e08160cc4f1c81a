// read-budget: where one random read of the cask engine spends its time, piece by piece. It
// fills a store as bench/engine.ts does (16-byte keys, 100-byte values, random order), then times
// each step of a read alone over the same random keys, and the whole read, synchronous and
// awaited. The pieces run in isolation, so their sum is below the whole: alone, each keeps its
// own data in the CPU caches, which the whole read's steps evict from one another.
//
//   npx tsx bench/read-budget.ts [--keys N] [--rounds R]
//
// docs/benchmarks.md, "Issue 14: random reads", records its output.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { hash32 } from '../src/stdx/hash32.js';
import { Prng } from '../src/stdx/prng.js';
import { type CaskEngine, openCask } from '../src/storage/cask/cask-engine.js';
import { decodeRecord } from '../src/storage/cask/record.js';
import { pipelined } from '../src/txn/pipelined-engine.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
const FILL_BATCH_OPS = 1000;
const KEY_PREFIX = Buffer.from('cairnkey', 'latin1');
/** RECORD_BYTES: a 16-byte key's record with a 100-byte value and a revision (docs/format.md). */
const RECORD_BYTES = 21 + 12 + KEY_BYTES + VALUE_BYTES;

function keyOf(index: number): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  KEY_PREFIX.copy(key, 0);
  key.writeBigUInt64BE(BigInt(index), 8);
  return key;
}

function parseArgs(argv: readonly string[]): { keys: number; rounds: number } {
  let keys = 100_000;
  let rounds = 3;
  for (let i = 0; i < argv.length; i++) {
    const value = Number(argv[i + 1]);
    if (argv[i] === '--keys' && Number.isSafeInteger(value) && value > 0) keys = value;
    else if (argv[i] === '--rounds' && Number.isSafeInteger(value) && value > 0) rounds = value;
    else throw new Error(`usage: read-budget.ts [--keys N] [--rounds R] (at ${argv[i]})`);
    i++;
  }
  return { keys, rounds };
}

async function main(): Promise<void> {
  const { keys: n, rounds } = parseArgs(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-read-budget-'));
  const db = pipelined(await openCask(dir, { durability: 'always' }));
  try {
    const prng = new Prng(0xca1e);
    const value = Buffer.alloc(VALUE_BYTES, 7);
    const order = Array.from({ length: n }, (_, i) => i);
    prng.shuffle(order);
    for (let base = 0; base < n; base += FILL_BATCH_OPS) {
      const ops = order
        .slice(base, base + FILL_BATCH_OPS)
        .map((i) => ({ type: 'put' as const, key: keyOf(i), value }));
      await db.batch(ops);
    }
    const engine = db.engine as CaskEngine;
    await engine.pointIndexBuilt();
    const store = engine.store;
    const reads = Array.from({ length: n }, () => prng.int(n));
    const keys = reads.map(keyOf);
    const locs = keys.map((k) => {
      const loc = store.keyDir.get(k);
      if (loc === undefined) throw new Error('a filled key is missing');
      return loc;
    });
    const starts = locs.map((l) => l.valueOffset - KEY_BYTES - (RECORD_BYTES - KEY_BYTES - VALUE_BYTES));
    const file = store.files.get(locs[0]?.fileId ?? 1).file;
    const index = store.keyDir.pointIndex;
    if (index === undefined) throw new Error('no point index');
    const scratch = Buffer.alloc(RECORD_BYTES);
    let sink = 0;
    const pieces: [string, () => void | Promise<void>][] = [
      [
        'key encode (bench keyOf)',
        () => {
          for (let i = 0; i < n; i++) sink += keyOf(reads[i] as number).length;
        },
      ],
      [
        'hash32 of the key',
        () => {
          for (let i = 0; i < n; i++) sink += hash32(keys[i] as Buffer);
        },
      ],
      [
        'point index probe (hash + first)',
        () => {
          for (let i = 0; i < n; i++) sink += index.first(hash32(keys[i] as Buffer));
        },
      ],
      [
        'B+tree descent (keyDir.get)',
        () => {
          for (let i = 0; i < n; i++) sink += store.keyDir.get(keys[i] as Buffer)?.valueLen ?? 0;
        },
      ],
      [
        'Buffer.allocUnsafe(record)',
        () => {
          for (let i = 0; i < n; i++) sink += Buffer.allocUnsafe(RECORD_BYTES).length;
        },
      ],
      [
        'pread of the record (reused buffer)',
        () => {
          for (let i = 0; i < n; i++) sink += file.readSync(scratch, 0, RECORD_BYTES, starts[i] as number);
        },
      ],
      [
        'pread of the record (fresh buffer each)',
        () => {
          for (let i = 0; i < n; i++)
            sink += file.readSync(Buffer.allocUnsafe(RECORD_BYTES), 0, RECORD_BYTES, starts[i] as number);
        },
      ],
      [
        'pread (reused buffer) + value copied out',
        () => {
          for (let i = 0; i < n; i++) {
            file.readSync(scratch, 0, RECORD_BYTES, starts[i] as number);
            const out = Buffer.allocUnsafe(VALUE_BYTES);
            scratch.copy(out, 0, RECORD_BYTES - VALUE_BYTES, RECORD_BYTES);
            sink += out.length;
          }
        },
      ],
      [
        'pread (reused buffer) + Buffer.copyBytesFrom',
        () => {
          for (let i = 0; i < n; i++) {
            file.readSync(scratch, 0, RECORD_BYTES, starts[i] as number);
            sink += Buffer.copyBytesFrom(scratch, RECORD_BYTES - VALUE_BYTES, VALUE_BYTES).length;
          }
        },
      ],
      [
        'decode + CRC of the record',
        () => {
          file.readSync(scratch, 0, RECORD_BYTES, starts[0] as number);
          for (let i = 0; i < n; i++) {
            const rec = decodeRecord(scratch, 0, RECORD_BYTES);
            sink += typeof rec === 'object' ? rec.valueLen : 0;
          }
        },
      ],
      [
        'getSync, whole (point index)',
        () => {
          for (let i = 0; i < n; i++) sink += engine.getSync(keys[i] as Buffer)?.length ?? 0;
        },
      ],
      [
        'await get, whole (point index)',
        async () => {
          for (let i = 0; i < n; i++) sink += (await db.get(keys[i] as Buffer))?.length ?? 0;
        },
      ],
      [
        'readValue via the B+tree, whole',
        () => {
          for (let i = 0; i < n; i++) {
            const k = keys[i] as Buffer;
            const loc = store.keyDir.get(k);
            if (loc !== undefined) sink += store.readValue(k, loc, false).length;
          }
        },
      ],
    ];
    const best = new Map<string, number>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, run] of pieces) {
        const started = performance.now();
        await run();
        const us = ((performance.now() - started) * 1000) / n;
        best.set(name, Math.min(best.get(name) ?? Number.POSITIVE_INFINITY, us));
      }
    }
    console.log(`${n} keys, best of ${rounds} rounds, µs per read (sink ${sink % 10})`);
    for (const [name, us] of best) console.log(`${us.toFixed(2).padStart(7)}  ${name}`);
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
