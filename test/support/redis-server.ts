// A real redis-server for differential tests: started on a free loopback port without
// persistence, stopped by the caller. Tests skip (with a message) where it is not installed
// (Debian: apt-get install redis-server).
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import type { Redis } from 'ioredis';
import { encodeCommand } from '../../src/protocol/resp/index.js';
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

/** replyEnd: where the RESP reply starting at `i` in `buf` ends, or -1 while it is incomplete. */
function replyEnd(buf: Buffer, i: number): number {
  if (i >= buf.length) return -1;
  const eol = buf.indexOf('\r\n', i);
  if (eol < 0) return -1;
  const type = String.fromCharCode(buf[i]!);
  const n = Number(buf.toString('latin1', i + 1, eol));
  let at = eol + 2;
  if ('$!='.includes(type)) return n < 0 ? at : at + n + 2 <= buf.length ? at + n + 2 : -1;
  if (!'*~>%|'.includes(type) || n < 0) return at;
  const items = type === '%' || type === '|' ? 2 * n : n;
  for (let k = 0; k < items; k++) {
    at = replyEnd(buf, at);
    if (at < 0) return -1;
  }
  return type === '|' ? replyEnd(buf, at) : at;
}

/**
 * rawReplies sends each command on one connection to 127.0.0.1:port, waiting for its reply
 * (`replies` of them for a command that answers several, such as SUBSCRIBE a b), and returns
 * each command's reply bytes as latin1 text, for a byte-exact comparison across servers.
 */
export async function rawReplies(
  port: number,
  commands: readonly { readonly command: readonly string[]; readonly replies?: number }[],
): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let closed = false;
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  socket.on('error', () => {});
  const out: string[] = [];
  try {
    for (const { command, replies = 1 } of commands) {
      socket.write(encodeCommand(command.map((a) => Buffer.from(a))));
      let end = 0;
      for (let k = 0; k < replies; k++) {
        for (;;) {
          const e = replyEnd(buf, end);
          if (e >= 0) {
            end = e;
            break;
          }
          if (closed) throw new Error(`connection closed after ${JSON.stringify(out)}`);
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
        }
      }
      out.push(buf.toString('latin1', 0, end));
      buf = buf.subarray(end);
    }
    return out;
  } finally {
    socket.destroy();
  }
}

/**
 * rawDifferences runs the same commands on one connection to each server and lists the commands
 * whose reply bytes differ.
 */
export async function rawDifferences(
  ours: number,
  theirs: number,
  commands: readonly (readonly string[])[],
): Promise<string[]> {
  const steps = commands.map((command) => ({ command }));
  const [a, b] = [await rawReplies(ours, steps), await rawReplies(theirs, steps)];
  return commands.flatMap((command, i) =>
    a[i] === b[i]
      ? []
      : [`${command.join(' ')}: ours ${JSON.stringify(a[i])}, redis ${JSON.stringify(b[i])}`],
  );
}
