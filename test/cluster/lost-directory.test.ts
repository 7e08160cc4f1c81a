// A member that lost its directory (docs/cluster.md, "A member that lost its directory"): started
// again with its original command line, it asks its peers first and is refused, so it cannot
// vote for a member that misses an acknowledged write. And a new cluster whose members start
// seconds apart still forms (each start check passes on the others' answers).
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { ProcCluster, sleep } from './proc-cluster.js';

/** EXIT_MEMBER_STARTED_BEFORE: src/cli/program.ts (not imported: the test runs the built CLI). */
const EXIT_MEMBER_STARTED_BEFORE = 3;
const WAIT_MS = 15_000;

let cluster: ProcCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

/** startedSeenBy: the members `name` records as started (its own view, no ReadIndex). */
async function startedSeenBy(c: ProcCluster, name: string): Promise<string[]> {
  const res = await fetch(
    `http://127.0.0.1:${c.spec(name).http}/v1/cluster/members?consistency=serializable`,
  );
  const body = (await res.json()) as { members: { name: string; started: boolean }[] };
  return body.members
    .filter((m) => m.started)
    .map((m) => m.name)
    .sort();
}

/** waitStarted waits until every member in `names` records every member in `expected` as started. */
async function waitStarted(
  c: ProcCluster,
  names: readonly string[],
  expected: readonly string[],
): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (const name of names) {
    for (;;) {
      const seen = await startedSeenBy(c, name).catch((): string[] => []);
      if (expected.every((e) => seen.includes(e))) break;
      if (Date.now() > deadline) throw new Error(`${name} records ${seen} as started\n${c.dumpLogs()}`);
      await sleep(100);
    }
  }
}

describe('a member that lost its directory', () => {
  it('is refused at its restart, and the acknowledged write survives', async () => {
    cluster = await ProcCluster.start(['m1', 'm2', 'm3']);
    const c = cluster;
    const all = ['m1', 'm2', 'm3'];
    const lead = await c.leader();
    const [behind, wiped] = all.filter((n) => n !== lead) as [string, string];
    await waitStarted(c, all, all);
    // The outside tester's repro, with roles named by what happens to them.
    await c.kill(behind);
    expect(await c.call(lead, 'SET', 'acked-x', '1')).toBe('OK'); // committed by lead + wiped
    await c.kill(wiped);
    fs.rmSync(c.spec(wiped).dir, { recursive: true, force: true });
    await c.kill(lead);
    // Its original command line; no peer is up, so it waits (neither voting nor acknowledging).
    await c.startMember(wiped);
    await sleep(1_000);
    expect(c.isRunning(wiped)).toBe(true);
    await c.startMember(behind);
    // The member that is behind says the wiped one started: refused, and nothing left behind.
    expect(await c.exited(wiped)).toBe(EXIT_MEMBER_STARTED_BEFORE);
    expect(c.log(wiped)).toMatch(/already started in this cluster/);
    expect(c.log(wiped)).toMatch(/cairn member remove/);
    expect(fs.existsSync(`${c.spec(wiped).dir}/raft`)).toBe(false);
    // The one behind cannot lead alone; with the old leader back the write is there.
    await c.startMember(lead);
    const now = await c.leader(WAIT_MS);
    expect(now).toBe(lead);
    expect(String(await c.call(behind, 'GET', 'acked-x'))).toBe('1');
    expect(String(await c.call(lead, 'GET', 'acked-x'))).toBe('1');
  }, 90_000);

  it('does not stop a new cluster whose members start seconds apart', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3'], { deferStart: true });
    const c = cluster;
    await c.startMember('n1');
    await sleep(1_500);
    await c.startMember('n2');
    const lead = await c.leader(WAIT_MS);
    // n1 and n2 are recorded as started before n3 ever runs: n3 is not, and may start.
    await waitStarted(c, ['n1', 'n2'], ['n1', 'n2']);
    expect(await startedSeenBy(c, lead)).toEqual(['n1', 'n2']);
    await c.startMember('n3');
    expect(await c.call('n3', 'SET', 'k', 'v')).toBe('OK');
    expect(String(await c.call('n3', 'GET', 'k'))).toBe('v');
    await waitStarted(c, ['n1', 'n2', 'n3'], ['n1', 'n2', 'n3']);
    for (const n of ['n1', 'n2', 'n3']) expect(c.isRunning(n)).toBe(true);
  }, 60_000);
});
