// Cluster-aware Redis clients against a Cairn cluster (cluster-protocol.ts): every member
// describes the same one shard (the leader holds every slot, the others are its replicas), and a
// client in cluster mode started from a follower's address sends its commands to the leader
// itself, sparing the forwarding hop; after a leader change it goes on working.
import { Cluster as IoredisCluster, Redis } from 'ioredis';
import { createCluster } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcCluster, sleep } from './proc-cluster.js';

let cluster: ProcCluster | undefined;
const closers: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close().catch(() => {});
  await cluster?.stop();
  cluster = undefined;
});

/** text: a reply with every bulk string (a Buffer from the test client) as a string. */
function text(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return v.toString();
  if (Array.isArray(v)) return v.map(text);
  return v;
}

/** commandCalls: how many times a member ran (or forwarded) `command`, from INFO commandstats. */
async function commandCalls(c: ProcCluster, name: string, command: string): Promise<number> {
  const info = String(await c.call(name, 'INFO', 'commandstats'));
  const m = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
  return m === null ? 0 : Number(m[1]);
}

describe('cluster discovery commands', () => {
  it('every member describes the same shard: the leader holds all slots', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3']);
    const leader = await cluster.leader();
    const names = ['n1', 'n2', 'n3'];
    const ids = new Map<string, string>();
    for (const n of names) ids.set(n, String(text(await cluster.call(n, 'CLUSTER', 'MYID'))));
    expect(new Set(ids.values()).size).toBe(3);
    for (const id of ids.values()) expect(id).toMatch(/^[0-9a-f]{40}$/);
    for (const n of names) {
      // A follower may not have heard every peer's client address in the first moments.
      let slots: unknown[] = [];
      for (let i = 0; i < 50; i++) {
        slots = text(await cluster.call(n, 'CLUSTER', 'SLOTS')) as unknown[];
        if ((slots[0] as unknown[]).length === 5) break;
        await sleep(100);
      }
      expect(slots).toHaveLength(1);
      const [from, to, master, ...replicas] = slots[0] as [number, number, unknown[], ...unknown[][]];
      expect([from, to]).toEqual([0, 16383]);
      expect(master).toEqual(['127.0.0.1', cluster.spec(leader).resp, ids.get(leader)]);
      expect(replicas.map((r) => r[2]).sort()).toEqual(
        names
          .filter((x) => x !== leader)
          .map((x) => ids.get(x))
          .sort(),
      );
      const nodes = String(await cluster.call(n, 'CLUSTER', 'NODES'))
        .trim()
        .split('\n');
      expect(nodes).toHaveLength(3);
      const mine = nodes.filter((l) => l.includes('myself'));
      expect(mine).toHaveLength(1);
      expect(mine[0]!.startsWith(ids.get(n)!)).toBe(true);
      const masters = nodes.filter((l) => / (myself,)?master /.test(l));
      expect(masters).toHaveLength(1);
      expect(masters[0]).toMatch(
        new RegExp(
          `^${ids.get(leader)} 127\\.0\\.0\\.1:${cluster.spec(leader).resp}@${cluster.spec(leader).peer} .* connected 0-16383$`,
        ),
      );
      expect(String(await cluster.call(n, 'CLUSTER', 'INFO'))).toMatch(
        /cluster_state:ok\r\ncluster_slots_assigned:16384/,
      );
      expect(String(await cluster.call(n, 'INFO', 'cluster'))).toMatch(/cluster_enabled:1/);
      expect(await cluster.call(n, 'CLUSTER', 'KEYSLOT', 'foo')).toBe(12182);
      expect(await cluster.call(n, 'CLUSTER', 'KEYSLOT', '{user1000}.following')).toBe(3443);
    }
    const shards = (await cluster.call(leader, 'CLUSTER', 'SHARDS')) as unknown[];
    expect(shards).toHaveLength(1);
    await expect(cluster.call(leader, 'CLUSTER', 'NOPE')).rejects.toThrow(/unknown subcommand/);
    await expect(cluster.call(leader, 'CLUSTER', 'SLOTS', 'extra')).rejects.toThrow(
      /wrong number of arguments/,
    );
  }, 60_000);

  it('ioredis and node-redis in cluster mode, started from a follower, talk to the leader directly', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3']);
    const leader = await cluster.leader();
    const follower = ['n1', 'n2', 'n3'].find((n) => n !== leader)!;
    const port = (n: string): number => cluster!.spec(n).resp;

    // The control: a plain client on the follower is forwarded, and the follower counts its SETs.
    const plain = new Redis({ host: '127.0.0.1', port: port(follower), lazyConnect: true });
    closers.push(async () => plain.disconnect());
    await plain.connect();
    for (let i = 0; i < 5; i++) expect(await plain.set(`plain:${i}`, 'v')).toBe('OK');
    const forwardedSets = await commandCalls(cluster, follower, 'set');
    expect(forwardedSets).toBeGreaterThanOrEqual(5);

    const io = new IoredisCluster([{ host: '127.0.0.1', port: port(follower) }], {
      slotsRefreshInterval: 500,
    });
    closers.push(async () => io.disconnect());
    const leaderSetsBefore = await commandCalls(cluster, leader, 'set');
    for (let i = 0; i < 50; i++) expect(await io.set(`io:${i}`, `v${i}`)).toBe('OK');
    for (let i = 0; i < 50; i++) expect(await io.get(`io:${i}`)).toBe(`v${i}`);
    expect(await io.multi().set('io:tx', '1').incr('io:tx').exec()).toEqual([
      [null, 'OK'],
      [null, 2],
    ]);
    expect(await commandCalls(cluster, follower, 'set')).toBe(forwardedSets);
    expect(await commandCalls(cluster, leader, 'set')).toBeGreaterThanOrEqual(leaderSetsBefore + 50);

    const nr = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${port(follower)}` }] });
    closers.push(async () => nr.destroy());
    await nr.connect();
    for (let i = 0; i < 20; i++) expect(await nr.set(`nr:${i}`, `w${i}`)).toBe('OK');
    expect(await nr.get('nr:19')).toBe('w19');
    expect(await nr.get('io:7')).toBe('v7');
    expect(await commandCalls(cluster, follower, 'set')).toBe(forwardedSets);

    // The leader goes away: the clients keep working (forwarded by whoever they reach, then
    // direct again once their slot map names the new leader).
    await cluster.kill(leader, 'SIGKILL');
    const next = await cluster.leader(
      15_000,
      ['n1', 'n2', 'n3'].filter((n) => n !== leader),
    );
    let ok = false;
    for (let i = 0; i < 100 && !ok; i++) {
      ok = await io.set('io:after', 'x').then(
        (r) => r === 'OK',
        () => false,
      );
      if (!ok) await sleep(100);
    }
    expect(ok).toBe(true);
    expect(await io.get('io:after')).toBe('x');
    expect(await io.get('io:49')).toBe('v49');
    expect(text(await cluster.call(next, 'GET', 'io:after'))).toBe('x');
  }, 90_000);
});
