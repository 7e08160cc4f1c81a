// Helpers for the CLI end-to-end tests: build dist/ once when it is older than the sources, and
// run the built `kvs` / `cairn` binaries as child processes.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { CairnClient } from '../../src/client/client.js';
import { freePort } from '../support/ports.js';

export const ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BIN = {
  kvs: path.join(ROOT, 'dist', 'src', 'cli', 'kvs.js'),
  cairn: path.join(ROOT, 'dist', 'src', 'cli', 'cairn.js'),
  'kvs-server': path.join(ROOT, 'dist', 'src', 'cli', 'kvs-server.js'),
  'kvs-client': path.join(ROOT, 'dist', 'src', 'cli', 'kvs-client.js'),
} as const;

/** BUILD_LOCK_STALE_MS: a build lock older than this was left by a killed test run. */
const BUILD_LOCK_STALE_MS = 120_000;
const BUILD_WAIT_STEP_MS = 100;
/** SOURCE_DEPTH_MAX: bound on directory nesting while collecting source mtimes. */
const SOURCE_DEPTH_MAX = 16;
/** RUN_TIMEOUT_MS: a single CLI invocation that takes longer than this has hung. */
const RUN_TIMEOUT_MS = 20_000;

/** ENSURE_BUILT_TIMEOUT_MS: a build of dist/ (tsc) from scratch, on a loaded machine. */
const ENSURE_BUILT_TIMEOUT_MS = 120_000;

/**
 * builtChildren registers a file's hooks: dist/ is built before its tests, and every child
 * process they add to the returned list is killed (SIGKILL) after them.
 */
export function builtChildren(): ChildProcess[] {
  const children: ChildProcess[] = [];
  beforeAll(ensureBuilt, ENSURE_BUILT_TIMEOUT_MS);
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  return children;
}

/**
 * ensureBuilt compiles src/ into dist/ (tsc -p tsconfig.build.json) unless the CLI's compiled
 * files are newer than every source file. Test files run in parallel processes, so the build
 * is serialized by a lock directory; whoever gets it second finds dist/ fresh.
 */
export async function ensureBuilt(): Promise<void> {
  if (isFresh()) return;
  const lock = path.join(
    os.tmpdir(),
    `cairn-cli-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 16)}.lock`,
  );
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > BUILD_LOCK_STALE_MS)
          fs.rmSync(lock, { recursive: true });
      } catch {
        // Released meanwhile.
      }
      await new Promise((resolve) => setTimeout(resolve, BUILD_WAIT_STEP_MS));
    }
  }
  try {
    if (isFresh()) return;
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    const output = `${result.stdout}${result.stderr}`;
    // tsc emits even when other parts of src/ have type errors; those belong to their owners'
    // suites. Errors in the CLI itself, or missing output, fail these tests.
    if (/^src\/cli\//m.test(output) || !fs.existsSync(BIN.kvs) || !fs.existsSync(BIN.cairn)) {
      throw new Error(`build failed:\n${output}`);
    }
    if (result.status !== 0) console.warn(`tsc reported errors outside src/cli:\n${output}`);
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

function isFresh(): boolean {
  let built: number;
  try {
    built = Math.min(fs.statSync(BIN.kvs).mtimeMs, fs.statSync(BIN.cairn).mtimeMs);
  } catch {
    return false;
  }
  let newest = 0;
  for (const name of ['package.json', 'tsconfig.json', 'tsconfig.build.json']) {
    newest = Math.max(newest, fs.statSync(path.join(ROOT, name)).mtimeMs);
  }
  const walk = (dir: string, depth: number) => {
    if (depth > SOURCE_DEPTH_MAX) return;
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full, depth + 1);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        newest = Math.max(newest, fs.statSync(full).mtimeMs);
      }
    }
  };
  walk(path.join(ROOT, 'src'), 0);
  return built >= newest;
}

export interface RunResult {
  /** code: the exit code (null when killed by a signal). */
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** out: stdout decoded as UTF-8. */
  readonly out: string;
}

/** run runs a built binary with `args` in `cwd` and collects its output. */
export function run(bin: keyof typeof BIN, args: readonly string[], cwd: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.CAIRN_DEBUG;
    const child = spawn(process.execPath, [BIN[bin], ...args], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: RUN_TIMEOUT_MS,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdout = Buffer.concat(out);
      resolve({ code, stdout, out: stdout.toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** kvs runs `kvs args...` in `cwd`. */
export function kvs(cwd: string, ...args: string[]): Promise<RunResult> {
  return run('kvs', args, cwd);
}

/** cairn runs `cairn args...` in `cwd`. */
export function cairn(cwd: string, ...args: string[]): Promise<RunResult> {
  return run('cairn', args, cwd);
}

/** SERVE_START_TIMEOUT_MS: how long a started `cairn serve` may take to accept RESP connections. */
const SERVE_START_TIMEOUT_MS = 30_000;
const SERVE_POLL_MS = 25;

/** ServedCairn: a `cairn serve` child that serveCairn started. */
export interface ServedCairn {
  readonly child: ChildProcess;
  /** resp: its RESP port on 127.0.0.1. */
  readonly resp: number;
  /** exited: resolves when the process has exited, however it ended. */
  readonly exited: Promise<void>;
  /** stop ends it with SIGTERM (a clean shutdown) and waits for its exit. */
  stop(): Promise<void>;
}

/**
 * serveCairn starts the built `cairn serve --addr 127.0.0.1:<a free port> args...` and resolves
 * once it accepts a RESP connection. The child is added to `children`, for the test file's
 * cleanup to kill.
 */
export async function serveCairn(args: readonly string[], children: ChildProcess[]): Promise<ServedCairn> {
  const resp = await freePort();
  const child = spawn(process.execPath, [BIN.cairn, 'serve', '--addr', `127.0.0.1:${resp}`, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
  });
  child.stdout?.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + SERVE_START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`cairn serve exited: ${log}`);
    try {
      await (await CairnClient.connect('127.0.0.1', resp, 500)).close();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`cairn serve did not start: ${log}`);
      await new Promise((r) => setTimeout(r, SERVE_POLL_MS));
    }
  }
  return {
    child,
    resp,
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** STACK_FRAME matches a line of a JavaScript stack trace. */
export const STACK_FRAME = /^\s+at /m;
