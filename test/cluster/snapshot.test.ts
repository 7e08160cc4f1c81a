// cairn snapshot save against a 3-member cluster of real processes, asked of a FOLLOWER while
// clients write: the member makes itself linearizable first (ReadIndex), so the archive holds
// every write acknowledged before the save; restored as a new single server it holds exactly a
// prefix of the writes in commit order (timestamps are the leader's, the same on every member).
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cairn } from '../cli/support.js';
import { AckLog, expectPrefix, modTimes, shuffledKeys } from '../support/snapshot-check.js';
import { tmpDir } from '../support/tmp-dir.js';
import { ProcCluster } from './proc-cluster.js';

let cluster: ProcCluster | undefined;

afterAll(async () => {
  await cluster?.stop();
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
      '--endpoint',
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
});
