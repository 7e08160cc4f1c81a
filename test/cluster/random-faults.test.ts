// Randomized robustness rounds (etcd's robustness tests in spirit): each round starts a 3-member
// cluster with a fault proxy on every peer link, runs the recorded workload and bank transfers
// (bank.ts: WATCH/MULTI, MULTI and TXN.BEGIN/COMMIT) beside it, injects ONE fault picked at
// random, heals, and checks the history for linearizability, the final values and the bank's total.
// CI runs CAIRN_CLUSTER_ROUNDS (default 2) rounds with fresh seeds; set it to hundreds locally.
// Rounds take consecutive seeds and a round's fault is the seed's turn in FAULTS, so the rounds
// of one run inject different faults (every one once in FAULTS' length of rounds).
// A failing round prints its seed; CAIRN_CLUSTER_SEED=S replays the same choice of fault.
import { afterEach, describe, it } from 'vitest';
import { Prng } from '../../src/stdx/prng.js';
import { Bank } from './bank.js';
import { ProcCluster, sleep } from './proc-cluster.js';
import { expectSound, Workload } from './workload.js';

const NAMES = ['n1', 'n2', 'n3'];
const ROUNDS = Number(process.env.CAIRN_CLUSTER_ROUNDS ?? '2');
/** SNAPSHOT_COUNTS: a round's --snapshot-count (undefined: the default, no snapshot in a round). */
const SNAPSHOT_COUNTS = [undefined, 30, 100] as const;
/** FAULT_MS: how long a fault lasts before it heals. */
const FAULT_MS = 1_500;

type Fault = (cluster: ProcCluster, rng: Prng) => Promise<string>;

const linksOf = (cluster: ProcCluster, name: string, dir: 'in' | 'out' | 'both') =>
  [...cluster.links].filter(
    ([link]) =>
      (dir !== 'in' && link.startsWith(`${name}->`)) || (dir !== 'out' && link.endsWith(`->${name}`)),
  );

const FAULTS: Record<string, Fault> = {
  'kill the leader': async (cluster) => {
    const leader = await cluster.leader();
    await cluster.kill(leader, 'SIGKILL');
    await sleep(FAULT_MS);
    await cluster.startMember(leader);
    return leader;
  },
  'kill a follower': async (cluster, rng) => {
    const leader = await cluster.leader();
    const victim = rng.pick(NAMES.filter((n) => n !== leader));
    await cluster.kill(victim, 'SIGKILL');
    await sleep(FAULT_MS);
    await cluster.startMember(victim);
    return victim;
  },
  'kill every member': async (cluster) => {
    await Promise.all(NAMES.map((n) => cluster.kill(n, 'SIGKILL')));
    await sleep(200);
    await Promise.all(NAMES.map((n) => cluster.startMember(n)));
    return 'all';
  },
  'pause the leader': async (cluster) => {
    const leader = await cluster.leader();
    await cluster.kill(leader, 'SIGSTOP');
    await sleep(FAULT_MS);
    await cluster.kill(leader, 'SIGCONT');
    return leader;
  },
  'isolate the leader': async (cluster) => {
    const leader = await cluster.leader();
    for (const [, p] of linksOf(cluster, leader, 'both')) {
      p.blackholeTx();
      p.blackholeRx();
    }
    await sleep(FAULT_MS);
    for (const p of cluster.links.values()) {
      p.unblackholeTx();
      p.unblackholeRx();
    }
    return leader;
  },
  'the leader can send but not hear (one-way)': async (cluster) => {
    const leader = await cluster.leader();
    for (const [, p] of linksOf(cluster, leader, 'in')) p.blackholeTx();
    await sleep(FAULT_MS);
    for (const p of cluster.links.values()) p.unblackholeTx();
    return leader;
  },
  'the leader hears its followers late (one-way delay, 150 +- 100 ms)': async (cluster) => {
    const leader = await cluster.leader();
    for (const [, p] of linksOf(cluster, leader, 'in')) p.delay(150, 100, 'tx');
    await sleep(FAULT_MS);
    for (const p of cluster.links.values()) p.undelay();
    return leader;
  },
  'slow links (75 +- 50 ms each way)': async (cluster) => {
    for (const p of cluster.links.values()) p.delay(75, 50);
    await sleep(FAULT_MS);
    for (const p of cluster.links.values()) p.undelay();
    return 'all links';
  },
  'connections reset at random': async (cluster) => {
    for (const p of cluster.links.values()) p.dropRate(0.05);
    await sleep(FAULT_MS);
    for (const p of cluster.links.values()) p.dropRate(0);
    return 'all links';
  },
};

let cluster: ProcCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('randomized cluster faults', () => {
  for (let round = 0; round < ROUNDS; round++) {
    const seed = Number(process.env.CAIRN_CLUSTER_SEED ?? Math.floor(Math.random() * 2 ** 31)) + round;
    const rng = new Prng(seed);
    const names = Object.keys(FAULTS);
    const name = names[seed % names.length]!;
    // Half the rounds snapshot and compact every few dozen entries, so faults hit members that
    // install snapshots or restart from a compacted log.
    const snapshotCount = rng.pick(SNAPSHOT_COUNTS);
    const extraArgs = snapshotCount === undefined ? [] : ['--snapshot-count', String(snapshotCount)];
    it(`seed ${seed}: ${name}${snapshotCount === undefined ? '' : `, snapshots every ${snapshotCount}`}`, async () => {
      cluster = await ProcCluster.start(NAMES, { proxies: true, extraArgs });
      await cluster.leader();
      const w = new Workload(cluster, { clients: 6, keys: 4, members: NAMES });
      const bank = new Bank(cluster, { accounts: 4, start: 100, members: NAMES, prefix: 'bank' });
      await bank.open(await cluster.leader());
      w.start();
      bank.start();
      await sleep(500);
      const target = await FAULTS[name]!(cluster, rng);
      await sleep(1_000);
      await cluster.leader();
      await sleep(300);
      await w.settle();
      await Promise.all([w.stop(), bank.stop()]);
      const final = await w.readAll(NAMES[0]!);
      expectSound(w, final, `seed ${seed} (${name} on ${target}): `);
      await bank.expectTotal(NAMES[0]!, `seed ${seed} (${name} on ${target}): `);
    }, 120_000);
  }
});
