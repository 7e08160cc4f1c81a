// SimFileSystem: one process's FileSystem over a SimDisk (replica-disk.ts). Mutations reach the
// disk's page cache when called; their promises settle after a simulated latency drawn from the
// seed, through the process (a killed process sees no more completions, as a killed process runs
// no more code). fdatasync and directory fsync make durable what was written when they were
// called. Injected faults (EIO, ENOSPC, torn writes) come from the seed too.
import * as path from 'node:path';
import { type FaultCode, type FaultOp, InjectedFault } from '../src/io/faulty-file-system.js';
import {
  type File,
  type FileSystem,
  type HeldLock,
  type OpenMode,
  type PathKind,
  writeThenSync,
} from '../src/io/file-system.js';
import type { Prng } from '../src/stdx/prng.js';
import { LockedError } from '../src/storage/errors.js';
import { DIR, Inode, type SimDisk } from './replica-disk.js';
import type { SimProcess } from './replica-scheduler.js';

/** IoLatency: simulated milliseconds an operation takes, [min, max]. */
export interface IoLatency {
  readonly writeMs: readonly [number, number];
  readonly syncMs: readonly [number, number];
}

/** FaultPlan: the chance that each mutating operation fails (and that a failed write is torn). */
export interface FaultPlan {
  failRate: number;
  tornRate: number;
}

export const NO_FAULTS: FaultPlan = { failRate: 0, tornRate: 0 };

function fsError(code: string, op: string, p: string): Error {
  return Object.assign(new Error(`${code}: ${op} ${p}`), { code });
}

export class SimFileSystem implements FileSystem {
  /** faults: changed by the simulator while the process runs. */
  faults: FaultPlan = { ...NO_FAULTS };
  /** injected: faults that fired in this process. */
  injected = 0;

  /** link: hard links are not simulated (nothing in the replica layer links); EXDEV makes callers copy. */
  link(_existing: string, _newPath: string): Promise<void> {
    return Promise.reject(Object.assign(new Error('EXDEV: hard links are not simulated'), { code: 'EXDEV' }));
  }

  /**
   * lockDir: the process holds `dir` until it releases it or dies (the kernel lock of
   * storage/dir-lock.ts dies with its process the same way); a second holder is refused.
   */
  lockDir(dir: string, _readOnly: boolean): Promise<HeldLock> {
    const holder = this.disk.locks.get(dir);
    if (holder?.alive === true) return Promise.reject(new LockedError(dir, undefined));
    this.disk.locks.set(dir, this.proc);
    return Promise.resolve({
      release: () => {
        if (this.disk.locks.get(dir) === this.proc) this.disk.locks.delete(dir);
        return Promise.resolve();
      },
    });
  }

  constructor(
    readonly disk: SimDisk,
    readonly proc: SimProcess,
    private readonly prng: Prng,
    private readonly latency: IoLatency,
  ) {}

  /** fault throws the injected fault for op, if the plan says one happens now. */
  fault(op: FaultOp, target: string): void {
    if (this.faults.failRate <= 0 || !this.prng.chance(this.faults.failRate)) return;
    this.injected++;
    const code: FaultCode = op === 'write' && this.prng.chance(0.3) ? 'ENOSPC' : 'EIO';
    throw new InjectedFault(code, op, target);
  }

  /** tornLength: how many bytes of a failed write of n bytes land anyway (0: none). */
  tornLength(n: number): number {
    if (n <= 1 || this.faults.tornRate <= 0 || !this.prng.chance(this.faults.tornRate)) return 0;
    return this.prng.range(1, n - 1);
  }

  /** settle completes an operation after its latency; a dead process never sees it complete. */
  settle<T>(kind: 'write' | 'sync', run: () => T): Promise<T> {
    if (!this.proc.alive) return new Promise<T>(() => {});
    const [lo, hi] = kind === 'write' ? this.latency.writeMs : this.latency.syncMs;
    const ms = this.prng.range(lo, hi);
    return new Promise<T>((resolve, reject) => {
      this.proc.after(ms, () => {
        try {
          resolve(run());
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /** now runs a read-only or instant operation (checks the process is alive). */
  private now<T>(run: () => T): Promise<T> {
    if (!this.proc.alive) return new Promise<T>(() => {});
    try {
      return Promise.resolve(run());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  inode(p: string, op: string): Inode {
    const node = this.disk.entries.get(p);
    if (node === undefined) throw fsError('ENOENT', op, p);
    if (node === DIR) throw fsError('EISDIR', op, p);
    return node;
  }

  open(p: string, mode: OpenMode): Promise<File> {
    if (mode === 'read') return this.now(() => new SimFile(this, p, this.inode(p, 'open')));
    let created: Inode | undefined;
    try {
      this.fault('open', p);
      if (mode === 'create') {
        if (this.disk.entries.has(p)) throw fsError('EEXIST', 'open', p);
        if (this.disk.entries.get(path.dirname(p)) !== DIR) throw fsError('ENOENT', 'open', p);
        created = new Inode();
        this.disk.entries.set(p, created);
      }
    } catch (err) {
      return this.settle('write', () => {
        throw err;
      });
    }
    const inode = created ?? this.inode(p, 'open');
    return this.settle('write', () => new SimFile(this, p, inode));
  }

  readdir(dir: string): Promise<string[]> {
    return this.now(() => {
      if (this.disk.entries.get(dir) !== DIR) throw fsError('ENOENT', 'readdir', dir);
      return [...this.disk.listing(dir).keys()].map((p) => path.basename(p)).sort();
    });
  }

  mkdir(dir: string): Promise<void> {
    return this.mutate('mkdir', dir, () => {
      const missing: string[] = [];
      for (let d = dir; !this.disk.entries.has(d); d = path.dirname(d)) missing.push(d);
      for (const d of missing.reverse()) this.disk.entries.set(d, DIR);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return this.mutate('rename', to, () => {
      const node = this.disk.entries.get(from);
      if (node === undefined) throw fsError('ENOENT', 'rename', from);
      this.disk.entries.delete(from);
      this.disk.entries.set(to, node);
    });
  }

  unlink(p: string): Promise<void> {
    return this.mutate('unlink', p, () => {
      this.disk.entries.delete(p);
    });
  }

  syncDir(dir: string): Promise<void> {
    try {
      this.fault('syncDir', dir);
    } catch (err) {
      return this.settle('sync', () => {
        throw err;
      });
    }
    // What the fsync covers is the listing when it was called.
    const listing = this.disk.listing(dir);
    return this.settle('sync', () => this.disk.syncEntries(dir, listing));
  }

  exists(p: string): Promise<boolean> {
    return this.now(() => this.disk.entries.has(p));
  }

  kind(p: string): Promise<PathKind | undefined> {
    return this.now(() => {
      const node = this.disk.entries.get(p);
      return node === undefined ? undefined : node === DIR ? 'directory' : 'file';
    });
  }

  readFile(p: string): Promise<Uint8Array> {
    return this.now(() => this.inode(p, 'readFile').contents());
  }

  /** mutate: a namespace change lands now (or fails now) and completes after the write latency. */
  private mutate(op: FaultOp, p: string, change: () => void): Promise<void> {
    let failure: unknown;
    try {
      this.fault(op, p);
      change();
    } catch (err) {
      failure = err;
    }
    return this.settle('write', () => {
      if (failure !== undefined) throw failure;
    });
  }
}

class SimFile implements File {
  constructor(
    private readonly fs: SimFileSystem,
    readonly path: string,
    private readonly inode: Inode,
  ) {}

  private live(): void {
    if (!this.fs.proc.alive) throw fsError('EBADF', 'use of a dead process', this.path);
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.live();
    return this.inode.read(buffer, offset, length, position);
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    try {
      return Promise.resolve(this.readSync(buffer, offset, length, position));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** land puts data in the page cache, or a torn prefix of it and throws the fault. */
  private land(data: Uint8Array, position: number): void {
    try {
      this.fs.fault('write', this.path);
    } catch (err) {
      const torn = this.fs.tornLength(data.length);
      if (torn > 0) this.inode.write(data.subarray(0, torn), position);
      throw err;
    }
    this.inode.write(data, position);
  }

  write(data: Uint8Array, position: number): Promise<void> {
    let failure: unknown;
    try {
      this.live();
      this.land(data, position);
    } catch (err) {
      failure = err;
    }
    return this.fs.settle('write', () => {
      if (failure !== undefined) throw failure;
    });
  }

  writeSync(data: Uint8Array, position: number): void {
    this.live();
    this.land(data, position);
  }

  // Through this file's own write and datasync, so every fault and failpoint applies to both.
  writeDurable(data: Uint8Array, position: number): Promise<void> {
    return writeThenSync(this, data, position);
  }

  datasync(): Promise<void> {
    try {
      this.syncFault();
    } catch (err) {
      return this.fs.settle('sync', () => {
        throw err;
      });
    }
    const at = this.inode.syncPoint();
    return this.fs.settle('sync', () => this.inode.sync(at));
  }

  datasyncSync(): void {
    this.live();
    this.syncFault();
    this.inode.sync(this.inode.syncPoint());
  }

  /** syncFault throws an injected fdatasync failure, whose writeback is then lost (SimDisk). */
  private syncFault(): void {
    try {
      this.fs.fault('datasync', this.path);
    } catch (err) {
      // A dead process's call never reaches the kernel.
      if (this.fs.proc.alive) this.inode.syncFailed();
      throw err;
    }
  }

  truncateSync(length: number): void {
    this.live();
    this.fs.fault('truncate', this.path);
    this.inode.truncate(length);
  }

  truncate(length: number): Promise<void> {
    let failure: unknown;
    try {
      this.live();
      this.fs.fault('truncate', this.path);
      this.inode.truncate(length);
    } catch (err) {
      failure = err;
    }
    return this.fs.settle('write', () => {
      if (failure !== undefined) throw failure;
    });
  }

  size(): Promise<number> {
    return Promise.resolve(this.inode.size);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
