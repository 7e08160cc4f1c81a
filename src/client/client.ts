// CairnClient: a small RESP client over one TCP connection, used by kvs-client and the tests.
// It speaks plain RESP2, so it works against Cairn and against any Redis. Commands are
// pipelined: each call writes at once and its reply is matched in order.
//
// Buffers: arguments are copied into the request frame in the call (encodeCommand), so callers
// may reuse theirs at once. Bulk replies are views into the socket chunk they arrived in (fresh
// allocations nobody reuses): they stay valid, but each keeps its chunk (up to 64 KiB) alive, so
// copy a small value that is to be kept for long (a cache).
import * as net from 'node:net';
import { encodeCommand, INCOMPLETE, ReplyParser, RespError, type RespValue } from '../protocol/resp/index.js';

/** CONNECT_TIMEOUT_MS: how long connect() waits before giving up. */
export const CONNECT_TIMEOUT_MS = 5_000;

export class ClientError extends Error {
  override name = 'ClientError';
}

interface Waiter {
  resolve(value: RespValue): void;
  reject(err: Error): void;
}

export class CairnClient {
  private readonly parser = new ReplyParser();
  private readonly waiters: Waiter[] = [];
  private failure: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new ClientError('connection closed')));
  }

  /** connect opens a connection to host:port. */
  static connect(host: string, port: number, timeoutMs = CONNECT_TIMEOUT_MS): Promise<CairnClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      socket.setNoDelay(true);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new ClientError(`could not connect to ${host}:${port} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new CairnClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new ClientError(`could not connect to ${host}:${port}: ${err.message}`));
      });
    });
  }

  /** call sends one command and resolves with its reply; an error reply rejects with RespError. */
  call(...args: (string | Buffer)[]): Promise<RespValue> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<RespValue>((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.socket.write(encodeCommand(args));
    });
  }

  async get(key: string | Buffer): Promise<Buffer | null> {
    const reply = await this.call('GET', key);
    if (reply === null || Buffer.isBuffer(reply)) return reply;
    throw new ClientError(`unexpected reply to GET: ${String(reply)}`);
  }

  async set(key: string | Buffer, value: string | Buffer): Promise<void> {
    const reply = await this.call('SET', key, value);
    if (reply !== 'OK') throw new ClientError(`unexpected reply to SET: ${String(reply)}`);
  }

  /** del removes keys and resolves with how many existed. */
  async del(...keys: (string | Buffer)[]): Promise<number> {
    const reply = await this.call('DEL', ...keys);
    if (typeof reply === 'number') return reply;
    throw new ClientError(`unexpected reply to DEL: ${String(reply)}`);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.push(chunk);
      for (;;) {
        const reply = this.parser.next();
        if (reply === INCOMPLETE) break;
        const waiter = this.waiters.shift();
        if (waiter === undefined) throw new ClientError('reply without a request');
        if (reply instanceof RespError) waiter.reject(reply);
        else waiter.resolve(reply);
      }
    } catch (err) {
      this.fail(err instanceof Error ? err : new ClientError(String(err)));
      this.socket.destroy();
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}
