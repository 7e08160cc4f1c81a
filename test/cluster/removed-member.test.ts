// A removed member (issue 13, and its follow-up): started again, it printed the usual start
// banner ("Cairn is serving ...") and then answered CLUSTER_DOWN to everything; a running member
// that learned of its removal kept running and served nothing. Now, as etcd's removed member, it
// stops: a running member that is removed records it, closes and exits with
// EXIT_MEMBER_STARTED_BEFORE (3); started again it does not start, says it was removed and what
// to do, and exits with 3 too, so that a supervisor stops restarting it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_MEMBER_STARTED_BEFORE } from '../../src/cli/program.js';
import { run } from '../cli/support.js';
import { ProcCluster, until } from './proc-cluster.js';
import { expectSound, Workload } from './workload.js';

const NAMES = ['n1', 'n2', 'n3'];
/** STOP_WITHIN_MS: a removed member exits within this of `member remove` answering ("a few seconds"). */
const STOP_WITHIN_MS = 5_000;
/**
 * REFUSED_WITHIN_MS: a write sent to a removed member before it knew is refused within this,
 * well below the members' 5 s request timeout (it once waited that out, holding the close).
 */
const REFUSED_WITHIN_MS = 3_000;
/** WORKLOAD_MS: how long the recorded workload runs on either side of a leader's removal. */
const WORKLOAD_MS = 1_500;

/** memberRecord: what a member's member.json says of removals. */
function removedIn(c: ProcCluster, name: string): string[] {
  const record = JSON.parse(fs.readFileSync(path.join(c.spec(name).dir, 'raft', 'member.json'), 'utf8')) as {
    removed?: { name: string }[];
  };
  return (record.removed ?? []).map((m) => m.name);
}

/** exitWithin: the member's exit code, or 'running' if it has not exited within `ms`. */
function exitWithin(c: ProcCluster, name: string, ms: number): Promise<number | string> {
  return Promise.race([c.exited(name), new Promise<string>((r) => setTimeout(() => r('running'), ms))]);
}

/** removeMember runs `cairn member remove` against `endpoint` and returns when it answered. */
async function removeMember(c: ProcCluster, name: string, endpoint: string): Promise<void> {
  const removed = await run(
    'cairn',
    ['member', 'remove', name, '--endpoints', c.endpoints(endpoint)],
    process.cwd(),
  );
  expect(removed.code, removed.stderr).toBe(0);
}

describe("a running member that is removed stops, as etcd's does", () => {
  it('a follower: exits with 3 within seconds, says why, and the other two serve writes', async () => {
    const c = await ProcCluster.start(NAMES);
    try {
      const leader = await c.leader();
      const doomed = NAMES.find((n) => n !== leader)!;
      const exited = c.exited(doomed);
      const t0 = Date.now();
      // Sent to the doomed member itself: it relays the leader's answer while it learns of its
      // removal, and its graceful close lets that answer through.
      await removeMember(c, doomed, doomed);
      const answered = Date.now() - t0;
      expect(await exitWithin(c, doomed, STOP_WITHIN_MS)).toBe(EXIT_MEMBER_STARTED_BEFORE);
      console.log(
        `follower removal: member remove answered in ${answered} ms; exit after ${Date.now() - t0} ms`,
      );
      expect(await exited).toBe(EXIT_MEMBER_STARTED_BEFORE);
      // Its log says why: who was removed, by which change or which peer; and what to do.
      const said = c.log(doomed);
      expect(said).toMatch(
        new RegExp(
          `member '${doomed}' was removed from the cluster (by the configuration change at index \\d+ \\(committed by leader '${leader}'\\)|\\(peer 'n\\d' refused it)`,
        ),
      );
      expect(said).toMatch(/it stopped\..*records the removal/);
      expect(said).toMatch(/cairn member add NEWNAME/);
      // Durable before it exited: its next start is refused.
      expect(removedIn(c, doomed)).toContain(doomed);
      // The other two go on.
      const rest = NAMES.filter((n) => n !== doomed);
      for (const n of rest) expect(await c.call(n, 'SET', `after-${n}`, 'yes')).toBe('OK');
      for (const n of rest) expect(String(await c.call(n, 'GET', `after-${rest[0]}`))).toBe('yes');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    } finally {
      await c.stop();
    }
  }, 60_000);

  it('the leader: it hands over, exits with 3, a new leader is elected and nothing acknowledged is lost', async () => {
    const c = await ProcCluster.start(NAMES);
    try {
      const leader = await c.leader();
      const rest = NAMES.filter((n) => n !== leader);
      // Clients of the two that stay, before, during and after the removal.
      const w = new Workload(c, { clients: 4, keys: 4, members: rest });
      w.start();
      await new Promise((r) => setTimeout(r, WORKLOAD_MS));
      const exited = c.exited(leader);
      const t0 = Date.now();
      // Sent to the leader itself: it hands the leadership over first, then the new leader
      // removes it while it relays the answer (which must reach the operator).
      await removeMember(c, leader, leader);
      const answered = Date.now() - t0;
      const next = await c.leader(STOP_WITHIN_MS, rest);
      const elected = Date.now() - t0;
      expect(await exitWithin(c, leader, STOP_WITHIN_MS)).toBe(EXIT_MEMBER_STARTED_BEFORE);
      console.log(
        `leader removal: member remove answered in ${answered} ms; ${next} leads ${elected} ms after the request; exit after ${Date.now() - t0} ms`,
      );
      expect(await exited).toBe(EXIT_MEMBER_STARTED_BEFORE);
      expect(c.log(leader)).toMatch(new RegExp(`member '${leader}' was removed from the cluster`));
      expect(removedIn(c, leader)).toContain(leader);
      await new Promise((r) => setTimeout(r, WORKLOAD_MS));
      await w.stop();
      expect(await c.call(next, 'SET', 'after', 'yes')).toBe('OK');
      // Linearizable, and every value read back at the end was written: nothing acknowledged lost.
      expectSound(w, await w.readAll(next), 'leader removal');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    } finally {
      await c.stop();
    }
  }, 90_000);

  it('a member removed while it was down: started, it is told by its peers and exits with 3, acknowledging nothing', async () => {
    const c = await ProcCluster.start(NAMES);
    try {
      const leader = await c.leader();
      const doomed = NAMES.find((n) => n !== leader)!;
      await c.kill(doomed);
      await removeMember(c, doomed, leader);
      // Its directory knows nothing of the removal.
      expect(removedIn(c, doomed)).not.toContain(doomed);
      const before = c.log(doomed).length;
      const t0 = Date.now();
      // Restarted with its whole command line, as a supervisor would. It may accept a connection
      // before its first peer answers; a write sent then is refused, never acknowledged.
      const started = await c.startMember(doomed).then(
        () => true,
        () => false,
      );
      if (started) {
        const sent = Date.now();
        await expect(c.call(doomed, 'SET', 'ghost', 'yes')).rejects.toThrow();
        expect(Date.now() - sent).toBeLessThan(REFUSED_WITHIN_MS);
      }
      expect(await exitWithin(c, doomed, STOP_WITHIN_MS)).toBe(EXIT_MEMBER_STARTED_BEFORE);
      console.log(
        `removed while down: exit ${Date.now() - t0} ms after its start (accepted a client: ${started})`,
      );
      const said = c.log(doomed).slice(before);
      expect(said).toMatch(
        new RegExp(`member '${doomed}' was removed from the cluster \\(peer 'n\\d' refused it`),
      );
      expect(said).toMatch(/by the configuration change at index \d+/);
      expect(removedIn(c, doomed)).toContain(doomed);
      expect(await c.call(leader, 'GET', 'ghost')).toBeNull();
      // And the next start is refused before it opens anything.
      await expect(c.startMember(doomed)).rejects.toThrow(/exited with 3/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    } finally {
      await c.stop();
    }
  }, 60_000);
});

describe('a removed member started again', () => {
  it('refuses to start, says it was removed and what to do, and exits with 3', async () => {
    const c = await ProcCluster.start(NAMES);
    try {
      const leader = await c.leader();
      const doomed = NAMES.find((n) => n !== leader)!;
      const removed = await run(
        'cairn',
        ['member', 'remove', doomed, '--endpoints', c.endpoints(leader)],
        process.cwd(),
      );
      expect(removed.code, removed.stderr).toBe(0);
      // It applies its removal, or its peers tell it; either way member.json records it.
      await until(`${doomed} records its removal`, () => removedIn(c, doomed).includes(doomed));
      await c.kill(doomed);
      const before = c.log(doomed).length;
      // Restarted with its whole first-start command line, as a supervisor would.
      await expect(c.startMember(doomed)).rejects.toThrow(/exited with 3/);
      expect(await c.exited(doomed)).toBe(EXIT_MEMBER_STARTED_BEFORE);
      const said = c.log(doomed).slice(before);
      expect(said).toMatch(
        new RegExp(
          `member '${doomed}' was removed from the cluster \\(.*member\\.json records its removal\\)`,
        ),
      );
      expect(said).toMatch(/cairn member add NEWNAME/);
      expect(said).not.toMatch(/Cairn is serving/);
      // Nothing of it was touched: its directory still records the removal.
      expect(fs.existsSync(path.join(c.spec(doomed).dir, 'raft', 'member.json'))).toBe(true);
      // Only --dir: the same.
      const dirOnly = await run('cairn', ['serve', '--dir', c.spec(doomed).dir], process.cwd());
      expect(dirOnly.code).toBe(EXIT_MEMBER_STARTED_BEFORE);
      expect(dirOnly.stderr).toMatch(/was removed from the cluster/);
      // The others go on.
      expect(await c.call(leader, 'SET', 'after', 'yes')).toBe('OK');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${c.dumpLogs()}`, { cause: err });
    } finally {
      await c.stop();
    }
  }, 60_000);
});
