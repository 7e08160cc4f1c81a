// A member whose --listen-peer its peers would not reach (its --initial-cluster address names
// another port or host) says so as it starts, instead of waiting for its peers without a word.
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../test/support/ports.js';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { systemClock } from '../io/clock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { ClusterMember } from './member.js';

const open: ClusterMember[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.engine.close().catch(() => {});
});

/** warningsOf starts member a of a three-member cluster listening on `listen`; its warnings. */
async function warningsOf(listen: (advertised: number) => string): Promise<string[]> {
  const [a, b, c] = await Promise.all([freePort(), freePort(), freePort()]);
  const warnings: string[] = [];
  const logger = {
    debug() {},
    info() {},
    warn(_obj: object, msg?: string) {
      warnings.push(msg ?? '');
    },
    error() {},
  };
  const member = await ClusterMember.open({
    dir: tmpDir('listen-a'),
    flags: {
      name: 'a',
      listenPeer: listen(a as number),
      initialCluster: `a=127.0.0.1:${a},b=127.0.0.1:${b},c=127.0.0.1:${c}`,
      initialClusterState: 'new',
      clusterToken: 'listen-test',
    },
    cask: {},
    clock: systemClock,
    logger,
    fs: nodeFileSystem,
    onFatal: (err) => {
      throw err;
    },
  });
  open.push(member);
  // The peers never start: the start check waits for them until the member closes.
  const connecting = member.connect({ resp: '', http: '' }).catch(() => {});
  await new Promise((r) => setTimeout(r, 50));
  await member.engine.close();
  open.length = 0;
  await connecting;
  return warnings.filter((w) => w.includes('listens for peers'));
}

describe('ClusterMember --listen-peer', () => {
  it('warns when peers dial another port than the one it listens on, and says how to start over', async () => {
    let other = 0;
    const warnings = await warningsOf((advertised) => {
      other = advertised === 65535 ? 65534 : advertised + 1;
      return `127.0.0.1:${other}`;
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`listens for peers on 127.0.0.1:${other}`);
    expect(warnings[0]).toMatch(/port \d+ is not the advertised port \d+/);
    expect(warnings[0]).toContain('start it again with --listen-peer 127.0.0.1:');
  });

  it('says nothing when it listens where its peers dial, or on every interface at that port', async () => {
    expect(await warningsOf((advertised) => `127.0.0.1:${advertised}`)).toEqual([]);
    expect(await warningsOf((advertised) => `0.0.0.0:${advertised}`)).toEqual([]);
  });
});
