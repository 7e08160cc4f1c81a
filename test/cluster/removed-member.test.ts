// A member removed from the cluster and started again (issue 13): it printed the usual start
// banner ("Cairn is serving ...") and then answered CLUSTER_DOWN to everything. Now, as etcd's
// removed member, it does not start: it says it was removed and what to do, and exits with
// EXIT_MEMBER_STARTED_BEFORE (3), so that a supervisor stops restarting it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_MEMBER_STARTED_BEFORE } from '../../src/cli/program.js';
import { run } from '../cli/support.js';
import { ProcCluster, until } from './proc-cluster.js';

const NAMES = ['n1', 'n2', 'n3'];

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
      await until(`${doomed} records its removal`, () => {
        const record = JSON.parse(
          fs.readFileSync(path.join(c.spec(doomed).dir, 'raft', 'member.json'), 'utf8'),
        ) as { removed?: { name: string }[] };
        return (record.removed ?? []).some((m) => m.name === doomed);
      });
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
