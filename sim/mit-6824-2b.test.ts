// MIT 6.824 lab 2B (log replication), adapted to the simulator. The course's logs start at
// index 1; ours start after the bootstrap conf changes and the leader's empty entry, so index
// assertions are relative (consecutive commands get consecutive indexes).

import { describe, expect, it } from 'vitest';
import { ELECTION_TIMEOUT_MS, Harness, next, scenarioSeeds } from './harness.js';

describe('6.824 2B: log replication', () => {
  it.each(scenarioSeeds(2101))('basic agreement (seed %i)', (seed) => {
    const n = 3;
    const h = new Harness(n, seed);
    let prev = -1;
    for (let i = 1; i <= 3; i++) {
      const xindex = h.one(String(i * 100), n, false);
      if (prev !== -1) expect(xindex).toBe(prev + 1);
      expect(h.nCommitted(xindex + 1).count).toBe(0); // Nothing commits before Start().
      prev = xindex;
    }
  });

  it.each(scenarioSeeds(2102))('agreement after follower reconnects (fail agree) (seed %i)', (seed) => {
    const n = 3;
    const h = new Harness(n, seed);
    h.one('101', n, false);
    // Disconnect one follower: the rest still agree.
    const leader = h.checkOneLeader();
    h.disconnect(next(leader, 1, n));
    h.one('102', n - 1, false);
    h.one('103', n - 1, false);
    h.sleep(ELECTION_TIMEOUT_MS);
    h.one('104', n - 1, false);
    h.one('105', n - 1, false);
    // Reconnect: it catches up.
    h.connect(next(leader, 1, n));
    h.one('106', n, true);
    h.sleep(ELECTION_TIMEOUT_MS);
    h.one('107', n, true);
  });

  it.each(scenarioSeeds(2103))(
    'no agreement if too many followers disconnect (fail no agree) (seed %i)',
    (seed) => {
      const n = 5;
      const h = new Harness(n, seed);
      const i10 = h.one('10', n, false);
      const leader = h.checkOneLeader();
      h.disconnect(next(leader, 1, n));
      h.disconnect(next(leader, 2, n));
      h.disconnect(next(leader, 3, n));
      const r = h.startCmd(leader, '20');
      expect(r.isLeader).toBe(true);
      expect(r.index).toBe(i10 + 1);
      h.sleep(2 * ELECTION_TIMEOUT_MS);
      expect(h.nCommitted(r.index).count).toBe(0);
      // Repair.
      h.connect(next(leader, 1, n));
      h.connect(next(leader, 2, n));
      h.connect(next(leader, 3, n));
      // The disconnected majority may have chosen a leader among themselves, forgetting index 2.
      const leader2 = h.checkOneLeader();
      const r2 = h.startCmd(leader2, '30');
      expect(r2.isLeader).toBe(true);
      expect(r2.index).toBeGreaterThanOrEqual(i10 + 1);
      expect(r2.index).toBeLessThanOrEqual(i10 + 4);
      h.one('1000', n, true);
    },
  );

  it.each(scenarioSeeds(2104))('concurrent Start()s (seed %i)', (seed) => {
    const n = 3;
    const h = new Harness(n, seed);
    let success = false;
    for (let attempt = 0; attempt < 5 && !success; attempt++) {
      if (attempt > 0) h.sleep(3000); // Give the solution some time to settle.
      const leader = h.checkOneLeader();
      const first = h.startCmd(leader, '1');
      if (!first.isLeader) continue;
      const iters = 5;
      const started: { index: number; cmd: string }[] = [];
      let failed = false;
      for (let i = 0; i < iters; i++) {
        const r = h.startCmd(leader, String(100 + i));
        if (r.term !== first.term || !r.isLeader) {
          failed = true;
          break;
        }
        started.push({ index: r.index, cmd: String(100 + i) });
      }
      if (failed) continue;
      for (const id of h.servers) if (h.term(id) !== first.term) failed = true;
      if (failed) continue;
      const cmds: string[] = [];
      for (const s of started) {
        const cmd = h.wait(s.index, n, first.term);
        if (cmd === undefined) {
          failed = true;
          break;
        }
        cmds.push(cmd);
      }
      if (failed) continue;
      for (let i = 0; i < iters; i++) expect(cmds).toContain(String(100 + i));
      success = true;
    }
    expect(success).toBe(true);
  });

  it.each(scenarioSeeds(2105))('rejoin of partitioned leader (seed %i)', (seed) => {
    const n = 3;
    const h = new Harness(n, seed);
    h.one('101', n, true);
    // The leader's network fails; it keeps accepting commands that will never commit.
    const leader1 = h.checkOneLeader();
    h.disconnect(leader1);
    h.startCmd(leader1, '102');
    h.startCmd(leader1, '103');
    h.startCmd(leader1, '104');
    // The others elect a new leader and commit.
    h.one('103', 2, true);
    const leader2 = h.checkOneLeader();
    h.disconnect(leader2);
    // The old leader is back: its uncommitted entries are overwritten.
    h.connect(leader1);
    h.one('104', 2, true);
    h.connect(leader2);
    h.one('105', n, true);
  });

  it.each(scenarioSeeds(2106))(
    'leader backs up quickly over incorrect follower logs (fast back-up, 50 conflicting entries) (seed %i)',
    (seed) => {
      const n = 5;
      const h = new Harness(n, seed);
      h.one(String(h.rand(1e9)), n, true);
      // Put the leader and one follower in a partition.
      const leader1 = h.checkOneLeader();
      h.disconnect(next(leader1, 2, n));
      h.disconnect(next(leader1, 3, n));
      h.disconnect(next(leader1, 4, n));
      // Lots of commands that will not commit.
      for (let i = 0; i < 50; i++) h.startCmd(leader1, String(h.rand(1e9)));
      h.sleep(ELECTION_TIMEOUT_MS / 2);
      h.disconnect(leader1);
      h.disconnect(next(leader1, 1, n));
      // Allow the other partition to recover and commit lots of commands.
      h.connect(next(leader1, 2, n));
      h.connect(next(leader1, 3, n));
      h.connect(next(leader1, 4, n));
      for (let i = 0; i < 50; i++) h.one(String(h.rand(1e9)), 3, true);
      // Now another partitioned leader and one follower.
      const leader2 = h.checkOneLeader();
      let other = next(leader1, 2, n);
      if (leader2 === other) other = next(leader2, 1, n);
      h.disconnect(other);
      // Lots more commands that will not commit.
      for (let i = 0; i < 50; i++) h.startCmd(leader2, String(h.rand(1e9)));
      h.sleep(ELECTION_TIMEOUT_MS / 2);
      // Bring the original leader back to life.
      for (const id of h.servers) h.disconnect(id);
      h.connect(leader1);
      h.connect(next(leader1, 1, n));
      h.connect(other);
      for (let i = 0; i < 50; i++) h.one(String(h.rand(1e9)), 3, true);
      // Now everyone.
      for (const id of h.servers) h.connect(id);
      h.one(String(h.rand(1e9)), n, true);
    },
  );

  it.each(scenarioSeeds(2107))(
    'RPC counts aren\u2019t too high (election and 11 entries within the course budgets) (seed %i)',
    (seed) => {
      const n = 3;
      const h = new Harness(n, seed);
      const leader = h.checkOneLeader();
      const total1 = h.rpcTotal();
      // The course allows at most 30 RPCs to elect the first leader.
      expect(total1).toBeGreaterThanOrEqual(1);
      expect(total1).toBeLessThanOrEqual(30);
      let success = false;
      let total2 = 0;
      for (let attempt = 0; attempt < 5 && !success; attempt++) {
        if (attempt > 0) h.sleep(3000);
        const l = h.checkOneLeader();
        const before = h.rpcTotal();
        const iters = 10;
        const first = h.startCmd(l, '1');
        if (!first.isLeader) continue;
        const cmds: string[] = [];
        let failed = false;
        for (let i = 1; i < iters + 2; i++) {
          const x = String(h.rand(1e9));
          cmds.push(x);
          const r = h.startCmd(l, x);
          if (r.term !== first.term || !r.isLeader) {
            failed = true;
            break;
          }
          expect(r.index).toBe(first.index + i);
        }
        if (failed) continue;
        for (let i = 1; i < iters + 1; i++) {
          const cmd = h.wait(first.index + i, n, first.term);
          if (cmd === undefined) {
            failed = true;
            break;
          }
          expect(cmd).toBe(cmds[i - 1]);
        }
        if (failed) continue;
        for (const id of h.servers) if (h.term(id) !== first.term) failed = true;
        if (failed) continue;
        total2 = h.rpcTotal();
        // The course's budget: (iters + 1 + 3) * 3 RPCs for the entries.
        expect(total2 - before).toBeLessThanOrEqual((iters + 1 + 3) * 3);
        success = true;
      }
      expect(success).toBe(true);
      expect(leader).toBeGreaterThan(0);
      // One second of idleness costs at most 3 * 20 RPCs.
      h.sleep(ELECTION_TIMEOUT_MS);
      const total3 = h.rpcTotal();
      expect(total3 - total2).toBeLessThanOrEqual(3 * 20);
    },
  );
});
