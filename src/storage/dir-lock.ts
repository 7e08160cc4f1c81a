// DirLock keeps a second process out of a data directory.
//
// The exclusion itself is held by the kernel: on Linux we bind an abstract-namespace Unix
// socket whose name is derived from the directory's device and inode. Only one process can bind
// a name, and the kernel releases it the instant the owner dies, SIGKILL included, so a crashed
// owner never leaves the directory stuck. The LOCK file beside the data only says who holds it
// (pid, for the error message and for humans); it is advisory and may be stale.
//
// Where abstract sockets do not exist (macOS, Windows) we fall back to the LOCK file created with
// O_EXCL, treating it as stale when its pid is no longer alive. Caveat (documented in
// docs/format.md): abstract sockets are scoped to a network namespace, so two containers sharing
// one volume but not one network namespace are not kept apart.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { LockedError } from './errors.js';

export const LOCK_FILE = 'LOCK';

export class DirLock {
  /** held: the kernel lock names this process holds, to name it as the owner when it is. */
  private static readonly held = new Set<string>();

  private constructor(
    private readonly dir: string,
    private readonly server: net.Server | undefined,
    /** wroteLockFile: the LOCK file is ours to remove at release. */
    private readonly wroteLockFile: boolean,
    /** name: the kernel lock's name (Linux), undefined elsewhere. */
    private readonly name: string | undefined,
  ) {}

  /**
   * acquire takes the lock on `dir` or throws LockedError naming the owner's pid. With
   * `readOnly` nothing is written (no LOCK file): on Linux the kernel lock still keeps writers
   * out; elsewhere a read-only open takes no lock at all.
   */
  static async acquire(dir: string, readOnly = false): Promise<DirLock> {
    const lockPath = path.join(dir, LOCK_FILE);
    if (process.platform === 'linux') {
      // Device and inode name the directory whatever path reaches it; the birth time (statx,
      // where the file system records it) tells a directory from a later one that reuses a
      // deleted directory's inode, so a lock leaked on the old one cannot block the new one.
      const st = fs.statSync(dir);
      const id = createHash('sha256')
        .update(`${st.dev}:${st.ino}:${st.birthtimeMs}`)
        .digest('hex')
        .slice(0, 32);
      const name = `\0cairn-lock-${id}`;
      if (DirLock.held.has(name)) throw new LockedError(dir, process.pid);
      const server = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ path: name }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
          throw new LockedError(dir, readOwner(lockPath));
        throw err;
      }
      server.unref();
      DirLock.held.add(name);
      if (readOnly) return new DirLock(dir, server, false, name);
      try {
        fs.writeFileSync(lockPath, `${process.pid}\n`);
      } catch (err) {
        // A directory we may not write (EROFS, EACCES) or a full disk (ENOSPC: the file was
        // created, then its bytes did not fit): leave no empty LOCK behind (we hold the kernel
        // lock, so the file is ours), and give the kernel lock back.
        removeQuietly(lockPath);
        DirLock.held.delete(name);
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw err;
      }
      return new DirLock(dir, server, true, name);
    }
    if (readOnly) return new DirLock(dir, undefined, false, undefined);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        fs.writeFileSync(lockPath, `${process.pid}\n`, { flag: 'wx' });
        return new DirLock(dir, undefined, true, undefined);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          // Created, then its bytes did not fit (ENOSPC): the file is ours; leave none behind.
          removeQuietly(lockPath);
          throw err;
        }
        const owner = readOwner(lockPath);
        if (owner !== undefined && isAlive(owner)) throw new LockedError(dir, owner);
        fs.rmSync(lockPath, { force: true });
      }
    }
    throw new LockedError(dir, readOwner(lockPath));
  }

  async release(): Promise<void> {
    const lockPath = path.join(this.dir, LOCK_FILE);
    if (this.wroteLockFile && readOwner(lockPath) === process.pid) fs.rmSync(lockPath, { force: true });
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.name !== undefined) DirLock.held.delete(this.name);
  }
}

/** removeQuietly removes a LOCK file this process just failed to write, if it can. */
function removeQuietly(lockPath: string): void {
  try {
    fs.rmSync(lockPath, { force: true });
  } catch {
    // EROFS and the like: nothing was created.
  }
}

function readOwner(lockPath: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
