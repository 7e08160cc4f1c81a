// FileSystem.link: a hard link is a second directory entry of one inode; in FaultyFileSystem it
// survives power loss only once its directory is fsynced, holding what the source held durably.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { FaultyFileSystem, InjectedFault } from './faulty-file-system.js';
import { nodeFileSystem } from './node-file-system.js';

describe('link', () => {
  it('gives a file a second name (one inode) and refuses an existing name', async () => {
    const dir = tmpDir('link');
    const a = path.join(dir, 'a');
    const b = path.join(dir, 'b');
    fs.writeFileSync(a, 'hello');
    await nodeFileSystem.link(a, b);
    expect(fs.readFileSync(b, 'utf8')).toBe('hello');
    expect(fs.statSync(a).ino).toBe(fs.statSync(b).ino);
    expect(fs.statSync(a).nlink).toBe(2);
    await expect(nodeFileSystem.link(a, b)).rejects.toMatchObject({ code: 'EEXIST' });
    await nodeFileSystem.unlink(a);
    expect(fs.readFileSync(b, 'utf8')).toBe('hello');
  });

  it('in FaultyFileSystem: lost at power loss unless the directory was fsynced', async () => {
    const dir = tmpDir('link');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    const a = path.join(dir, 'a');
    const file = await faulty.open(a, 'create');
    await file.write(Buffer.from('durable'), 0);
    await file.datasync();
    await file.write(Buffer.from(' and not'), 7);
    await file.close();
    await faulty.syncDir(dir);
    await faulty.link(a, path.join(dir, 'unsynced'));
    await faulty.powerLoss();
    expect(fs.existsSync(path.join(dir, 'unsynced'))).toBe(false);
    expect(fs.readFileSync(a, 'utf8')).toBe('durable');

    const again = new FaultyFileSystem(nodeFileSystem);
    await again.link(a, path.join(dir, 'synced'));
    await again.syncDir(dir);
    await again.powerLoss();
    expect(fs.readFileSync(path.join(dir, 'synced'), 'utf8')).toBe('durable');
  });

  it('in FaultyFileSystem: faults can be injected (EXDEV forces a copy fallback)', async () => {
    const dir = tmpDir('link');
    const faulty = new FaultyFileSystem(nodeFileSystem);
    fs.writeFileSync(path.join(dir, 'a'), 'x');
    faulty.inject({ op: 'link', code: 'EXDEV' });
    const err = await faulty.link(path.join(dir, 'a'), path.join(dir, 'b')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InjectedFault);
    expect((err as InjectedFault).code).toBe('EXDEV');
    expect(fs.existsSync(path.join(dir, 'b'))).toBe(false);
  });
});
