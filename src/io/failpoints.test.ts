import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FailpointError, failpointFileSystem } from './failpoints.js';
import { nodeFileSystem } from './node-file-system.js';

describe('failpoints', () => {
  it('leave the file system alone when none are named', () => {
    expect(failpointFileSystem(undefined, nodeFileSystem)).toBe(nodeFileSystem);
    expect(failpointFileSystem(' ', nodeFileSystem)).toBe(nodeFileSystem);
  });

  it('refuse unknown or malformed failpoints by name', () => {
    expect(() => failpointFileSystem('wal-fsync-eoi', nodeFileSystem)).toThrow(FailpointError);
    expect(() => failpointFileSystem('wal-fsync-eoi', nodeFileSystem)).toThrow(/known: wal-fsync-eio/);
    expect(() => failpointFileSystem('wal-fsync-eio@0', nodeFileSystem)).toThrow(/malformed/);
    expect(() => failpointFileSystem('wal-fsync-eio@x', nodeFileSystem)).toThrow(/malformed/);
  });

  it('fail the n-th matching operation only, and only on matching paths', async () => {
    const dir = tmpDir('failpoints');
    const fs = failpointFileSystem('wal-fsync-eio@2', nodeFileSystem);
    await fs.mkdir(`${dir}/raft/wal`);
    const wal = await fs.open(`${dir}/raft/wal/seg.wal`, 'create');
    const data = await fs.open(`${dir}/1.data`, 'create');
    await wal.write(Buffer.from('x'), 0);
    await wal.datasync();
    await data.datasync(); // not a WAL path: never counted
    await expect(wal.datasync()).rejects.toThrow(/EIO/);
    await wal.datasync(); // spent
    await wal.close();
    await data.close();
  });
});
