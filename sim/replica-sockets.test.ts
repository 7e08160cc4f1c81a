// SimSockets (sim/replica-sockets.ts): the simulated TCP the replica simulator's RESP servers and
// clients use. In-order delivery over long random delays, what a connection sees of a process's
// death, of a cut link and of an address nobody listens on, end() after the data, pause/resume.
import { describe, expect, it } from 'vitest';
import { Prng } from '../src/stdx/prng.js';
import { RELIABLE } from './network.js';
import { ReplicaNet } from './replica-net.js';
import { SimProcess, SimScheduler } from './replica-scheduler.js';
import { type SimSocket, SimSockets } from './replica-sockets.js';

/** setup: two member processes (nodes 1 and 2), node 2 listening at "n2:6379". */
function setup(delayMsMax = 50): {
  sched: SimScheduler;
  net: ReplicaNet;
  sockets: SimSockets;
  p1: SimProcess;
  p2: SimProcess;
  accepted: SimSocket[];
} {
  const sched = new SimScheduler();
  const net = new ReplicaNet(new Prng(7), { ...RELIABLE, delayMsMin: 1, delayMsMax });
  const sockets = new SimSockets(sched, net, () => {});
  const p1 = new SimProcess(sched, 'n1#1');
  const p2 = new SimProcess(sched, 'n2#1');
  const accepted: SimSocket[] = [];
  sockets.listen('n2:6379', { node: 2, proc: p2 }, (s) => accepted.push(s as SimSocket));
  return { sched, net, sockets, p1, p2, accepted };
}

function collect(s: SimSocket): { data: string[]; closed: boolean; errors: string[] } {
  const got = { data: [] as string[], closed: false, errors: [] as string[] };
  s.on('data', (chunk) => got.data.push(chunk.toString()));
  s.on('close', () => {
    got.closed = true;
  });
  s.on('error', (err) => got.errors.push(err.message));
  return got;
}

describe('SimSockets', () => {
  it('connects, and delivers each direction in order whatever the delays; a copy of the bytes', async () => {
    const { sched, sockets, p1, accepted } = setup(200);
    const client = sockets.connect({ node: 1, proc: p1 }, 'n2:6379');
    let connected = false;
    client.once('connect', () => {
      connected = true;
    });
    const fromServer = collect(client);
    await sched.runUntil(1_000);
    expect(connected).toBe(true);
    const server = accepted[0] as SimSocket;
    const fromClient = collect(server);
    const buf = Buffer.from('a');
    for (let i = 0; i < 50; i++) {
      buf.write(String.fromCharCode(97 + (i % 26)));
      client.write(buf); // the caller's buffer is reused: what travels must be a copy
      server.write(Buffer.from(String(i)));
    }
    await sched.runUntil(5_000);
    expect(fromClient.data.join('')).toBe(
      Array.from({ length: 50 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''),
    );
    expect(fromServer.data).toEqual(Array.from({ length: 50 }, (_, i) => String(i)));
  });

  it("a process's death resets its connections: the other end sees close, later writes go nowhere", async () => {
    const { sched, sockets, p1, p2, accepted } = setup();
    const client = sockets.connect({ node: 1, proc: p1 }, 'n2:6379');
    const got = collect(client);
    await sched.runUntil(500);
    const server = accepted[0] as SimSocket;
    const serverGot = collect(server);
    client.write(Buffer.from('in flight'));
    p2.kill();
    await sched.runUntil(1_000);
    expect(got.closed).toBe(true);
    expect(serverGot.data).toEqual([]); // a dead process reads nothing
    expect(client.write(Buffer.from('after'))).toBe(true); // accepted and dropped, as on a closed socket
    expect(sockets.reset).toBeGreaterThan(0);
  });

  it('refuses a connection to an address nobody listens on, and to a dead listener', async () => {
    const { sched, sockets, p1, p2 } = setup();
    const nowhere = collect(sockets.connect({ node: 1, proc: p1 }, 'n3:6379'));
    p2.kill();
    const dead = collect(sockets.connect({ node: 1, proc: p1 }, 'n2:6379'));
    await sched.runUntil(1_000);
    expect(nowhere.errors).toEqual(['connect ECONNREFUSED n3:6379']);
    expect(dead.errors).toEqual(['connect ECONNREFUSED n2:6379']);
    expect(nowhere.closed && dead.closed).toBe(true);
    expect(sockets.refused).toBe(2);
  });

  it('bytes over a cut link reset the connection; a dial over one is never answered; clients are never cut', async () => {
    const { sched, net, sockets, p1, accepted } = setup();
    const member = collect(sockets.connect({ node: 1, proc: p1 }, 'n2:6379'));
    const client = sockets.connect({ node: undefined, proc: undefined }, 'n2:6379');
    const clientGot = collect(client);
    await sched.runUntil(500);
    expect(accepted).toHaveLength(2);
    const toMember = accepted[0] as SimSocket;
    const toClient = accepted[1] as SimSocket;
    net.partition([[1], [2]]);
    toMember.write(Buffer.from('lost'));
    toClient.write(Buffer.from('fine'));
    let answered = false;
    sockets.connect({ node: 1, proc: p1 }, 'n2:6379').once('connect', () => {
      answered = true;
    });
    await sched.runUntil(2_000);
    expect(member.closed).toBe(true);
    expect(member.data).toEqual([]);
    expect(toMember.closed).toBe(true);
    expect(answered).toBe(false);
    expect(clientGot.data).toEqual(['fine']);
    expect(clientGot.closed).toBe(false);
  });

  it('end() closes the other end once the data before it arrived; pause() holds data until resume()', async () => {
    const { sched, sockets, p1, accepted } = setup();
    const client = sockets.connect({ node: 1, proc: p1 }, 'n2:6379');
    await sched.runUntil(500);
    const server = accepted[0] as SimSocket;
    const got = collect(server);
    server.pause();
    client.write(Buffer.from('x'));
    client.write(Buffer.from('y'));
    let ended = false;
    client.end(() => {
      ended = true;
    });
    await sched.runUntil(1_000);
    expect(ended).toBe(true);
    expect(got.data).toEqual([]);
    expect(got.closed).toBe(false);
    server.resume();
    await sched.runUntil(1_500);
    expect(got.data).toEqual(['x', 'y']);
    expect(got.closed).toBe(true);
  });
});
