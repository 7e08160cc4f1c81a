// Membership changes on a cluster of real processes, driven through the operator's commands
// (`cairn member`, `endpoint`, `move-leader`; docs/cluster-ops.md), under a recorded workload: a
// learner joins a loaded cluster, catches up by snapshot and is promoted; leadership moves to it; the leader is
// removed and the cluster goes on; a dead member is replaced by one that catches up by Raft
// snapshot (the logs are compacted); removals that would lose quorum, or the last voter, are
// refused.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../cli/support.js';
import { ProcCluster, sleep, until } from './proc-cluster.js';
import { expectSound, Workload } from './workload.js';

const NAMES = ['n1', 'n2', 'n3'];
/** JUST_DEAD_MS: after a kill, past three heartbeats and well within the 5 s "active" window. */
const JUST_DEAD_MS = 600;
/** KEYS: the load written before a member joins (it must replay all of it). */
const KEYS = 300;
/** ACTIVE_WAIT_MS: beyond the strict checks' 5 s activity window (reconfig-check.ts ACTIVE_WINDOW_MS). */
const ACTIVE_WAIT_MS = 5_600;
/** REMOVED_STOP_MS: a removed member exits within this of its removal's answer. */
const REMOVED_STOP_MS = 10_000;

/**
 * SNAPSHOT_COUNT: a snapshot every this many entries, so the load (KEYS writes) compacts the
 * logs and members added later catch up by snapshot.
 */
const SNAPSHOT_COUNT = 100;

/** withCluster runs `test` on its own 3-member cluster (the tests run concurrently) and stops it. */
async function withCluster(test: (c: ProcCluster) => Promise<void>, extraArgs: string[] = []): Promise<void> {
  const c = await ProcCluster.start(NAMES, { extraArgs });
  try {
    await test(c);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
  } finally {
    await c.stop();
  }
}

async function cairn(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const r = await run('cairn', args, process.cwd());
  return { code: r.code, out: r.out, err: r.stderr };
}

async function load(c: ProcCluster, leader: string): Promise<void> {
  const client = await c.client(leader);
  try {
    for (let i = 0; i < KEYS; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => client.call('SET', `k${i + j}`, `v${i + j}`)));
    }
  } finally {
    await client.close();
  }
}

/** caughtUp: the member's own (READONLY) reads show the whole load. */
async function caughtUp(c: ProcCluster, name: string): Promise<boolean> {
  const client = await c.client(name);
  try {
    await client.call('READONLY');
    for (const i of [0, KEYS / 2, KEYS - 1]) {
      if (String(await client.call('GET', `k${i}`)) !== `v${i}`) return false;
    }
    return true;
  } finally {
    await client.close();
  }
}

interface ListedMember {
  name: string;
  role: string;
  isLeader: boolean;
  http: string;
}

async function memberList(endpoints: string): Promise<ListedMember[]> {
  const r = await cairn('member', 'list', '--json', '--endpoints', endpoints);
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { members: ListedMember[] }).members;
}

describe('membership changes', () => {
  it.concurrent(
    'adds a learner to a loaded cluster, promotes it once caught up, moves leadership to it and removes it as leader',
    () =>
      withCluster(
        async (c) => {
          const leader = await c.leader();
          await load(c, leader);
          // Under load: a recorded workload runs through the original members for the whole
          // test; its history must be linearizable across every change below.
          const w = new Workload(c, { clients: 3, keys: 6, members: NAMES, prefix: 'w:' });
          w.start();
          const follower = NAMES.find((n) => n !== leader)!;
          // Endpoints in order: a dead one first (skipped), then a follower (it forwards to the leader).
          const dead = '127.0.0.1:1';
          const endpoints = `${dead},${c.endpoints(follower)}`;

          const { spec, args } = await c.addSpec('n4');
          const added = await cairn(
            'member',
            'add',
            'n4',
            '--peer-url',
            `127.0.0.1:${spec.peer}`,
            '--endpoints',
            endpoints,
          );
          expect(added.code, added.err).toBe(0);
          expect(added.out).toMatch(/Member n4 \(id [0-9a-f]+\) added to the cluster as a learner/);
          expect(added.out).toContain('--initial-cluster-state existing');
          // The token too: a member started without it would be refused by every peer.
          expect(added.out).toContain('--cluster-token test-cluster');
          expect(added.out).toContain(`n4=127.0.0.1:${spec.peer}`);
          // The same name or address again is refused.
          const again = await cairn(
            'member',
            'add',
            'n4',
            '--peer-url',
            '127.0.0.1:9',
            '--endpoints',
            endpoints,
          );
          expect(again.code).toBe(2);
          expect(again.err).toMatch(/named 'n4' already exists/);

          // Not started yet, so not caught up: promotion is refused.
          const early = await cairn('member', 'promote', 'n4', '--endpoints', endpoints);
          expect(early.code).toBe(2);
          expect(early.err).toMatch(/not caught up/);
          // Not started: commands over every member say they could not ask it (exit 2 and 1).
          const unstarted = await cairn('endpoint', 'status', '--cluster', '--endpoints', endpoints);
          expect(unstarted.code, unstarted.err).toBe(2);
          expect(unstarted.err).toMatch(/HTTP address of n4 is not known yet/);
          const unhealthy = await cairn(
            'endpoint',
            'health',
            '--cluster',
            '--json',
            '--endpoints',
            endpoints,
          );
          expect(unhealthy.code, unhealthy.err).toBe(1);
          expect(JSON.parse(unhealthy.out)).toContainEqual(
            expect.objectContaining({ name: 'n4', health: false }),
          );

          await c.startMember('n4', args);
          await until('n4 catches up', () => caughtUp(c, 'n4'));
          // The load compacted the logs (a snapshot every SNAPSHOT_COUNT entries): n4 caught up by snapshot.
          expect(await c.metric('n4', 'cairn_raft_snapshots_installed_total')).toBeGreaterThanOrEqual(1);
          expect(await c.metric('n4', 'cairn_raft_repairing')).toBe(0);
          let list = await memberList(endpoints);
          expect(list.find((m) => m.name === 'n4')?.role).toBe('learner');

          const promoted = await cairn('member', 'promote', 'n4', '--endpoints', endpoints);
          expect(promoted.code, promoted.err).toBe(0);
          expect(promoted.out).toBe('Member n4 promoted to voter.\n');
          list = await memberList(c.endpoints('n4'));
          expect(list.map((m) => [m.name, m.role]).sort()).toEqual([
            ['n1', 'voter'],
            ['n2', 'voter'],
            ['n3', 'voter'],
            ['n4', 'voter'],
          ]);
          expect(list.filter((m) => m.isLeader).map((m) => m.name)).toEqual([leader]);
          const table = await cairn('member', 'list', '--endpoints', endpoints);
          expect(table.code).toBe(0);
          expect(table.out).toMatch(/NAME.*ID.*ROLE.*LEADER.*PEER ADDR/);
          expect(table.out).toMatch(/n4 .*voter/);

          // endpoint status: every member agrees on the term and leader; the newcomer holds the data.
          const all = c.endpoints('n1', 'n2', 'n3', 'n4');
          const status = await cairn('endpoint', 'status', '--json', '--endpoints', all);
          expect(status.code, status.err).toBe(0);
          const rows = JSON.parse(status.out) as {
            name: string;
            isLeader: boolean;
            isLearner: boolean;
            term: number;
            keys: number;
            leader: string;
            errors: string[];
          }[];
          expect(rows.map((r) => r.name)).toEqual(['n1', 'n2', 'n3', 'n4']);
          expect(new Set(rows.map((r) => r.term)).size).toBe(1);
          expect(rows.filter((r) => r.isLeader).map((r) => r.name)).toEqual([leader]);
          expect(rows.every((r) => r.leader === leader && !r.isLearner && r.errors.length === 0)).toBe(true);
          expect(rows.find((r) => r.name === 'n4')?.keys).toBeGreaterThanOrEqual(KEYS);
          const health = await cairn('endpoint', 'health', '--endpoints', all);
          expect(health.code, health.err).toBe(0);
          expect(health.out.match(/is healthy/g)).toHaveLength(4);

          // cairn check hash: every member digests its state at one index; all four agree.
          const hashed = await cairn('check', 'hash', '--json', '--endpoints', endpoints);
          expect(hashed.code, `${hashed.err}${hashed.out}`).toBe(0);
          const check = JSON.parse(hashed.out) as {
            index: number;
            ok: boolean;
            members: { name: string; index: number; digest: string; keys: number }[];
          };
          expect(check.ok).toBe(true);
          expect(check.members.map((m) => m.name).sort()).toEqual(['n1', 'n2', 'n3', 'n4']);
          expect(new Set(check.members.map((m) => m.digest)).size).toBe(1);
          // One index, one state: the same key count everywhere, the load and the workload's keys.
          const keyCounts = new Set(check.members.map((m) => m.keys));
          expect(keyCounts.size).toBe(1);
          expect([...keyCounts][0]).toBeGreaterThanOrEqual(KEYS);
          expect(check.members.every((m) => m.index === check.index)).toBe(true);
          const text = await cairn('check', 'hash', '--endpoints', endpoints);
          expect(text.code, text.err).toBe(0);
          expect(text.out).toMatch(/4 members hold the same state at index \d+\./);

          // Leadership to the newcomer, then remove it while it leads: it hands over first.
          const moved = await cairn('move-leader', 'n4', '--endpoints', endpoints);
          expect(moved.code, moved.err).toBe(0);
          expect(await c.leader()).toBe('n4');
          const removed = await cairn('member', 'remove', 'n4', '--endpoints', c.endpoints('n4'));
          expect(removed.code, removed.err).toBe(0);
          const next = await c.leader(15_000, NAMES);
          expect(NAMES).toContain(next);
          expect(await c.call(follower, 'SET', 'after', 'yes')).toBe('OK');
          for (const n of NAMES) expect(String(await c.call(n, 'GET', 'after'))).toBe('yes');
          list = await memberList(c.endpoints(...NAMES));
          expect(list.map((m) => m.name).sort()).toEqual(NAMES);
          // The removed member stops, as etcd's does (until 2026-12-07 it went on running and
          // answered CLUSTER_DOWN): whether it applied its own removal or its peers told it
          // (it may never apply it: the entry's commit reaches the remaining members), it records
          // the removal for its next start, says so, closes and exits with 3
          // (test/cluster/removed-member.test.ts).
          await until('n4 stops', () => !c.isRunning('n4'), REMOVED_STOP_MS);
          expect(await c.exited('n4')).toBe(3);
          expect(c.log('n4')).toMatch(/member 'n4' was removed from the cluster/);
          const record = JSON.parse(
            fs.readFileSync(path.join(c.spec('n4').dir, 'raft', 'member.json'), 'utf8'),
          ) as { removed?: { name: string }[] };
          expect((record.removed ?? []).some((m) => m.name === 'n4')).toBe(true);
          // Its ports serve nothing: the process is gone.
          await expect(c.call('n4', 'GET', 'after')).rejects.toThrow();
          await expect(fetch(`http://${c.endpoints('n4')}/healthz`)).rejects.toThrow();
          expect(String(await c.call(follower, 'GET', 'after'))).toBe('yes');
          const unknown = await cairn('member', 'remove', 'n4', '--endpoints', endpoints);
          expect(unknown.code).toBe(1);
          expect(unknown.err).toMatch(/no member named 'n4'/);
          await w.stop();
          expectSound(w, await w.readAll(follower), 'membership changes under load');
        },
        ['--snapshot-count', String(SNAPSHOT_COUNT)],
      ),
    90_000,
  );

  it.concurrent(
    'replaces a dead member under load (the newcomer catches up by snapshot); refuses a quorum-losing removal and removing the last voter',
    () =>
      withCluster(
        async (c) => {
          const leader = await c.leader();
          await load(c, leader);
          const [alive, doomed] = NAMES.filter((n) => n !== leader) as [string, string];
          const endpoints = c.endpoints(alive, leader);
          // Clients keep reading, writing and swapping through the two live members all along the
          // replacement; their history is checked once the newcomer is promoted.
          const w = new Workload(c, { clients: 3, keys: 6, members: [leader, alive], prefix: 'w:' });
          w.start();
          await c.kill(doomed);
          // Dead for a moment: still "active" to the membership checks (heard within 5 s), but a
          // leadership transfer to it would stop writes for an election timeout: refused at once.
          await sleep(JUST_DEAD_MS);
          const toDead = await cairn('move-leader', doomed, '--endpoints', endpoints);
          expect(toDead.code).toBe(2);
          expect(toDead.err).toMatch(new RegExp(`'${doomed}' has not answered in the last 300 ms`));
          await sleep(ACTIVE_WAIT_MS);
          const health = await cairn(
            'endpoint',
            'health',
            '--json',
            '--endpoints',
            c.endpoints(leader, doomed),
          );
          expect(health.code).toBe(1);
          expect((JSON.parse(health.out) as { health: boolean }[]).map((r) => r.health)).toEqual([
            true,
            false,
          ]);

          // Removing the live follower would leave {leader, doomed}: one of two active.
          const unsafe = await cairn('member', 'remove', alive, '--endpoints', endpoints);
          expect(unsafe.code).toBe(2);
          expect(unsafe.err).toMatch(/only 1 of the 2 remaining voters are active/);

          // Replace the dead one: remove it, add a new member on a new directory, promote it.
          const gone = await cairn('member', 'remove', doomed, '--endpoints', endpoints);
          expect(gone.code, gone.err).toBe(0);
          // A removed member's name is not reused.
          const reuse = await cairn(
            'member',
            'add',
            doomed,
            '--peer-url',
            '127.0.0.1:9',
            '--endpoints',
            endpoints,
          );
          expect(reuse.code).toBe(2);
          expect(reuse.err).toMatch(/was removed/);
          const { spec, args } = await c.addSpec('n5');
          const added = await cairn(
            'member',
            'add',
            'n5',
            '--peer-url',
            `127.0.0.1:${spec.peer}`,
            '--endpoints',
            endpoints,
          );
          expect(added.code, added.err).toBe(0);
          await c.startMember('n5', args);
          await until('n5 catches up', () => caughtUp(c, 'n5'));
          // The logs were compacted below what n5 needed: it caught up by snapshot.
          expect(await c.metric(leader, 'cairn_raft_log_first_index')).toBeGreaterThan(1);
          expect(await c.metric(leader, 'cairn_raft_snapshots_sent_total')).toBeGreaterThanOrEqual(1);
          expect(await c.metric('n5', 'cairn_raft_snapshots_installed_total')).toBeGreaterThanOrEqual(1);
          await until('n5 is promoted', async () => {
            const r = await cairn('member', 'promote', 'n5', '--endpoints', endpoints);
            return r.code === 0;
          });
          const members = ['n5', alive, leader].sort();
          expect((await memberList(endpoints)).map((m) => `${m.name}:${m.role}`).sort()).toEqual(
            members.map((n) => `${n}:voter`),
          );
          expect(await c.call('n5', 'SET', 'via-n5', '1')).toBe('OK');
          expect(String(await c.call(alive, 'GET', 'via-n5'))).toBe('1');
          await w.settle();
          await w.stop();
          expectSound(w, await w.readAll('n5'), 'replacing a dead member under load: ');

          // A restarted member starts from its member.json checkpoint (the current list, not the
          // initial one) and rejoins.
          const record = JSON.parse(
            fs.readFileSync(path.join(c.spec(alive).dir, 'raft', 'member.json'), 'utf8'),
          ) as { members: { name: string }[]; removed: { name: string }[]; membershipIndex: number };
          expect(record.members.map((m) => m.name).sort()).toEqual(members);
          expect(record.removed.map((m) => m.name)).toEqual([doomed]);
          expect(record.membershipIndex).toBeGreaterThan(3);
          await c.kill(alive);
          expect(await c.call('n5', 'SET', 'while-down', '1')).toBe('OK');
          await c.startMember(alive);
          await until(`${alive} rejoins`, async () => {
            const client = await c.client(alive);
            try {
              await client.call('READONLY');
              return String(await client.call('GET', 'while-down')) === '1';
            } finally {
              await client.close();
            }
          });

          // Shrink to one voter; the last one cannot be removed.
          for (const n of ['n5', alive]) {
            const r = await cairn('member', 'remove', n, '--endpoints', c.endpoints(leader));
            expect(r.code, r.err).toBe(0);
          }
          const last = await cairn('member', 'remove', leader, '--force', '--endpoints', c.endpoints(leader));
          expect(last.code).toBe(2);
          expect(last.err).toMatch(/last voter/);
          expect(await c.call(leader, 'SET', 'alone', 'ok')).toBe('OK');
        },
        ['--snapshot-count', String(SNAPSHOT_COUNT)],
      ),
    // As its sibling: about 25 s alone, but it spawns the CLI a dozen times beside another
    // cluster, and under a full parallel run on a loaded machine it took 59-61 s.
    90_000,
  );
});
