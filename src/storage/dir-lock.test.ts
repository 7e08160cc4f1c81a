import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { DirLock } from './dir-lock.js';
import { LockedError } from './errors.js';

describe('DirLock', () => {
  it('admits one holder at a time and names the owner', async () => {
    const dir = tmpDir('lock');
    const lock = await DirLock.acquire(dir);
    const err = await DirLock.acquire(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockedError);
    expect((err as LockedError).ownerPid).toBe(process.pid);
    await lock.release();
    const again = await DirLock.acquire(dir);
    await again.release();
  });

  it('is free again the moment a SIGKILLed owner dies', async () => {
    const dir = tmpDir('lock');
    const script = `import { DirLock } from ${JSON.stringify(path.resolve('src/storage/dir-lock.ts'))};
      await DirLock.acquire(${JSON.stringify(dir)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const file = path.join(dir, 'holder.mts');
    fs.writeFileSync(file, script);
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await expect(DirLock.acquire(dir)).rejects.toBeInstanceOf(LockedError);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    const lock = await DirLock.acquire(dir);
    await lock.release();
  });
});
