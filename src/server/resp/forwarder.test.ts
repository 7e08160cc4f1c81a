// The forwarder against a fake leader on loopback: a client's pipeline stays a pipeline (the
// leader sees every command before it answers any), replies come back in order, and after a
// CLUSTERDOWN the connection takes no new command (retries must not be overtaken).
import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../io/clock.js';
import { RespError } from '../../protocol/resp/index.js';
import { ClusterDownError } from '../../storage/errors.js';
import { TxnConflictError } from '../../txn/errors.js';
import { Forwarder, UpstreamPool } from './forwarder.js';
import { tcpDial } from './socket.js';

const TIMEOUT_MS = 5_000;
const servers: net.Server[] = [];
const forwarders: Forwarder[] = [];
const pools: UpstreamPool[] = [];

afterEach(async () => {
  for (const f of forwarders.splice(0)) f.close();
  for (const p of pools.splice(0)) p.close();
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

function pool(): UpstreamPool {
  const p = new UpstreamPool(undefined, systemClock, tcpDial);
  pools.push(p);
  return p;
}

/** forwarder: a client's forwarder; clients given the same pool and slot share a link. */
function forwarder(shared = pool(), slot = 1): Forwarder {
  const f = new Forwarder(shared, slot, TIMEOUT_MS, systemClock);
  forwarders.push(f);
  return f;
}

const cmd = (...args: string[]): Buffer[] => args.map((a) => Buffer.from(a));

/** caller: `f.forward` of one command by its words (`write`: the command may write). */
function caller(f: Forwarder, addr: string, write = false) {
  const target = async (): Promise<string> => addr;
  return (...args: string[]) => f.forward(target, args[0]!.toLowerCase(), cmd(...args), 2, write);
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
    // SET a 1 is still owed (neither retried nor released): first attempts stay refused.
    await expect(f.forward(target, 'get', cmd('GET', 'a'), 2, false)).rejects.toBeInstanceOf(
      ClusterDownError,
    );
    f.release(); // SET a 1
    f.release(); // GET a
    expect(await f.forward(target, 'get', cmd('GET', 'a'), 2, false)).toBe('OK');
    expect(connections).toBe(2);
  });

  it('clients share a link: one connection carries the commands of all of them', async () => {
    let connections = 0;
    const { addr, seen } = await fakeLeader((_all, socket) => socket.write('+OK\r\n'));
    servers.at(-1)!.on('connection', () => connections++);
    const shared = pool();
    const clients = Array.from({ length: 8 }, () => forwarder(shared, 3));
    const target = async (): Promise<string> => addr;
    const replies = await Promise.all(
      clients.flatMap((f, c) =>
        [0, 1].map((i) => f.forward(target, 'set', cmd('SET', `c${c}`, `${i}`), 2, true)),
      ),
    );
    expect(replies.every((r) => r === 'OK')).toBe(true);
    expect(connections).toBe(1);
    // Each client's commands in its order.
    for (let c = 0; c < 8; c++) {
      expect(seen.filter((x) => x.startsWith(`SET c${c} `))).toEqual([`SET c${c} 0`, `SET c${c} 1`]);
    }
  });

  it("a refusal on a shared link refuses that client's later first attempts, not another client's", async () => {
    const { addr, seen } = await fakeLeader((all, socket) => {
      socket.write(all.at(-1) === 'SET a 1' ? '-CLUSTERDOWN not the leader\r\n' : '+OK\r\n');
    });
    const shared = pool();
    const a = forwarder(shared);
    const b = forwarder(shared);
    const target = async (): Promise<string> => addr;
    expect(await a.forward(target, 'set', cmd('SET', 'a', '1'), 2, true)).toBeInstanceOf(RespError);
    // A's next command must not overtake its refused one: refused unsent.
    await expect(a.forward(target, 'set', cmd('SET', 'a', '2'), 2, true)).rejects.toBeInstanceOf(
      ClusterDownError,
    );
    // B goes on, over a new shared link (the refused one is retired).
    expect(await b.forward(target, 'set', cmd('SET', 'b', '1'), 2, true)).toBe('OK');
    expect(seen).toEqual(['SET a 1', 'SET b 1']);
  });

  it('moving to another link waits until the replies due on the current one are in', async () => {
    let answerSet: (() => void) | undefined;
    const { addr, seen } = await fakeLeader((all, socket) => {
      if (all.at(-1) === 'SET k 1') answerSet = () => socket.write('+OK\r\n');
      else socket.write('+OK\r\n');
    });
    const f = forwarder();
    const target = async (): Promise<string> => addr;
    const set = f.forward(target, 'set', cmd('SET', 'k', '1'), 2, true);
    // MULTI pins state on the leader: it goes on the client's own connection, so only after
    // the SET (on the shared link) is answered.
    const multi = f.forward(target, 'multi', cmd('MULTI'), 2, false);
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual(['SET k 1']);
    answerSet!();
    expect(await set).toBe('OK');
    expect(await multi).toBe('OK');
    expect(seen).toEqual(['SET k 1', 'MULTI']);
    expect(f.pinned).toBe(addr);
  });

  // Once the client's state on the leader is lost, nothing it sends may run outside that state:
  // every command is refused unsent until the client ends the transaction (found 2026-12-06: the
  // rest of a pipelined MULTI ... EXEC ran one by one, past its WATCH).
  it('a refusal inside a transaction loses it: CONFLICT, unsent, until EXEC, DISCARD or UNWATCH', async () => {
    const { addr, seen } = await fakeLeader((all, socket) => {
      socket.write(all.at(-1) === 'GET k' ? '-CLUSTERDOWN not the leader\r\n' : '+OK\r\n');
    });
    const f = forwarder();
    const call = caller(f, addr);
    expect(await call('WATCH', 'k')).toBe('OK');
    expect(f.pinned).toBe(addr);
    // Refused by the leader: within the state it is not retried elsewhere (no release owed).
    await expect(call('GET', 'k')).rejects.toBeInstanceOf(TxnConflictError);
    expect(f.pinned).toBeUndefined();
    await expect(call('MULTI')).rejects.toThrow(/EXEC, DISCARD or UNWATCH ends it/);
    await expect(call('INCR', 'a')).rejects.toBeInstanceOf(TxnConflictError);
    await expect(call('EXEC')).rejects.toThrow(/the transaction is gone, retry it/);
    // Ended: the next command goes out on a new connection.
    expect(await call('PING')).toBe('OK');
    expect(seen).toEqual(['WATCH k', 'GET k', 'PING']);
  });

  it('a lost link inside MULTI: queued commands are CONFLICT, not UNCERTAIN; DISCARD answers OK unsent', async () => {
    const { addr, seen } = await fakeLeader((all, socket) => {
      const last = all.at(-1)!;
      if (last === 'INCR b') socket.destroy();
      else socket.write(last === 'MULTI' || last === 'PING' ? '+OK\r\n' : '+QUEUED\r\n');
    });
    const f = forwarder();
    const call = caller(f, addr, true);
    expect(await call('MULTI')).toBe('OK');
    expect(await call('INCR', 'a')).toBe('QUEUED');
    // A write inside MULTI is only queued: its loss is a conflict, never "may have been applied".
    await expect(call('INCR', 'b')).rejects.toBeInstanceOf(TxnConflictError);
    await expect(call('INCR', 'c')).rejects.toBeInstanceOf(TxnConflictError);
    expect(await call('DISCARD')).toBe('OK');
    expect(await call('PING')).toBe('OK');
    expect(seen).toEqual(['MULTI', 'INCR a', 'INCR b', 'PING']);
  });

  it('EXEC refused after a leader change is CONFLICT, never retried where no MULTI is', async () => {
    const { addr, seen } = await fakeLeader((all, socket) => {
      const last = all.at(-1)!;
      socket.write(
        last === 'EXEC'
          ? '-CLUSTERDOWN no longer the leader\r\n'
          : last === 'INCR a'
            ? '+QUEUED\r\n'
            : '+OK\r\n',
      );
    });
    const f = forwarder();
    const call = caller(f, addr, true);
    expect(await call('MULTI')).toBe('OK');
    expect(await call('INCR', 'a')).toBe('QUEUED');
    await expect(call('EXEC')).rejects.toThrow(/the transaction is gone, retry it/);
    // EXEC ended it: nothing is refused after it, and nothing is owed.
    expect(await call('PING')).toBe('OK');
    expect(seen).toEqual(['MULTI', 'INCR a', 'EXEC', 'PING']);
  });
});
