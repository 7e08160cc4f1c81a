// Transaction benchmark: Cairn's read-modify-write transactions (snapshot and serializable)
// against lmdb-js write transactions, side by side in one run, with the same data, the same
// workload and the same durability.
//
//   npm run bench:txn                        every scenario, DURATION_MS_FULL each
//   npm run bench:txn -- --quick             every scenario, DURATION_MS_QUICK each (< 1 minute)
//   npm run bench:txn -- --contention uniform --sizes 10 --clients 64 --isolation serializable
//   npm run bench:txn -- --cache-bytes 67108864     Cairn's cask engine with its value cache on
//   npm run bench:txn -- --no-lmdb --duration-ms 8000 ...     Cairn alone (for profiling)
//   npm run bench:txn -- --out /tmp/results.md
//
// Workload: KEYSPACE counters (16-byte keys, 100-byte values, the counter in the first
// COUNTER_BYTES bytes) are preloaded into each store. A transaction picks its keys (distinct),
// reads them all, then writes each one incremented. Scenarios cross:
// - contention: 'uniform' (keys uniform over KEYSPACE) or 'hot' (keys among HOT_KEYS keys);
// - size: TXN_SIZES keys per transaction (10 keys among 10 hot keys: every transaction touches all);
// - clients: async loops in this process, each running one transaction at a time, back to back,
//   for the scenario's duration (a transaction running at the deadline finishes and counts).
// Throughput is commits per second of wall time, from the start until every client has stopped.
//
// Targets, every one durable before it acknowledges (durability 'always'):
// - cairn snapshot / cairn serializable: one Cairn store (default engine, cask, durability
//   'always': fdatasync before a commit resolves), `db.transaction(fn, { isolation, maxAttempts })`.
//   A retry keeps the transaction's keys. Aborts count every attempt that ended in
//   TxnConflictError (retries and the last attempt of a transaction that gave up); the abort rate
//   is aborts / attempts. The count is cross-checked against the store's own conflict counter.
// - lmdb: lmdb-js `transaction(callback)` on an env opened with `overlappingSync: false`, as in
//   src/storage/lmdb (a commit is fsynced before its promise resolves); lmdb serializes write
//   transactions, so nothing aborts. Transactions queued in one event turn share a commit
//   (lmdb-js's group commit).
// - lmdb-flushed: the same on lmdb-js's default `overlappingSync`, each transaction awaited and
//   then `db.flushed`, as in bench/lmdb-flushed-engine.ts: lmdb's other durable path.
// As in bench/engine.ts, ratios are against the better of the two lmdb figures ("best lmdb").
//
// Correctness: every committed transaction adds one to each of its keys in a model. After every
// measurement each key it touched is read back and must equal the model (so the sum of counters
// equals the committed increments); at the end every key of every store is checked. A mismatch
// stops the run: a benchmark of a broken result is worthless.
//
// Results are printed as a table and appended to --out (default docs/bench-txn.md).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { open as openLmdbEnv, type RootDatabase } from 'lmdb';
import { type Db, type EngineName, open as openCairn } from '../src/db/db.js';
import { Prng } from '../src/stdx/prng.js';
import { TxnConflictError } from '../src/txn/errors.js';
import type { Isolation } from '../src/txn/mvcc.js';

const KEY_BYTES = 16;
const VALUE_BYTES = 100;
/** COUNTER_BYTES: the counter is the value's first bytes, little-endian (Buffer.writeUIntLE's maximum). */
const COUNTER_BYTES = 6;
/** KEYSPACE: counters preloaded into every store; 'uniform' transactions pick among all of them. */
const KEYSPACE = 100_000;
/** HOT_KEYS: 'hot' transactions pick among this many keys (the first ones). */
const HOT_KEYS = 10;
const PRELOAD_BATCH_OPS = 1000;
const TXN_SIZES = [1, 10] as const;
const CLIENT_COUNTS = [16, 64, 256] as const;
const CONTENTIONS = ['uniform', 'hot'] as const;
const ISOLATIONS: readonly Isolation[] = ['snapshot', 'serializable'];
/** MAX_ATTEMPTS: db.transaction's maxAttempts (the default, 10): a transaction gives up after this many conflicts. */
const MAX_ATTEMPTS = 10;
const DURATION_MS_FULL = 5000;
const DURATION_MS_QUICK = 400;
/** WARMUP_MS: one unrecorded uniform run per target before the first measurement (JIT, page cache). */
const WARMUP_MS_FULL = 1000;
const WARMUP_MS_QUICK = 200;
const WARMUP_CLIENTS = 16;
/** SEED: the same key choices for every run. */
const SEED = 0x7a11;
/** KEY_PREFIX: the first 8 key bytes; the last 8 are the key's index, big-endian (as bench/engine.ts). */
const KEY_PREFIX = Buffer.from('cairnkey', 'latin1');
/** Target (issue): uncontended 10-key serializable transactions >= 1.0x lmdb's write transactions. */
const TARGET_UNIFORM_10_SERIALIZABLE_VS_LMDB = 1.0;
const TARGET_SIZE = 10;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_OUT = path.join(REPO_ROOT, 'docs', 'bench-txn.md');

type Contention = (typeof CONTENTIONS)[number];
type TargetName = 'cairn snapshot' | 'cairn serializable' | 'lmdb' | 'lmdb-flushed';
const TARGET_NAMES: readonly TargetName[] = ['cairn snapshot', 'cairn serializable', 'lmdb', 'lmdb-flushed'];

interface Args {
  readonly quick: boolean;
  readonly out: string;
  readonly durationMs: number;
  readonly contentions: readonly Contention[];
  readonly sizes: readonly number[];
  readonly clients: readonly number[];
  readonly isolations: readonly Isolation[];
  /** lmdb: run the lmdb peers (off with --no-lmdb, for profiling Cairn alone). */
  readonly lmdb: boolean;
  /** engine: Cairn's storage engine (default cask). */
  readonly engine: EngineName;
  /** cacheBytes: the cask value cache for this run (default: the engine's default, off). */
  readonly cacheBytes: number | undefined;
}

function listOf<T extends string | number>(
  flag: string,
  value: string | undefined,
  allowed: readonly T[],
  parse: (s: string) => T,
): T[] {
  if (value === undefined) throw new Error(`${flag} needs a value`);
  const items = value.split(',').map((s) => parse(s.trim()));
  const unknown = items.filter((i) => !allowed.includes(i));
  if (unknown.length > 0)
    throw new Error(`${flag}: unknown ${unknown.join(', ')} (have ${allowed.join(', ')})`);
  return items;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let out = DEFAULT_OUT;
  let durationMs: number | undefined;
  let contentions: Contention[] = [...CONTENTIONS];
  let sizes: number[] = [...TXN_SIZES];
  let clients: number[] = [...CLIENT_COUNTS];
  let isolations: Isolation[] = [...ISOLATIONS];
  let lmdb = true;
  let engine: EngineName = 'cask';
  let cacheBytes: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--no-lmdb') lmdb = false;
    else if (arg === '--out') {
      const value = argv[++i];
      if (value === undefined) throw new Error('--out needs a value');
      out = path.resolve(value);
    } else if (arg === '--duration-ms') {
      durationMs = Number(argv[++i]);
      if (!Number.isSafeInteger(durationMs) || durationMs <= 0)
        throw new Error('--duration-ms needs a positive integer');
    } else if (arg === '--contention') {
      contentions = listOf(arg, argv[++i], CONTENTIONS, (s) => s as Contention);
    } else if (arg === '--sizes') {
      sizes = listOf(arg, argv[++i], TXN_SIZES as readonly number[], Number);
    } else if (arg === '--clients') {
      clients = listOf(arg, argv[++i], CLIENT_COUNTS as readonly number[], Number);
    } else if (arg === '--isolation') {
      isolations = listOf(arg, argv[++i], ISOLATIONS, (s) => s as Isolation);
    } else if (arg === '--cache-bytes') {
      cacheBytes = Number(argv[++i]);
      if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0)
        throw new Error('--cache-bytes needs a byte count');
    } else if (arg === '--engine') {
      const value = argv[++i];
      if (value !== 'cask' && value !== 'lmdb') throw new Error('--engine is cask or lmdb');
      engine = value;
    } else throw new Error(`unknown argument: ${arg}`);
  }
  return {
    quick,
    out,
    durationMs: durationMs ?? (quick ? DURATION_MS_QUICK : DURATION_MS_FULL),
    contentions,
    sizes,
    clients,
    isolations,
    lmdb,
    engine,
    cacheBytes,
  };
}

// ---- data ----------------------------------------------------------------------------------------

function keyOf(index: number): Buffer {
  const key = Buffer.allocUnsafe(KEY_BYTES);
  KEY_PREFIX.copy(key, 0);
  key.writeBigUInt64BE(BigInt(index), 8);
  return key;
}

/** KEYS: every key, built once (transactions and checks index into it). */
const KEYS: readonly Buffer[] = Array.from({ length: KEYSPACE }, (_, i) => keyOf(i));

/** initialValue: counter 0, then random filler bytes (values not all alike, not compressible). */
function initialValue(prng: Prng): Buffer {
  const value = Buffer.allocUnsafe(VALUE_BYTES);
  for (let i = 0; i < VALUE_BYTES; i += 4) value.writeUInt32LE(prng.u32(), i);
  value.writeUIntLE(0, 0, COUNTER_BYTES);
  return value;
}

function counterOf(value: Uint8Array | undefined, what: string): number {
  if (value === undefined || value.length !== VALUE_BYTES) {
    throw new Error(`${what}: expected a ${VALUE_BYTES}-byte counter value, got ${value?.length ?? 'none'}`);
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).readUIntLE(0, COUNTER_BYTES);
}

/** incremented returns a copy of `value` with its counter plus one. */
function incremented(value: Uint8Array | undefined, what: string): Buffer {
  const next = counterOf(value, what) + 1;
  const copy = Buffer.from(value as Uint8Array);
  copy.writeUIntLE(next, 0, COUNTER_BYTES);
  return copy;
}

/** pickKeys chooses `size` distinct key indexes for one transaction. */
function pickKeys(prng: Prng, contention: Contention, size: number): number[] {
  const space = contention === 'hot' ? HOT_KEYS : KEYSPACE;
  if (size > space) throw new Error(`cannot pick ${size} distinct keys out of ${space}`);
  const picked: number[] = [];
  while (picked.length < size) {
    const i = prng.int(space);
    if (!picked.includes(i)) picked.push(i);
  }
  return picked;
}

// ---- targets -------------------------------------------------------------------------------------

interface TxnOutcome {
  readonly committed: boolean;
  /** aborts: attempts that ended in a conflict. */
  readonly aborts: number;
}

interface Store {
  readonly label: string;
  /** model: the counter every key must hold, given the commits so far. */
  readonly model: Float64Array;
  read(index: number): Promise<number>;
  close(): Promise<void>;
}

interface Target {
  readonly name: TargetName;
  readonly store: Store;
  run(indexes: readonly number[]): Promise<TxnOutcome>;
  /** conflicts: the store's own conflict count, to cross-check the benchmark's (Cairn only). */
  conflicts(): number | undefined;
}

function tempStore(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairn-bench-txn-${name}-`));
  tempDirs.add(dir);
  return dir;
}

const tempDirs = new Set<string>();
function removeTempDirs(): void {
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
process.once('exit', removeTempDirs);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: removing the benchmark's data`);
    removeTempDirs();
    process.exit(130);
  });
}

async function openCairnTargets(engine: EngineName, cacheBytes: number | undefined): Promise<Target[]> {
  const dir = tempStore('cairn');
  const db: Db = await openCairn(dir, {
    engine,
    durability: 'always',
    ...(cacheBytes === undefined ? {} : { cacheBytes }),
  });
  const prng = new Prng(SEED);
  for (let base = 0; base < KEYSPACE; base += PRELOAD_BATCH_OPS) {
    const ops = [];
    for (let i = base; i < Math.min(KEYSPACE, base + PRELOAD_BATCH_OPS); i++) {
      ops.push({ type: 'set' as const, key: KEYS[i]!, value: initialValue(prng) });
    }
    await db.batch(ops);
  }
  const store: Store = {
    label: `cairn (${engine})`,
    model: new Float64Array(KEYSPACE),
    async read(index) {
      return counterOf(await db.get(KEYS[index]!), `cairn key ${index}`);
    },
    close: () => db.close(),
  };
  return ISOLATIONS.map(
    (isolation): Target => ({
      name: isolation === 'snapshot' ? 'cairn snapshot' : 'cairn serializable',
      store,
      conflicts: () => db.txnStats().conflicts,
      async run(indexes) {
        let attempts = 0;
        try {
          await db.transaction(
            async (tx) => {
              attempts++;
              const values = [];
              for (const i of indexes) values.push(await tx.get(KEYS[i]!));
              for (let j = 0; j < indexes.length; j++) {
                const i = indexes[j]!;
                tx.set(KEYS[i]!, incremented(values[j], `cairn key ${i}`));
              }
            },
            { isolation, maxAttempts: MAX_ATTEMPTS },
          );
          return { committed: true, aborts: attempts - 1 };
        } catch (err) {
          if (err instanceof TxnConflictError && attempts === MAX_ATTEMPTS) {
            return { committed: false, aborts: attempts };
          }
          throw err;
        }
      },
    }),
  );
}

async function openLmdbTarget(name: 'lmdb' | 'lmdb-flushed'): Promise<Target> {
  const dir = tempStore(name);
  const flushed = name === 'lmdb-flushed';
  const env: RootDatabase<Buffer, Buffer> = openLmdbEnv<Buffer, Buffer>(path.join(dir, name), {
    keyEncoding: 'binary',
    encoding: 'binary',
    // 'lmdb' as src/storage/lmdb with durability 'always'; 'lmdb-flushed' as bench/lmdb-flushed-engine.ts.
    ...(flushed ? {} : { overlappingSync: false }),
  });
  const prng = new Prng(SEED);
  for (let base = 0; base < KEYSPACE; base += PRELOAD_BATCH_OPS) {
    await env.batch(() => {
      for (let i = base; i < Math.min(KEYSPACE, base + PRELOAD_BATCH_OPS); i++) {
        void env.put(KEYS[i]!, initialValue(prng));
      }
    });
  }
  await env.flushed;
  const store: Store = {
    label: name,
    model: new Float64Array(KEYSPACE),
    async read(index) {
      return counterOf(env.get(KEYS[index]!), `${name} key ${index}`);
    },
    async close() {
      await env.flushed;
      await env.close();
    },
  };
  return {
    name,
    store,
    conflicts: () => undefined,
    async run(indexes) {
      // The callback runs inside lmdb's write transaction: reads see the transaction's state and
      // nothing else writes meanwhile (lmdb has one writer), so read-modify-write is safe.
      await env.transaction(() => {
        for (const i of indexes) {
          const key = KEYS[i]!;
          void env.put(key, incremented(env.get(key), `${name} key ${i}`));
        }
      });
      if (flushed) await env.flushed;
      return { committed: true, aborts: 0 };
    },
  };
}

// ---- measurement ---------------------------------------------------------------------------------

interface Scenario {
  readonly contention: Contention;
  readonly size: number;
  readonly clients: number;
}

const scenarioLabel = (s: Scenario): string =>
  `${s.contention === 'hot' ? `hot (${HOT_KEYS} keys)` : `uniform (${fmt(KEYSPACE)} keys)`}, ${s.size}-key, ${s.clients} clients`;

interface Measurement {
  readonly commits: number;
  readonly aborts: number;
  readonly gaveUp: number;
  readonly seconds: number;
  /** checkedKeys: keys read back and found equal to the model. */
  readonly checkedKeys: number;
}

const commitsPerSecond = (m: Measurement): number => m.commits / m.seconds;
const abortRate = (m: Measurement): number => {
  const attempts = m.commits + m.aborts;
  return attempts === 0 ? 0 : m.aborts / attempts;
};

async function measure(
  target: Target,
  scenario: Scenario,
  durationMs: number,
  prng: Prng,
): Promise<Measurement> {
  const { model } = target.store;
  const touched = new Set<number>();
  let commits = 0;
  let aborts = 0;
  let gaveUp = 0;
  const conflictsBefore = target.conflicts();
  const started = performance.now();
  const deadline = started + durationMs;
  const client = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const indexes = pickKeys(prng, scenario.contention, scenario.size);
      const outcome = await target.run(indexes);
      aborts += outcome.aborts;
      if (!outcome.committed) {
        gaveUp++;
        continue;
      }
      commits++;
      for (const i of indexes) {
        model[i]!++;
        touched.add(i);
      }
    }
  };
  await Promise.all(Array.from({ length: scenario.clients }, client));
  const seconds = (performance.now() - started) / 1000;

  // Correctness: the store's counters are the model's, key by key (so their sum too).
  const fail = (what: string): never => {
    throw new Error(`${target.name}, ${scenarioLabel(scenario)}: ${what}`);
  };
  for (const i of touched) {
    const actual = await target.store.read(i);
    if (actual !== model[i])
      fail(`key ${i} holds ${actual}, expected ${model[i]} (lost or extra increments)`);
  }
  const conflictsAfter = target.conflicts();
  if (conflictsBefore !== undefined && conflictsAfter !== undefined) {
    const counted = conflictsAfter - conflictsBefore;
    if (counted !== aborts) fail(`the store counted ${counted} conflicts, the benchmark ${aborts}`);
  }
  if (commits === 0) fail('no transaction committed');
  return { commits, aborts, gaveUp, seconds, checkedKeys: touched.size };
}

/** checkAll reads every key of a store and compares it with the model. */
async function checkAll(store: Store): Promise<number> {
  let sum = 0;
  for (let i = 0; i < KEYSPACE; i++) {
    const actual = await store.read(i);
    if (actual !== store.model[i]) {
      throw new Error(`${store.label}: key ${i} holds ${actual}, expected ${store.model[i]}`);
    }
    sum += actual;
  }
  return sum;
}

// ---- report --------------------------------------------------------------------------------------

function fmt(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

interface Row {
  readonly scenario: Scenario;
  readonly isolation: Isolation;
  readonly cairn: Measurement | undefined;
  readonly lmdb: Measurement | undefined;
  readonly lmdbFlushed: Measurement | undefined;
}

function bestLmdb(row: Row): number | undefined {
  const candidates = [row.lmdb, row.lmdbFlushed].filter((m): m is Measurement => m !== undefined);
  return candidates.length === 0 ? undefined : Math.max(...candidates.map(commitsPerSecond));
}

function ratioOf(row: Row): number | undefined {
  const best = bestLmdb(row);
  return row.cairn === undefined || best === undefined || best === 0
    ? undefined
    : commitsPerSecond(row.cairn) / best;
}

const HEAD = [
  'scenario',
  'isolation',
  'Cairn commits/s',
  'abort rate',
  'gave up',
  'lmdb commits/s',
  'lmdb-flushed commits/s',
  'Cairn / best lmdb',
];

function cells(row: Row): string[] {
  const r = ratioOf(row);
  return [
    scenarioLabel(row.scenario),
    row.isolation,
    row.cairn === undefined ? '-' : fmt(commitsPerSecond(row.cairn)),
    row.cairn === undefined ? '-' : pct(abortRate(row.cairn)),
    row.cairn === undefined ? '-' : String(row.cairn.gaveUp),
    row.lmdb === undefined ? '-' : fmt(commitsPerSecond(row.lmdb)),
    row.lmdbFlushed === undefined ? '-' : fmt(commitsPerSecond(row.lmdbFlushed)),
    r === undefined ? '-' : `${r.toFixed(2)}x`,
  ];
}

interface TargetCheck {
  readonly target: string;
  readonly verdict: 'PASS' | 'MISS' | 'n/a';
  readonly detail: string;
}

function checkTarget(rows: readonly Row[]): TargetCheck {
  const target = `uniform ${TARGET_SIZE}-key serializable >= ${TARGET_UNIFORM_10_SERIALIZABLE_VS_LMDB.toFixed(1)}x best lmdb`;
  const relevant = rows.filter(
    (r) =>
      r.scenario.contention === 'uniform' &&
      r.scenario.size === TARGET_SIZE &&
      r.isolation === 'serializable' &&
      ratioOf(r) !== undefined,
  );
  if (relevant.length === 0) return { target, verdict: 'n/a', detail: 'scenario not run (or no lmdb)' };
  const ratios = relevant.map((r) => ({ clients: r.scenario.clients, ratio: ratioOf(r) as number }));
  const met = ratios.every((r) => r.ratio >= TARGET_UNIFORM_10_SERIALIZABLE_VS_LMDB);
  return {
    target,
    verdict: met ? 'PASS' : 'MISS',
    detail: ratios.map((r) => `${r.clients} clients ${r.ratio.toFixed(2)}x`).join(', '),
  };
}

function markdown(args: Args, rows: readonly Row[], check: TargetCheck, totalSeconds: number): string {
  const cpus = os.cpus();
  return [
    `## ${new Date().toISOString()} transactions ${args.quick ? '(quick)' : '(full)'}`,
    '',
    `- command: \`${['npm run bench:txn --', ...process.argv.slice(2)].join(' ')}\``,
    `- machine: ${os.availableParallelism()} CPUs (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}`,
    `- node ${process.version}; each store in a fresh temporary directory; whole run ${totalSeconds.toFixed(0)} s`,
    `- ${fmt(KEYSPACE)} counters (keys of ${KEY_BYTES} B, values of ${VALUE_BYTES} B); ${args.durationMs} ms per ` +
      `measurement; Cairn engine ${args.engine}` +
      (args.cacheBytes === undefined ? '' : ` with cacheBytes ${args.cacheBytes}`) +
      `, durability 'always', maxAttempts ${MAX_ATTEMPTS}; lmdb ` +
      '`overlappingSync: false`, lmdb-flushed default overlappingSync + `await db.flushed`',
    '',
    `| ${HEAD.join(' | ')} |`,
    `|---|---|${HEAD.slice(2)
      .map(() => '---:|')
      .join('')}`,
    ...rows.map((row) => `| ${cells(row).join(' | ')} |`),
    '',
    `- target: ${check.target}: **${check.verdict}** (${check.detail})`,
    '',
  ].join('\n');
}

// ---- main ----------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const runStarted = performance.now();
  const wanted = (t: TargetName): boolean =>
    t === 'lmdb' || t === 'lmdb-flushed'
      ? args.lmdb
      : args.isolations.includes(t === 'cairn snapshot' ? 'snapshot' : 'serializable');

  console.error(`preloading ${fmt(KEYSPACE)} counters into each store`);
  const targets = new Map<TargetName, Target>();
  for (const t of await openCairnTargets(args.engine, args.cacheBytes))
    if (wanted(t.name)) targets.set(t.name, t);
  for (const name of ['lmdb', 'lmdb-flushed'] as const) {
    if (wanted(name)) targets.set(name, await openLmdbTarget(name));
  }
  const prng = new Prng(SEED + 1);

  const warmupMs = args.quick ? WARMUP_MS_QUICK : WARMUP_MS_FULL;
  for (const target of targets.values()) {
    await measure(target, { contention: 'uniform', size: 1, clients: WARMUP_CLIENTS }, warmupMs, prng);
  }

  const rows: Row[] = [];
  for (const contention of args.contentions) {
    for (const size of args.sizes) {
      for (const clients of args.clients) {
        const scenario: Scenario = { contention, size, clients };
        // One scenario's targets back to back, so that machine noise hits them alike.
        const results = new Map<TargetName, Measurement>();
        for (const name of TARGET_NAMES) {
          const target = targets.get(name);
          if (target === undefined) continue;
          const m = await measure(target, scenario, args.durationMs, prng);
          results.set(name, m);
          console.error(
            `  ${scenarioLabel(scenario)}: ${name} ${fmt(commitsPerSecond(m))} commits/s` +
              (name.startsWith('cairn') ? `, aborts ${pct(abortRate(m))}, gave up ${m.gaveUp}` : '') +
              `; ${m.checkedKeys} keys verified`,
          );
        }
        for (const isolation of args.isolations) {
          rows.push({
            scenario,
            isolation,
            cairn: results.get(isolation === 'snapshot' ? 'cairn snapshot' : 'cairn serializable'),
            lmdb: results.get('lmdb'),
            lmdbFlushed: results.get('lmdb-flushed'),
          });
        }
      }
    }
  }

  const stores = new Set([...targets.values()].map((t) => t.store));
  for (const store of stores) {
    const sum = await checkAll(store);
    console.error(`verified ${store.label}: all ${fmt(KEYSPACE)} counters match, sum ${fmt(sum)}`);
    await store.close();
  }

  const table = new Table({ head: HEAD });
  for (const row of rows) table.push(cells(row));
  console.log(table.toString());
  const check = checkTarget(rows);
  console.log(`${check.verdict.padEnd(4)}  ${check.target}: ${check.detail}`);

  const totalSeconds = (performance.now() - runStarted) / 1000;
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.appendFileSync(args.out, `${markdown(args, rows, check, totalSeconds)}\n`);
  console.log(`results appended to ${path.relative(process.cwd(), args.out) || args.out}`);
}

try {
  await main();
} finally {
  removeTempDirs();
}
