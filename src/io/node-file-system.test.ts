// NodeFile.writeDurable: a second descriptor opened O_DSYNC writes into the same file; if the
// path was replaced since the open, it must not write into the new file at that path.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { nodeFileSystem } from './node-file-system.js';

describe('NodeFile.writeDurable', () => {
  it('writes at the given positions, beside ordinary writes', async () => {
    const file = path.join(tmpDir('node-fs'), 'f');
    const f = await nodeFileSystem.open(file, 'create');
    await f.write(Buffer.from('aaaa'), 0);
    await f.datasync();
    await f.writeDurable(Buffer.from('bbbb'), 4);
    await f.writeDurable(Buffer.from('cc'), 1);
    expect(await f.size()).toBe(8);
    await f.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('accabbbb');
  });

  it('writes into the open file even after its path names another file', async () => {
    const dir = tmpDir('node-fs');
    const file = path.join(dir, 'f');
    const f = await nodeFileSystem.open(file, 'create');
    await f.write(Buffer.from('old'), 0);
    fs.renameSync(file, path.join(dir, 'moved'));
    fs.writeFileSync(file, 'other');
    await f.writeDurable(Buffer.from('!'), 3);
    await f.close();
    expect(fs.readFileSync(path.join(dir, 'moved'), 'utf8')).toBe('old!');
    expect(fs.readFileSync(file, 'utf8')).toBe('other');
  });
});

describe('NodeFileSystem.mkdir', () => {
  it('creates missing parents, and takes an existing directory', async () => {
    const dir = path.join(tmpDir('node-fs'), 'a', 'b', 'c');
    await nodeFileSystem.mkdir(dir);
    await nodeFileSystem.mkdir(dir);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
  });

  // Node's recursive mkdir never settles there (it spins at full CPU): `cairn set k v --dir
  // /proc/x` hung for ever.
  it.skipIf(!fs.existsSync('/proc/self'))(
    'fails with ENOENT where the parent exists but takes no directory (/proc)',
    async () => {
      const err = await nodeFileSystem.mkdir('/proc/cairn-no-such-dir/x').catch((e: unknown) => e);
      expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
      const direct = await nodeFileSystem.mkdir('/proc/cairn-no-such-dir').catch((e: unknown) => e);
      expect((direct as NodeJS.ErrnoException).code).toBe('ENOENT');
    },
    5000,
  );

  // Node's recursive mkdir says ENOENT under a read-only file system; the system said EROFS.
  const isRoot = process.getuid?.() === 0;
  it.skipIf(!isRoot)('under a read-only file system fails with EROFS, not ENOENT (root: tmpfs)', async () => {
    const at = tmpDir('node-fs-ro');
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs', at]);
    if (mounted.status !== 0) return; // no CAP_SYS_ADMIN: nothing to check here
    try {
      for (const dir of [path.join(at, 'new'), path.join(at, 'new', 'deeper')]) {
        const err = await nodeFileSystem.mkdir(dir).catch((e: unknown) => e);
        expect((err as NodeJS.ErrnoException).code, dir).toBe('EROFS');
      }
    } finally {
      spawnSync('umount', ['-l', at]);
    }
  });
});
