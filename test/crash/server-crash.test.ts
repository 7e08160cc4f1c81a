// `cairn serve --sync always` killed with SIGKILL while clients pipeline SETs (written as runs of
// SETs: src/server/resp/set-run.ts), restarted on the same directory: every SET a client got +OK
// for is there, holding its value or a value the same client sent after it (a write can be
// durable before its reply leaves). Keys in order, in reverse and at random, with overwrites.
//
// CAIRN_SERVER_CRASH_CYCLES sets the number of kills (default: a sample for CI; `npm run
// test:crash` asks for more).
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/stdx/prng.js';
import { builtChildren, type ServedCairn, serveCairn } from '../cli/support.js';
import { tmpDir } from '../support/tmp-dir.js';

const CYCLES = Number(process.env.CAIRN_SERVER_CRASH_CYCLES ?? 4);
/** CLIENTS: pipelining clients per cycle; PIPELINE: SETs each sends per write. */
const CLIENTS = 4;
const PIPELINE = 16;
/** KILL_AFTER_MS_MIN/MAX: how long the clients write before the kill. */
const KILL_AFTER_MS_MIN = 100;
const KILL_AFTER_MS_MAX = 400;
/** KEY_SPACE: keys per client, so that random picks overwrite. */
const KEY_SPACE = 2_000;

const children = builtChildren();

/** start serves `dir`, fsyncing every write before its reply. */
function start(dir: string): Promise<ServedCairn> {
  return serveCairn(['--dir', dir, '--http', 'off', '--sync', 'always', '--log-level', 'warn'], children);
}

/** What one client sent to one key, in order, and how many of those writes were acknowledged. */
interface KeyLog {
  readonly values: string[];
  acked: number;
}

/** order: the client's key for its i-th SET (in order, in reverse, or at random). */
function keyOf(client: number, i: number, rng: Prng): string {
  const n =
    client === 0 ? i % KEY_SPACE : client === 1 ? KEY_SPACE - 1 - (i % KEY_SPACE) : rng.int(KEY_SPACE);
  return `c${client}:${String(n).padStart(6, '0')}`;
}

const encode = (args: readonly string[]): string =>
  `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

/**
 * writer pipelines SETs of client `client` until its connection is cut, logging into `logs`
 * what it sent and what was acknowledged (replies come in order: the k-th +OK is the k-th SET);
 * resolves with the number acknowledged.
 */
function writer(port: number, client: number, cycle: number, logs: Map<string, KeyLog>): Promise<number> {
  const rng = new Prng(cycle * 100 + client + 1);
  const sent: string[] = []; // keys in sending order
  let replied = 0;
  let i = 0;
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let tail = '';
    const sendBatch = (): void => {
      let out = '';
      for (let j = 0; j < PIPELINE; j++, i++) {
        const key = keyOf(client, i, rng);
        const value = `v${cycle}:${client}:${i}`;
        let log = logs.get(key);
        if (log === undefined) {
          log = { values: [], acked: 0 };
          logs.set(key, log);
        }
        log.values.push(value);
        sent.push(key);
        out += encode(['SET', key, value]);
      }
      socket.write(out);
    };
    socket.on('connect', sendBatch);
    socket.on('data', (chunk: Buffer) => {
      tail += chunk.toString('latin1');
      let at = tail.indexOf('\r\n');
      while (at >= 0) {
        const line = tail.slice(0, at);
        tail = tail.slice(at + 2);
        if (line !== '+OK') {
          reject(new Error(`client ${client}: unexpected reply ${line}`));
          socket.destroy();
          return;
        }
        const log = logs.get(sent[replied] as string) as KeyLog;
        log.acked = log.values.indexOf(`v${cycle}:${client}:${replied}`) + 1;
        replied++;
        at = tail.indexOf('\r\n');
      }
      // One pipeline in flight at a time, as redis-benchmark -P keeps.
      if (replied === i) sendBatch();
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve(replied));
  });
}

/** readAll reads every key of `logs` over one connection (GETs in pipelines). */
async function readAll(port: number, keys: readonly string[]): Promise<Map<string, string | null>> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  const got = new Map<string, string | null>();
  let buf = Buffer.alloc(0);
  let next = 0;
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const eol = buf.indexOf('\r\n');
        if (eol < 0) return;
        const head = buf.subarray(0, eol).toString('latin1');
        if (head === '$-1') {
          got.set(keys[next++] as string, null);
          buf = buf.subarray(eol + 2);
        } else if (head.startsWith('$')) {
          const len = Number(head.slice(1));
          if (buf.length < eol + 2 + len + 2) return;
          got.set(keys[next++] as string, buf.subarray(eol + 2, eol + 2 + len).toString('latin1'));
          buf = buf.subarray(eol + 2 + len + 2);
        } else {
          reject(new Error(`unexpected reply ${head}`));
          return;
        }
        if (next === keys.length) resolve();
      }
    });
  });
  socket.write(keys.map((k) => encode(['GET', k])).join(''));
  await done;
  socket.destroy();
  return got;
}

describe('cairn serve killed during pipelined SETs', () => {
  it(`keeps every acknowledged SET across ${CYCLES} kills (keys in order, reverse, random)`, async () => {
    const dir = tmpDir('server-crash');
    const rng = new Prng(7);
    // Per key: every value any cycle sent, and the index after the last acknowledged one.
    const logs = new Map<string, KeyLog>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const { child, resp: port, exited } = await start(dir);
      const writers = Array.from({ length: CLIENTS }, (_, c) => writer(port, c, cycle, logs));
      await new Promise((r) =>
        setTimeout(r, KILL_AFTER_MS_MIN + rng.int(KILL_AFTER_MS_MAX - KILL_AFTER_MS_MIN)),
      );
      child.kill('SIGKILL');
      await exited;
      const acknowledged = (await Promise.all(writers)).reduce((x, y) => x + y, 0);
      // The kill must come in the middle of the writes, or the cycle checks nothing.
      expect(acknowledged).toBeGreaterThanOrEqual(PIPELINE);
      // Restart and check: each key holds its last acknowledged value or one sent after it.
      const again = await start(dir);
      const keys = [...logs.keys()];
      const got = await readAll(again.resp, keys);
      for (const key of keys) {
        const log = logs.get(key) as KeyLog;
        const value = got.get(key) ?? null;
        if (log.acked === 0) continue; // never acknowledged: absent or any value sent is fine
        const at = value === null ? -1 : log.values.indexOf(value);
        if (at < log.acked - 1)
          throw new Error(
            `cycle ${cycle}: ${key} holds ${value} (sent #${at + 1}); its write #${log.acked} (${log.values[log.acked - 1]}) was acknowledged`,
          );
        // What the restart shows is what the next cycle builds on: later writes supersede it.
        log.values.splice(0, at);
        log.acked = 1;
      }
      again.child.kill('SIGKILL');
      await again.exited;
    }
  }, 300_000);
});
