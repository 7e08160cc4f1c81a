// FaultyFileSystem wraps a real FileSystem and injects the failures a database must survive:
// EIO/ENOSPC from any operation, torn writes (a prefix of the bytes lands, then an error), and
// power loss (`powerLoss()`: every file falls back to what was fsynced, files whose creation
// was never made durable by a directory fsync disappear, and later operations fail).
//
// A failed datasync loses its writeback as Linux does (lost-writeback.ts, "fsyncgate"): the
// bytes it should have written stay readable, to this process and to the next one opening the
// file, but a later successful datasync does not make them durable; only writing them again
// does. A power loss takes them.
//
// It is used by tests only, but lives in io/ beside the real implementation so that both are
// kept in step with the FileSystem interface.
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { type File, type FileSystem, type OpenMode, type PathKind, writeThenSync } from './file-system.js';
import { LostWriteback } from './lost-writeback.js';

export type FaultOp =
  | 'open'
  | 'write'
  | 'datasync'
  | 'truncate'
  | 'rename'
  | 'unlink'
  | 'link'
  | 'syncDir'
  | 'read'
  | 'mkdir';
/** EXDEV: what link() answers across file systems (tests force a backup's copy fallback with it). */
export type FaultCode = 'EIO' | 'ENOSPC' | 'EXDEV';

export interface FaultRule {
  readonly op: FaultOp;
  readonly code: FaultCode;
  /** path: only operations on paths matching this. */
  readonly path?: RegExp;
  /** times: how many matching operations fail (default 1); then the rule is spent. */
  times?: number;
  /** skip: let this many matching operations through before the first failure (default 0). */
  skip?: number;
  /**
   * crash: the matching operation is where the machine dies: it and every later mutating
   * operation fail (as after `dieAfter`), so that `powerLoss()` can follow.
   */
  readonly crash?: boolean;
  /** tornBytes: for writes, how many bytes land before the error. */
  readonly tornBytes?: number;
}

export class InjectedFault extends Error {
  constructor(
    readonly code: FaultCode,
    op: FaultOp,
    target: string,
  ) {
    super(`${code}: injected fault in ${op} ${target}`);
  }
}

const MUTATING: ReadonlySet<FaultOp> = new Set([
  'open',
  'write',
  'datasync',
  'truncate',
  'rename',
  'unlink',
  'link',
  'syncDir',
  'mkdir',
]);

interface Tracked {
  /** syncedSize: the file's size at its last datasync; undefined if never synced. */
  syncedSize: number | undefined;
  /** undo: what unsynced writes overwrote inside the file (oldest first), to put back on power loss. */
  undo: { position: number; bytes: Buffer }[];
  /** durableEntry: its directory entry survives power loss (dir fsynced since creation/rename). */
  durableEntry: boolean;
  /** lost: bytes a failed datasync left readable but not durable (lost-writeback.ts). */
  lost: LostWriteback;
}

export class FaultyFileSystem implements FileSystem {
  private rules: FaultRule[] = [];
  private readonly tracked = new Map<string, Tracked>();
  /** mutations: mutating operations performed so far (for "fail at the k-th step" tests). */
  mutations = 0;
  /** fired: how many times an injected rule has failed an operation (tests check theirs did). */
  fired = 0;
  /** dieAfter: once `mutations` reaches this, every mutating operation fails (a crash point). */
  dieAfter = Number.POSITIVE_INFINITY;

  constructor(private readonly inner: FileSystem) {}

  /** inject adds a fault rule. */
  inject(rule: FaultRule): void {
    this.rules.push({ times: 1, ...rule });
  }

  clearFaults(): void {
    this.rules = [];
    this.dieAfter = Number.POSITIVE_INFINITY;
  }

  /** check throws the fault that applies to an operation, if any. */
  check(op: FaultOp, target: string, bytes?: number): { tornBytes: number } | undefined {
    if (MUTATING.has(op)) {
      if (this.mutations >= this.dieAfter) throw new InjectedFault('EIO', op, target);
      this.mutations++;
    }
    for (const rule of this.rules) {
      if (rule.op !== op || (rule.times ?? 1) <= 0) continue;
      if (rule.path !== undefined && !rule.path.test(target)) continue;
      if ((rule.skip ?? 0) > 0) {
        rule.skip = (rule.skip ?? 0) - 1;
        continue;
      }
      rule.times = (rule.times ?? 1) - 1;
      this.fired++;
      if (rule.crash === true) {
        this.dieAfter = this.mutations;
        throw new InjectedFault('EIO', op, target);
      }
      if (op === 'write' && rule.tornBytes !== undefined && bytes !== undefined && rule.tornBytes < bytes) {
        return { tornBytes: rule.tornBytes };
      }
      throw new InjectedFault(rule.code, op, target);
    }
    return undefined;
  }

  /**
   * powerLoss reverts the disk to its durable state: unsynced appends are cut off and files
   * whose directory entry was never fsynced are removed. Call it after abandoning the store.
   */
  async powerLoss(): Promise<void> {
    const fs = await import('node:fs/promises');
    for (const [file, t] of this.tracked) {
      if (!t.durableEntry) {
        await fs.rm(file, { force: true });
        continue;
      }
      try {
        // Unsynced overwrites never reached the disk: put the old bytes back, newest first;
        // then the bytes whose writeback failed (older still).
        const restore = [...t.undo.reverse()];
        t.lost.powerLoss((r) => restore.push(r));
        if (restore.length > 0) {
          const handle = await fs.open(file, 'r+');
          try {
            for (const u of restore) await handle.write(u.bytes, 0, u.bytes.length, u.position);
          } finally {
            await handle.close();
          }
        }
        const size = (await fs.stat(file)).size;
        const keep = t.syncedSize ?? 0;
        if (size > keep) await fs.truncate(file, keep);
      } catch {
        // The file was removed meanwhile.
      }
    }
    this.tracked.clear();
  }

  track(file: string): Tracked {
    let t = this.tracked.get(file);
    if (t === undefined) {
      t = { syncedSize: undefined, durableEntry: true, undo: [], lost: new LostWriteback() };
      this.tracked.set(file, t);
    }
    return t;
  }

  async open(file: string, mode: OpenMode): Promise<File> {
    this.check('open', file);
    const inner = await this.inner.open(file, mode);
    const t = this.track(file);
    if (mode === 'create') {
      t.durableEntry = false;
      t.syncedSize = 0;
    } else if (t.syncedSize === undefined) {
      t.syncedSize = await inner.size();
    }
    return new FaultyFile(this, inner, t);
  }

  readdir(dir: string): Promise<string[]> {
    return this.inner.readdir(dir);
  }

  async mkdir(dir: string): Promise<void> {
    this.check('mkdir', dir);
    await this.inner.mkdir(dir);
  }

  async rename(from: string, to: string): Promise<void> {
    this.check('rename', to);
    await this.inner.rename(from, to);
    const t = this.tracked.get(from);
    this.tracked.delete(from);
    // A rename is durable only after the directory is fsynced; until then the old state holds.
    // We model the common case: the target's content is the source's, and its entry is pending.
    this.tracked.set(to, {
      syncedSize: t?.syncedSize,
      durableEntry: false,
      undo: t?.undo ?? [],
      lost: t?.lost ?? new LostWriteback(),
    });
  }

  async link(existing: string, newPath: string): Promise<void> {
    this.check('link', newPath);
    await this.inner.link(existing, newPath);
    // One inode under two names: the new name holds what the existing one holds durably (a file
    // never opened here was all synced), and like any new directory entry it survives power
    // loss only once its directory is fsynced. Later writes through one name are not mirrored in
    // the other's record: links are taken of sealed files, which nothing writes again.
    const source = this.tracked.get(existing);
    this.tracked.set(newPath, {
      syncedSize: source?.syncedSize ?? statSync(existing).size,
      durableEntry: false,
      undo: [...(source?.undo ?? [])],
      // Shared, as the inode is: the pages whose writeback failed are the same pages.
      lost: source?.lost ?? new LostWriteback(),
    });
  }

  async unlink(file: string): Promise<void> {
    this.check('unlink', file);
    await this.inner.unlink(file);
    this.tracked.delete(file);
  }

  async syncDir(dir: string): Promise<void> {
    this.check('syncDir', dir);
    await this.inner.syncDir(dir);
    for (const [file, t] of this.tracked) if (path.dirname(file) === dir) t.durableEntry = true;
  }

  kind(file: string): Promise<PathKind | undefined> {
    return this.inner.kind(file);
  }

  exists(file: string): Promise<boolean> {
    return this.inner.exists(file);
  }

  async readFile(file: string): Promise<Uint8Array> {
    this.check('read', file);
    return this.inner.readFile(file);
  }
}

class FaultyFile implements File {
  constructor(
    private readonly fs: FaultyFileSystem,
    private readonly inner: File,
    private readonly t: Tracked,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.fs.check('read', this.path);
    return this.inner.readSync(buffer, offset, length, position);
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    this.fs.check('read', this.path);
    return this.inner.read(buffer, offset, length, position);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    const torn = this.fs.check('write', this.path, data.length);
    this.remember(position, torn?.tornBytes ?? data.length);
    if (torn !== undefined) {
      await this.inner.write(data.subarray(0, torn.tornBytes), position);
      throw new InjectedFault('EIO', 'write', `${this.path} (torn after ${torn.tornBytes} bytes)`);
    }
    await this.inner.write(data, position);
  }

  /** remember saves what a write is about to overwrite below the synced length. */
  private remember(position: number, length: number): void {
    this.t.lost.written(position, length);
    const synced = this.t.syncedSize ?? 0;
    const end = Math.min(position + length, synced);
    if (end <= position) return;
    const old = Buffer.alloc(end - position);
    this.inner.readSync(old, 0, old.length, position);
    this.t.undo.push({ position, bytes: old });
  }

  writeSync(data: Uint8Array, position: number): void {
    const torn = this.fs.check('write', this.path, data.length);
    this.remember(position, torn?.tornBytes ?? data.length);
    if (torn !== undefined) {
      this.inner.writeSync(data.subarray(0, torn.tornBytes), position);
      throw new InjectedFault('EIO', 'write', `${this.path} (torn after ${torn.tornBytes} bytes)`);
    }
    this.inner.writeSync(data, position);
  }

  datasyncSync(): void {
    this.checkSync(() => this.sizeSync());
    this.inner.datasyncSync();
    this.t.syncedSize = this.sizeSync();
    this.t.undo = [];
    this.t.lost.synced();
  }

  /**
   * checkSync applies the datasync faults; a failed datasync loses the writeback of every byte
   * dirty now (lost-writeback.ts): they stay in the file, readable, and come back never.
   */
  private checkSync(size: () => number): void {
    try {
      this.fs.check('datasync', this.path);
    } catch (err) {
      this.t.lost.failed(this.t.undo, this.t.syncedSize ?? 0, size());
      this.t.undo = [];
      throw err;
    }
  }

  truncateSync(length: number): void {
    this.fs.check('truncate', this.path);
    this.inner.truncateSync(length);
    this.truncated(length);
  }

  private truncated(length: number): void {
    if (this.t.syncedSize !== undefined && this.t.syncedSize > length) this.t.syncedSize = length;
    this.t.lost.truncated(length);
  }

  private sizeSync(): number {
    return statSync(this.path).size;
  }

  // Through this file's own write and datasync, so every fault and failpoint applies to both.
  writeDurable(data: Uint8Array, position: number): Promise<void> {
    return writeThenSync(this, data, position);
  }

  async datasync(): Promise<void> {
    this.checkSync(() => this.sizeSync());
    await this.inner.datasync();
    this.t.syncedSize = await this.inner.size();
    this.t.undo = [];
    this.t.lost.synced();
  }

  async truncate(length: number): Promise<void> {
    this.fs.check('truncate', this.path);
    await this.inner.truncate(length);
    this.truncated(length);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
