// FileSystem is the only door from the storage layers to the disk. Everything above `io/` takes
// one as a parameter so that tests can hand in a fault-injecting implementation instead.
import * as path from 'node:path';

/** OpenMode says how a file is opened. None of the modes follows symlinks specially. */
export type OpenMode =
  /** read-only; the file must exist. */
  | 'read'
  /** read and write; the file must exist. */
  | 'readwrite'
  /** read and write; the file must not exist yet (O_CREAT | O_EXCL). */
  | 'create';

/** File is an open file. Positions are absolute byte offsets; there is no implicit cursor. */
export interface File {
  readonly path: string;
  /** readSync reads up to `length` bytes at `position` into `buffer[offset..]`; returns bytes read. */
  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number;
  /** read is readSync's asynchronous twin, for large sequential reads off the event loop. */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** write writes all of `data` at `position` (a short write is retried, never returned). */
  write(data: Uint8Array, position: number): Promise<void>;
  /** writeSync is write's synchronous twin (used by the group-commit loop; see cask-engine.ts). */
  writeSync(data: Uint8Array, position: number): void;
  /** datasync flushes the file's data (and the metadata needed to read it back) to stable storage. */
  datasync(): Promise<void>;
  /**
   * writeDurable is write then datasync as one step: resolved, the bytes are on stable storage;
   * like the pair it may tear or fail part way. The real file system does it in one system call
   * (a second descriptor opened O_DSYNC: one trip through the thread pool and one event-loop
   * turn instead of two, which is most of a Raft save's time on a busy member). O_DSYNC makes
   * durable only the range it writes, so a caller must not leave other unsynced bytes in the
   * file: datasync them first (the WAL does).
   */
  writeDurable(data: Uint8Array, position: number): Promise<void>;
  /** datasyncSync is datasync's synchronous twin. */
  datasyncSync(): void;
  /** truncateSync is truncate's synchronous twin. */
  truncateSync(length: number): void;
  /** truncate sets the file's length. */
  truncate(length: number): Promise<void>;
  /** size returns the file's current length in bytes. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export type PathKind = 'directory' | 'file' | 'other';

export interface FileSystem {
  open(path: string, mode: OpenMode): Promise<File>;
  /** readdir lists the names (not paths) in a directory. */
  readdir(dir: string): Promise<string[]>;
  /** mkdir creates a directory and its parents; an existing directory is fine. */
  mkdir(dir: string): Promise<void>;
  /** rename atomically replaces `to` with `from` (POSIX rename). */
  rename(from: string, to: string): Promise<void>;
  /**
   * link gives the file at `existing` a second name, `newPath` (a hard link: one inode, so no
   * byte is copied). The new name is a directory entry like any other: durable only after
   * syncDir of its directory. Fails with the system's code (EXDEV across file systems, EPERM or
   * ENOTSUP where links are not supported, EEXIST when `newPath` exists).
   */
  link(existing: string, newPath: string): Promise<void>;
  /** unlink removes a file; a missing file is fine. */
  unlink(path: string): Promise<void>;
  /** syncDir fsyncs a directory so that creations, renames and removals in it are durable. */
  syncDir(dir: string): Promise<void>;
  /** exists tells whether a path exists. */
  exists(path: string): Promise<boolean>;
  /** kind tells what a path is: 'directory', 'file', 'other', or undefined when nothing is there. */
  kind(path: string): Promise<PathKind | undefined>;
  /** readFile reads a whole (small) file. */
  readFile(path: string): Promise<Uint8Array>;
  /**
   * lockDir keeps every other process out of `dir` until released (LockedError if one holds it);
   * with `readOnly`, writers only. Absent on the machine's file system, whose engines take the
   * kernel lock of storage/dir-lock.ts; a file system that is not the machine's (the replica
   * simulator's disks) has no directory another process could open, and locks its own way.
   */
  lockDir?(dir: string, readOnly: boolean): Promise<HeldLock>;
}

/** HeldLock: a directory lock, given back by release. */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * mkdirDurable creates `dir` and its missing parents, and fsyncs the parent of each directory it
 * created, top down: a new directory's entry is in its parent's listing, which (like a file's
 * creation) survives a power loss only once the parent is fsynced. Without it, a store created
 * in a new directory could lose the whole directory, acknowledged writes and all, to a power cut
 * (found by the replica simulator running the cask engine, whose disk keeps only fsynced
 * listings; docs/replica-sim.md). An existing directory is left as it is.
 */
export async function mkdirDurable(fs: FileSystem, dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = path.resolve(dir); (await fs.kind(d)) === undefined; d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  if (missing.length === 0) return;
  await fs.mkdir(dir);
  for (const d of missing.reverse()) await fs.syncDir(path.dirname(d));
}

/** writeThenSync is writeDurable's portable form: the file's own write, then its own datasync. */
export async function writeThenSync(file: File, data: Uint8Array, position: number): Promise<void> {
  await file.write(data, position);
  await file.datasync();
}
