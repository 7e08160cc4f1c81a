// Helpers shared by the replica tests: a model of the log (MemoryStorage driven exactly as
// DiskLog is), a plain view of any LogStorage for comparisons, and a file system without fsync
// for tests that check logic rather than durability. Used by *.test.ts only.
import type { File, FileSystem } from '../io/file-system.js';
import { type LogStorage, MemoryStorage } from '../raft/log-storage.js';
import type { ConfState, Entry, HardState, Snapshot } from '../raft/types.js';

/** ModelLog applies DiskLog's operations to a MemoryStorage (etcd's order: snapshot, entries, state). */
export class ModelLog {
  readonly mem = new MemoryStorage();
  private hs: HardState = { term: 0, vote: 0, commit: 0 };

  save(hardState: HardState | undefined, entries: readonly Entry[], snapshot: Snapshot | undefined): void {
    if (snapshot !== undefined) this.mem.applySnapshot(snapshot);
    this.mem.append(entries);
    if (hardState !== undefined) {
      this.hs = hardState;
      this.mem.setHardState(hardState);
    }
  }

  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    return this.mem.createSnapshot(i, confState, data);
  }

  compact(i: number): void {
    this.mem.compact(i);
  }

  hardState(): HardState {
    return this.hs;
  }
}

/** LogView is everything LogStorage answers, as plain data. */
export interface LogView {
  first: number;
  last: number;
  initial: { hardState: HardState; confState: ConfState };
  snapshot: { index: number; term: number; confState: ConfState; data: number[] };
  terms: (number | undefined)[];
  entries: { index: number; term: number; type: string; data: number[] }[];
  limited: number;
}

/** viewOf reads every answer of a LogStorage, including terms just outside the log. */
export function viewOf(s: LogStorage, maxSize = 64): LogView {
  const first = s.firstIndex();
  const last = s.lastIndex();
  const terms: (number | undefined)[] = [];
  for (let i = Math.max(0, first - 3); i <= last + 2; i++) terms.push(s.term(i));
  const snap = s.snapshot();
  return {
    first,
    last,
    initial: s.initialState(),
    snapshot: { ...snap.metadata, data: Array.from(snap.data) },
    terms,
    entries: s.entries(first, last + 1, Number.POSITIVE_INFINITY).map((e) => ({
      index: e.index,
      term: e.term,
      type: e.type,
      data: Array.from(e.data),
    })),
    limited: first <= last ? s.entries(first, last + 1, maxSize).length : 0,
  };
}

/** noSyncFileSystem passes everything to `inner` except datasync and syncDir, which do nothing. */
export function noSyncFileSystem(inner: FileSystem): FileSystem {
  const wrap = (f: File): File => ({
    path: f.path,
    readSync: (b, o, l, p) => f.readSync(b, o, l, p),
    read: (b, o, l, p) => f.read(b, o, l, p),
    write: (d, p) => f.write(d, p),
    writeSync: (d, p) => f.writeSync(d, p),
    datasync: async () => {},
    writeDurable: (d, p) => f.write(d, p),
    datasyncSync: () => {},
    truncateSync: (n) => f.truncateSync(n),
    truncate: (n) => f.truncate(n),
    size: () => f.size(),
    close: () => f.close(),
  });
  return {
    open: async (p, mode) => wrap(await inner.open(p, mode)),
    readdir: (d) => inner.readdir(d),
    mkdir: (d) => inner.mkdir(d),
    rename: (a, b) => inner.rename(a, b),
    link: (a, b) => inner.link(a, b),
    unlink: (p) => inner.unlink(p),
    syncDir: async () => {},
    exists: (p) => inner.exists(p),
    kind: (p) => inner.kind(p),
    readFile: (p) => inner.readFile(p),
  };
}
