// SimDisk: one member's disk in memory, which outlives the member's processes (CLUSTER.md §3.1
// item 38: an in-memory FileSystem with power loss). It models what a crash may keep:
//
// - File data: writes land in the page cache at once; fdatasync makes a file's current length
//   and bytes durable. Power loss puts back the bytes unsynced writes overwrote below the synced
//   length and cuts the file at the synced length, except that a prefix of the unsynced tail may
//   survive (pages written back before the power went: a torn write).
// - A failed fdatasync loses its writeback as Linux does ("fsyncgate", src/io/lost-writeback.ts):
//   every byte dirty when it was called stays readable (the next process reads it too), but no
//   later fdatasync makes it durable unless it is written again; power loss takes it.
// - Directory entries: a creation, rename or unlink is durable once its directory is fsynced
//   (syncDir); power loss restores every directory to its last fsynced listing. Files are inodes,
//   so an unlinked file whose removal was never made durable comes back with its data.
//
// The process-side view, with latency and injected I/O errors, is SimFileSystem
// (replica-fs.ts). src/io/faulty-file-system.ts models the same rules over a real directory;
// this one needs no real I/O, so its timing comes from the seed.
import * as path from 'node:path';
import { LostWriteback } from '../src/io/lost-writeback.js';

/** Inode: one file's bytes, and what of them is durable. */
export class Inode {
  data: Buffer = Buffer.alloc(0);
  size = 0;
  /** syncedSize: the length at the last fdatasync (what power loss keeps). */
  syncedSize = 0;
  /** undo: bytes below syncedSize that unsynced writes overwrote (oldest first). */
  undo: { position: number; bytes: Buffer }[] = [];
  /** lost: bytes a failed fdatasync left readable but not durable. */
  readonly lost = new LostWriteback();

  write(bytes: Uint8Array, position: number): void {
    const end = position + bytes.length;
    this.lost.written(position, bytes.length);
    const keep = Math.min(end, this.syncedSize);
    if (keep > position) this.undo.push({ position, bytes: Buffer.from(this.data.subarray(position, keep)) });
    this.reserve(end);
    if (position > this.size) this.data.fill(0, this.size, position);
    this.data.set(bytes, position);
    this.size = Math.max(this.size, end);
  }

  read(out: Uint8Array, offset: number, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, this.size - position));
    if (n > 0) out.set(this.data.subarray(position, position + n), offset);
    return n;
  }

  truncate(length: number): void {
    this.reserve(length);
    if (length > this.size) this.data.fill(0, this.size, length);
    this.size = length;
    // Conservative, as FaultyFileSystem: a shrink may reach the disk before any sync.
    this.syncedSize = Math.min(this.syncedSize, length);
    this.lost.truncated(length);
  }

  /** syncPoint: what an fdatasync called now covers (see sync). */
  syncPoint(): SyncPoint {
    return {
      size: this.size,
      undos: this.undo.length,
      rewrites: this.lost.rewrites,
      failures: this.lost.failures,
    };
  }

  /**
   * sync makes durable what an fdatasync called at `at` covered: the first `size` bytes, the
   * first `undos` overwrites and `rewrites` rewrites of lost bytes. A writeback that failed
   * since it was called took its records with it: conservatively, this one then covers nothing.
   */
  sync(at: SyncPoint): void {
    if (at.failures !== this.lost.failures) return;
    this.syncedSize = Math.min(at.size, this.size);
    this.undo.splice(0, at.undos);
    this.lost.synced(at.rewrites);
  }

  /** syncFailed: an fdatasync failed; every byte dirty now is lost (lost-writeback.ts). */
  syncFailed(): void {
    this.lost.failed(this.undo, this.syncedSize, this.size);
    this.undo = [];
  }

  /**
   * undurable says why the first `end` bytes would not survive a power loss as they read now
   * (unsynced, overwritten since the last sync, or lost to a failed writeback), or undefined.
   */
  undurable(end: number): string | undefined {
    if (this.syncedSize < Math.min(end, this.size)) return `only ${this.syncedSize} of ${end} bytes synced`;
    if (this.undo.some((u) => u.position < end)) return 'bytes overwritten since the last sync';
    if (this.lost.lostBelow(end)) return 'bytes whose writeback failed (readable, never written)';
    return undefined;
  }

  contents(): Buffer {
    return Buffer.from(this.data.subarray(0, this.size));
  }

  /** powerLoss reverts to the durable bytes, keeping `tornKeep` bytes of the unsynced tail. */
  powerLoss(tornKeep: number): void {
    for (const u of this.undo.reverse()) this.data.set(u.bytes, u.position);
    this.undo = [];
    this.lost.powerLoss((r) => this.data.set(r.bytes, r.position));
    const tail = Math.max(0, this.size - this.syncedSize);
    this.size = this.syncedSize + Math.min(tornKeep, tail);
    this.syncedSize = this.size;
  }

  private reserve(end: number): void {
    if (end <= this.data.length) return;
    const grown = Buffer.alloc(Math.max(end, this.data.length * 2, 256));
    this.data.copy(grown, 0, 0, this.size);
    this.data = grown;
  }
}

/** SyncPoint: what an fdatasync covers, captured when it is called (Inode.syncPoint). */
export interface SyncPoint {
  readonly size: number;
  readonly undos: number;
  readonly rewrites: number;
  readonly failures: number;
}

/** DIR marks a directory entry. */
export const DIR = 'dir' as const;
export type Node = Inode | typeof DIR;

export class SimDisk {
  /** entries: the current namespace, path -> node. */
  entries: Map<string, Node>;
  /** durable: the namespace as of each directory's last fsync. */
  private durable: Map<string, Node>;

  /** dirs: directories that exist durably from the start (the operator's data directory). */
  constructor(dirs: readonly string[] = []) {
    this.entries = new Map<string, Node>([['/', DIR], ...dirs.map((d): [string, Node] => [d, DIR])]);
    this.durable = new Map(this.entries);
  }

  /** locks: directories locked (FileSystem.lockDir), by the process that holds each. */
  readonly locks = new Map<string, { readonly alive: boolean }>();

  /** powerLosses: how many times this disk lost power (for traces). */
  powerLosses = 0;

  /** syncEntries makes the listing of dir durable as it was captured (`listing`). */
  syncEntries(dir: string, listing: ReadonlyMap<string, Node>): void {
    for (const p of [...this.durable.keys()])
      if (p !== '/' && path.dirname(p) === dir) this.durable.delete(p);
    for (const [p, node] of listing) this.durable.set(p, node);
  }

  /**
   * entryDurable: `p` names the same node after a power loss as it does now: its entry, and its
   * directory's up to the root, were fsynced.
   */
  entryDurable(p: string): boolean {
    for (let at = p; at !== '/'; at = path.dirname(at))
      if (this.durable.get(at) !== this.entries.get(at)) return false;
    return true;
  }

  /** listing captures the current entries directly in dir. */
  listing(dir: string): Map<string, Node> {
    const out = new Map<string, Node>();
    for (const [p, node] of this.entries) if (p !== '/' && path.dirname(p) === dir) out.set(p, node);
    return out;
  }

  /**
   * powerLoss reverts the disk to what was durable. tornKeep(path, unsyncedBytes) says how many
   * bytes of a file's unsynced tail reached the disk anyway (0 for none).
   */
  powerLoss(tornKeep: (file: string, unsynced: number) => number): void {
    this.powerLosses++;
    const next = new Map<string, Node>();
    // Shortest paths first, so that an entry whose directory did not survive is dropped.
    const paths = [...this.durable.keys()].sort((a, b) => a.length - b.length || (a < b ? -1 : 1));
    for (const p of paths) {
      const node = this.durable.get(p) as Node;
      if (p === '/' || next.get(path.dirname(p)) === DIR) next.set(p, node);
    }
    const seen = new Set<Inode>();
    for (const [p, node] of next) {
      if (node === DIR || seen.has(node)) continue;
      seen.add(node);
      node.powerLoss(tornKeep(p, node.size - node.syncedSize));
    }
    this.entries = next;
    this.durable = new Map(next);
  }
}
