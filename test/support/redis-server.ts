// A real redis-server for differential tests: started on a free loopback port without
// persistence, stopped by the caller. Tests skip (with a message) where it is not installed
// (Debian: apt-get install redis-server).
import { spawn, spawnSync } from 'node:child_process';
import type { Redis } from 'ioredis';
import { canConnect, freePort } from './ports.js';

/** REDIS_START_DEADLINE_MS: how long redis-server may take to accept connections. */
const REDIS_START_DEADLINE_MS = 10_000;
const POLL_MS = 20;

/** hasRedisServer: whether redis-server is on PATH; warns once for `file` when it is not. */
export function hasRedisServer(file: string): boolean {
  const ok = spawnSync('redis-server', ['--version']).status === 0;
  if (!ok) console.warn(`${file}: redis-server not on PATH, skipping (install Debian package redis-server)`);
  return ok;
}

export interface RedisServer {
  readonly port: number;
  stop(): void;
}

/** startRedisServer starts redis-server and resolves once it accepts connections. */
export async function startRedisServer(): Promise<RedisServer> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const deadline = Date.now() + REDIS_START_DEADLINE_MS;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('redis-server did not start');
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return { port, stop: () => child.kill('SIGTERM') };
}

/** replyText: a command's reply, or its error, as text to compare across servers. */
export async function replyText(client: Redis, command: readonly string[]): Promise<string> {
  try {
    return JSON.stringify(await client.call(command[0]!, ...command.slice(1)), (_, v) =>
      v !== null && typeof v === 'object' && v.type === 'Buffer' ? Buffer.from(v.data).toString() : v,
    );
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}

/** differences runs each command on both servers in turn and lists where their replies differ. */
export async function differences(
  ours: Redis,
  theirs: Redis,
  commands: readonly (readonly string[])[],
): Promise<string[]> {
  const out: string[] = [];
  for (const command of commands) {
    const [a, b] = [await replyText(ours, command), await replyText(theirs, command)];
    if (a !== b) out.push(`${command.join(' ')}: ours ${a}, redis ${b}`);
  }
  return out;
}

/**
 * execText runs `commands` in one MULTI/EXEC and returns the replies as text (each error as
 * `error: message`), so that two servers' transactions compare as strings.
 */
export async function execText(client: Redis, commands: readonly (readonly string[])[]): Promise<string> {
  const tx = client.multi();
  for (const command of commands) tx.call(command[0]!, ...command.slice(1));
  try {
    const replies = await tx.exec();
    return JSON.stringify(replies?.map(([err, value]) => (err === null ? value : `error: ${err.message}`)));
  } catch (err) {
    return `error: ${(err as Error).message}`;
  }
}
