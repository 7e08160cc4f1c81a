// cairn snapshot save against a 3-member cluster of real processes, asked of a FOLLOWER while
// clients write: the member makes itself linearizable first (ReadIndex), so the archive holds
// every write acknowledged before the save; restored as a new single server it holds exactly a
// prefix of the writes in commit order (timestamps are the leader's, the same on every member).
// Then the other way: an archive restored as the first member of a new cluster (seeded), which a
// member added later receives by Raft snapshot (its log does not hold the seeded data).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { cairn } from '../cli/support.js';
import { AckLog, expectPrefix, modTimes, shuffledKeys } from '../support/snapshot-check.js';
import { tmpDir } from '../support/tmp-dir.js';
import { ProcCluster } from './proc-cluster.js';

/** SEEDED_KEYS: keys in the archive a seeded cluster starts from. */
const SEEDED_KEYS = 2_000;
const CATCH_UP_MS = 20_000;

let cluster: ProcCluster | undefined;
let seeded: ProcCluster | undefined;

afterAll(async () => {
  await cluster?.stop();
  await seeded?.stop();
});

describe('cairn snapshot save of a cluster member', () => {
  it('asked of a follower during writes: restores to a prefix holding every acknowledged write', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3']);
    const leader = await cluster.leader();
    const follower = cluster.members.find((m) => m.name !== leader)!;
    const log = new AckLog(shuffledKeys(50_000, 11));
    // Writers on every member: followers forward to the leader.
    const clients = await Promise.all(
      cluster.members.flatMap((m) => [cluster!.client(m.name), cluster!.client(m.name)]),
    );
    const writers = clients.map((c) => log.run(c));
    while (log.acked.size < 500) await new Promise((r) => setTimeout(r, 5));
    const ackedBefore = new Set(log.acked);
    const work = tmpDir('cluster-snap');
    const file = path.join(work, 'cluster.snap');
    const saved = await cairn(
      work,
      'snapshot',
      'save',
      file,
      '--endpoints',
      `127.0.0.1:${follower.http}`,
      '--json',
    );
    expect(saved.stderr, cluster.dumpLogs()).toBe('');
    expect(saved.code).toBe(0);
    // Keep writing a little after the save: those may or may not be in it.
    const target = log.acked.size + 200;
    while (log.acked.size < target) await new Promise((r) => setTimeout(r, 5));
    log.stopped = true;
    await Promise.all(writers);
    await Promise.all(clients.map((c) => c.close()));
    await cluster.stop();
    const leaderDir = cluster.spec(leader).dir;
    const finalMods = await modTimes(leaderDir);
    for (const key of log.acked) expect(finalMods.has(key)).toBe(true);

    const restoredDir = path.join(tmpDir('cluster-restore'), 'single');
    const restored = await cairn(work, 'snapshot', 'restore', file, '--dir', restoredDir, '--json');
    expect(restored.stderr).toBe('');
    const held = await expectPrefix(restoredDir, ackedBefore, finalMods);
    expect(held).toBe((JSON.parse(saved.out) as { keys: number }).keys);
    expect(held).toBeGreaterThanOrEqual(ackedBefore.size);
    expect(held).toBeLessThan(finalMods.size);
  });

  it('seeds a new cluster from an archive; a member added later catches up by Raft snapshot', async () => {
    const work = tmpDir('seed');
    const source = path.join(work, 'source');
    const db = await open(source);
    for (let i = 0; i < SEEDED_KEYS; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => db.set(`s${i + j}`, `v${i + j}`)));
    }
    await db.close();
    const file = path.join(work, 'seed.snap');
    const saved = await cairn(work, 'snapshot', 'save', file, '--dir', source);
    expect(saved.stderr).toBe('');
    seeded = await ProcCluster.start(['n1'], {
      prepare: async (spec, initialCluster) => {
        const r = await cairn(
          work,
          'snapshot',
          'restore',
          file,
          '--dir',
          spec.dir,
          '--name',
          spec.name,
          '--initial-cluster',
          initialCluster,
          '--cluster-token',
          'test-cluster',
        );
        expect(r.stderr).toBe('');
      },
    });
    const c = seeded;
    expect(await c.leader()).toBe('n1');
    expect(String(await c.call('n1', 'GET', 's7'))).toBe('v7');
    // cairn check hash before any write: the seeded data is older than the log, not ahead of it
    // (it was refused until the first write: "no digest for entry 3").
    await expectSameHash(work, c.endpoints('n1'), ['n1']);
    expect(await c.call('n1', 'SET', 'after-seed', 'yes')).toBe('OK');
    const { spec, args } = await c.addSpec('n2');
    const added = await cairn(
      work,
      'member',
      'add',
      'n2',
      '--peer-url',
      `127.0.0.1:${spec.peer}`,
      '--endpoints',
      c.endpoints('n1'),
    );
    expect(added.stderr, c.dumpLogs()).toBe('');
    await c.startMember('n2', args);
    const end = Date.now() + CATCH_UP_MS;
    for (;;) {
      const client = await c.client('n2').catch(() => undefined);
      try {
        if (client !== undefined) {
          await client.call('READONLY');
          const got = [await client.call('GET', 's0'), await client.call('GET', `s${SEEDED_KEYS - 1}`)];
          if (got.map(String).join() === `v0,v${SEEDED_KEYS - 1}`) break;
        }
      } catch {
        // Not yet (starting, installing).
      } finally {
        await client?.close();
      }
      if (Date.now() > end) throw new Error(`n2 did not receive the seeded data\n${c.dumpLogs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const client = await c.client('n2');
    await client.call('READONLY');
    expect(String(await client.call('GET', 'after-seed'))).toBe('yes');
    expect(await client.call('DBSIZE')).toBe(SEEDED_KEYS + 1);
    await client.close();
    // And with no write since n2 installed its snapshot: both digest the same state at once.
    await expectSameHash(work, c.endpoints('n1', 'n2'), ['n1', 'n2']);
  });
});

/** expectSameHash: `cairn check hash` answers from every member named, all with one digest. */
async function expectSameHash(cwd: string, endpoints: string, names: readonly string[]): Promise<void> {
  const hashed = await cairn(cwd, 'check', 'hash', '--json', '--endpoints', endpoints);
  expect(hashed.code, `${hashed.stderr}${hashed.out}`).toBe(0);
  const check = JSON.parse(hashed.out) as { ok: boolean; members: { name: string; digest: string }[] };
  expect(check.ok).toBe(true);
  expect(check.members.map((m) => m.name).sort()).toEqual([...names].sort());
  expect(new Set(check.members.map((m) => m.digest)).size).toBe(1);
}
