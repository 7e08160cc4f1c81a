// MIT 6.824 lab 2C (persistence), adapted to the simulator. A crash loses everything the node
// had not persisted (an in-progress Ready, possibly torn); restart rebuilds from its disk.

import { describe, expect, it } from 'vitest';
import type { Harness as H } from './harness.js';
import { ELECTION_TIMEOUT_MS, Harness, next, scenarioSeeds } from './harness.js';

/** restart is the course's start1 on a running server: crash it and boot it from its disk. */
function restart(h: H, id: number): void {
  h.c.crash(id);
  h.start(id);
}

/** Client is one churn client: it keeps starting commands and records the acknowledged ones. */
interface Client {
  waiting: { index: number; term: number; cmd: string } | undefined;
  acked: string[];
}

function churn(unreliable: boolean, seed: number): void {
  const n = 5;
  const h = new Harness(n, seed);
  h.setUnreliable(unreliable);
  const clients: Client[] = Array.from({ length: 3 }, () => ({ waiting: undefined, acked: [] }));
  let counter = 0;
  const drive = (ms: number): void => {
    // Clients act every 20ms of simulated time, like the course's goroutines polling.
    for (let t = 0; t < ms; t += 20) {
      for (const [ci, cl] of clients.entries()) {
        if (cl.waiting !== undefined) {
          const w = cl.waiting;
          const { count, cmd } = h.nCommitted(w.index);
          if (count > 0) {
            if (cmd === w.cmd) cl.acked.push(w.cmd);
            cl.waiting = undefined;
          } else if (h.now() % 3000 < 20) {
            cl.waiting = undefined; // Give up now and then, as the course's clients do.
          }
          continue;
        }
        const id = h.rand(n) + 1;
        const cmd = `c${ci}-${counter++}`;
        const r = h.startCmd(id, cmd);
        if (r.isLeader && h.isUp(id) && h.connected.has(id))
          cl.waiting = { index: r.index, term: r.term, cmd };
      }
      h.sleep(20);
    }
  };
  for (let iters = 0; iters < 20; iters++) {
    if (h.rand(1000) < 200) h.disconnect(h.rand(n) + 1);
    if (h.rand(1000) < 500) {
      const i = h.rand(n) + 1;
      h.start(i);
      h.connect(i);
    }
    if (h.rand(1000) < 200) {
      const i = h.rand(n) + 1;
      if (h.isUp(i)) h.crash(i);
    }
    // Make crash/restart infrequent enough that the cluster makes progress.
    drive((ELECTION_TIMEOUT_MS * 7) / 10);
  }
  h.sleep(ELECTION_TIMEOUT_MS);
  h.setUnreliable(false);
  for (const id of h.servers) {
    h.start(id);
    h.connect(id);
  }
  drive(ELECTION_TIMEOUT_MS);
  const lastIndex = h.one(String(h.rand(1e9)), n, true);
  const really = new Set<string>();
  for (let index = 1; index <= lastIndex; index++) {
    // Our log also holds conf changes and leaders' empty entries: only client commands count.
    const rec = h.c.checkers.committed[index];
    if (rec === undefined || !rec.key.startsWith('N:') || rec.key.length === 2) continue;
    const v = h.wait(index, n, -1);
    if (v !== undefined) really.add(v);
  }
  let acked = 0;
  for (const cl of clients) {
    for (const v of cl.acked) {
      expect(really.has(v), `acknowledged ${v} is missing from the log`).toBe(true);
      acked++;
    }
  }
  expect(acked).toBeGreaterThan(0);
}

describe('6.824 2C: persistence', () => {
  it.each(scenarioSeeds(2201))('basic persistence (persist 1) (seed %i)', (seed) => {
    const n = 3;
    const h = new Harness(n, seed);
    h.one('11', n, true);
    // Crash and restart all.
    for (const id of h.servers) restart(h, id);
    for (const id of h.servers) {
      h.disconnect(id);
      h.connect(id);
    }
    h.one('12', n, true);
    const leader1 = h.checkOneLeader();
    h.disconnect(leader1);
    restart(h, leader1);
    h.connect(leader1);
    h.one('13', n, true);
    const leader2 = h.checkOneLeader();
    h.disconnect(leader2);
    const i14 = h.one('14', n - 1, true);
    restart(h, leader2);
    h.connect(leader2);
    h.wait(i14, n, -1); // Wait for leader2 to join before killing i3.
    const i3 = next(h.checkOneLeader(), 1, n);
    h.disconnect(i3);
    h.one('15', n - 1, true);
    restart(h, i3);
    h.connect(i3);
    h.one('16', n, true);
  });

  it.each(scenarioSeeds(2202))('more persistence (persist 2) (seed %i)', (seed) => {
    const n = 5;
    const h = new Harness(n, seed);
    let index = 1;
    for (let iters = 0; iters < 5; iters++) {
      h.one(String(10 + index++), n, true);
      const leader1 = h.checkOneLeader();
      h.disconnect(next(leader1, 1, n));
      h.disconnect(next(leader1, 2, n));
      h.one(String(10 + index++), n - 2, true);
      h.disconnect(leader1);
      h.disconnect(next(leader1, 3, n));
      h.disconnect(next(leader1, 4, n));
      restart(h, next(leader1, 1, n));
      restart(h, next(leader1, 2, n));
      h.connect(next(leader1, 1, n));
      h.connect(next(leader1, 2, n));
      h.sleep(ELECTION_TIMEOUT_MS);
      restart(h, next(leader1, 3, n));
      h.connect(next(leader1, 3, n));
      h.one(String(10 + index++), n - 2, true);
      h.connect(next(leader1, 4, n));
      h.connect(leader1);
    }
    h.one('1000', n, true);
  });

  it.each(scenarioSeeds(2203))(
    'partitioned leader and one follower crash, leader restarts (persist 3) (seed %i)',
    (seed) => {
      const n = 3;
      const h = new Harness(n, seed);
      h.one('101', 3, true);
      const leader = h.checkOneLeader();
      h.disconnect(next(leader, 2, n));
      h.one('102', 2, true);
      h.crash(leader);
      h.crash(next(leader, 1, n));
      h.connect(next(leader, 2, n));
      h.start(leader);
      h.connect(leader);
      h.one('103', 2, true);
      h.start(next(leader, 1, n));
      h.connect(next(leader, 1, n));
      h.one('104', n, true);
    },
  );

  it.each(scenarioSeeds(2204))('Figure 8 (seed %i)', (seed) => {
    const n = 5;
    const h = new Harness(n, seed);
    h.one(String(h.rand(1e9)), 1, true);
    let nup = n;
    for (let iters = 0; iters < 1000; iters++) {
      let leader = -1;
      for (const id of h.servers) {
        if (h.isUp(id) && h.startCmd(id, String(h.rand(1e9))).isLeader) leader = id;
      }
      if (h.rand(1000) < 100) h.sleep(h.rand(ELECTION_TIMEOUT_MS / 2));
      else h.sleep(h.rand(13));
      if (leader !== -1) {
        h.crash(leader);
        nup--;
      }
      if (nup < 3) {
        const s = h.rand(n) + 1;
        if (!h.isUp(s)) {
          h.start(s);
          h.connect(s);
          nup++;
        }
      }
    }
    for (const id of h.servers) {
      if (!h.isUp(id)) {
        h.start(id);
        h.connect(id);
      }
    }
    h.one(String(h.rand(1e9)), n, true);
  });

  it.each(scenarioSeeds(2205))('unreliable agreement (seed %i)', (seed) => {
    const n = 5;
    const h = new Harness(n, seed);
    h.setUnreliable(true);
    for (let iters = 1; iters < 50; iters++) {
      for (let j = 0; j < 4; j++) h.one(String(100 * iters + j), 1, true);
      h.one(String(iters), 1, true);
    }
    h.setUnreliable(false);
    h.one('100', n, true);
  });

  it.each(scenarioSeeds(2206))('Figure 8 (unreliable) (seed %i)', (seed) => {
    const n = 5;
    const h = new Harness(n, seed);
    h.setUnreliable(true);
    h.one(String(h.rand(10000)), 1, true);
    let nup = n;
    for (let iters = 0; iters < 1000; iters++) {
      if (iters === 200) h.setLongReordering(true);
      let leader = -1;
      for (const id of h.servers) {
        if (h.connected.has(id) && h.startCmd(id, String(h.rand(10000))).isLeader) leader = id;
      }
      if (h.rand(1000) < 100) h.sleep(h.rand(ELECTION_TIMEOUT_MS / 2));
      else h.sleep(h.rand(13));
      if (leader !== -1 && h.rand(1000) < ELECTION_TIMEOUT_MS / 2) {
        h.disconnect(leader);
        nup--;
      }
      if (nup < 3) {
        const s = h.rand(n) + 1;
        if (!h.connected.has(s)) {
          h.connect(s);
          nup++;
        }
      }
    }
    for (const id of h.servers) h.connect(id);
    h.one(String(h.rand(10000)), n, true);
  });

  it.each(scenarioSeeds(2207))('reliable churn (seed %i)', (seed) => {
    churn(false, seed);
  });

  it.each(scenarioSeeds(2208))('unreliable churn (seed %i)', (seed) => {
    churn(true, seed);
  });
});
