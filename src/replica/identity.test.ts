import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { InvalidArgumentError } from '../storage/errors.js';
import {
  checkAddress,
  identityPath,
  memberId,
  parseInitialCluster,
  readIdentity,
  resolveIdentity,
} from './identity.js';

const CLUSTER = 'a=127.0.0.1:7001,b=127.0.0.1:7002,c=127.0.0.1:7003';
const first = { name: 'a', initialCluster: CLUSTER, listenPeer: '127.0.0.1:7001', clusterToken: 't1' };

describe('member identity', () => {
  it('is created on the first start and resumed from the directory alone', async () => {
    const dir = tmpDir('identity');
    const { identity, created } = await resolveIdentity(nodeFileSystem, dir, first, false);
    expect(created).toBe(true);
    expect(identity.members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    expect(identity.id).toBe(memberId('a', 't1'));
    const again = await resolveIdentity(nodeFileSystem, dir, {}, true);
    expect(again.created).toBe(false);
    expect(again.identity).toEqual(identity);
    // Repeating the first command line (a restart script) is fine.
    expect((await resolveIdentity(nodeFileSystem, dir, first, true)).identity).toEqual(identity);
  });

  it('derives distinct, stable, nonzero ids per name and token', () => {
    expect(memberId('a', 't')).toBe(memberId('a', 't'));
    expect(memberId('a', 't')).not.toBe(memberId('b', 't'));
    expect(memberId('a', 't')).not.toBe(memberId('a', 'u'));
    expect(Number.isSafeInteger(memberId('a', 't'))).toBe(true);
    expect(memberId('a', 't')).toBeGreaterThan(0);
  });

  it('refuses flags that contradict the record: another name, token, peer address or cluster', async () => {
    const dir = tmpDir('identity');
    await resolveIdentity(nodeFileSystem, dir, first, false);
    const refused = async (flags: Parameters<typeof resolveIdentity>[2], pattern: RegExp) => {
      const err = await resolveIdentity(nodeFileSystem, dir, flags, true).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as Error).message).toMatch(pattern);
    };
    await refused({ name: 'b' }, /belongs to another member/);
    await refused({ clusterToken: 'other' }, /belongs to cluster 't1'/);
    await refused({ listenPeer: '127.0.0.1:9999' }, /listens on 127.0.0.1:7001/);
    await refused({ initialCluster: 'x=127.0.0.1:1,y=127.0.0.1:2' }, /does not list 'a'/);
    await refused({ initialCluster: 'a=127.0.0.1:8001,b=127.0.0.1:7002' }, /records 127.0.0.1:7001/);
  });

  it('ignores, at a restart, the flags that only a first start reads (docs/cluster.md, "What a restart checks")', async () => {
    const dir = tmpDir('identity');
    const { identity } = await resolveIdentity(nodeFileSystem, dir, first, false);
    const resumed = async (flags: Parameters<typeof resolveIdentity>[2]) =>
      expect((await resolveIdentity(nodeFileSystem, dir, flags, true)).identity).toEqual(identity);
    await resumed({ ...first, initialClusterState: 'existing' });
    // The other members: fewer, more, or at other addresses; the member list is the record's.
    await resumed({ ...first, initialCluster: 'a=127.0.0.1:7001' });
    await resumed({ ...first, initialCluster: `${CLUSTER},d=127.0.0.1:7004` });
    await resumed({ ...first, initialCluster: 'a=127.0.0.1:7001,b=127.0.0.1:9002,c=127.0.0.1:9003' });
    await resumed({ name: 'a' });
  });

  it('refuses a first start without the cluster flags, with a store in the directory, or not in the list', async () => {
    const dir = tmpDir('identity');
    await expect(resolveIdentity(nodeFileSystem, dir, { name: 'a' }, false)).rejects.toThrow(
      /--initial-cluster/,
    );
    await expect(resolveIdentity(nodeFileSystem, dir, first, true)).rejects.toThrow(/single server's store/);
    await expect(resolveIdentity(nodeFileSystem, dir, { ...first, name: 'z' }, false)).rejects.toThrow(
      /not one of the members/,
    );
    expect(await readIdentity(nodeFileSystem, dir)).toBeUndefined();
  });

  it('parses --initial-cluster strictly', () => {
    expect(() => parseInitialCluster('a=127.0.0.1:1,a=127.0.0.1:2', 't')).toThrow(/twice/);
    expect(() => parseInitialCluster('a=127.0.0.1:1,b=127.0.0.1:1', 't')).toThrow(/same peer address/);
    expect(() => parseInitialCluster('a=nowhere', 't')).toThrow(/HOST:PORT/);
    expect(() => parseInitialCluster('=127.0.0.1:1', 't')).toThrow(/NAME=HOST:PORT/);
    expect(() => parseInitialCluster('a b=127.0.0.1:1', 't')).toThrow(/member name/);
    expect(parseInitialCluster('[::1]:7001'.replace(/^/, 'a='), 't')[0]?.peerAddr).toBe('[::1]:7001');
  });

  it('refuses port 0 in a peer address: no member can dial it (member add --peer-url HOST:0 was accepted)', async () => {
    expect(() => parseInitialCluster('a=127.0.0.1:0', 't')).toThrow(/port 0 is no address/);
    expect(() => checkAddress('127.0.0.1:0', 'member add --peer-url')).toThrow(
      /^member add --peer-url: invalid address '127\.0\.0\.1:0': port 0/,
    );
    expect(() => checkAddress('127.0.0.1:1', 'member add --peer-url')).not.toThrow();
    const dir = tmpDir('identity');
    await expect(
      resolveIdentity(nodeFileSystem, dir, { ...first, listenPeer: '127.0.0.1:0' }, false),
    ).rejects.toThrow(/--listen-peer: invalid address '127\.0\.0\.1:0': port 0/);
  });

  it('reports a damaged record instead of guessing', async () => {
    const dir = tmpDir('identity');
    await resolveIdentity(nodeFileSystem, dir, first, false);
    fs.writeFileSync(identityPath(dir), '{"format": 1, "name": ');
    await expect(readIdentity(nodeFileSystem, dir)).rejects.toThrow(/damaged/);
    fs.writeFileSync(identityPath(dir), '{"format": 9}');
    await expect(readIdentity(nodeFileSystem, dir)).rejects.toThrow(/format 1/);
    // Client addresses, when recorded, are two strings.
    const good = await resolveIdentity(nodeFileSystem, tmpDir('identity'), first, false);
    const withAddrs = { ...good.identity, clientAddrs: { resp: '127.0.0.1:7001', http: '' } };
    fs.writeFileSync(identityPath(dir), JSON.stringify(withAddrs));
    expect((await readIdentity(nodeFileSystem, dir))?.clientAddrs).toEqual(withAddrs.clientAddrs);
    fs.writeFileSync(identityPath(dir), JSON.stringify({ ...withAddrs, clientAddrs: { resp: 7001 } }));
    await expect(readIdentity(nodeFileSystem, dir)).rejects.toThrow(/format 1/);
    expect(fs.existsSync(path.join(dir, 'raft'))).toBe(true);
  });
});
