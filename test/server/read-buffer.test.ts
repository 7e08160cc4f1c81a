// The server reads every connection's socket into one shared buffer (src/server/resp/read-buffer.ts):
// its bytes are lent to one read's handling. Here that buffer is tiny (so commands, lengths,
// CRLFs and payloads split across reads at every byte) and overwritten with junk after every read
// (afterRead): a parser state, an argument, a queued command or a reply that kept a view of it
// would then carry junk. Pipelines mix commands that run on views (SET, GET, INCR, MSET, ...)
// with ones that must copy first (ECHO's reply references a large argument, MULTI queues,
// SCAN/KEYS await, EVAL), and the replies and the keyspace are checked against a model.
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/protocol/resp/index.js';
import { RespError, type RespValue } from '../../src/protocol/resp/types.js';
import { Prng } from '../../src/stdx/prng.js';
import { exchange, type Running, startServer } from './support.js';

/**
 * BIG_BYTES: a payload larger than the reply writer copies (WRITER_COPY_BYTES_MAX: referenced by
 * the reply instead); small enough that a pipeline read a byte at a time stays quick.
 */
const BIG_BYTES = 9000;

let running: Running | undefined;
/** reads: reads handled through the shared buffer since the server started. */
let reads = 0;

afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function start(readBufferBytes: number): Promise<number> {
  const junk = new Prng(readBufferBytes);
  reads = 0;
  running = await startServer({
    limits: { readBufferBytes },
    afterRead: (buffer) => {
      reads++;
      for (let i = 0; i < buffer.length; i++) buffer[i] = junk.int(256);
    },
  });
  return running.port;
}

interface Step {
  readonly args: (string | Buffer)[];
  readonly reply?: RespValue;
}

/** steps builds a pipeline over `keys` keys and records the final values in `model`. */
function steps(keys: number, model: Map<string, string>): Step[] {
  const out: Step[] = [];
  const big = Buffer.alloc(BIG_BYTES, 'b');
  for (let i = 0; i < keys; i++) {
    const k = `rb:${String(i).padStart(6, '0')}`;
    const v = `value-${i}-${'x'.repeat(i % 40)}`;
    switch (i % 7) {
      case 0:
        model.set(k, v);
        out.push({ args: ['SET', k, v], reply: 'OK' }, { args: ['GET', k], reply: Buffer.from(v) });
        break;
      case 1:
        model.set(k, '12');
        out.push({ args: ['SET', k, '5'], reply: 'OK' }, { args: ['INCRBY', k, '7'], reply: 12 });
        break;
      case 2:
        model.set(k, v).set(`${k}/m`, `${v}/m`);
        out.push(
          { args: ['MSET', k, v, `${k}/m`, `${v}/m`], reply: 'OK' },
          { args: ['MGET', k, `${k}/m`], reply: [Buffer.from(v), Buffer.from(`${v}/m`)] },
        );
        break;
      case 3:
        // ECHO's reply references its (large) argument until the reply is written.
        out.push({ args: ['ECHO', big], reply: big });
        model.set(k, v);
        out.push({ args: ['SET', k, v], reply: 'OK' });
        break;
      case 4:
        model.set(k, `${v}!`);
        out.push(
          { args: ['MULTI'], reply: 'OK' },
          { args: ['SET', k, v], reply: 'QUEUED' },
          { args: ['APPEND', k, '!'], reply: 'QUEUED' },
          { args: ['EXEC'], reply: ['OK', v.length + 1] },
        );
        break;
      case 5:
        // KEYS uses its pattern after an await; the SET behind it waits in the parser meanwhile.
        model.set(k, `${v}/2`);
        out.push(
          { args: ['SET', k, v], reply: 'OK' },
          { args: ['KEYS', `${k}*`], reply: [Buffer.from(k)] },
          { args: ['SET', k, `${v}/2`], reply: 'OK' },
        );
        break;
      default:
        model.set(k, v);
        out.push({ args: ['EVAL', "return redis.call('set', KEYS[1], ARGV[1])", '1', k, v], reply: 'OK' });
    }
  }
  return out;
}

function check(replies: readonly RespValue[], plan: readonly Step[]): void {
  expect(replies).toHaveLength(plan.length);
  for (let j = 0; j < plan.length; j++) {
    const step = plan[j]!;
    const name = step.args.map((a) => (typeof a === 'string' ? a : `<${a.length} bytes>`)).join(' ');
    expect(replies[j] instanceof RespError, `${name}: ${String(replies[j])}`).toBe(false);
    if (step.reply !== undefined) expect(replies[j], name).toEqual(step.reply);
  }
}

describe('the shared socket read buffer, poisoned after every read', () => {
  it.each([
    [1, 30],
    [2, 30],
    [3, 30],
    [5, 30],
    [7, 40],
    [64, 200],
    [4096, 500],
    [65_536, 300],
  ])('a read buffer of %i bytes runs a pipeline of %i keys', async (bytes, keys) => {
    const port = await start(bytes);
    const model = new Map<string, string>();
    const plan = steps(keys, model);
    const data = Buffer.concat(plan.map((s) => encodeCommand(s.args)));
    check(await exchange(port, data, plan.length), plan);
    expect(reads).toBeGreaterThanOrEqual(Math.floor(data.length / bytes));
    const names = [...model.keys()];
    const got = await exchange(
      port,
      Buffer.concat(names.map((k) => encodeCommand(['GET', k]))),
      names.length,
    );
    for (let j = 0; j < names.length; j++) expect(String(got[j]), names[j]).toBe(model.get(names[j]!));
  });

  it('keeps a value that straddles many reads, and an inline command split anywhere', async () => {
    const port = await start(4096);
    const value = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < value.length; i++) value[i] = (i * 31 + 7) & 0xff;
    const data = Buffer.concat([
      encodeCommand(['SET', 'huge', value]),
      Buffer.from('SET "inline key" "inline value"\r\n'),
      encodeCommand(['GET', 'huge']),
      encodeCommand(['GET', 'inline key']),
    ]);
    const replies = await exchange(port, data, 4);
    expect(replies[0]).toBe('OK');
    expect(replies[1]).toBe('OK');
    expect(Buffer.compare(replies[2] as Buffer, value)).toBe(0);
    expect(String(replies[3])).toBe('inline value');
  });

  it('forgets a client that disconnects in the middle of a command, and serves the next', async () => {
    const port = await start(16);
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const whole = Buffer.concat([
      encodeCommand(['SET', 'first', 'one']),
      encodeCommand(['SET', 'cut', 'x'.repeat(500)]),
    ]);
    socket.write(whole.subarray(0, whole.length - 200));
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const replies = await exchange(
      port,
      Buffer.concat([
        encodeCommand(['GET', 'first']),
        encodeCommand(['EXISTS', 'cut']),
        encodeCommand(['PING']),
      ]),
      3,
    );
    expect(String(replies[0])).toBe('one');
    expect(replies[1]).toBe(0);
    expect(replies[2]).toBe('PONG');
  });

  it('runs many clients at once over the one buffer', async () => {
    const port = await start(5);
    const runs = Array.from({ length: 8 }, async (_, c) => {
      const plan: Step[] = [];
      for (let i = 0; i < 20; i++) {
        const k = `c${c}:${i}`;
        plan.push(
          { args: ['SET', k, `${c}-${i}`], reply: 'OK' },
          { args: ['GET', k], reply: Buffer.from(`${c}-${i}`) },
        );
      }
      const data = Buffer.concat(plan.map((s) => encodeCommand(s.args)));
      check(await exchange(port, data, plan.length), plan);
    });
    await Promise.all(runs);
  });
});
