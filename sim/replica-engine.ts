// SimEngine: a small deterministic storage engine for the replica simulator (docs/replica-sim.md,
// "The engine"). The cask engine cannot run on the seeded scheduler: it takes a kernel lock on a
// real directory (a Unix socket, storage/dir-lock.ts) and starts its group commit and compaction
// with setImmediate. SimEngine keeps the Engine contract (src/storage/engine.ts) with durability
// `always` over any FileSystem, so a member's state survives crashes and power loss exactly as
// its disk does:
//
// - One append-only file, `engine.log`: frames of [len u32][crc32c u32][a stamped write as
//   entry-codec.ts encodes it]. Open replays the frames; a torn or damaged tail (a write cut by a
//   crash) is cut off, durably, before the store is used.
// - Open makes durable what it replayed before the store is used, by writing it again and
//   fdatasyncing, as cask's recovery does (docs/format.md, "Recovery"): a failed fdatasync of an
//   earlier process left its bytes readable but never to be written (SimDisk models it), and a
//   store that showed them, counted them in lastTs and then lost them to a power cut broke a
//   snapshot taken in between (docs/replica-sim.md, seed 1111). SimEngine keeps no clean-close
//   mark (its one clean close, a snapshot install's, replaces the file with one staged
//   durably), so it rewrites the whole file: cask rewrites only past its syncedEnd.
// - Group commit: writes queue in call order; one flush writes every queued frame at once,
//   fdatasyncs, then makes them visible and resolves them. Reads show only durable writes.
// - An I/O error fails the store: the write in flight and every later one reject (the Replica
//   then stops, and the simulator restarts the member, which recovers from the disk).
// - Expiry: a key whose expiresAt is below the clock's now reads as absent; dueExpiries lists
//   due keys. compact() reclaims nothing (the simulated runs are short).
import * as path from 'node:path';
import type { Clock } from '../src/io/clock.js';
import type { File, FileSystem } from '../src/io/file-system.js';
import { rewriteDurably } from '../src/io/rewrite-durably.js';
import { decodeWrite, encodeWrite } from '../src/replica/entry-codec.js';
import { compareBytes, copyBytes } from '../src/stdx/bytes.js';
import { crc32c } from '../src/stdx/crc32c.js';
import { keyString } from '../src/stdx/key-string.js';
import type {
  BackupSource,
  Engine,
  EngineStats,
  Entry,
  Revision,
  ScanRange,
  Stored,
  WriteOp,
} from '../src/storage/engine.js';
import { ClosedError, InvalidArgumentError, StoreFailedError } from '../src/storage/errors.js';
import { isExpired } from '../src/storage/expiry-index.js';
import { checkKeyVersion, checkTs } from '../src/storage/revision.js';
import { checkBatch, ownScanRange } from '../src/storage/validate.js';

export const SIM_ENGINE_NAME = 'sim';
export const ENGINE_FILE = 'engine.log';
/** FRAME_HEADER_BYTES: the length and the checksum before each stamped write. */
const FRAME_HEADER_BYTES = 8;

interface Item {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly expiresAt: number | undefined;
  readonly revision: Revision;
}

interface Queued {
  readonly frame: Buffer;
  readonly ts: number;
  readonly ops: readonly WriteOp[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

function frameOf(ts: number, ops: readonly WriteOp[]): Buffer {
  const payload = encodeWrite(ts, ops);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32c(payload), 4);
  payload.copy(frame, FRAME_HEADER_BYTES);
  return frame;
}

export class SimEngine implements Engine {
  readonly name = SIM_ENGINE_NAME;
  private readonly items = new Map<string, Item>();
  private queue: Queued[] = [];
  private flushing: Promise<void> | undefined;
  private queuedTs: number;
  private failure: unknown;
  private closed = false;
  private writes = 0;
  private fsyncs = 0;
  /** visibleTs: the ts of the newest durable (visible) write: what a backup cut at `tail` holds. */
  private visibleTs: number;

  private constructor(
    private readonly file: File,
    private tail: number,
    private readonly clock: Clock,
    durableTs: number,
  ) {
    this.queuedTs = durableTs;
    this.visibleTs = durableTs;
  }

  /** open recovers the store in dir (creating it durably if new). */
  static async open(fs: FileSystem, dir: string, clock: Clock): Promise<SimEngine> {
    if ((await fs.kind(dir)) === undefined) {
      await fs.mkdir(dir);
      await fs.syncDir(path.dirname(dir));
    }
    const p = path.join(dir, ENGINE_FILE);
    if (!(await fs.exists(p))) {
      const created = await fs.open(p, 'create');
      await created.datasync();
      await fs.syncDir(dir);
      await created.close();
    }
    const bytes = Buffer.from(await fs.readFile(p));
    const file = await fs.open(p, 'readwrite');
    const writes: { ts: number; ops: readonly WriteOp[] }[] = [];
    let at = 0;
    while (at + FRAME_HEADER_BYTES <= bytes.length) {
      const len = bytes.readUInt32LE(at);
      const end = at + FRAME_HEADER_BYTES + len;
      if (len === 0 || end > bytes.length) break;
      const payload = bytes.subarray(at + FRAME_HEADER_BYTES, end);
      if (crc32c(payload) !== bytes.readUInt32LE(at + 4)) break;
      const w = decodeWrite(payload);
      if (w === undefined) break;
      writes.push(w);
      at = end;
    }
    // A torn tail: the write it held was never acknowledged (it resolves only once synced).
    if (at < bytes.length) await file.truncate(at);
    // What was replayed may never have reached the disk (see the top of the file): written
    // again and synced, with the cut, before anything is shown; and the file's directory entry,
    // and its directory's, which a process that failed as it created them may have left unsynced.
    await rewriteDurably(file, 0, at);
    await fs.syncDir(dir);
    await fs.syncDir(path.dirname(dir));
    const engine = new SimEngine(file, at, clock, writes.at(-1)?.ts ?? 0);
    for (const w of writes) engine.apply(w.ts, w.ops);
    return engine;
  }

  // ---- reads: the durable state ----

  private live(key: Uint8Array): Item | undefined {
    this.checkOpen();
    const item = this.items.get(keyString(key));
    if (item === undefined) return undefined;
    if (item.expiresAt !== undefined && isExpired(item.expiresAt, this.clock.nowMs())) return undefined;
    return item;
  }

  getSync(key: Uint8Array): Uint8Array | undefined {
    const item = this.live(key);
    return item === undefined ? undefined : copyBytes(item.value);
  }

  get(key: Uint8Array): Promise<Uint8Array | undefined> {
    return this.async(() => this.getSync(key));
  }

  has(key: Uint8Array): Promise<boolean> {
    return this.async(() => this.live(key) !== undefined);
  }

  getStoredSync(key: Uint8Array): Stored | undefined {
    const item = this.live(key);
    if (item === undefined) return undefined;
    return { value: copyBytes(item.value), expiresAt: item.expiresAt, revision: item.revision };
  }

  getStored(key: Uint8Array): Promise<Stored | undefined> {
    return this.async(() => this.getStoredSync(key));
  }

  expiry(key: Uint8Array): Promise<number | null | undefined> {
    return this.async(() => {
      const item = this.live(key);
      return item === undefined ? undefined : (item.expiresAt ?? null);
    });
  }

  revisionSync(key: Uint8Array): Revision | undefined {
    return this.live(key)?.revision;
  }

  lastTs(): number {
    return this.queuedTs;
  }

  dueExpiries(nowMs: number, max: number): Uint8Array[] {
    const due = [...this.items.values()].filter(
      (i) => i.expiresAt !== undefined && isExpired(i.expiresAt, nowMs),
    );
    due.sort((a, b) => (a.expiresAt as number) - (b.expiresAt as number) || compareBytes(a.key, b.key));
    return due.slice(0, max).map((i) => copyBytes(i.key));
  }

  async *scan(range: ScanRange = {}): AsyncIterableIterator<Entry> {
    const r = ownScanRange(range);
    this.checkOpen();
    const keys = [...this.items.values()]
      .map((i) => i.key)
      .filter((k) => r.start === undefined || compareBytes(k, r.start) >= 0)
      .filter((k) => r.end === undefined || compareBytes(k, r.end) < 0)
      .sort(compareBytes);
    if (r.reverse === true) keys.reverse();
    let yielded = 0;
    for (const k of keys) {
      if (r.limit !== undefined && yielded >= r.limit) return;
      const item = this.live(k);
      if (item === undefined) continue;
      yielded++;
      yield [copyBytes(item.key), copyBytes(item.value)];
    }
  }

  /** entries: every stored item, expired or not, in key order (the simulator's digest). */
  entries(): readonly Item[] {
    return [...this.items.values()].sort((a, b) => compareBytes(a.key, b.key));
  }

  stats(): EngineStats {
    const now = this.clock.nowMs();
    let keys = 0;
    let expires = 0;
    let ttl = 0;
    for (const i of this.items.values()) {
      if (i.expiresAt !== undefined && isExpired(i.expiresAt, now)) continue;
      keys++;
      if (i.expiresAt !== undefined) {
        expires++;
        ttl += i.expiresAt - now;
      }
    }
    return {
      engine: this.name,
      keys,
      expires,
      avgTtlMs: expires === 0 ? 0 : Math.round(ttl / expires),
      diskBytes: this.tail,
      liveBytes: this.tail,
      writes: this.writes,
      fsyncs: this.fsyncs,
      compactions: 0,
    };
  }

  // ---- writes ----

  write(ts: number, ops: readonly WriteOp[]): Promise<void> {
    try {
      this.checkOpen();
      if (this.failure !== undefined) throw new StoreFailedError(this.failure);
      checkTs(ts, this.queuedTs);
      if (ops.length === 0) throw new InvalidArgumentError('a write needs at least one operation');
      checkBatch(ops);
      for (const op of ops) if (op.type === 'put') checkKeyVersion(op.create, op.version, ts);
    } catch (err) {
      return Promise.reject(err);
    }
    // The frame is a copy: the caller's buffers are borrowed. The ops kept are views of it.
    const frame = frameOf(ts, ops);
    const own = decodeWrite(frame.subarray(FRAME_HEADER_BYTES)) as { ts: number; ops: readonly WriteOp[] };
    this.queuedTs = ts;
    this.writes++;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame, ts, ops: own.ops, resolve, reject });
      this.kick();
    });
  }

  private kick(): void {
    if (this.flushing !== undefined) return;
    this.flushing = this.flushLoop().finally(() => {
      this.flushing = undefined;
    });
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue;
      this.queue = [];
      if (this.failure !== undefined) {
        for (const q of group) q.reject(new StoreFailedError(this.failure));
        continue;
      }
      const bytes = Buffer.concat(group.map((q) => q.frame));
      try {
        await this.file.write(bytes, this.tail);
        await this.file.datasync();
      } catch (err) {
        this.failure = err;
        for (const q of group) q.reject(err);
        continue;
      }
      this.tail += bytes.length;
      this.fsyncs++;
      for (const q of group) this.apply(q.ts, q.ops);
      this.visibleTs = group.at(-1)?.ts ?? this.visibleTs;
      for (const q of group) q.resolve();
    }
  }

  private apply(ts: number, ops: readonly WriteOp[]): void {
    for (const op of ops) {
      const k = keyString(op.key);
      if (op.type === 'delete') {
        this.items.delete(k);
        continue;
      }
      this.items.set(k, {
        key: copyBytes(op.key),
        value: copyBytes(op.value),
        expiresAt: op.expiresAt,
        revision: { mod: ts, create: op.create, version: op.version },
      });
    }
  }

  async flush(): Promise<void> {
    this.checkOpen();
    while (this.flushing !== undefined) await this.flushing;
  }

  async compact(): Promise<void> {
    this.checkOpen();
  }

  /**
   * backupSource: the visible writes, that is the file's durable prefix (frames are only ever
   * appended, so the bytes below `tail` do not change while the source is read).
   */
  async backupSource(): Promise<BackupSource> {
    this.checkOpen();
    const size = this.tail;
    const file = this.file;
    return {
      engine: SIM_ENGINE_NAME,
      files: [{ name: ENGINE_FILE, size }],
      keys: this.items.size,
      lastTs: this.visibleTs,
      read: (name, buffer, offset, length, position) => {
        if (name !== ENGINE_FILE) return Promise.reject(new InvalidArgumentError(`no file ${name}`));
        const n = Math.min(length, size - position);
        return n <= 0 ? Promise.resolve(0) : file.read(buffer, offset, n, position);
      },
      close: () => Promise.resolve(),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing !== undefined) await this.flushing;
    this.closed = true;
    await this.file.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new ClosedError();
  }

  private async<T>(read: () => T): Promise<T> {
    try {
      return Promise.resolve(read());
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
