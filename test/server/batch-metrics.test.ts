// The commands of one read (a pipelined batch) share one reading of the clock for their start,
// and the latencies of those that complete within the batch are observed at its end, when their
// replies are flushed (connection.ts, `pumping`). Every command is still counted once: replies
// given at once, replies held until their write is durable, and a batch cut short by QUIT.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand } from '../../src/protocol/resp/index.js';
import { exchange, type Running, startServer } from './support.js';

/** calls reads `cmdstat_<command>:calls=N` from INFO commandstats (0 when absent). */
async function calls(port: number, command: string): Promise<number> {
  const [info] = await exchange(port, encodeCommand(['INFO', 'commandstats']), 1);
  const text = Buffer.isBuffer(info) ? info.toString('latin1') : String(info);
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+),usec=(\\d+)`).exec(text);
  return m === null ? 0 : Number(m[1]);
}

let running: Running;
beforeAll(async () => {
  running = await startServer();
});
afterAll(async () => {
  await running.stop();
});

describe('commands of a pipelined batch', () => {
  it('are each counted once, whether their replies are given at once or held for durability', async () => {
    const { port } = running;
    const batch: Buffer[] = [];
    for (let i = 0; i < 30; i++) {
      batch.push(encodeCommand(['SET', `k${i}`, `v${i}`])); // held until the write is durable
      batch.push(encodeCommand(['GET', `k${i}`])); // answered within the batch
      batch.push(encodeCommand(['STRLEN', 'missing']));
    }
    const replies = await exchange(port, Buffer.concat(batch), 90);
    expect(replies).toHaveLength(90);
    expect(await calls(port, 'set')).toBe(30);
    expect(await calls(port, 'get')).toBe(30);
    expect(await calls(port, 'strlen')).toBe(30);
  });

  it('are counted when QUIT ends the batch', async () => {
    const { port } = running;
    const before = await calls(port, 'echo');
    const batch = Buffer.concat([
      encodeCommand(['ECHO', 'a']),
      encodeCommand(['ECHO', 'b']),
      encodeCommand(['QUIT']),
      encodeCommand(['ECHO', 'never run']),
    ]);
    const replies = await exchange(port, batch, 3);
    expect(replies.slice(0, 2).map(String)).toEqual(['a', 'b']);
    expect(await calls(port, 'echo')).toBe(before + 2);
    expect(await calls(port, 'quit')).toBeGreaterThanOrEqual(1);
  });
});
