// The cost of a Lua script call (issue 15): read-modify-write scripts on one hot key from many
// clients, against `cairn serve` and, when installed, a redis-server with matching durability,
// each a child process on a free loopback port with its own temporary data directory.
//
//   npx tsx bench/lua.ts                    1,000 scripts from 20 clients (the workload)
//   npx tsx bench/lua.ts --n 20000          more scripts, steadier numbers
//
// Targets: cairn --sync always (from src/ through tsx) and --sync never; redis appendfsync
// always and no persistence. For each: the script (GET, then SET of the value plus one, sent
// as EVALSHA by ioredis's defineCommand) and, for scale, a plain INCR: ops/s and the ratio of
// Cairn to Redis. Clients and servers share the machine's CPUs: compare within one run.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { cleanUpOnExit, freePort, live, tempDirs } from './child-processes.js';

const HOST = '127.0.0.1';
const CLIENTS = 20;
const SCRIPTS_DEFAULT = 1_000;
/** WARMUP_SCRIPTS: run first and not measured (script cache, JIT, connections). */
const WARMUP_SCRIPTS = 200;
const READY_TIMEOUT_MS = 20_000;
const READY_POLL_MS = 100;
const KEY = 'bench:lua:hot';
const SCRIPT = `
local v = tonumber(redis.call('get', KEYS[1]) or '0')
redis.call('set', KEYS[1], v + 1)
return v + 1`;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAIRN_CLI = path.join(REPO_ROOT, 'src', 'cli', 'cairn.ts');
const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');

interface Target {
  readonly name: string;
  readonly start: (port: number, dir: string) => ChildProcess;
}

const cairn = (sync: string): Target => ({
  name: `cairn ${sync}`,
  start: (port, dir) =>
    spawn(
      TSX,
      [CAIRN_CLI, 'serve', '--dir', dir, '--addr', `${HOST}:${port}`, '--http', 'off', '--sync', sync],
      {
        stdio: 'ignore',
      },
    ),
});

const redis = (name: string, args: readonly string[]): Target => ({
  name,
  start: (port, dir) =>
    spawn('redis-server', ['--port', String(port), '--bind', HOST, '--dir', dir, '--save', '', ...args], {
      stdio: 'ignore',
    }),
});

type WithScript = Redis & { rmw(key: string): Promise<number> };

async function connect(port: number): Promise<WithScript> {
  const c = new Redis({ port, host: HOST, maxRetriesPerRequest: 0, lazyConnect: true });
  await c.connect();
  c.defineCommand('rmw', { numberOfKeys: 1, lua: SCRIPT });
  return c as WithScript;
}

async function ready(port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const c = new Redis({
      port,
      host: HOST,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    c.on('error', () => {}); // refused while the server starts: polled here
    try {
      await c.connect();
      await c.ping();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`no server on port ${port}`);
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    } finally {
      c.disconnect();
    }
  }
}

/** drive runs `total` calls of `call` spread over the clients; ops/s. */
async function drive(
  clients: WithScript[],
  total: number,
  call: (c: WithScript) => Promise<unknown>,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (next < total) {
        next++;
        await call(c);
      }
    }),
  );
  return total / ((performance.now() - started) / 1000);
}

interface Row {
  readonly target: string;
  readonly script: number;
  readonly incr: number;
}

async function measure(target: Target, n: number): Promise<Row> {
  const port = await freePort(HOST);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-bench-lua-'));
  tempDirs.add(dir);
  const child = target.start(port, dir);
  live.add(child);
  try {
    await ready(port);
    const clients = await Promise.all(Array.from({ length: CLIENTS }, () => connect(port)));
    await clients[0]!.del(KEY);
    await drive(clients, WARMUP_SCRIPTS, (c) => c.rmw(KEY));
    const script = await drive(clients, n, (c) => c.rmw(KEY));
    const final = Number(await clients[0]!.get(KEY));
    if (final !== WARMUP_SCRIPTS + n) throw new Error(`${target.name}: lost updates (${final})`);
    const incr = await drive(clients, n, (c) => c.incr(`${KEY}:incr`));
    for (const c of clients) c.disconnect();
    return { target: target.name, script, incr };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    live.delete(child);
    fs.rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

async function main(): Promise<void> {
  cleanUpOnExit('the benchmark servers');
  const at = process.argv.indexOf('--n');
  const n = at === -1 ? SCRIPTS_DEFAULT : Number(process.argv[at + 1]);
  const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
  const pairs: [Target, Target | undefined][] = [
    [
      cairn('always'),
      hasRedis ? redis('redis always', ['--appendonly', 'yes', '--appendfsync', 'always']) : undefined,
    ],
    [cairn('never'), hasRedis ? redis('redis nopersist', ['--appendonly', 'no']) : undefined],
  ];
  console.log(
    `${n} read-modify-write scripts (GET, SET +1) on one key from ${CLIENTS} clients; then ${n} INCR`,
  );
  console.log(`${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? 'unknown CPU'}, node ${process.version}`);
  console.log('target            script ops/s   INCR ops/s   script/INCR   script vs redis');
  for (const [ours, theirs] of pairs) {
    const a = await measure(ours, n);
    const b = theirs === undefined ? undefined : await measure(theirs, n);
    const line = (r: Row, ratio: string): string =>
      `${r.target.padEnd(16)}  ${r.script.toFixed(0).padStart(12)}  ${r.incr.toFixed(0).padStart(11)}  ${(r.script / r.incr).toFixed(2).padStart(12)}  ${ratio.padStart(16)}`;
    console.log(line(a, b === undefined ? 'n/a' : (a.script / b.script).toFixed(2)));
    if (b !== undefined) console.log(line(b, ''));
  }
}

await main();
