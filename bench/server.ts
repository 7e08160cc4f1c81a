// Server benchmark: `cairn serve` under redis-benchmark, side by side with a real redis-server
// started by this script with matching persistence, all in one run.
//
//   npm run bench:server                   -n 100000 per test, median of 3 rounds (the issue's load)
//   npm run bench:server -- --quick        -n 50000 per test, one round
//   npm run bench:server -- --rounds 5     rounds per test (the median is reported)
//   npm run bench:server -- --out /tmp/results.md
//   npm run bench:server -- --quick --mixed-only   only the mixed load (8 SET + 42 GET clients)
//
// Targets (one process each, on a free loopback port, with its own temporary data directory):
// - cairn always / interval / never: `cairn serve --sync <mode>` from dist/ (run `npm run build`);
// - redis always: `appendonly yes`, `appendfsync always` (fsync per write batch, compared with our always);
// - redis everysec: `appendonly yes`, `appendfsync everysec` (compared with our interval; ours fsyncs
//   every 100 ms, so it does more durable work than Redis here);
// - redis nopersist: `save ""`, `appendonly no` (compared with our never);
// - floor always / never: bench/floor-server.mjs, the least a Node.js RESP server does for SET and
//   GET (socket I/O, parsing, a Map, one log append per turn and, for always, one fdatasync per
//   turn): its ratio to Redis, printed beside each target's, is the ceiling Node reaches on this
//   machine.
// Each target gets `redis-benchmark -t set,get -n N -r 100000 -d 100 -c 50` with -P 1, then -P 16
// (one redis-benchmark per test, so that the server's CPU time, from /proc/PID/stat, is read
// around each: CPU per request is printed beside requests/s, and it is the steadier measure on a
// shared machine), in rounds against the same server: each cell is the median of its rounds
// (requests/s and CPU each), and every round's requests/s is printed and recorded too. Later
// rounds find the keys the earlier ones wrote, as a server that has been running does.
// The two `always` targets then get the mixed load of issue 14, "reads while writes are durable":
// 8 clients doing SET (one redis-benchmark) while 42 do GET (a second one, run at the same time);
// the GET side's requests/s, p50 and p99 are compared (Redis's reads queue behind its fsyncs).
// redis-benchmark and the server share the machine's CPUs, so numbers are only comparable
// within one run on one machine; the recorded block names the machine.
// Results are printed as a table and appended to --out (default docs/bench-server.md).

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import { cleanUpOnExit, cleanupSync, freePort as freePortOn, live, tempDirs } from './child-processes.js';

const REQUESTS_FULL = 100_000;
const REQUESTS_QUICK = 50_000;
/** ROUNDS_FULL, ROUNDS_QUICK: rounds of every test per target; cells are their medians. */
const ROUNDS_FULL = 3;
const ROUNDS_QUICK = 1;
/** MAX_ROUNDS: a bound on --rounds (each round of every target takes about a minute here). */
const MAX_ROUNDS = 20;
/** KEYSPACE: redis-benchmark -r, random keys out of this many (the issue's workload). */
const KEYSPACE = 100_000;
const VALUE_BYTES = 100;
const CLIENTS = 50;
const PIPELINES = [1, 16] as const;
type Pipeline = (typeof PIPELINES)[number];
const TESTS = ['SET', 'GET'] as const;
type Test = (typeof TESTS)[number];
const HOST = '127.0.0.1';
/** READY_TIMEOUT_MS: how long a server may take to answer PING after being spawned. */
const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 100;
/** STOP_TIMEOUT_MS: grace after SIGTERM (a server flushes and fsyncs) before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;
/** BENCH_TIMEOUT_MS: a redis-benchmark run that takes longer than this is a hung server. */
const BENCH_TIMEOUT_MS = 15 * 60_000;
/** BENCH_MAX_BUFFER: redis-benchmark's CSV output is a few lines; its stderr may carry progress noise. */
const BENCH_MAX_BUFFER = 16 * 2 ** 20;
/** Targets (issue 14): ratios of Cairn to the Redis with matching persistence. */
const TARGET_ALWAYS_SET_VS_REDIS: Readonly<Record<Pipeline, number>> = { 1: 0.8, 16: 0.5 };
const TARGET_NEVER_VS_REDIS: Readonly<Record<Pipeline, number>> = { 1: 0.55, 16: 0.4 };
/** MIXED_SET_CLIENTS, MIXED_GET_CLIENTS: the mixed load's writers and readers (issue 14). */
const MIXED_SET_CLIENTS = 8;
const MIXED_GET_CLIENTS = 42;
/** Mixed-load targets: GET throughput against Redis's, and Cairn's own GET p99. */
const TARGET_MIXED_GET_VS_REDIS = 1.0;
const TARGET_MIXED_GET_P99_MS = 1.0;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAIRN_CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'cairn.js');
const DEFAULT_OUT = path.join(REPO_ROOT, 'docs', 'bench-server.md');
const FLOOR_SERVER = path.join(REPO_ROOT, 'bench', 'floor-server.mjs');

type TargetName =
  | 'cairn always'
  | 'cairn interval'
  | 'cairn never'
  | 'redis always'
  | 'redis everysec'
  | 'redis nopersist'
  | 'floor always'
  | 'floor never';

interface TargetSpec {
  readonly name: TargetName;
  readonly command: string;
  /** args: the command line for a given data directory and port. */
  readonly args: (dir: string, port: number) => string[];
}

const cairn = (sync: 'always' | 'interval' | 'never'): TargetSpec => ({
  name: `cairn ${sync}`,
  command: process.execPath,
  args: (dir, port) => [
    CAIRN_CLI,
    'serve',
    '--dir',
    dir,
    '--addr',
    `${HOST}:${port}`,
    '--http',
    'off',
    '--sync',
    sync,
    '--log-level',
    'warn',
  ],
});

const redis = (name: TargetName, persistence: readonly string[]): TargetSpec => ({
  name,
  command: 'redis-server',
  // No config file: everything on the command line, so the recorded command is the whole story.
  args: (dir, port) => [
    '--bind',
    HOST,
    '--port',
    String(port),
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    '',
    '--loglevel',
    'warning',
    ...persistence,
  ],
});

const floor = (sync: 'always' | 'never'): TargetSpec => ({
  name: `floor ${sync}`,
  command: process.execPath,
  args: (dir, port) => [FLOOR_SERVER, '--dir', dir, '--port', String(port), '--sync', sync],
});

const TARGETS: readonly TargetSpec[] = [
  cairn('always'),
  redis('redis always', ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always']),
  floor('always'),
  cairn('interval'),
  redis('redis everysec', ['--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec']),
  cairn('never'),
  redis('redis nopersist', ['--save', '', '--appendonly', 'no']),
  floor('never'),
];

interface Args {
  readonly quick: boolean;
  readonly out: string;
  /** mixedOnly: only the mixed load, on the two `always` targets. */
  readonly mixedOnly: boolean;
  /** rounds: runs of each test (and of the mixed load) per target; the median is reported. */
  readonly rounds: number;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let mixedOnly = false;
  let out = DEFAULT_OUT;
  let rounds: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--quick') quick = true;
    else if (arg === '--mixed-only') mixedOnly = true;
    else if (arg === '--rounds') {
      const value = argv[++i];
      const n = Number(value);
      if (value === undefined || !Number.isInteger(n) || n < 1 || n > MAX_ROUNDS)
        throw new Error(`--rounds needs a whole number from 1 to ${MAX_ROUNDS}`);
      rounds = n;
    } else if (arg === '--out') {
      const value = argv[++i];
      if (value === undefined) throw new Error('--out needs a value');
      out = path.resolve(value);
    } else throw new Error(`unknown argument: ${arg}`);
  }
  return { quick, out, mixedOnly, rounds: rounds ?? (quick ? ROUNDS_QUICK : ROUNDS_FULL) };
}

/** Everything started, so that a failure or SIGINT anywhere still stops servers and removes data. */
cleanUpOnExit('servers');

const freePort = (): Promise<number> => freePortOn(HOST);

/** One PING over a fresh connection; true on +PONG. */
async function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, HOST);
    let buf = '';
    const done = (ok: boolean): void => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(READY_POLL_MS * 10, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
  });
}

interface Running {
  readonly child: ChildProcess;
  readonly port: number;
  readonly dir: string;
  readonly commandLine: string;
  readonly stderr: () => string;
}

async function startTarget(spec: TargetSpec): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairn-bench-${spec.name.replace(' ', '-')}-`));
  tempDirs.add(dir);
  const port = await freePort();
  const args = spec.args(dir, port);
  const child = spawn(spec.command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  // Keep the tail of stderr for error messages only; servers log at warn level.
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4096);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (spawnError !== undefined)
      throw new Error(`${spec.name}: cannot start ${spec.command}: ${spawnError.message}`);
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${spec.name}: exited during startup (${child.exitCode ?? child.signalCode}): ${stderr}`,
      );
    }
    if (await ping(port)) break;
    if (Date.now() > deadline)
      throw new Error(`${spec.name}: no PONG within ${READY_TIMEOUT_MS} ms: ${stderr}`);
    await Promise.race([exited, new Promise((r) => setTimeout(r, READY_POLL_MS))]);
  }
  // The recorded command line, with placeholders for what changes from run to run.
  const shown = args.map((a) =>
    a === CAIRN_CLI || a === FLOOR_SERVER
      ? path.relative(REPO_ROOT, a)
      : a === dir
        ? 'DIR'
        : a === String(port)
          ? 'PORT'
          : a === `${HOST}:${port}`
            ? `${HOST}:PORT`
            : a === ''
              ? '""'
              : a,
  );
  const commandLine = [spec.command === process.execPath ? 'node' : spec.command, ...shown].join(' ');
  return { child, port, dir, commandLine, stderr: () => stderr };
}

async function stopTarget(run: Running): Promise<void> {
  const { child } = run;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(true), STOP_TIMEOUT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      console.error(`  did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM; SIGKILL`);
      child.kill('SIGKILL');
      await exited;
    }
  }
  live.delete(child);
  fs.rmSync(run.dir, { recursive: true, force: true });
  tempDirs.delete(run.dir);
}

function benchArgs(port: number, requests: number, pipeline: Pipeline, tests = 'set,get'): string[] {
  return [
    '-h',
    HOST,
    '-p',
    String(port),
    '-t',
    tests,
    '-n',
    String(requests),
    '-r',
    String(KEYSPACE),
    '-d',
    String(VALUE_BYTES),
    '-c',
    String(CLIENTS),
    '-P',
    String(pipeline),
    '--csv',
  ];
}

/** Parses redis-benchmark --csv: a header line, then `"SET","12345.67",...` per test. */
function parseCsv(stdout: string): Map<Test, number> {
  const out = new Map<Test, number>();
  for (const line of stdout.split('\n')) {
    const cells = line.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
    const test = TESTS.find((t) => t === cells[0]);
    const rps = Number(cells[1]);
    if (test !== undefined && Number.isFinite(rps)) out.set(test, rps);
  }
  return out;
}

/**
 * statCpuMs: two CPU-time fields of a /proc stat file, summed, in ms (undefined where there is
 * none). Fields are counted after the command name, which may hold spaces.
 */
function statCpuMs(file: string, user: number, system: number): number | undefined {
  try {
    const stat = fs.readFileSync(file, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[user]) + Number(fields[system]);
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}

/**
 * serverCpuMs: the CPU time (user + system, all threads) process `pid` has used so far.
 * Requests/s on a shared 2-core machine moved by 30-40 % within minutes (docs/benchmarks.md),
 * while CPU per request is what a change to the server moves.
 */
function serverCpuMs(pid: number | undefined): number | undefined {
  return pid === undefined ? undefined : statCpuMs(`/proc/${pid}/stat`, STAT_UTIME, STAT_STIME);
}

/**
 * childrenCpuMs: the CPU time (user + system) of this process's children that have exited and
 * been waited for: read around one redis-benchmark run, its own CPU time. With the server's, it
 * says how busy the machine's cores were: at -P 1 both processes together keep the two cores of
 * this machine nearly busy, so the requests/s of a server follow its CPU per request plus the
 * client's (docs/benchmarks.md, "what the -P 1 and -P 16 rows are bound by").
 */
function childrenCpuMs(): number | undefined {
  return statCpuMs('/proc/self/stat', STAT_CUTIME, STAT_CSTIME);
}
/** STAT_UTIME, STAT_STIME: utime and stime (fields 14 and 15 of /proc/PID/stat) after the command name. */
const STAT_UTIME = 11;
const STAT_STIME = 12;
/** STAT_CUTIME, STAT_CSTIME: cutime and cstime (fields 16 and 17), the waited-for children's. */
const STAT_CUTIME = 13;
const STAT_CSTIME = 14;
/** CLOCK_TICKS_PER_S: Linux's USER_HZ, the unit of /proc's CPU times (100 on every current kernel). */
const CLOCK_TICKS_PER_S = 100;

/**
 * Cpu: one redis-benchmark run's CPU: the server's and redis-benchmark's per request (µs), and
 * the cores both kept busy on average (their CPU time over the run's wall time).
 */
interface Cpu {
  readonly serverUs: number;
  readonly clientUs: number;
  readonly cores: number;
}

type Key = `${TargetName}|${Test}|${Pipeline}`;
const key = (t: TargetName, test: Test, p: Pipeline): Key => `${t}|${test}|${p}`;

/** median of a non-empty list (the mean of the middle two for an even count). */
function median(xs: readonly number[]): number {
  assert(xs.length > 0, 'median of nothing');
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Measured: every target's results, filled in by benchTarget. */
interface Measured {
  /** results: requests/s per cell, the median of its rounds. */
  readonly results: Map<Key, number>;
  /** rounds: requests/s of each round, in the order run. */
  readonly rounds: Map<Key, number[]>;
  /** cpu: per cell, the median of each CPU figure over its rounds. */
  readonly cpu: Map<Key, Cpu>;
  readonly commands: Map<TargetName, string>;
  readonly mixed: Map<TargetName, MixedResult>;
}

async function benchTarget(spec: TargetSpec, requests: number, args: Args, m: Measured): Promise<void> {
  const run = await startTarget(spec);
  try {
    m.commands.set(spec.name, run.commandLine);
    const cpuRounds = new Map<Key, Cpu[]>();
    for (let round = 1; round <= args.rounds; round++) {
      for (const pipeline of args.mixedOnly ? [] : PIPELINES) {
        // One redis-benchmark per test (as `-t set,get` runs them, one after the other), so that
        // the server's CPU time is read around each.
        for (const test of TESTS) {
          const k = key(spec.name, test, pipeline);
          const { rps, cpu } = await benchOnce(spec.name, run, requests, pipeline, test);
          m.rounds.set(k, [...(m.rounds.get(k) ?? []), rps]);
          if (cpu !== undefined) cpuRounds.set(k, [...(cpuRounds.get(k) ?? []), cpu]);
        }
        console.error(
          `  round ${round}, -P ${pipeline}: ${TESTS.map((t) => `${t} ${fmt(m.rounds.get(key(spec.name, t, pipeline))?.at(-1) ?? 0)}/s`).join(', ')}`,
        );
        if (run.child.exitCode !== null || run.child.signalCode !== null) {
          throw new Error(`${spec.name}: server exited during the benchmark: ${run.stderr()}`);
        }
      }
    }
    for (const [k, rs] of m.rounds) if (k.startsWith(`${spec.name}|`)) m.results.set(k, median(rs));
    for (const [k, cs] of cpuRounds) {
      m.cpu.set(k, {
        serverUs: median(cs.map((c) => c.serverUs)),
        clientUs: median(cs.map((c) => c.clientUs)),
        cores: median(cs.map((c) => c.cores)),
      });
    }
    // The floor server keeps no command statistics (the mixed load reads them) and holds every
    // reply of a turn with a write until its fdatasync: no reference for reads beside writes.
    if (spec.name === 'cairn always' || spec.name === 'redis always') {
      const runs: MixedResult[] = [];
      for (let round = 1; round <= args.rounds; round++) {
        const r = await mixed(run.port, requests, round === 1);
        runs.push(r);
        console.error(
          `  round ${round}, mixed (${MIXED_SET_CLIENTS} SET + ${MIXED_GET_CLIENTS} GET clients): GET ${fmt(r.getRps)}/s ` +
            `p50 ${r.p50Ms} ms p99 ${r.p99Ms} ms; SET ${fmt(r.setRps)}/s`,
        );
      }
      m.mixed.set(spec.name, {
        getRps: median(runs.map((r) => r.getRps)),
        p50Ms: median(runs.map((r) => r.p50Ms)),
        p99Ms: median(runs.map((r) => r.p99Ms)),
        setRps: median(runs.map((r) => r.setRps)),
        rounds: runs,
      });
    }
  } finally {
    await stopTarget(run);
  }
}

/** benchOnce: one redis-benchmark of one test against a running target, with the CPU around it. */
async function benchOnce(
  name: TargetName,
  run: Running,
  requests: number,
  pipeline: Pipeline,
  test: Test,
): Promise<{ rps: number; cpu: Cpu | undefined }> {
  const cpuBefore = serverCpuMs(run.child.pid);
  const clientBefore = childrenCpuMs();
  const wallBefore = performance.now();
  const { stdout } = await promisify(execFile)(
    'redis-benchmark',
    benchArgs(run.port, requests, pipeline, test.toLowerCase()),
    {
      timeout: BENCH_TIMEOUT_MS,
      maxBuffer: BENCH_MAX_BUFFER,
    },
  );
  const cpuAfter = serverCpuMs(run.child.pid);
  const clientAfter = childrenCpuMs();
  const wallMs = performance.now() - wallBefore;
  const rps = parseCsv(stdout).get(test);
  if (rps === undefined) throw new Error(`${name}: no ${test} line in redis-benchmark output:\n${stdout}`);
  const cpu =
    cpuBefore !== undefined &&
    cpuAfter !== undefined &&
    clientBefore !== undefined &&
    clientAfter !== undefined
      ? {
          serverUs: ((cpuAfter - cpuBefore) * 1000) / requests,
          clientUs: ((clientAfter - clientBefore) * 1000) / requests,
          cores: (cpuAfter - cpuBefore + clientAfter - clientBefore) / wallMs,
        }
      : undefined;
  return { rps, cpu };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** MixedResult: the GET side of the mixed load. */
interface MixedResult {
  readonly getRps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly setRps: number;
  /** rounds: each round's result, in order (the fields above are their medians). */
  readonly rounds?: readonly MixedResult[];
}

/**
 * mixed runs the GET benchmark (MIXED_GET_CLIENTS) while a SET benchmark (MIXED_SET_CLIENTS) runs
 * beside it, started first and stopped when the GETs are done. Keys were filled by the SET tests
 * before, so GETs hit.
 */
async function mixed(port: number, requests: number, fill: boolean): Promise<MixedResult> {
  const common = ['-h', HOST, '-p', String(port), '-r', String(KEYSPACE), '-d', String(VALUE_BYTES), '--csv'];
  // Fill first (pipelined), so that the GETs hit whatever ran before; later rounds find it filled.
  if (fill)
    await promisify(execFile)(
      'redis-benchmark',
      [...common, '-t', 'set', '-c', '50', '-P', '16', '-n', String(KEYSPACE * 2)],
      {
        timeout: BENCH_TIMEOUT_MS,
        maxBuffer: BENCH_MAX_BUFFER,
      },
    );
  const setter = spawn(
    'redis-benchmark',
    [...common, '-t', 'set', '-c', String(MIXED_SET_CLIENTS), '-n', String(requests * 100), '-l'],
    { stdio: ['ignore', 'ignore', 'ignore'] },
  );
  live.add(setter);
  const setterExited = new Promise<void>((resolve) => setter.once('exit', () => resolve()));
  try {
    await new Promise((r) => setTimeout(r, MIXED_WARMUP_MS));
    const before = await infoCommands(port, 'set');
    const started = Date.now();
    const { stdout } = await promisify(execFile)(
      'redis-benchmark',
      [...common, '-t', 'get', '-c', String(MIXED_GET_CLIENTS), '-n', String(requests)],
      { timeout: BENCH_TIMEOUT_MS, maxBuffer: BENCH_MAX_BUFFER },
    );
    const seconds = (Date.now() - started) / 1000;
    const after = await infoCommands(port, 'set');
    const row = stdout.split('\n').find((l) => l.startsWith('"GET"'));
    const cells = row?.split(',').map((c) => Number(c.trim().replace(/^"|"$/g, '')));
    if (cells === undefined || cells.length < 7) throw new Error(`no GET line in:\n${stdout}`);
    return { getRps: cells[1]!, p50Ms: cells[4]!, p99Ms: cells[6]!, setRps: (after - before) / seconds };
  } finally {
    setter.kill('SIGKILL');
    await setterExited;
    live.delete(setter);
  }
}

/** MIXED_WARMUP_MS: the writers run alone this long before the readers start. */
const MIXED_WARMUP_MS = 1_000;

/** infoCommands: calls of one command so far, from INFO commandstats (both servers keep it). */
async function infoCommands(port: number, command: string): Promise<number> {
  const { stdout } = await promisify(execFile)('redis-cli', [
    '-h',
    HOST,
    '-p',
    String(port),
    'INFO',
    'commandstats',
  ]);
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stdout);
  return m === null ? Number.NaN : Number(m[1]);
}

interface Comparison {
  readonly label: string;
  readonly test: Test;
  readonly pipeline: Pipeline;
  readonly ours: TargetName;
  readonly theirs: TargetName;
  /** target: the ratio to reach, or undefined for an informative comparison. */
  readonly target: number | undefined;
  /** floor: the Node floor server with the same persistence, whose ratio to `theirs` is printed beside. */
  readonly floor?: TargetName;
}

const COMPARISONS: readonly Comparison[] = [
  ...PIPELINES.map(
    (p): Comparison => ({
      label: `cairn always / redis always, SET -P ${p}`,
      test: 'SET',
      pipeline: p,
      ours: 'cairn always',
      theirs: 'redis always',
      target: TARGET_ALWAYS_SET_VS_REDIS[p],
      floor: 'floor always',
    }),
  ),
  ...PIPELINES.flatMap((p) =>
    TESTS.map(
      (test): Comparison => ({
        label: `cairn never / redis nopersist, ${test} -P ${p}`,
        test,
        pipeline: p,
        ours: 'cairn never',
        theirs: 'redis nopersist',
        target: TARGET_NEVER_VS_REDIS[p],
        floor: 'floor never',
      }),
    ),
  ),
  ...PIPELINES.flatMap((p) =>
    TESTS.map(
      (test): Comparison => ({
        label: `cairn interval / redis everysec, ${test} -P ${p}`,
        test,
        pipeline: p,
        ours: 'cairn interval',
        theirs: 'redis everysec',
        target: undefined,
      }),
    ),
  ),
  ...PIPELINES.map(
    (p): Comparison => ({
      label: `cairn always / redis always, GET -P ${p}`,
      test: 'GET',
      pipeline: p,
      ours: 'cairn always',
      theirs: 'redis always',
      target: undefined,
      floor: 'floor always',
    }),
  ),
];

interface Checked {
  readonly label: string;
  readonly ratio: string;
  /** floorRatio: the Node floor server's ratio to the same Redis target ('-' without one). */
  readonly floorRatio: string;
  readonly target: string;
  readonly verdict: 'PASS' | 'MISS' | 'info' | 'n/a';
}

function check(results: ReadonlyMap<Key, number>): Checked[] {
  return COMPARISONS.map((c) => {
    const ours = results.get(key(c.ours, c.test, c.pipeline));
    const theirs = results.get(key(c.theirs, c.test, c.pipeline));
    const floor = c.floor === undefined ? undefined : results.get(key(c.floor, c.test, c.pipeline));
    const floorRatio =
      floor === undefined || theirs === undefined || theirs === 0 ? '-' : `${(floor / theirs).toFixed(2)}x`;
    if (ours === undefined || theirs === undefined || theirs === 0) {
      return {
        label: c.label,
        ratio: '-',
        floorRatio,
        target: c.target === undefined ? '-' : `>= ${c.target}x`,
        verdict: 'n/a',
      };
    }
    const r = ours / theirs;
    return {
      label: c.label,
      ratio: `${r.toFixed(2)}x`,
      floorRatio,
      target: c.target === undefined ? '-' : `>= ${c.target}x`,
      verdict: c.target === undefined ? 'info' : r >= c.target ? 'PASS' : 'MISS',
    };
  });
}

async function versionOf(command: string): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(command, ['--version']);
    return stdout.trim();
  } catch (err) {
    return `unknown (${err instanceof Error ? err.message : String(err)})`;
  }
}

const cell = (results: ReadonlyMap<Key, number>, t: TargetName, test: Test, p: Pipeline): string => {
  const v = results.get(key(t, test, p));
  return v === undefined ? '-' : fmt(v);
};

/** cpuCell: server CPU µs per request, with its ratio to the paired Redis target's. */
const cpuCell = (cpu: ReadonlyMap<Key, Cpu>, t: TargetName, test: Test, p: Pipeline): string => {
  const v = cpu.get(key(t, test, p))?.serverUs;
  if (v === undefined) return '-';
  // The Redis target COMPARISONS pairs this one (or this floor server) with.
  const pair = COMPARISONS.find((c) => c.ours === t || c.floor === t)?.theirs;
  const theirs = pair === undefined ? undefined : cpu.get(key(pair, test, p))?.serverUs;
  return theirs === undefined || theirs === 0
    ? v.toFixed(1)
    : `${v.toFixed(1)} (${(v / theirs).toFixed(1)}x)`;
};

/** clientCell: redis-benchmark's CPU µs per request, and the cores the run kept busy. */
const clientCell = (cpu: ReadonlyMap<Key, Cpu>, t: TargetName, test: Test, p: Pipeline): string => {
  const v = cpu.get(key(t, test, p));
  return v === undefined ? '-' : `${v.clientUs.toFixed(1)} / ${v.cores.toFixed(2)}`;
};

const COLUMNS: readonly [Test, Pipeline][] = PIPELINES.flatMap((p) =>
  TESTS.map((t): [Test, Pipeline] => [t, p]),
);
const columnHead = ([t, p]: [Test, Pipeline]): string => `${t} -P ${p}`;

async function markdown(
  args: Args,
  requests: number,
  measured: Measured,
  checked: readonly Checked[],
  skipped: readonly string[],
): Promise<string> {
  const { results, cpu, commands, rounds } = measured;
  const cpus = os.cpus();
  const targets = TARGETS.map((t) => t.name).filter((t) => commands.has(t));
  const lines = [
    `## ${new Date().toISOString()} server benchmark ${args.quick ? '(quick)' : '(full)'}`,
    '',
    `- command: \`${['npm run bench:server --', ...process.argv.slice(2)].join(' ')}\``,
    `- machine: ${os.availableParallelism()} CPUs (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}; ` +
      'redis-benchmark runs on the same CPUs as the server under test',
    `- node ${process.version}; ${await versionOf('redis-server')}; ${await versionOf('redis-benchmark')}`,
    `- load: \`redis-benchmark -h ${HOST} -p PORT ${benchArgs(0, requests, 1).slice(4, -3).join(' ')} -P {${PIPELINES.join(',')}} --csv\` (one run per test, the server's CPU time read around each; ${args.rounds} round(s) against the same server, each cell the median of its rounds)`,
    '- servers (DIR: a fresh temporary directory each, PORT: a free loopback port):',
    ...targets.map((t) => `  - ${t}: \`${commands.get(t)}\``),
    ...skipped.map((s) => `- skipped: ${s}`),
    '',
    `| target | ${COLUMNS.map(columnHead).join(' | ')} |`,
    `|---|${COLUMNS.map(() => '---:|').join('')}`,
    ...targets.map((t) => `| ${t} | ${COLUMNS.map(([test, p]) => cell(results, t, test, p)).join(' | ')} |`),
    '',
    ...(args.rounds > 1
      ? [
          'Every round (requests/s, in the order run):',
          '',
          `| target | ${COLUMNS.map(columnHead).join(' | ')} |`,
          `|---|${COLUMNS.map(() => '---:|').join('')}`,
          ...targets.map(
            (t) =>
              `| ${t} | ${COLUMNS.map(([test, p]) => (rounds.get(key(t, test, p)) ?? []).map(fmt).join(', ') || '-').join(' | ')} |`,
          ),
          '',
        ]
      : []),
    'Server CPU per request (µs, user + system of every thread; in parentheses: over the paired Redis target):',
    '',
    `| target | ${COLUMNS.map(columnHead).join(' | ')} |`,
    `|---|${COLUMNS.map(() => '---:|').join('')}`,
    ...targets.map((t) => `| ${t} | ${COLUMNS.map(([test, p]) => cpuCell(cpu, t, test, p)).join(' | ')} |`),
    '',
    `redis-benchmark's CPU per request (µs) / cores busy (server and redis-benchmark CPU over the run's wall time, of ${os.availableParallelism()}):`,
    '',
    `| target | ${COLUMNS.map(columnHead).join(' | ')} |`,
    `|---|${COLUMNS.map(() => '---:|').join('')}`,
    ...targets.map(
      (t) => `| ${t} | ${COLUMNS.map(([test, p]) => clientCell(cpu, t, test, p)).join(' | ')} |`,
    ),
    '',
    '| comparison (requests/s ratio) | ratio | Node floor / the same Redis | target | result |',
    '|---|---:|---:|---:|---|',
    ...checked.map((c) => `| ${c.label} | ${c.ratio} | ${c.floorRatio} | ${c.target} | ${c.verdict} |`),
    '',
  ];
  return lines.join('\n');
}

/** roundLines: a target's mixed-load rounds (GET/s, p99), when there was more than one. */
function roundLines(name: string, r: MixedResult): string[] {
  const rounds = r.rounds ?? [];
  if (rounds.length < 2) return [];
  return [
    `- ${name}, every round (median above): GET/s ${rounds.map((x) => fmt(x.getRps)).join(', ')}; ` +
      `GET p99 ms ${rounds.map((x) => x.p99Ms.toFixed(3)).join(', ')}`,
  ];
}

/** mixedLines: the mixed load as a markdown table with its two verdicts. */
function mixedLines(m: ReadonlyMap<TargetName, MixedResult>): string[] {
  const ours = m.get('cairn always');
  const theirs = m.get('redis always');
  if (ours === undefined) return [];
  const row = (name: string, r: MixedResult): string =>
    `| ${name} | ${fmt(r.getRps)} | ${r.p50Ms.toFixed(3)} | ${r.p99Ms.toFixed(3)} | ${fmt(r.setRps)} |`;
  const ratio = theirs === undefined ? Number.NaN : ours.getRps / theirs.getRps;
  return [
    `Mixed load, \`always\` persistence: ${MIXED_SET_CLIENTS} SET clients and ${MIXED_GET_CLIENTS} GET clients at once`,
    '',
    '| target | GET/s | GET p50 ms | GET p99 ms | SET/s (beside) |',
    '|---|---:|---:|---:|---:|',
    row('cairn always', ours),
    ...(theirs === undefined ? [] : [row('redis always', theirs)]),
    '',
    ...roundLines('cairn always', ours),
    ...(theirs === undefined ? [] : roundLines('redis always', theirs)),
    `- GET throughput cairn/redis: ${Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : '-'} (target >= ${TARGET_MIXED_GET_VS_REDIS}x): ${Number.isFinite(ratio) ? (ratio >= TARGET_MIXED_GET_VS_REDIS ? 'PASS' : 'MISS') : 'n/a'}`,
    `- cairn GET p99: ${ours.p99Ms} ms (target <= ${TARGET_MIXED_GET_P99_MS} ms): ${ours.p99Ms <= TARGET_MIXED_GET_P99_MS ? 'PASS' : 'MISS'}`,
  ];
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const requests = args.quick ? REQUESTS_QUICK : REQUESTS_FULL;
  if (!fs.existsSync(CAIRN_CLI)) throw new Error(`${CAIRN_CLI} not found: run \`npm run build\` first`);
  const measured: Measured = {
    results: new Map(),
    rounds: new Map(),
    cpu: new Map(),
    commands: new Map(),
    mixed: new Map(),
  };
  const { results, cpu: cpuResults, commands, mixed: mixedResults } = measured;
  const skipped: string[] = [];
  for (const spec of TARGETS) {
    if (args.mixedOnly && spec.name !== 'cairn always' && spec.name !== 'redis always') continue;
    console.error(
      `${spec.name}: redis-benchmark -n ${fmt(requests)}, -P ${PIPELINES.join(' and -P ')}, ${args.rounds} round(s)`,
    );
    try {
      await benchTarget(spec, requests, args, measured);
    } catch (err) {
      const why = `${spec.name} (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
      console.error(`skipping ${why}`);
      skipped.push(why);
      commands.delete(spec.name);
    }
  }

  const targets = TARGETS.map((t) => t.name).filter((t) => commands.has(t));
  const table = new Table({ head: ['requests/s', ...COLUMNS.map(columnHead)] });
  for (const t of targets) table.push([t, ...COLUMNS.map(([test, p]) => cell(results, t, test, p))]);
  console.log(table.toString());
  const cpuTable = new Table({ head: ['server CPU µs/request', ...COLUMNS.map(columnHead)] });
  for (const t of targets) cpuTable.push([t, ...COLUMNS.map(([test, p]) => cpuCell(cpuResults, t, test, p))]);
  console.log(cpuTable.toString());
  const clientTable = new Table({ head: ['client CPU µs/request / cores busy', ...COLUMNS.map(columnHead)] });
  for (const t of targets)
    clientTable.push([t, ...COLUMNS.map(([test, p]) => clientCell(cpuResults, t, test, p))]);
  console.log(clientTable.toString());
  const checked = check(results);
  const ratios = new Table({ head: ['comparison', 'ratio', 'Node floor / same Redis', 'target', 'result'] });
  for (const c of checked) ratios.push([c.label, c.ratio, c.floorRatio, c.target, c.verdict]);
  console.log(ratios.toString());
  const mixedRows = mixedLines(mixedResults);
  for (const line of mixedRows) console.log(line);
  console.log(`note: ${os.availableParallelism()} CPUs shared by redis-benchmark and the server under test`);

  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.appendFileSync(
    args.out,
    `${await markdown(args, requests, measured, checked, skipped)}\n${mixedRows.join('\n')}\n\n`,
  );
  console.log(`results appended to ${path.relative(process.cwd(), args.out) || args.out}`);
}

try {
  await main();
} finally {
  cleanupSync();
}
