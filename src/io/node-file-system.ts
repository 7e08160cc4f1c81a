// The real FileSystem, on node:fs. Reads are offered synchronously as well because a pread of
// page-cached data costs a few microseconds while a trip through libuv's thread pool costs tens.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname as pathDirname } from 'node:path';
import type { File, FileSystem, OpenMode, PathKind } from './file-system.js';

const FLAGS: Record<OpenMode, string> = { read: 'r', readwrite: 'r+', create: 'wx+' };

class NodeFile implements File {
  /**
   * dsync: a second descriptor of this file opened O_DSYNC, for writeDurable (opened at its first
   * use); resolves to null where the platform has no O_DSYNC or the path no longer names this
   * file, and writeDurable then writes and datasyncs through the first one.
   */
  private dsync: Promise<fsp.FileHandle | null> | undefined;

  constructor(
    readonly path: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return fs.readSync(this.handle.fd, buffer, offset, length, position);
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  async writeDurable(data: Uint8Array, position: number): Promise<void> {
    this.dsync ??= this.openDsync();
    const dsync = await this.dsync;
    if (dsync === null) {
      await this.write(data, position);
      await this.datasync();
      return;
    }
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await dsync.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  private async openDsync(): Promise<fsp.FileHandle | null> {
    const flag = fs.constants.O_DSYNC as number | undefined;
    if (flag === undefined) return null;
    let dsync: fsp.FileHandle;
    try {
      dsync = await fsp.open(this.path, fs.constants.O_WRONLY | flag);
    } catch {
      return null; // out of descriptors, say: the two-step path still works
    }
    try {
      // The path is looked up again: it must still be the file this handle has open.
      const [mine, theirs] = await Promise.all([this.handle.stat(), dsync.stat()]);
      if (mine.ino === theirs.ino && mine.dev === theirs.dev) return dsync;
    } catch {
      // as if it were another file
    }
    await dsync.close().catch(() => {});
    return null;
  }

  writeSync(data: Uint8Array, position: number): void {
    let done = 0;
    while (done < data.length) {
      done += fs.writeSync(this.handle.fd, data, done, data.length - done, position + done);
    }
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  datasyncSync(): void {
    fs.fdatasyncSync(this.handle.fd);
  }

  truncateSync(length: number): void {
    fs.ftruncateSync(this.handle.fd, length);
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  async close(): Promise<void> {
    const dsync = this.dsync === undefined ? null : await this.dsync.catch(() => null);
    await dsync?.close();
    return this.handle.close();
  }
}

export class NodeFileSystem implements FileSystem {
  async open(path: string, mode: OpenMode): Promise<File> {
    return new NodeFile(path, await fsp.open(path, FLAGS[mode], 0o644));
  }

  readdir(dir: string): Promise<string[]> {
    return fsp.readdir(dir);
  }

  async mkdir(dir: string): Promise<void> {
    // Not Node's recursive mkdir: it answers ENOENT where the system said EROFS or EACCES (it
    // retries the parent and reports that), and it never returns where mkdir says ENOENT under
    // a parent that exists (`/proc/x`: it creates the parent, which exists, and retries for
    // ever at full CPU). One level at a time gives the real error.
    await mkdirEachLevel(dir);
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  link(existing: string, newPath: string): Promise<void> {
    return fsp.link(existing, newPath);
  }

  async unlink(path: string): Promise<void> {
    await fsp.rm(path, { force: true });
  }

  async syncDir(dir: string): Promise<void> {
    const handle = await fsp.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async exists(path: string): Promise<boolean> {
    try {
      await fsp.stat(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async kind(path: string): Promise<PathKind | undefined> {
    try {
      const st = await fsp.stat(path);
      return st.isDirectory() ? 'directory' : st.isFile() ? 'file' : 'other';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  readFile(path: string): Promise<Uint8Array> {
    return fsp.readFile(path);
  }
}

/** mkdirEachLevel creates `dir` and its missing parents one mkdir at a time (see mkdir). */
async function mkdirEachLevel(dir: string): Promise<void> {
  const parent = pathDirname(dir);
  if (parent !== dir) {
    try {
      await fsp.stat(parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await mkdirEachLevel(parent);
    }
  }
  try {
    await fsp.mkdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** nodeFileSystem is the process-wide real file system. */
export const nodeFileSystem: FileSystem = new NodeFileSystem();
