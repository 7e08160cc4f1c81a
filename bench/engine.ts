// Engine benchmark: our cask engine against lmdb and classic-level (LevelDB), side by side in one
// run, through the same Engine interface and with the same data (16-byte keys, 100-byte values).
//
//   npm run bench                      1M keys
//   npm run bench -- --quick           100k keys
//   npm run bench -- --engines lmdb,classic-level --out /tmp/results.md
//   npm run bench -- --quick --reads-only --profile-reads /tmp/prof
//                                      fill random and random reads only, the reads profiled
//
// Every store is opened with durability 'always', so every engine does the same durable work:
// - fill seq / fill random: all keys, through batch() of FILL_BATCH_OPS operations, one batch at
//   a time, each batch durable (one fsync'd commit) before the next starts;
// - durable writes: CONCURRENT_WRITERS async loops each awaiting one put() at a time, so commits
//   can only be shared (group commit) between writers, never within one;
// - random reads: awaited get() of random existing keys, one at a time;
// - scan: one full scan() in key order;
// - open: the filled store opened in a fresh process (cask compacts before closing, so that hint
//   files exist); the same process measures memory per key (see memory-probe.ts).
// Results are printed as a table and appended to --out (default docs/bench-engine.md).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import { Prng } from '../src/stdx/prng.js';
import type { PipelinedEngine as Engine } from '../src/txn/pipelined-engine.js';
import type { BatchOp } from '../src/txn/write-pipeline.js';
import { ENGINE_NAMES, type EngineName, isEngineName, loadEngine, type OpenEngine } from './engines.js';
import type { ProbeResult } from './memory-probe.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
/** VALUE_POOL_SIZE: distinct values cycled through, so values are not all alike (nor compressible). */
const VALUE_POOL_SIZE = 1024;
const FILL_BATCH_OPS = 1000;
const CONCURRENT_WRITERS = 64;
const KEYS_FULL = 1_000_000;
const KEYS_QUICK = 100_000;
const DURABLE_WRITES_FULL = 100_000;
const DURABLE_WRITES_QUICK = 20_000;
/** SEED: the same keys, order and values for every engine and every run. */
const SEED = 0xca1e;
/** KEY_PREFIX: the first 8 key bytes; the last 8 are the key's index, big-endian, so index order is key order. */
const KEY_PREFIX = Buffer.from('cairnkey', 'latin1');
/**
 * Targets (docs/benchmarks.md; issue 14 raised two of issue 2's): ratios of cask to lmdb, memory
 * per key, open time at 1M keys (issue 14: < 1 s whatever the store's history;
 * bench/engine-startup.ts --startup measures the never-compacted case).
 */
const TARGET_DURABLE_WRITES_VS_LMDB = 1.5;
const TARGET_RANDOM_READS_VS_LMDB = 0.8;
const TARGET_KEYDIR_BYTES_PER_KEY = 100 + KEY_BYTES;
const TARGET_OPEN_MS_AT_1M = 1000;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_OUT = path.join(REPO_ROOT, 'docs', 'bench-engine.md');

interface Args {
  readonly quick: boolean;
  /** cacheBytes: the cask engine's value cache for this run (default: the engine's default, off). */
  readonly cacheBytes: number | undefined;
  readonly engines: readonly EngineName[];
  readonly out: string;
  /** readsOnly: fill random and random reads only (the other workloads read as n/a). */
  readonly readsOnly: boolean;
  /** profileReads: a directory for a CPU profile of each engine's read phase alone. */
  readonly profileReads: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let engines: EngineName[] = [...ENGINE_NAMES];
  let out = DEFAULT_OUT;
  let cacheBytes: number | undefined;
  let readsOnly = false;
  let profileReads: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--reads-only') readsOnly = true;
    else if (arg === '--profile-reads') {
      const value = argv[++i];
      if (value === undefined) throw new Error('--profile-reads needs a directory');
      profileReads = path.resolve(value);
    } else if (arg === '--cache-bytes') {
      cacheBytes = Number(argv[++i]);
      if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0)
        throw new Error('--cache-bytes needs a byte count');
    } else if (arg === '--engines' || arg === '--out') {
      const value = argv[++i];
      if (value === undefined) throw new Error(`${arg} needs a value`);
      if (arg === '--out') out = path.resolve(value);
      else {
        const names = value.split(',').map((s) => s.trim());
        const unknown = names.filter((n) => !isEngineName(n));
        if (unknown.length > 0)
          throw new Error(`unknown engine(s): ${unknown.join(', ')} (have ${ENGINE_NAMES.join(', ')})`);
        engines = names.filter(isEngineName);
      }
    } else throw new Error(`unknown argument: ${arg}`);
  }
  return { quick, engines, out, cacheBytes, readsOnly, profileReads };
}

function keyOf(index: number): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  KEY_PREFIX.copy(key, 0);
  key.writeBigUInt64BE(BigInt(index), 8);
  return key;
}

function valuePool(prng: Prng): Buffer[] {
  return Array.from({ length: VALUE_POOL_SIZE }, () => {
    const value = Buffer.allocUnsafe(VALUE_BYTES);
    for (let i = 0; i < VALUE_BYTES; i += 4) value.writeUInt32LE(prng.u32(), i);
    return value;
  });
}

function shuffled(n: number, prng: Prng): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = prng.int(i + 1);
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  return order;
}

/** Result of one engine: ops/s per workload, plus open and memory figures. */
interface EngineResult {
  readonly fillSeq: number;
  readonly fillRandom: number;
  readonly durableWrites: number;
  readonly randomReads: number;
  readonly scan: number;
  readonly compactMs: number | undefined;
  readonly probe: ProbeResult | Error;
  readonly diskBytes: number;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

async function fill(
  engine: Engine,
  order: (i: number) => number,
  n: number,
  values: Buffer[],
): Promise<void> {
  for (let base = 0; base < n; base += FILL_BATCH_OPS) {
    const ops: BatchOp[] = [];
    for (let i = base; i < Math.min(n, base + FILL_BATCH_OPS); i++) {
      const index = order(i);
      ops.push({ type: 'put', key: keyOf(index), value: values[index % VALUE_POOL_SIZE] as Buffer });
    }
    await engine.batch(ops);
  }
}

function tempStore(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `cairn-bench-${name}-`));
}

/** profiled runs `fn` under the inspector's CPU profiler when `dir` is set, writing DIR/NAME.cpuprofile. */
async function profiled<T>(dir: string | undefined, name: string, fn: () => Promise<T>): Promise<T> {
  if (dir === undefined) return fn();
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    const result = await fn();
    const { profile } = await session.post('Profiler.stop');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    return result;
  } finally {
    session.disconnect();
  }
}

async function benchEngine(
  name: EngineName,
  open: OpenEngine,
  n: number,
  writes: number,
  args: Args,
): Promise<EngineResult> {
  const { cacheBytes, readsOnly, profileReads } = args;
  const values = valuePool(new Prng(SEED));
  // Every engine is durable ('always'); the cache option only means something to cask.
  const engineOptions =
    name === 'cask' && cacheBytes !== undefined
      ? { durability: 'always' as const, cacheBytes }
      : { durability: 'always' as const };
  const log = (what: string): void => console.error(`  ${name}: ${what}`);

  // Fill sequential, in a store of its own that is thrown away afterwards.
  let fillSeq = Number.NaN;
  if (!readsOnly) {
    const seqDir = tempStore(name);
    try {
      const engine = await open(seqDir, engineOptions);
      const seconds = await timed(() => fill(engine, (i) => i, n, values));
      await engine.close();
      fillSeq = n / seconds;
      log(`fill seq ${fmt(fillSeq)} ops/s`);
    } finally {
      fs.rmSync(seqDir, { recursive: true, force: true });
    }
  }

  // Fill random; this store then serves the reads, scan, durable writes and the open probe.
  const dir = tempStore(name);
  try {
    const prng = new Prng(SEED + 1);
    const order = shuffled(n, prng);
    let engine = await open(dir, engineOptions);
    const fillRandom = n / (await timed(() => fill(engine, (i) => order[i] as number, n, values)));
    log(`fill random ${fmt(fillRandom)} ops/s`);

    const readPrng = new Prng(SEED + 2);
    let misses = 0;
    const randomReads =
      n /
      (await profiled(profileReads, `reads-${name}`, () =>
        timed(async () => {
          for (let i = 0; i < n; i++) {
            if ((await engine.get(keyOf(readPrng.int(n)))) === undefined) misses++;
          }
        }),
      ));
    if (misses > 0) throw new Error(`${name}: ${misses} random reads missed existing keys`);
    log(`random reads ${fmt(randomReads)} ops/s`);
    if (readsOnly) {
      await engine.close();
      const skipped = Number.NaN;
      return {
        fillSeq,
        fillRandom,
        durableWrites: skipped,
        randomReads,
        scan: skipped,
        compactMs: undefined,
        probe: new Error('--reads-only'),
        diskBytes: skipped,
      };
    }

    let scanned = 0;
    const scan =
      n /
      (await timed(async () => {
        for await (const _ of engine.scan()) scanned++;
      }));
    if (scanned !== n) throw new Error(`${name}: scan saw ${scanned} keys, expected ${n}`);
    log(`scan ${fmt(scan)} entries/s`);

    const writePrng = new Prng(SEED + 3);
    let issued = 0;
    const writer = async (): Promise<void> => {
      while (issued < writes) {
        issued++;
        const index = writePrng.int(n);
        await engine.put(keyOf(index), values[(index + issued) % VALUE_POOL_SIZE] as Buffer);
      }
    };
    const durableWrites =
      writes /
      (await timed(async () => {
        await Promise.all(Array.from({ length: CONCURRENT_WRITERS }, writer));
      }));
    log(`durable writes x${CONCURRENT_WRITERS} ${fmt(durableWrites)} ops/s`);

    // Cask writes hint files when it compacts; the open below should find them, as a restart would.
    let compactMs: number | undefined;
    if (name === 'cask') {
      compactMs = (await timed(() => engine.compact())) * 1000;
      log(`compact ${compactMs.toFixed(0)} ms`);
    }
    const diskBytes = engine.stats().diskBytes;
    await engine.close();

    const probe = await runProbe(name, dir);
    if (probe instanceof Error) log(`open probe failed: ${probe.message}`);
    else log(`open ${probe.openMs.toFixed(0)} ms, heap ${fmt(probe.heapBytes / n)} B/key`);
    // Reopen here too, as a check that the probe's process left the store closed and intact.
    engine = await open(dir, engineOptions);
    await engine.close();
    return { fillSeq, fillRandom, durableWrites, randomReads, scan, compactMs, probe, diskBytes };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function runProbe(name: EngineName, dir: string): Promise<ProbeResult | Error> {
  try {
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', path.join(REPO_ROOT, 'bench', 'memory-probe.ts'), name, dir],
      { cwd: REPO_ROOT },
    );
    const last = stdout.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as ProbeResult;
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}

interface Row {
  readonly workload: string;
  readonly unit: string;
  /** higherIsBetter: for the reader; ratios are always cask / other. */
  readonly values: ReadonlyMap<EngineName, number>;
}

function rowsOf(results: ReadonlyMap<EngineName, EngineResult>, n: number): Row[] {
  const pick = (f: (r: EngineResult) => number | undefined): Map<EngineName, number> => {
    const out = new Map<EngineName, number>();
    for (const [name, r] of results) {
      const v = f(r);
      if (v !== undefined) out.set(name, v);
    }
    return out;
  };
  const probe = (f: (p: ProbeResult) => number) => (r: EngineResult) =>
    r.probe instanceof Error ? undefined : f(r.probe);
  return [
    {
      workload: `fill seq (batch ${FILL_BATCH_OPS}, durable)`,
      unit: 'ops/s',
      values: pick((r) => r.fillSeq),
    },
    {
      workload: `fill random (batch ${FILL_BATCH_OPS}, durable)`,
      unit: 'ops/s',
      values: pick((r) => r.fillRandom),
    },
    {
      workload: `durable writes, ${CONCURRENT_WRITERS} writers`,
      unit: 'ops/s',
      values: pick((r) => r.durableWrites),
    },
    { workload: 'random reads', unit: 'ops/s', values: pick((r) => r.randomReads) },
    { workload: 'full scan', unit: 'entries/s', values: pick((r) => r.scan) },
    { workload: `open ${fmt(n)} keys`, unit: 'ms (lower better)', values: pick(probe((p) => p.openMs)) },
    {
      workload: 'memory: heap + external',
      unit: 'B/key (lower better)',
      values: pick(probe((p) => p.heapBytes / n)),
    },
    { workload: 'memory: RSS', unit: 'B/key (lower better)', values: pick(probe((p) => p.rssBytes / n)) },
    { workload: 'disk', unit: 'B/key (lower better)', values: pick((r) => r.diskBytes / n) },
    { workload: 'compact before close', unit: 'ms', values: pick((r) => r.compactMs) },
  ];
}

/**
 * lmdbBest is lmdb's better figure of its two durable configurations (src/storage/lmdb with
 * `overlappingSync: false`, and bench/lmdb-flushed-engine.ts with put + `flushed`), so that
 * every cask/lmdb ratio compares against lmdb at its best.
 */
function lmdbBest(values: ReadonlyMap<EngineName, number>, lowerIsBetter: boolean): number | undefined {
  const candidates = [values.get('lmdb'), values.get('lmdb-flushed')].filter(
    (v): v is number => v !== undefined,
  );
  if (candidates.length === 0) return undefined;
  return lowerIsBetter ? Math.min(...candidates) : Math.max(...candidates);
}

function ratio(row: Row, other: EngineName): string {
  const cask = row.values.get('cask');
  const them =
    other === 'lmdb' ? lmdbBest(row.values, row.unit.includes('lower better')) : row.values.get(other);
  if (
    cask === undefined ||
    them === undefined ||
    !Number.isFinite(cask) ||
    !Number.isFinite(them) ||
    them === 0
  )
    return '-';
  return `${(cask / them).toFixed(2)}x`;
}

interface TargetCheck {
  readonly target: string;
  readonly verdict: 'PASS' | 'MISS' | 'n/a';
  readonly detail: string;
}

function checkTargets(
  results: ReadonlyMap<EngineName, EngineResult>,
  n: number,
  quick: boolean,
): TargetCheck[] {
  const cask = results.get('cask');
  const vsLmdb = (label: string, f: (r: EngineResult) => number, min: number): TargetCheck => {
    const lmdbs = (['lmdb', 'lmdb-flushed'] as const).flatMap((e) => {
      const r = results.get(e);
      return r === undefined ? [] : [f(r)];
    });
    if (cask === undefined || lmdbs.length === 0) {
      return { target: label, verdict: 'n/a', detail: 'needs cask and lmdb' };
    }
    const r = f(cask) / Math.max(...lmdbs);
    return { target: label, verdict: r >= min ? 'PASS' : 'MISS', detail: `${r.toFixed(2)}x lmdb's best` };
  };
  const caskProbe = cask === undefined || cask.probe instanceof Error ? undefined : cask.probe;
  const checks: TargetCheck[] = [
    vsLmdb(
      `durable writes >= ${TARGET_DURABLE_WRITES_VS_LMDB.toFixed(1)}x lmdb`,
      (r) => r.durableWrites,
      TARGET_DURABLE_WRITES_VS_LMDB,
    ),
    vsLmdb(
      `random reads >= ${TARGET_RANDOM_READS_VS_LMDB.toFixed(1)}x lmdb`,
      (r) => r.randomReads,
      TARGET_RANDOM_READS_VS_LMDB,
    ),
  ];
  if (caskProbe === undefined) {
    checks.push({
      target: `cask memory <= ${TARGET_KEYDIR_BYTES_PER_KEY} B/key`,
      verdict: 'n/a',
      detail: 'no cask probe',
    });
    checks.push({
      target: `cask open 1M keys < ${TARGET_OPEN_MS_AT_1M} ms`,
      verdict: 'n/a',
      detail: 'no cask probe',
    });
  } else {
    const perKey = caskProbe.heapBytes / n;
    checks.push({
      target: `cask memory <= ${TARGET_KEYDIR_BYTES_PER_KEY} B/key`,
      verdict: perKey <= TARGET_KEYDIR_BYTES_PER_KEY ? 'PASS' : 'MISS',
      detail: `${perKey.toFixed(1)} B/key heap + external${caskProbe.gcExposed ? '' : ' (no --expose-gc)'}`,
    });
    checks.push({
      target: `cask open 1M keys < ${TARGET_OPEN_MS_AT_1M} ms`,
      verdict: quick || n < KEYS_FULL ? 'n/a' : caskProbe.openMs < TARGET_OPEN_MS_AT_1M ? 'PASS' : 'MISS',
      detail: `${caskProbe.openMs.toFixed(0)} ms at ${fmt(n)} keys${quick ? ' (quick mode: full run only)' : ''}`,
    });
  }
  return checks;
}

function markdown(
  args: Args,
  n: number,
  writes: number,
  rows: readonly Row[],
  engines: readonly EngineName[],
  checks: readonly TargetCheck[],
  skipped: readonly string[],
): string {
  const cpus = os.cpus();
  const lines = [
    `## ${new Date().toISOString()} ${args.quick ? '(quick)' : '(full)'}`,
    '',
    `- command: \`${['npm run bench --', ...process.argv.slice(2)].join(' ')}\``,
    `- machine: ${os.availableParallelism()} CPUs (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}`,
    `- node ${process.version}; data under ${os.tmpdir()}`,
    `- ${fmt(n)} keys of ${KEY_BYTES} B, values of ${VALUE_BYTES} B; ${fmt(writes)} durable writes from ` +
      `${CONCURRENT_WRITERS} writers; durability 'always' everywhere`,
    ...skipped.map((s) => `- skipped: ${s}`),
    '',
    `| workload | unit | ${engines.join(' | ')} | cask/best lmdb | cask/classic-level |`,
    `|---|---|${engines.map(() => '---:|').join('')}---:|---:|`,
    ...rows.map(
      (row) =>
        `| ${row.workload} | ${row.unit} | ${engines.map((e) => (row.values.has(e) ? fmt(row.values.get(e) as number) : '-')).join(' | ')} | ${ratio(row, 'lmdb')} | ${ratio(row, 'classic-level')} |`,
    ),
    '',
    '| target | result | detail |',
    '|---|---|---|',
    ...checks.map((c) => `| ${c.target} | ${c.verdict} | ${c.detail} |`),
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const n = args.quick ? KEYS_QUICK : KEYS_FULL;
  const writes = args.quick ? DURABLE_WRITES_QUICK : DURABLE_WRITES_FULL;
  const results = new Map<EngineName, EngineResult>();
  const skipped: string[] = [];
  for (const name of args.engines) {
    const open = await loadEngine(name);
    if (open instanceof Error) {
      const why = `${name} (failed to load: ${open.message.split('\n')[0]})`;
      console.error(`skipping ${why}`);
      skipped.push(why);
      continue;
    }
    console.error(`${name}: ${fmt(n)} keys`);
    try {
      results.set(name, await benchEngine(name, open, n, writes, args));
    } catch (err) {
      const why = `${name} (failed: ${err instanceof Error ? err.message : String(err)})`;
      console.error(`skipping ${why}`);
      skipped.push(why);
    }
  }
  const engines = [...results.keys()];
  const rows = rowsOf(results, n);
  const table = new Table({ head: ['workload', 'unit', ...engines, 'cask/best lmdb', 'cask/classic-level'] });
  for (const row of rows) {
    table.push([
      row.workload,
      row.unit,
      ...engines.map((e) => (row.values.has(e) ? fmt(row.values.get(e) as number) : '-')),
      ratio(row, 'lmdb'),
      ratio(row, 'classic-level'),
    ]);
  }
  console.log(table.toString());
  const checks = checkTargets(results, n, args.quick);
  for (const c of checks) console.log(`${c.verdict.padEnd(4)}  ${c.target}: ${c.detail}`);

  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.appendFileSync(args.out, `${markdown(args, n, writes, rows, engines, checks, skipped)}\n`);
  console.log(`results appended to ${path.relative(process.cwd(), args.out) || args.out}`);
}

await main();
