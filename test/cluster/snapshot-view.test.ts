// A member that installs a leader's snapshot keeps its own view of its peers' addresses. With a
// proxy or NAT between members, each reaches the others at other addresses (ProcCluster's fault
// proxies give every member its own view); the snapshot carries the leader's view. Taking it
// rewrote the member's own record in member.json, and its next start with its unchanged command
// line was refused ("--initial-cluster gives 'n1' address ..., but member.json records ...";
// found while checking what a restart refuses, issue 13).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProcCluster, sleep } from './proc-cluster.js';

const NAMES = ['n1', 'n2', 'n3'];
/** SNAPSHOT_COUNT: snapshots (and log compaction) every few entries, so the victim catches up by snapshot. */
const SNAPSHOT_COUNT = 20;
const WRITES = 200;

describe('a snapshot from the leader behind proxies', () => {
  it("leaves the member's own peer addresses in member.json, and it restarts with its own command line", async () => {
    const c = await ProcCluster.start(NAMES, {
      proxies: true,
      extraArgs: ['--snapshot-count', String(SNAPSHOT_COUNT)],
    });
    try {
      const leader = await c.leader();
      const victim = NAMES.find((n) => n !== leader)!;
      const recorded = (): { name: string; peerAddr: string }[] =>
        (
          JSON.parse(fs.readFileSync(path.join(c.spec(victim).dir, 'raft', 'member.json'), 'utf8')) as {
            members: { name: string; peerAddr: string }[];
          }
        ).members.map((m) => ({ name: m.name, peerAddr: m.peerAddr }));
      const own = recorded();
      await c.kill(victim);
      for (let i = 0; i < WRITES; i++) expect(await c.call(leader, 'SET', `k${i}`, 'v')).toBe('OK');
      await c.startMember(victim);
      const end = Date.now() + 15_000;
      while ((await c.metric(victim, 'cairn_raft_snapshots_installed_total')) < 1) {
        if (Date.now() > end) throw new Error(`${victim} installed no snapshot`);
        await sleep(100);
      }
      // Its member.json is rewritten after the install (the checkpoint): give it a moment.
      await sleep(500);
      expect(recorded()).toEqual(own);
      await c.kill(victim);
      await c.startMember(victim);
      const client = await c.client(victim);
      try {
        await client.call('READONLY');
        expect(String(await client.call('GET', `k${WRITES - 1}`))).toBe('v');
      } finally {
        await client.close();
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    } finally {
      await c.stop();
    }
  }, 60_000);
});
