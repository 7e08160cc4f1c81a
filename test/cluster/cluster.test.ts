// A 3-member cluster of real processes: every member serves every command (RESP and HTTP), and
// the data survives the faults of the field. Histories are checked for linearizability
// (sim/linearizability.ts) and every acknowledged write must be readable at the end.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { BasicClientSideCache, createClient } from 'redis';
import { afterEach, describe, expect, it } from 'vitest';
import { RespError } from '../../src/protocol/resp/index.js';
import { run } from '../cli/support.js';
import { Bank } from './bank.js';
import { ProcCluster, sleep } from './proc-cluster.js';
import { expectSound, Workload } from './workload.js';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: ProcCluster | undefined;

/** MESSAGES: messages the pub/sub test publishes. */
const MESSAGES = 50;
/** PIPELINE: commands pairs in the pipelining test's first pipeline. */
const PIPELINE = 300;
/** KILL_ROUNDS: pipelines of 20 appends sent around the leader kill. */
const KILL_ROUNDS = 60;
/** SNAPSHOT_COUNT: entries between snapshots where a test wants compaction under load. */
const SNAPSHOT_COUNT = 40;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('a 3-member cluster', () => {
  it('answers every command on every member: writes, reads, transactions (a change of leader fails an open one), compare-and-swap, ROLE, INFO, HTTP', async () => {
    cluster = await ProcCluster.start(NAMES);
    const leader = await cluster.leader();
    const follower = NAMES.find((n) => n !== leader)!;
    expect(await cluster.call(follower, 'SET', 'a', '1')).toBe('OK');
    expect(await cluster.call(leader, 'INCR', 'a')).toBe(2);
    for (const n of NAMES) expect(String(await cluster.call(n, 'GET', 'a'))).toBe('2');
    // MULTI/EXEC and WATCH through a follower (one upstream connection per client).
    const c = await cluster.client(follower);
    try {
      expect(await c.call('WATCH', 'a')).toBe('OK');
      expect(await c.call('MULTI')).toBe('OK');
      expect(await c.call('INCR', 'a')).toBe('QUEUED');
      expect(await c.call('SET', 'b', 'x')).toBe('QUEUED');
      expect(await c.call('EXEC')).toEqual([3, 'OK']);
      expect(await c.call('TXN.BEGIN')).toBe('OK');
      expect(String(await c.call('GET', 'b'))).toBe('x');
      expect(await c.call('SET', 'b', 'y')).toBe('OK');
      expect(await c.call('TXN.COMMIT')).toBeTypeOf('number');
      // READONLY reads from the member itself.
      expect(await c.call('READONLY')).toBe('OK');
      const deadline = Date.now() + 5_000;
      while (String(await c.call('GET', 'b')) !== 'y' && Date.now() < deadline) await sleep(20);
      expect(String(await c.call('GET', 'b'))).toBe('y');
    } finally {
      await c.close();
    }
    // Expiry: decided by the leader's clock, replicated as deletes; every member hides it.
    expect(await cluster.call(follower, 'SET', 'ttl', 'soon', 'PX', '300')).toBe('OK');
    const pttl = Number(await cluster.call(follower, 'PTTL', 'ttl'));
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    await sleep(700);
    for (const n of NAMES) {
      expect(await cluster.call(n, 'GET', 'ttl')).toBeNull();
      const r = await cluster.client(n);
      try {
        await r.call('READONLY');
        expect(await r.call('GET', 'ttl')).toBeNull();
      } finally {
        await r.close();
      }
    }
    const role = (await cluster.call(leader, 'ROLE')) as unknown[];
    expect(role[0]).toEqual(Buffer.from('master'));
    expect((role[2] as unknown[]).length).toBe(2);
    expect(((await cluster.call(follower, 'ROLE')) as unknown[])[0]).toEqual(Buffer.from('slave'));
    const info = String(await cluster.call(follower, 'INFO', 'replication'));
    expect(info).toMatch(/role:slave/);
    expect(info).toMatch(new RegExp(`cairn_leader:${leader}`));
    // HTTP on a follower is proxied to the leader; /v1/cluster describes the members.
    const http = `http://127.0.0.1:${cluster.spec(follower).http}`;
    expect((await fetch(`${http}/v1/kv/h`, { method: 'PUT', body: 'hello' })).status).toBe(204);
    expect(await (await fetch(`http://127.0.0.1:${cluster.spec(leader).http}/v1/kv/h`)).text()).toBe('hello');
    expect(await (await fetch(`${http}/v1/kv/h?consistency=serializable`)).text()).toMatch(/^(hello)?$/);
    // The leader's answer is relayed whole: its headers (a key's expiry), and a HEAD's length.
    expect((await fetch(`${http}/v1/kv/e?ttlMs=600000`, { method: 'PUT', body: 'expiring' })).status).toBe(
      204,
    );
    const direct = await fetch(`http://127.0.0.1:${cluster.spec(leader).http}/v1/kv/e`);
    const relayed = await fetch(`${http}/v1/kv/e`);
    expect(relayed.headers.get('cairn-expires-at')).toMatch(/^\d+$/);
    expect(relayed.headers.get('cairn-expires-at')).toBe(direct.headers.get('cairn-expires-at'));
    expect(await relayed.text()).toBe('expiring');
    const head = await fetch(`${http}/v1/kv/e`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, '8']);
    const desc = (await (await fetch(`${http}/v1/cluster`)).json()) as { leader: string; members: unknown[] };
    expect(desc.leader).toBe(leader);
    expect(desc.members).toHaveLength(3);
    expect((await fetch(`${http}/v1/kv/h?consistency=sometimes`)).status).toBe(400);
    // Compare-and-swap, revisions and HTTP transactions through a follower, as on one server.
    const f = await cluster.client(follower);
    try {
      expect(await f.call('TXN.CAS', '1', 'cas', 'EXISTS', '0', 'THEN', '1', 'SET', 'cas', 'v1')).toEqual([
        1,
        ['OK'],
      ]);
      expect(await f.call('TXN.CAS', '1', 'cas', 'EXISTS', '0', 'THEN', '1', 'SET', 'cas', 'no')).toEqual([
        0,
        [],
      ]);
      const [value, mod, create, version] = (await f.call('TXN.REVISION', 'cas')) as [
        Buffer,
        number,
        number,
        number,
      ];
      expect(String(value)).toBe('v1');
      expect(mod).toBe(create);
      expect(version).toBe(1);
      const optimistic = ['TXN.CAS', '1', 'cas', 'MOD', '=', String(mod), 'THEN', '1', 'SET', 'cas', 'v2'];
      expect(await f.call(...optimistic, 'ELSE', '1', 'GET', 'cas')).toEqual([1, ['OK']]);
      const again = (await f.call(...optimistic, 'ELSE', '1', 'GET', 'cas')) as [number, Buffer[]];
      expect(again[0]).toBe(0);
      expect(String(again[1][0])).toBe('v2');
      // READWRITE after READONLY: reads are linearizable again (a write on the leader is seen at once).
      expect(await f.call('READONLY')).toBe('OK');
      expect(await f.call('READWRITE')).toBe('OK');
      for (let i = 0; i < 5; i++) {
        expect(await cluster.call(leader, 'SET', 'rw', String(i))).toBe('OK');
        expect(String(await f.call('GET', 'rw'))).toBe(String(i));
      }
    } finally {
      await f.close();
    }
    const txn = async (body: unknown): Promise<{ status: number; json: unknown }> => {
      const res = await fetch(`${http}/v1/txn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, json: await res.json() };
    };
    const oneShot = await txn({
      ops: [
        { op: 'get', key: 'cas' },
        { op: 'set', key: 'cas', value: 'v3' },
      ],
    });
    expect(oneShot.status).toBe(200);
    expect((oneShot.json as { results: unknown[] }).results[0]).toMatchObject({ found: true, value: 'v2' });
    const swap = await txn({
      compare: [{ key: 'cas', target: 'value', op: '=', value: 'v3' }],
      success: [{ op: 'set', key: 'cas', value: 'v4' }],
    });
    expect(swap).toMatchObject({ status: 200, json: { succeeded: true } });
    expect(String(await cluster.call(leader, 'GET', 'cas'))).toBe('v4');
    // A change of leader fails an open transaction with a retryable conflict, and it wrote nothing;
    // the retry on the new leader commits.
    const open = await cluster.client(leader);
    try {
      expect(await open.call('TXN.BEGIN')).toBe('OK');
      expect(String(await open.call('GET', 'cas'))).toBe('v4');
      expect(await open.call('SET', 'cas', 'v5')).toBe('OK');
      const moved = await fetch(`http://127.0.0.1:${cluster.spec(leader).http}/v1/cluster/leader`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: follower }),
      });
      expect(moved.status).toBe(200);
      expect(await moved.json()).toEqual({ leader: follower });
      const refused = await open.call('TXN.COMMIT').then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).toBeInstanceOf(RespError);
      expect((refused as RespError).code).toBe('CONFLICT');
      expect((refused as RespError).message).toMatch(/leader changed/);
    } finally {
      await open.close();
    }
    expect(String(await cluster.call(follower, 'GET', 'cas'))).toBe('v4');
    const retry = await cluster.client(follower);
    try {
      expect(await retry.call('TXN.BEGIN')).toBe('OK');
      expect(String(await retry.call('GET', 'cas'))).toBe('v4');
      expect(await retry.call('SET', 'cas', 'v5')).toBe('OK');
      expect(await retry.call('TXN.COMMIT')).toBeTypeOf('number');
    } finally {
      await retry.close();
    }
    for (const n of NAMES) expect(String(await cluster.call(n, 'GET', 'cas'))).toBe('v5');
    // Every member measures its round trip to every other one (a probe at connection, then
    // every few seconds), whatever the roles.
    for (const n of NAMES) {
      for (const to of NAMES.filter((x) => x !== n)) {
        const sample = `cairn_raft_peer_round_trip_time_seconds_count{to="${to}"}`;
        const deadline = Date.now() + 10_000;
        let probes = 0;
        while (probes < 1 && Date.now() < deadline) {
          probes = await cluster.metric(n, sample).catch(() => 0);
          if (probes < 1) await sleep(100);
        }
        expect(probes, `${n}: ${sample}`).toBeGreaterThanOrEqual(1);
        const sum = await cluster.metric(n, `cairn_raft_peer_round_trip_time_seconds_sum{to="${to}"}`);
        expect(sum / probes).toBeGreaterThan(0);
        expect(sum / probes).toBeLessThan(1);
      }
    }
    // A follower's /v1/cluster carries the leader's replication progress and its own round trips.
    type Described = {
      name: string;
      matchIndex: number | null;
      lag: number | null;
      roundTripMs: number | null;
    };
    const members = cluster;
    const view = async (n: string, query = ''): Promise<Described[]> =>
      (
        (await (await fetch(`http://127.0.0.1:${members.spec(n).http}/v1/cluster${query}`)).json()) as {
          members: Described[];
        }
      ).members;
    const newLeader = await cluster.leader();
    const aFollower = NAMES.find((n) => n !== newLeader)!;
    for (const m of await view(aFollower)) {
      expect(m.matchIndex, m.name).toBeGreaterThan(0);
      expect(m.lag, m.name).toBeGreaterThanOrEqual(0);
      if (m.name === aFollower) expect(m.roundTripMs).toBeNull();
      else expect(m.roundTripMs, m.name).toBeGreaterThan(0);
    }
    for (const m of await view(aFollower, '?consistency=serializable')) {
      expect(m.matchIndex, m.name).toBeNull();
      expect(m.lag, m.name).toBeNull();
    }
  }, 60_000);

  it('survives SIGKILL of the leader under load: linearizable, nothing acknowledged lost, the member rejoins', async () => {
    // Frequent snapshots: the logs compact under the load, the killed member restarts from a
    // snapshot and a compacted log, and catches up by log or by a snapshot from the new leader.
    cluster = await ProcCluster.start(NAMES, { extraArgs: ['--snapshot-count', String(SNAPSHOT_COUNT)] });
    const first = await cluster.leader();
    const w = new Workload(cluster, { clients: 6, keys: 4, members: NAMES });
    w.start();
    await sleep(800);
    await cluster.kill(first, 'SIGKILL');
    await sleep(1_500);
    // Restarted with only its directory: the member resumes from what it recorded.
    const m = cluster.spec(first);
    await cluster.startMember(first, [
      'serve',
      '--dir',
      m.dir,
      '--addr',
      `127.0.0.1:${m.resp}`,
      '--http',
      `127.0.0.1:${m.http}`,
      '--log-level',
      'warn',
    ]);
    await sleep(800);
    await w.stop();
    const reader = NAMES.find((n) => n !== first)!;
    const final = await w.readAll(reader);
    expectSound(w, final);
    // The restarted member catches up and serves the same state (READONLY: its own).
    const c = await cluster.client(first);
    try {
      await c.call('READONLY');
      const deadline = Date.now() + 10_000;
      for (const [key, value] of final) {
        for (;;) {
          // CLUSTERDOWN while it installs a snapshot from the leader (its engine is closed).
          const got = await c.call('GET', key).catch((err: unknown) => {
            if (/CLUSTERDOWN .*installing a snapshot/.test(String(err))) return undefined;
            throw err;
          });
          if (got !== undefined && (got === null ? null : String(got)) === value) break;
          if (Date.now() > deadline) throw new Error(`${first} never caught up on ${key}`);
          await sleep(25);
        }
      }
    } finally {
      await c.close();
    }
  }, 90_000);

  it('delivers a PUBLISH, and keyspace notifications, on any member to the subscribers of every member, in order', async () => {
    cluster = await ProcCluster.start(NAMES);
    await cluster.leader();
    const subscribers = NAMES.map((n) => new Redis({ port: cluster!.spec(n).resp, host: '127.0.0.1' }));
    const got = NAMES.map(() => [] as string[]);
    try {
      await Promise.all(
        subscribers.map(async (sub, i) => {
          sub.on('message', (channel: string, message: string) => got[i]!.push(`${channel}:${message}`));
          await sub.subscribe('news');
        }),
      );
      const publisher = await cluster.client('n2');
      try {
        // One subscriber per member: every PUBLISH counts three receivers, wherever it is sent.
        for (let i = 0; i < MESSAGES; i++) expect(await publisher.call('PUBLISH', 'news', `m${i}`)).toBe(3);
        expect(await cluster.call('n1', 'PUBLISH', 'nobody', 'x')).toBe(0);
      } finally {
        await publisher.close();
      }
      const want = Array.from({ length: MESSAGES }, (_, i) => `news:m${i}`);
      const deadline = Date.now() + 5_000;
      while (got.some((g) => g.length < MESSAGES) && Date.now() < deadline) await sleep(20);
      for (const g of got) expect(g).toEqual(want);

      // Keyspace notifications: the write runs on the leader; every member's subscribers hear it.
      for (const n of NAMES)
        expect(await cluster.call(n, 'CONFIG', 'SET', 'notify-keyspace-events', 'E$')).toBe('OK');
      const events = NAMES.map(() => [] as string[]);
      await Promise.all(
        subscribers.map(async (sub, i) => {
          sub.on('pmessage', (_p: string, channel: string, key: string) =>
            events[i]!.push(`${channel} ${key}`),
          );
          await sub.psubscribe('__keyevent@0__:*');
        }),
      );
      const leader = await cluster.leader();
      const follower = NAMES.find((n) => n !== leader)!;
      expect(await cluster.call(follower, 'SET', 'watched', '1')).toBe('OK');
      const eventDeadline = Date.now() + 5_000;
      while (events.some((e) => e.length === 0) && Date.now() < eventDeadline) await sleep(20);
      for (const e of events) expect(e).toEqual(['__keyevent@0__:set watched']);
    } finally {
      for (const sub of subscribers) sub.disconnect();
    }
  }, 60_000);

  it('invalidates client-side caches on every member, whichever member the write went to', async () => {
    cluster = await ProcCluster.start(NAMES);
    const leader = await cluster.leader();
    // node-redis's clientSideCache (CLIENT TRACKING, RESP3) on each member; every read of a
    // follower is forwarded to the leader and remembered on the follower.
    const caches = NAMES.map(() => new BasicClientSideCache({ ttl: 0, maxEntries: 0 }));
    const clients = NAMES.map((n, i) =>
      createClient({
        socket: { port: cluster!.spec(n).resp, host: '127.0.0.1' },
        RESP: 3,
        clientSideCache: caches[i]!,
      }),
    );
    try {
      await Promise.all(clients.map((c) => c.connect()));
      expect(await cluster.call(leader, 'SET', 'cached', 'v0')).toBe('OK');
      // Every member has applied it: a follower applying it later would (rightly) invalidate the
      // value its client just cached, and the hit count below would be a race.
      for (const n of NAMES) {
        const local = new Redis({ port: cluster.spec(n).resp, host: '127.0.0.1' });
        try {
          await local.call('READONLY');
          const deadline = Date.now() + 5_000;
          while ((await local.get('cached')) !== 'v0' && Date.now() < deadline) await sleep(20);
        } finally {
          local.disconnect();
        }
      }
      const readAll = () => Promise.all(clients.map((c) => c.get('cached')));
      expect(await readAll()).toEqual(['v0', 'v0', 'v0']);
      expect(await readAll()).toEqual(['v0', 'v0', 'v0']);
      for (const cache of caches) expect(cache.stats().hitCount).toBe(1);
      // A write through each member in turn (forwarded to the leader when not the leader): every
      // member's cache hears of it (the leader when it queues it, the others when they apply it).
      for (const [i, n] of NAMES.entries()) {
        expect(await cluster.call(n, 'SET', 'cached', `v${i + 1}`)).toBe('OK');
        const deadline = Date.now() + 5_000;
        let seen = await readAll();
        while (seen.some((v) => v !== `v${i + 1}`) && Date.now() < deadline) {
          await sleep(20);
          seen = await readAll();
        }
        expect(seen).toEqual([`v${i + 1}`, `v${i + 1}`, `v${i + 1}`]);
      }
    } finally {
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
    }
  }, 60_000);

  it('keeps a pipeline through a follower a pipeline, in order, across a leader kill', async () => {
    cluster = await ProcCluster.start(NAMES);
    const first = await cluster.leader();
    const follower = NAMES.find((n) => n !== first)!;
    const c = await cluster.client(follower);
    try {
      // One pipeline of 600 commands: the replies in order, the effects in order.
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < PIPELINE; i++) {
        calls.push(c.call('APPEND', 'log', `${i},`));
        calls.push(c.call('INCR', 'n'));
      }
      const replies = await Promise.all(calls);
      expect(replies.filter((_, j) => j % 2 === 1)).toEqual(
        Array.from({ length: PIPELINE }, (_, i) => i + 1),
      );
      expect(String(await c.call('GET', 'log'))).toBe(
        Array.from({ length: PIPELINE }, (_, i) => `${i},`).join(''),
      );

      // Pipelines while the leader is killed: CLUSTERDOWN answers are retried in order, so the
      // log holds every acknowledged append, none twice, all in the order sent.
      const acked: number[] = [];
      let next = 0;
      const writer = (async () => {
        for (let round = 0; round < KILL_ROUNDS; round++) {
          const batch = Array.from({ length: 20 }, () => next++);
          const outcomes = await Promise.allSettled(batch.map((i) => c.call('APPEND', 'log2', `${i},`)));
          outcomes.forEach((o, j) => {
            if (o.status === 'fulfilled') acked.push(batch[j]!);
          });
          await sleep(10);
        }
      })();
      await sleep(300);
      await cluster.kill(first, 'SIGKILL');
      await writer;
      const log = String(await c.call('GET', 'log2'))
        .split(',')
        .filter((x) => x !== '')
        .map(Number);
      for (let j = 1; j < log.length; j++) expect(log[j]!).toBeGreaterThan(log[j - 1]!);
      const held = new Set(log);
      for (const i of acked) expect(held.has(i), `acknowledged append ${i} missing`).toBe(true);
      expect(acked.length).toBeGreaterThan(KILL_ROUNDS * 10);
    } finally {
      await c.close();
    }
  }, 60_000);

  // Two of the members come back with only --dir (docs/cluster.md): each must serve clients where
  // it did before (member.json's clientAddrs), not on the default ports, which two members on one
  // machine cannot share.
  it('survives SIGKILL of every member at once: every acknowledged write is there after the restart', async () => {
    cluster = await ProcCluster.start(NAMES);
    await cluster.leader();
    const w = new Workload(cluster, { clients: 6, keys: 6, members: NAMES });
    w.start();
    await sleep(1_500);
    await Promise.all(NAMES.map((n) => cluster!.kill(n, 'SIGKILL')));
    await w.stop();
    const onlyDir = (n: string): string[] => ['serve', '--dir', cluster!.spec(n).dir, '--log-level', 'warn'];
    await Promise.all([
      cluster.startMember('n1'),
      cluster.startMember('n2', onlyDir('n2')),
      cluster.startMember('n3', onlyDir('n3')),
    ]);
    const recorded = JSON.parse(
      fs.readFileSync(path.join(cluster.spec('n3').dir, 'raft', 'member.json'), 'utf8'),
    );
    expect(recorded.clientAddrs).toEqual({
      resp: `127.0.0.1:${cluster.spec('n3').resp}`,
      http: `127.0.0.1:${cluster.spec('n3').http}`,
    });
    await cluster.leader();
    const final = await w.readAll(NAMES[0]!);
    expectSound(w, final);
  }, 90_000);

  it('a member whose engine files were damaged sets them aside and rebuilds its state from the Raft log', async () => {
    cluster = await ProcCluster.start(NAMES);
    const leader = await cluster.leader();
    for (let i = 0; i < 200; i++) await cluster.call(leader, 'SET', `key${i}`, `value-${i}`.padEnd(60, '.'));
    const victim = NAMES.find((n) => n !== leader)!;
    await cluster.kill(victim, 'SIGKILL');
    // A bit flip in the middle of the victim's oldest data file: damage below its newest record.
    const dir = cluster.spec(victim).dir;
    const data = fs
      .readdirSync(dir)
      .filter((n) => n.endsWith('.data'))
      .sort()[0]!;
    const bytes = fs.readFileSync(path.join(dir, data));
    let end = bytes.length; // the active file is preallocated: flip inside the written part
    while (end > 0 && bytes[end - 1] === 0) end--;
    bytes[Math.floor(end / 2)]! ^= 0x40;
    fs.writeFileSync(path.join(dir, data), bytes);
    await cluster.startMember(victim);
    expect(fs.readdirSync(dir).some((n) => n.startsWith('engine-set-aside-'))).toBe(true);
    const c = await cluster.client(victim);
    try {
      await c.call('READONLY');
      const deadline = Date.now() + 10_000;
      while (Number(await c.call('DBSIZE')) < 200 && Date.now() < deadline) await sleep(25);
      for (let i = 0; i < 200; i++)
        expect(String(await c.call('GET', `key${i}`))).toBe(`value-${i}`.padEnd(60, '.'));
    } finally {
      await c.close();
    }
  }, 60_000);

  it("a member whose engine is damaged after its log was compacted repairs itself from the leader's snapshot", async () => {
    cluster = await ProcCluster.start(NAMES, { extraArgs: ['--snapshot-count', '50'] });
    const leader = await cluster.leader();
    for (let i = 0; i < 200; i++) await cluster.call(leader, 'SET', `key${i}`, `value-${i}`.padEnd(60, '.'));
    const victim = NAMES.find((n) => n !== leader)!;
    // Every entry applied on the victim, so it has taken snapshots and compacted its log.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const info = String(await cluster.call(victim, 'INFO', 'replication'));
      if (Number(/cairn_applied_index:(\d+)/.exec(info)?.[1]) >= 200 || Date.now() > deadline) break;
      await sleep(50);
    }
    await cluster.kill(victim, 'SIGKILL');
    const spec = cluster.spec(victim);
    const data = fs
      .readdirSync(spec.dir)
      .filter((n) => n.endsWith('.data'))
      .sort()[0]!;
    const bytes = fs.readFileSync(path.join(spec.dir, data));
    let end = bytes.length;
    while (end > 0 && bytes[end - 1] === 0) end--;
    bytes[Math.floor(end / 2)]! ^= 0x40;
    fs.writeFileSync(path.join(spec.dir, data), bytes);
    // Writes the victim misses while it is down: after the leader's snapshot, by log.
    for (let i = 0; i < 50; i++) await cluster.call(leader, 'SET', `late${i}`, `late-${i}`);
    await cluster.startMember(victim);
    const aside = fs.readdirSync(spec.dir).filter((n) => n.startsWith('engine-set-aside-'));
    expect(aside).toHaveLength(1);

    // It ends with exactly the cluster's data: every key, read locally on the victim.
    const keys = [
      ...Array.from({ length: 200 }, (_, i) => `key${i}`),
      ...Array.from({ length: 50 }, (_, i) => `late${i}`),
    ];
    const want = new Map<string, string>();
    for (const k of keys) want.set(k, String(await cluster.call(leader, 'GET', k)));
    const c = await cluster.client(victim);
    try {
      await c.call('READONLY');
      const until = Date.now() + 20_000;
      for (;;) {
        const got = new Map<string, string>();
        try {
          for (const k of keys) got.set(k, String(await c.call('GET', k)));
        } catch (err) {
          // CLUSTERDOWN while it repairs: no read from the empty engine.
          expect(String(err)).toMatch(/CLUSTERDOWN/);
        }
        if (got.size === keys.length && [...want].every(([k, v]) => got.get(k) === v)) break;
        if (Date.now() > until) throw new Error(`the victim did not repair itself\n${cluster.dumpLogs()}`);
        await sleep(50);
      }
      expect(Number(await c.call('DBSIZE'))).toBe(Number(await cluster.call(leader, 'DBSIZE')));
      expect(String(await c.call('INFO', 'replication'))).toMatch(/cairn_repairing:0/);
    } finally {
      await c.close();
    }
    const logs = cluster.log(victim);
    expect(logs).toMatch(/its files are set aside and the member starts with an empty engine/);
    expect(logs).toMatch(/installed the snapshot fetched from the leader to repair the engine/);
    // Every member holds the same state at one index (cairn check hash).
    const hashed = await run(
      'cairn',
      ['check', 'hash', '--json', '--endpoints', cluster.endpoints(...NAMES)],
      process.cwd(),
    );
    expect(hashed.code, `${hashed.stderr}${hashed.out}`).toBe(0);
    const check = JSON.parse(hashed.out) as { ok: boolean; members: { name: string; digest: string }[] };
    expect(check.ok).toBe(true);
    expect(check.members.map((m) => m.name).sort()).toEqual([...NAMES].sort());
    expect(new Set(check.members.map((m) => m.digest)).size).toBe(1);
    // The damaged files are still where they were set aside, the flipped byte with them.
    const kept = fs.readFileSync(path.join(spec.dir, aside[0]!, data));
    expect(kept.length).toBeGreaterThanOrEqual(end);
    expect(kept.subarray(0, end)).toEqual(bytes.subarray(0, end));
    expect(fs.existsSync(path.join(spec.dir, 'raft', 'repair.json'))).toBe(false);
    expect(await cluster.call(victim, 'SET', 'still', 'served')).toBe('OK');
  }, 60_000);

  it('a paused leader (SIGSTOP) is replaced; when it resumes it cannot serve stale reads or lose writes', async () => {
    cluster = await ProcCluster.start(NAMES);
    const first = await cluster.leader();
    const others = NAMES.filter((n) => n !== first);
    const w = new Workload(cluster, { clients: 6, keys: 4, members: NAMES });
    w.start();
    await sleep(500);
    await cluster.kill(first, 'SIGSTOP');
    await cluster.leader(15_000, others);
    await sleep(700);
    await cluster.kill(first, 'SIGCONT');
    await sleep(1_000);
    await w.stop();
    const final = await w.readAll(first);
    expectSound(w, final);
  }, 90_000);

  it('a leader cut off from its peers (blackholed links) steps down; the majority goes on; healing rejoins it', async () => {
    cluster = await ProcCluster.start(NAMES, { proxies: true });
    const first = await cluster.leader();
    const others = NAMES.filter((n) => n !== first);
    const w = new Workload(cluster, { clients: 6, keys: 4, members: NAMES });
    w.start();
    await sleep(500);
    for (const [link, proxy] of cluster.links) {
      if (link.startsWith(`${first}->`) || link.endsWith(`->${first}`)) {
        proxy.blackholeTx();
        proxy.blackholeRx();
      }
    }
    const second = await cluster.leader(15_000, others);
    expect(second).not.toBe(first);
    await sleep(1_000);
    for (const proxy of cluster.links.values()) {
      proxy.unblackholeTx();
      proxy.unblackholeRx();
    }
    await sleep(1_000);
    await w.stop();
    const final = await w.readAll(first);
    expectSound(w, final);
  }, 90_000);

  it('keeps the bank total across members under concurrent WATCH/MULTI, MULTI and TXN transfers and a leader kill', async () => {
    cluster = await ProcCluster.start(NAMES);
    const leader = await cluster.leader();
    const bank = new Bank(cluster, { accounts: 5, start: 100, members: NAMES });
    await bank.open(leader);
    bank.start();
    await sleep(1_000);
    await cluster.kill(leader, 'SIGKILL');
    await sleep(1_500);
    await bank.stop();
    await bank.expectTotal(NAMES.find((n) => n !== leader)!);
    const { careful, stubborn, interactive } = bank.committed;
    expect(careful + stubborn + interactive).toBeGreaterThan(10);
  }, 90_000);
});
