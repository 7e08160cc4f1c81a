// The real FileSystem, on node:fs. Reads are offered synchronously as well because a pread of
// page-cached data costs a few microseconds while a trip through libuv's thread pool costs tens.
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { File, FileSystem, OpenMode, PathKind } from './file-system.js';

const FLAGS: Record<OpenMode, string> = { read: 'r', readwrite: 'r+', create: 'wx+' };

class NodeFile implements File {
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

  close(): Promise<void> {
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
    await fsp.mkdir(dir, { recursive: true });
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

/** nodeFileSystem is the process-wide real file system. */
export const nodeFileSystem: FileSystem = new NodeFileSystem();
