// Start-up and space benchmark of the cask engine (issue 14). Not a test: it prints numbers and
// the targets they are held to.
//
//   npx tsx bench/engine-startup.ts --startup [--keys N] [--data-file-bytes B]
//                                                           open time of a never-compacted store
//   npx tsx bench/engine-startup.ts --space [--keys N]       disk use and write amplification
//       [--dead-ratio R --min-dead-bytes B --data-file-bytes B]  compaction options to try
//
// --startup: a child process writes N keys (default 1M: 16-byte keys, 100-byte values, random
// order) from WRITERS concurrent writers, each awaiting one put at a time (durability 'always',
// compaction off, as a store that never compacted), then either closes the store ("clean") or
// kills itself with SIGKILL before closing ("crash"), or overwrites random keys until the active
// file is nearly full and then dies ("crash-full": the most records an open must scan). Each
// measurement opens a fresh copy of that directory in a fresh process and times openCask alone;
// best of OPEN_ROUNDS. Target: < 1 s at 1M.
//
// --space: N keys (default 200k) are written once, then rewritten REWRITES times, every pass in a
// new random order from WRITERS writers, default options (compaction as configured). Reported:
// the directory's size after each pass, its maximum, and at the end (after close) as a ratio to
// the live key + value bytes (target <= 2.0x), and the write amplification: bytes the process
// passed to write calls (/proc/self/io wchar) over the bytes of keys and values written.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Prng } from '../src/stdx/prng.js';
import { openCask } from '../src/storage/cask/cask-engine.js';
import { DEFAULT_DATA_FILE_BYTES } from '../src/storage/cask/cask-options.js';
import { pipelined } from '../src/txn/pipelined-engine.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
const VALUE_POOL_SIZE = 1024;
const WRITERS = 64;
const STARTUP_KEYS = 1_000_000;
const SPACE_KEYS = 200_000;
const REWRITES = 10;
const OPEN_ROUNDS = 3;
const SEED = 0x5eed;
const KEY_PREFIX = Buffer.from('cairnkey', 'latin1');
/** Targets of issue 14. */
const TARGET_OPEN_MS = 1000;
/** FULL_ACTIVE_SHARE: how full the "crash-full" history leaves the active file. */
const FULL_ACTIVE_SHARE = 0.97;
const TARGET_SPACE_RATIO = 2.0;

const SELF = fileURLToPath(import.meta.url);
const REPO_ROOT = path.resolve(path.dirname(SELF), '..');

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

type Store = ReturnType<typeof pipelined>;

/** writeAll puts every key once, in a random order, from WRITERS writers awaiting one put each. */
async function writeAll(store: Store, n: number, prng: Prng, values: Buffer[], pass: number): Promise<void> {
  const order = shuffled(n, prng);
  let next = 0;
  const writer = async (): Promise<void> => {
    while (next < n) {
      const index = order[next++] as number;
      await store.put(keyOf(index), values[(index + pass) % VALUE_POOL_SIZE] as Buffer);
    }
  };
  await Promise.all(Array.from({ length: WRITERS }, writer));
}

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

/** wchar: bytes this process has passed to write system calls so far (Linux). */
function wchar(): number {
  const io = fs.readFileSync('/proc/self/io', 'latin1');
  const m = /wchar: (\d+)/.exec(io);
  if (m === null) throw new Error('no wchar in /proc/self/io');
  return Number(m[1]);
}

// ---- child modes ----

/**
 * build: write `n` keys into `dir`, then close ("clean") or die by SIGKILL ("crash"); or
 * ("crash-full") overwrite random keys until the active file is FULL_ACTIVE_SHARE full, then die:
 * the worst case of a crash open, the most records without a hint file.
 */
async function build(
  dir: string,
  n: number,
  history: string,
  dataFileBytes: number | undefined,
): Promise<void> {
  const engine = await openCask(dir, { durability: 'always', autoCompact: false, dataFileBytes });
  const store = pipelined(engine);
  const values = valuePool(new Prng(SEED + 1));
  const prng = new Prng(SEED);
  await writeAll(store, n, prng, values, 0);
  if (history === 'crash-full') {
    const full = FULL_ACTIVE_SHARE * (dataFileBytes ?? DEFAULT_DATA_FILE_BYTES);
    const writer = async (): Promise<void> => {
      while (engine.store.active.size < full) {
        const index = prng.int(n);
        await store.put(keyOf(index), values[(index + 1) % VALUE_POOL_SIZE] as Buffer);
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, writer));
  }
  if (history !== 'clean') process.kill(process.pid, 'SIGKILL');
  await store.close();
}

/** open: time openCask of `dir` and print the result as one JSON line. */
async function openOnce(dir: string): Promise<void> {
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const engine = await openCask(dir, { durability: 'always', autoCompact: false });
  const openMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  // CPU time too: on a loaded machine (shared cores) wall time mostly measures the neighbours.
  const cpuMs = (cpu.user + cpu.system) / 1000;
  const report = engine.recovery;
  const keys = engine.keyDir.size;
  await engine.close();
  process.stdout.write(
    `${JSON.stringify({ openMs, cpuMs, keys, dataFiles: report.dataFiles, hintFilesUsed: report.hintFilesUsed, problems: report.problems.length })}\n`,
  );
}

// ---- scenarios ----

function tsxArgs(...args: string[]): string[] {
  return ['--import', 'tsx', SELF, ...args];
}

async function runChild(args: string[], mayBeKilled: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...(process.env.STARTUP_NODE_FLAGS?.split(' ') ?? []).filter(Boolean), ...tsxArgs(...args)],
      {
        cwd: REPO_ROOT,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.on('exit', (code, signal) => {
      if (code === 0 || (mayBeKilled && signal === 'SIGKILL')) resolve(out);
      else reject(new Error(`child ${args.join(' ')} exited with ${code ?? signal}`));
    });
  });
}

interface OpenResult {
  readonly openMs: number;
  readonly cpuMs: number;
  readonly keys: number;
  readonly dataFiles: number;
  readonly hintFilesUsed: number;
  readonly problems: number;
}

async function startup(n: number, dataFileBytes: number | undefined): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-startup-'));
  try {
    for (const history of ['clean', 'crash', 'crash-full']) {
      const dir = path.join(root, history);
      const started = performance.now();
      await runChild(['build', dir, String(n), history, String(dataFileBytes ?? '')], history !== 'clean');
      console.error(
        `  ${history}: built ${n} keys in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      );
      const results: OpenResult[] = [];
      for (let round = 0; round < OPEN_ROUNDS; round++) {
        const copy = path.join(root, `${history}-copy`);
        fs.rmSync(copy, { recursive: true, force: true });
        fs.cpSync(dir, copy, { recursive: true });
        // The copy is in the page cache, as a restarted process's store usually is.
        const out = await runChild(['open', copy], false);
        results.push(JSON.parse(out.trim().split('\n').at(-1) ?? '') as OpenResult);
      }
      const best = results.reduce((a, b) => (b.openMs < a.openMs ? b : a));
      if (best.keys !== n) throw new Error(`${history}: opened ${best.keys} keys, wrote ${n}`);
      const verdict = n < STARTUP_KEYS ? 'n/a' : best.openMs < TARGET_OPEN_MS ? 'PASS' : 'MISS';
      console.log(
        `startup ${history}: open ${n} keys best ${best.openMs.toFixed(0)} ms of ${results.map((r) => r.openMs.toFixed(0)).join(', ')} ` +
          `(CPU ${Math.min(...results.map((r) => r.cpuMs)).toFixed(0)} ms) ` +
          `(${best.dataFiles} data files, ${best.hintFilesUsed} through hints, ${best.problems} problems); ` +
          `target < ${TARGET_OPEN_MS} ms at ${STARTUP_KEYS}: ${verdict}`,
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** SpaceOptions: compaction options to try in the space scenario (default: the engine's defaults). */
interface SpaceOptions {
  compactionDeadRatio?: number;
  compactionMinDeadBytes?: number;
  dataFileBytes?: number;
}

async function space(n: number, tried: SpaceOptions): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-space-'));
  try {
    const live = n * (KEY_BYTES + VALUE_BYTES);
    const values = valuePool(new Prng(SEED + 1));
    const prng = new Prng(SEED);
    const writtenBefore = wchar();
    const engine = await openCask(dir, { durability: 'always', ...tried });
    const store = pipelined(engine);
    let maxBytes = 0;
    const sizes: string[] = [];
    const started = performance.now();
    for (let pass = 0; pass <= REWRITES; pass++) {
      await writeAll(store, n, prng, values, pass);
      const bytes = dirBytes(dir);
      maxBytes = Math.max(maxBytes, bytes);
      sizes.push((bytes / live).toFixed(2));
    }
    const seconds = (performance.now() - started) / 1000;
    const compactions = engine.stats().compactions;
    await store.close();
    const endBytes = dirBytes(dir);
    const written = wchar() - writtenBefore;
    const user = (REWRITES + 1) * live;
    const ratio = endBytes / live;
    console.log(
      `space${Object.keys(tried).length > 0 ? ` ${JSON.stringify(tried)}` : ''}: ${n} keys x ${VALUE_BYTES} B, written ${REWRITES + 1} times by ${WRITERS} writers in ${seconds.toFixed(1)} s ` +
        `(${fmt(((REWRITES + 1) * n) / seconds)} puts/s, ${compactions} compactions)`,
    );
    console.log(`  directory / live key+value bytes after each pass: ${sizes.join(' ')}`);
    console.log(
      `  end (after close) ${ratio.toFixed(2)}x, max ${(maxBytes / live).toFixed(2)}x; ` +
        `write amplification ${(written / user).toFixed(2)} (${fmt(written)} B written for ${fmt(user)} B of keys and values); ` +
        `target <= ${TARGET_SPACE_RATIO.toFixed(1)}x: ${ratio <= TARGET_SPACE_RATIO ? 'PASS' : 'MISS'}`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(x: number): string {
  return Math.round(x).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const mode = argv[0];
  if (mode === 'build')
    return build(
      argv[1] as string,
      Number(argv[2]),
      argv[3] as string,
      argv[4] ? Number(argv[4]) : undefined,
    );
  if (mode === 'open') return openOnce(argv[1] as string);
  let keys: number | undefined;
  const scenarios: string[] = [];
  const tried: SpaceOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--keys') keys = Number(argv[++i]);
    else if (arg === '--dead-ratio') tried.compactionDeadRatio = Number(argv[++i]);
    else if (arg === '--min-dead-bytes') tried.compactionMinDeadBytes = Number(argv[++i]);
    else if (arg === '--data-file-bytes') tried.dataFileBytes = Number(argv[++i]);
    else if (arg === '--startup' || arg === '--space') scenarios.push(arg);
    else
      throw new Error(
        `unknown argument: ${arg} (use --startup, --space, --keys N, --dead-ratio R, --min-dead-bytes B, --data-file-bytes B)`,
      );
  }
  if (keys !== undefined && !(Number.isSafeInteger(keys) && keys > 0))
    throw new Error('--keys needs a count');
  if (scenarios.length === 0) scenarios.push('--startup', '--space');
  console.log(
    `machine: ${os.availableParallelism()} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version} (shared: numbers are noisy)`,
  );
  for (const s of scenarios) {
    if (s === '--startup') await startup(keys ?? STARTUP_KEYS, tried.dataFileBytes);
    else await space(keys ?? SPACE_KEYS, tried);
  }
}

await main();
