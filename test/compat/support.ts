// The compatibility suite's harness (docs/compat.md): every scenario runs against `cairn serve`
// (the built CLI, a child process on a free loopback port over a fresh data directory) and, when
// redis-server is installed, against redis-server as the control, with the same assertions.
// A scenario that passes on Redis and fails on Cairn is a Cairn incompatibility; one that fails
// on both is a broken test.
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe } from 'vitest';
import { BIN, ensureBuilt } from '../cli/support.js';
import { canConnect, freePort } from '../support/ports.js';
import { hasRedisServer, startRedisServer } from '../support/redis-server.js';
import { tmpDir } from '../support/tmp-dir.js';

/** CAIRN_START_DEADLINE_MS: how long `cairn serve` may take to accept connections. */
const CAIRN_START_DEADLINE_MS = 20_000;
const POLL_MS = 20;

/** BUILD_TIMEOUT_MS: the first compat file may have to build dist/ (test/cli/support.ts). */
export const BUILD_TIMEOUT_MS = 120_000;

export interface Target {
  /** name: 'cairn' or 'redis' (the control). */
  readonly name: 'cairn' | 'redis';
  readonly port: number;
  readonly url: string;
  /** hashes: whether the server answers COMMAND INFO hset (hash commands are built elsewhere). */
  readonly hashes: boolean;
}

interface Started {
  readonly port: number;
  stop(): void;
}

async function startCairn(): Promise<Started> {
  await ensureBuilt();
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN.cairn, 'serve', '--dir', tmpDir('compat'), '--addr', `127.0.0.1:${port}`, '--http', 'off'],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const deadline = Date.now() + CAIRN_START_DEADLINE_MS;
  while (!(await canConnect(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`cairn serve did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return { port, stop: () => child.kill('SIGTERM') };
}

/** serverSupportsHashes probes `COMMAND INFO hset` (non-nil once hashes exist). */
export async function serverSupportsHashes(port: number): Promise<boolean> {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  try {
    const info = (await c.call('COMMAND', 'INFO', 'hset')) as unknown[];
    return Array.isArray(info) && info[0] !== null && info[0] !== undefined;
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

const withRedis = hasRedisServer('test/compat');

/**
 * describeTargets declares `body` once per server: Cairn always, redis-server when installed.
 * `body` gets a function returning the running target (valid inside tests and hooks).
 */
export function describeTargets(title: string, body: (target: () => Target) => void): void {
  const names: Target['name'][] = withRedis ? ['cairn', 'redis'] : ['cairn'];
  for (const name of names) {
    describe(`${title} on ${name}`, () => {
      let started: Started | undefined;
      let target: Target | undefined;
      beforeAll(async () => {
        started = name === 'cairn' ? await startCairn() : await startRedisServer();
        const port = started.port;
        target = { name, port, url: `redis://127.0.0.1:${port}`, hashes: await serverSupportsHashes(port) };
      }, BUILD_TIMEOUT_MS);
      afterAll(() => {
        started?.stop();
      });
      body(() => {
        if (target === undefined) throw new Error('the server did not start');
        return target;
      });
    });
  }
}

/** ioredisTo opens an ioredis client that fails fast rather than retrying forever. */
export function ioredisTo(target: Target): Redis {
  return new Redis({ port: target.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
}

/** sleep: for rate-limit windows and TTLs (the scenarios keep them short). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
