// The forwarder against a fake leader on loopback: a client's pipeline stays a pipeline (the
// leader sees every command before it answers any), replies come back in order, and after a
// CLUSTERDOWN the connection takes no new command (retries must not be overtaken).
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../io/clock.js';
import { RespError } from '../../protocol/resp/index.js';
import { ClusterDownError } from '../../storage/errors.js';
import { TxnConflictError } from '../../txn/errors.js';
import { Forwarder } from './forwarder.js';

const TIMEOUT_MS = 5_000;
const servers: net.Server[] = [];
const forwarders: Forwarder[] = [];

afterEach(async () => {
  for (const f of forwarders.splice(0)) f.close();
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** fakeLeader answers CAIRN.FORWARDED at once, then `answer` decides, given every command seen so far. */
async function fakeLeader(
  answer: (seen: string[], socket: net.Socket) => void,
): Promise<{ addr: string; seen: string[] }> {
  const seen: string[] = [];
  const server = net.createServer((socket) => {
    let buffered = '';
    socket.on('data', (chunk) => {
      buffered += chunk.toString('latin1');
      // Commands are arrays of bulk strings; the tests use short ASCII ones.
      for (;;) {
        const m = /^\*(\d+)\r\n((?:\$\d+\r\n[^\r]*\r\n)*)/.exec(buffered);
        if (m === null) return;
        const parts = [...m[2]!.matchAll(/\$\d+\r\n([^\r]*)\r\n/g)].map((x) => x[1]!);
        if (parts.length < Number(m[1])) return;
        buffered = buffered.slice(m[0].length);
        const command = parts.join(' ');
        if (command === 'CAIRN.FORWARDED') {
          socket.write('+OK\r\n');
          continue;
        }
        seen.push(command);
        answer(seen, socket);
      }
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return { addr: `127.0.0.1:${port}`, seen };
}

function forwarder(): Forwarder {
  const f = new Forwarder(undefined, TIMEOUT_MS, systemClock);
  forwarders.push(f);
  return f;
}

describe('Forwarder', () => {
  it('pipelines: the leader has every command of a pipeline before it answers one', async () => {
    const n = 20;
    const { addr, seen } = await fakeLeader((all, socket) => {
      if (all.length < n) return;
      socket.write(all.map((_, i) => `:${i + 1}\r\n`).join(''));
    });
    const f = forwarder();
    const target = async (): Promise<string> => addr;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        f.forward(target, 'incr', [Buffer.from('INCR'), Buffer.from(`k${i}`)], 2, true),
      ),
    );
    expect(replies).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(seen).toEqual(Array.from({ length: n }, (_, i) => `INCR k${i}`));
  });

  it('after a CLUSTERDOWN, a first attempt is refused unsent; a retry opens a new connection', async () => {
    let connections = 0;
    const { addr, seen } = await fakeLeader((all, socket) => {
      socket.write(all.at(-1) === 'SET a 1' ? '-CLUSTERDOWN not the leader\r\n' : '+OK\r\n');
    });
    const server = servers.at(-1)!;
    server.on('connection', () => connections++);
    const f = forwarder();
    const target = async (): Promise<string> => addr;
    const refused = await f.forward(
      target,
      'set',
      [Buffer.from('SET'), Buffer.from('a'), Buffer.from('1')],
      2,
      true,
    );
    expect(refused).toBeInstanceOf(RespError);
    await expect(
      f.forward(target, 'set', [Buffer.from('SET'), Buffer.from('b'), Buffer.from('2')], 2, true),
    ).rejects.toBeInstanceOf(ClusterDownError);
    expect(seen).toEqual(['SET a 1']);
    const retried = await f.forward(
      target,
      'set',
      [Buffer.from('SET'), Buffer.from('b'), Buffer.from('2')],
      2,
      true,
      true,
    );
    expect(retried).toBe('OK');
    expect(seen).toEqual(['SET a 1', 'SET b 2']);
    expect(connections).toBe(2);
  });

  it("copies the caller's buffers: poisoning them after the call changes nothing sent", async () => {
    const { addr, seen } = await fakeLeader((_all, socket) => socket.write('+OK\r\n'));
    const f = forwarder();
    const key = Buffer.from('key');
    const pending = f.forward(async () => addr, 'set', [Buffer.from('SET'), key, Buffer.from('v')], 2, true);
    key.fill(0x78);
    expect(await pending).toBe('OK');
    expect(seen).toEqual(['SET key v']);
  });

  it('a refusal inside a transaction ends it (TxnConflictError once), then the client goes on', async () => {
    const { addr, seen } = await fakeLeader((all, socket) => {
      socket.write(all.at(-1) === 'GET k' ? '-CLUSTERDOWN not the leader\r\n' : '+OK\r\n');
    });
    const f = forwarder();
    const target = async (): Promise<string> => addr;
    const call = (...args: string[]) =>
      f.forward(
        target,
        args[0]!.toLowerCase(),
        args.map((a) => Buffer.from(a)),
        2,
        false,
      );
    expect(await call('WATCH', 'k')).toBe('OK');
    expect(f.pinned).toBe(addr);
    expect(await call('GET', 'k')).toBeInstanceOf(RespError);
    await expect(call('MULTI')).rejects.toBeInstanceOf(TxnConflictError);
    expect(f.pinned).toBeUndefined();
    // Not stuck: the next command goes out on a new connection.
    expect(await call('PING')).toBe('OK');
    expect(seen).toEqual(['WATCH k', 'GET k', 'PING']);
  });
});
