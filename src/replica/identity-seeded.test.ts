// resolveIdentity's `seeded` exception (cairn snapshot restore with cluster flags): a directory
// holding a store may become the first member of a NEW one-member cluster, and nothing else.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { readIdentity, resolveIdentity } from './identity.js';

describe('resolveIdentity seeded', () => {
  it('lets a directory with data become the one member of a new cluster', async () => {
    const dir = tmpDir('seeded');
    const flags = { name: 'n1', initialCluster: 'n1=127.0.0.1:7001', clusterToken: 't' };
    await expect(resolveIdentity(nodeFileSystem, dir, flags, true)).rejects.toThrow(/single server's store/);
    const { identity, created } = await resolveIdentity(nodeFileSystem, dir, flags, true, { seeded: true });
    expect(created).toBe(true);
    expect(identity.members.map((m) => m.name)).toEqual(['n1']);
    expect(identity.seeded).toBe(true);
    expect(await readIdentity(nodeFileSystem, dir)).toEqual(identity);
    // Later starts read the record as usual.
    expect((await resolveIdentity(nodeFileSystem, dir, flags, true)).created).toBe(false);
  });

  it('refuses more than one member, or joining an existing cluster', async () => {
    const dir = tmpDir('seeded');
    const many = { name: 'n1', initialCluster: 'n1=127.0.0.1:7001,n2=127.0.0.1:7002' };
    const err = await resolveIdentity(nodeFileSystem, dir, many, true, { seeded: true }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as Error).message).toMatch(/ONE member; --initial-cluster lists 2/);
    const existing = {
      name: 'n1',
      initialCluster: 'n1=127.0.0.1:7001',
      initialClusterState: 'existing' as const,
    };
    await expect(resolveIdentity(nodeFileSystem, dir, existing, true, { seeded: true })).rejects.toThrow(
      /new cluster/,
    );
    expect(await readIdentity(nodeFileSystem, dir)).toBeUndefined();
  });
});
