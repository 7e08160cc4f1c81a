// Disk faults inside real members (src/io/failpoints.ts): an fsync or a write of the Raft log or
// the engine fails, or the machine loses power (unsynced data gone, then SIGKILL). The member
// stops; the others go on; restarted without the failpoint it recovers and catches up; the
// history stays linearizable and no acknowledged write is lost.
import { afterEach, describe, expect, it } from 'vitest';
import { ProcCluster, sleep } from './proc-cluster.js';
import { expectSound, Workload } from './workload.js';

const NAMES = ['n1', 'n2', 'n3'];
let cluster: ProcCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** CASES: the failpoint, and whether it is armed on the leader or on a follower. */
const ALL_CASES: readonly { readonly failpoint: string; readonly on: 'leader' | 'follower' }[] = [
  { failpoint: 'wal-fsync-eio@40', on: 'leader' },
  { failpoint: 'power-loss@100', on: 'follower' },
  { failpoint: 'wal-torn-write@30', on: 'follower' },
  // A member's engine fsyncs about once a second (durability `interval`: the Raft log is what is
  // fsynced per write), so its third fsync comes within the 10 s the test waits.
  { failpoint: 'engine-fsync-eio@3', on: 'leader' },
  { failpoint: 'power-loss@150', on: 'leader' },
  { failpoint: 'engine-write-enospc@25', on: 'follower' },
];
/** CI runs two cases (each takes seconds of three processes); CAIRN_CLUSTER_FULL=1 runs all. */
const CASES = process.env.CAIRN_CLUSTER_FULL === '1' ? ALL_CASES : ALL_CASES.slice(0, 2);

describe('disk failpoints in a member', () => {
  for (const { failpoint, on } of CASES) {
    it(`${failpoint} on the ${on}: the member stops, the rest go on, it recovers on restart`, async () => {
      cluster = await ProcCluster.start(NAMES);
      const leader = await cluster.leader();
      const victim = on === 'leader' ? leader : NAMES.find((n) => n !== leader)!;
      // Restart the victim with the failpoint armed (same command line, plus the environment).
      await cluster.kill(victim, 'SIGKILL');
      await cluster.startMember(victim, undefined, { CAIRN_FAILPOINTS: failpoint });
      if (on === 'leader') {
        // Make the armed member lead again (it was the leader; a new one may have been elected).
        await cluster.leader();
      }
      const w = new Workload(cluster, { clients: 6, keys: 4, members: NAMES });
      w.start();
      const outcome = await Promise.race([cluster.exited(victim), sleep(10_000).then(() => 'still running')]);
      expect(outcome, `${victim} should have stopped on ${failpoint}:\n${cluster.dumpLogs()}`).not.toBe(
        'still running',
      );
      await sleep(1_000);
      await cluster.startMember(victim);
      await sleep(1_000);
      await w.stop();
      const final = await w.readAll(victim);
      expectSound(w, final, `${failpoint} on the ${on}: `);
    }, 90_000);
  }
});
