// Test support: a real RESP server in-process on 127.0.0.1, over a fresh store in a temp dir.
import * as net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { type Db, open } from '../../src/db/db.js';
import { INCOMPLETE, ReplyParser } from '../../src/protocol/resp/index.js';
import type { RespValue } from '../../src/protocol/resp/types.js';
import { createRespServer, type RespServer, type RespServerOptions } from '../../src/server/resp/index.js';
import { startRedisServer } from '../support/redis-server.js';
import { tmpDir } from '../support/tmp-dir.js';

export interface Running {
  readonly server: RespServer;
  readonly db: Db;
  readonly dir: string;
  readonly port: number;
  /** stop closes the server and the store. */
  stop(): Promise<void>;
}

/** connectIoredis opens an ioredis client to 127.0.0.1:`port` that fails fast instead of retrying. */
export async function connectIoredis(port: number): Promise<Redis> {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  await c.connect();
  return c;
}

export async function startServer(
  options: Partial<Omit<RespServerOptions, 'db'>> & { dir?: string } = {},
): Promise<Running> {
  const dir = options.dir ?? tmpDir('resp');
  const db = await open(dir);
  const server = createRespServer({ version: '0.0.0-test', ...options, db });
  await server.listen('127.0.0.1', 0);
  const port = server.address().port;
  return {
    server,
    db,
    dir,
    port,
    async stop() {
      await server.close();
      await db.close();
    },
  };
}

/** RawClient: a socket that collects everything the server sends. */
export class RawClient {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  closed = false;
  private waiters: (() => void)[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** until waits for the received text to satisfy `pred`, or for the socket to close. */
  async until(pred: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.received.toString('latin1');
      if (pred(text) || this.closed) return text;
      if (Date.now() > deadline)
        throw new Error(`timed out; received so far: ${JSON.stringify(text.slice(0, 500))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async waitClosed(timeoutMs = 5000): Promise<string> {
    return this.until(() => false, timeoutMs).catch(() => {
      throw new Error('connection not closed');
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** RedisPair: a Cairn server and a real redis-server side by side, an ioredis client on each. */
export interface RedisPair {
  readonly ours: Redis;
  readonly theirs: Redis;
  stop(): Promise<void>;
}

/**
 * useRedisPair starts a RedisPair before the enclosing describe's tests and stops it after them;
 * the returned object reads the pair's clients (valid inside the tests).
 */
export function useRedisPair(): Pick<RedisPair, 'ours' | 'theirs'> {
  let pair: RedisPair | undefined;
  beforeAll(async () => {
    pair = await startRedisPair();
  });
  afterAll(async () => {
    await pair?.stop();
  });
  const started = (): RedisPair => {
    if (pair === undefined) throw new Error('the Redis pair is used outside its tests');
    return pair;
  };
  return {
    get ours() {
      return started().ours;
    },
    get theirs() {
      return started().theirs;
    },
  };
}

/** startRedisPair starts both servers (redis-server must be installed: see hasRedisServer). */
export async function startRedisPair(): Promise<RedisPair> {
  const r = await startServer();
  const redis = await startRedisServer();
  const ours = new Redis({ port: r.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  const theirs = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
  return {
    ours,
    theirs,
    async stop() {
      ours.disconnect();
      theirs.disconnect();
      redis.stop();
      await r.stop();
    },
  };
}

/** exchange sends `data` in one write to 127.0.0.1:port and parses exactly `count` replies. */
export async function exchange(port: number, data: Buffer, count: number): Promise<RespValue[]> {
  const socket = net.connect(port, '127.0.0.1');
  const parser = new ReplyParser();
  const replies: RespValue[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        parser.push(chunk);
        for (let r = parser.next(); r !== INCOMPLETE; r = parser.next()) replies.push(r);
        if (replies.length >= count) resolve();
      });
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`closed after ${replies.length} replies`)));
    });
    socket.write(data);
    await done;
    return replies;
  } finally {
    socket.destroy();
  }
}
