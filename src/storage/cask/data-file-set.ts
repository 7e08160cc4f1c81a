// DataFileSet tracks the cask engine's open data files: their handles, sizes and how many of
// their bytes are still live (referenced by the key directory), which drives compaction.
import type { File } from '../../io/file-system.js';
import { assert } from '../../stdx/assert.js';
import { FILE_ID_MAX } from './file-names.js';

export interface DataFile {
  readonly id: number;
  readonly file: File;
  /** size: bytes of records (for the active file: bytes written, durable or not). */
  size: number;
  /**
   * allocated: the file's length on disk; past `size` it is zeros written ahead of the appends
   * (see PREALLOCATE_BYTES in group-commit.ts). Equal to `size` for sealed files.
   */
  allocated: number;
  /** liveBytes: bytes of records the key directory still points at. */
  liveBytes: number;
  /** liveKeys: keys the key directory points into this file; 0 before it may be deleted. */
  liveKeys: number;
  /**
   * hinted: the file's hint file exists, known since the open found it or since it was written
   * (a compaction output's with the output, a sealed file's when its job renamed it). A backup
   * copies a hint file only if this held at its cut: a sealed file's hint written after the cut
   * leaves out records that writes after the cut replaced, which the copy still needs.
   */
  hinted: boolean;
  /**
   * minSeq: no record in the file has a smaller sequence number (Infinity: no record yet; 0:
   * unknown, the file may hold anything). A partial compaction drops an input's tombstone only
   * if its seq is below every other file's minSeq: no older put it shadows can exist outside the
   * inputs (docs/compaction.md). Erring low is safe (a tombstone is kept for nothing).
   */
  minSeq: number;
}

export class DataFileSet {
  private readonly byId = new Map<number, DataFile>();
  private nextId = 1;

  get(id: number): DataFile {
    const f = this.byId.get(id);
    assert(f !== undefined, `no open data file ${id}`);
    return f;
  }

  tryGet(id: number): DataFile | undefined {
    return this.byId.get(id);
  }

  add(file: DataFile): void {
    assert(!this.byId.has(file.id), `data file ${file.id} added twice`);
    this.byId.set(file.id, file);
    this.reserve(file.id);
  }

  remove(id: number): DataFile {
    const f = this.get(id);
    this.byId.delete(id);
    return f;
  }

  /** reserve makes sure new ids are greater than `id` (ids are never reused). */
  reserve(id: number): void {
    if (id >= this.nextId) this.nextId = id + 1;
  }

  /** allocate returns a fresh file id. */
  allocate(): number {
    assert(this.nextId <= FILE_ID_MAX, 'data file ids exhausted');
    return this.nextId++;
  }

  ids(): number[] {
    return [...this.byId.keys()].sort((a, b) => a - b);
  }

  all(): DataFile[] {
    return this.ids().map((id) => this.get(id));
  }

  addLive(id: number, bytes: number): void {
    const f = this.get(id);
    f.liveBytes += bytes;
    f.liveKeys++;
  }

  /** addLiveBytes adds bytes to a file's live bytes without counting a key (an expiry's field). */
  addLiveBytes(id: number, bytes: number): void {
    this.get(id).liveBytes += bytes;
  }

  removeLive(id: number, bytes: number): void {
    const f = this.get(id);
    f.liveBytes -= bytes;
    f.liveKeys--;
    assert(f.liveBytes >= 0 && f.liveKeys >= 0, `live accounting of file ${id} went negative`);
  }

  totalBytes(): number {
    let n = 0;
    for (const f of this.byId.values()) n += f.size;
    return n;
  }

  liveBytes(): number {
    let n = 0;
    for (const f of this.byId.values()) n += f.liveBytes;
    return n;
  }
}
