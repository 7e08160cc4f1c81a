// Compaction (Bitcask's "merge"): copy the live records of some data files (the inputs) into
// fresh files with hint files, then retire the inputs. docs/format.md, "Compaction", states the
// protocol and why each crash point is safe; docs/compaction.md which files a triggered
// compaction takes and which tombstones it carries; docs/hardening.md what a failure at each
// step does. In short:
//
// 1. Choose the inputs (every sealed file, or the most fragmented ones: compaction-plan.ts),
//    sealing the active file first when it is one: every input is sealed and fully published.
// 2. Walk the key directory in key order, a step of about stepMs per turn of the event loop
//    (every request that arrives meanwhile waits for the step, however much work is left). For each
//    key that lives in an input, append its record (same seq) to the output being written,
//    `NNNNNNNNNN.data.compacting`. Nothing points into it yet: keys keep reading the inputs.
//    Then append the tombstones that must outlive their input (carriedTombstones): a deleted
//    key's newest tombstone, when a file outside the inputs may hold an older put of it. A
//    record with an expiry is copied with it, expired or not: dropping an
//    expired PUT here could let an older version of the key in a file outside this compaction
//    come back at recovery. Expired keys are removed by the active expiry cycle's tombstones.
// 3. Finish an output when it is full and at the end: fdatasync it, write its hint file
//    (`.hint.tmp`, fdatasync, rename), rename it to `NNNNNNNNNN.data`, fsync the directory. Only
//    then are its keys moved to it, each only if it still points at the record copied
//    (`relocate`), so a write that raced the copy always wins; in steps, between which the
//    event loop runs.
// 4. Make durable every write published so far (the group commit's sync): the writes that
//    replaced the records not copied may still be unsynced (durability interval or never).
// 5. Commit: write the input ids into the metadata's `retired` list (both copies, atomically).
//    Before this point a crash leaves the inputs intact and the finished outputs as harmless
//    duplicates (same records, same seqs); after it, recovery deletes any input still on disk.
// 6. Close and delete the inputs. Reads are synchronous and the key directory no longer points
//    at any input, so nothing can be reading them.
//
// Damage: a record that fails verification when it is read for the copy (damage behind a hint
// file, which the open does not read) is carried into the output byte for byte, unverified,
// and reported (`damaged`): the key keeps failing its reads with CorruptionError, as it did,
// until it is deleted or written again, and the input retires like any other. Dropping the key
// would lose it silently (rule 4 of docs/hardening.md); refusing the whole compaction stopped
// the store from ever reclaiming space again.
//
// Failure (ENOSPC, EIO): the unfinished output is deleted (nothing points into it), finished
// outputs stay (complete, hinted copies), the inputs are not retired, and the error is an
// IoError. A crash leaves the unfinished output as a `.compacting` file, which recovery removes.
//
// Buffers: the keys it copies are lent by KeyDir.walkFiles for one visit; HintWriter.add copies
// each key into its entry, and relocation reads the keys back from that writer.
//
// Compaction sees the store only through CompactionHost, what the protocol above needs of it;
// the engine builds one over its store state and group commit (cask-engine.ts).

import type { File, FileSystem } from '../../io/file-system.js';
import { assert } from '../../stdx/assert.js';
import { asBuffer } from '../../stdx/bytes.js';
import type { EventLoop } from '../../stdx/event-loop.js';
import { keyString } from '../../stdx/key-string.js';
import { Pacer } from '../../stdx/pacer.js';
import { CairnError, CorruptionError, IoError } from '../errors.js';
import { FILE_HEADER_FORMAT } from '../meta.js';
import type { DataFile, DataFileSet } from './data-file-set.js';
import { compactingPath, dataPath, hintPath, TEMP_SUFFIX } from './file-names.js';
import { decodeHint, HintWriter } from './hint.js';
import type { Location, WalkResume } from './key-dir.js';
import {
  DATA_HEADER_BYTES,
  encodeDataHeader,
  encodeRecord,
  extraBytes,
  Kind,
  RECORD_HEADER_BYTES,
  recordBytes,
  recordStart,
} from './record.js';
import { type CaskMetaFields, listFiles, type Tombstone } from './store-state.js';

/** CompactionHost: what compaction needs of a cask store, and nothing else. */
export interface CompactionHost {
  readonly fs: FileSystem;
  readonly dir: string;
  /** dataFileBytes: the size an output is finished at (as the writer seals its files). */
  readonly dataFileBytes: number;
  /**
   * stepMs: how long one step may hold the event loop (CaskOptions.compactionStepMs); less on a
   * busy loop (stdx/pacer.ts, docs/compaction.md "Pacing").
   */
  readonly stepMs: number;
  /** loop: the time steps are measured by, and the turns between them (CaskOptions.loop). */
  readonly loop: EventLoop;
  /** publishedBytes: the bytes of the writes the store has published (the pacer keeps up with them). */
  publishedBytes(): number;
  /**
   * behind: the store's dead bytes are well past the trigger (the writes outran compaction):
   * while writes come, every step takes the whole budget.
   */
  behind(): boolean;
  /**
   * copyPerWrittenByte: the bytes a compaction expects to copy for each byte written (the live
   * bytes it copies to reclaim the dead ones the writes make), for the pacer.
   */
  readonly copyPerWrittenByte: number;
  /** files: the open data files: outputs get ids here and join when finished; inputs leave when retired. */
  readonly files: DataFileSet;
  /** stopping: close has begun; compaction stops at its next step. */
  stopping(): boolean;
  /**
   * chooseInputs picks the files to compact (all sealed ones, or the most fragmented:
   * compaction-plan.ts), sealing the active data file first, in write order, when it is one of
   * them. Every input returned is sealed: its records are all durable and published.
   */
  chooseInputs(): Promise<readonly number[]>;
  /** tombstonesOf: the DELETE records of sealed data file `id` (its hint's, the store's note, or a scan). */
  tombstonesOf(id: number): Promise<readonly Tombstone[]>;
  /** isLive: the key directory holds `key` (its newest write is a put). */
  isLive(key: Uint8Array): boolean;
  /** retired: data file `id` left the store; what the store remembers of it may go. */
  retired(id: number): void;
  /** sync makes every write published so far durable (the group commit's sync barrier). */
  sync(): Promise<void>;
  /** seqFloor: every sequence number handed out so far is at most this (the metadata keeps it). */
  seqFloor(): number;
  /**
   * walkFiles visits the key directory's entries that live in `files`, in ascending key order
   * from `from`, with lent keys, until `visit` refuses one, `maxVisits` entries were looked at
   * or `over()` (KeyDir.walkFiles).
   */
  walkFiles(
    files: ReadonlySet<number>,
    from: WalkResume | undefined,
    maxVisits: number,
    over: () => boolean,
    visit: (key: Uint8Array, loc: Location) => boolean,
  ): WalkResume | undefined;
  /** expiryOf: the expiry the key's current record carries, if any. */
  expiryOf(key: Uint8Array): number | undefined;
  /**
   * readValue: the verified value of the record `loc` points at (`expires`: it has an expiry
   * field) and its value type (0: a string), which the copy keeps.
   */
  readValue(key: Uint8Array, loc: Location, expires: boolean): { value: Buffer; valueType: number };
  /**
   * readRecordBytes: the bytes of the record `loc` points at, unverified, exactly its size: what
   * is carried forward of a record readValue found damaged.
   */
  readRecordBytes(key: Uint8Array, loc: Location, expires: boolean): Buffer;
  /** damaged: a record that failed verification was carried into output `toFile` as it is. */
  damaged(detail: DamagedRecord): void;
  /**
   * move points `key` at its copy (toFile, toOffset) if it still points at (fromFile,
   * fromOffset), moving its `size` live bytes along; false when a write since then won.
   */
  move(
    key: Uint8Array,
    fromFile: number,
    fromOffset: number,
    toFile: number,
    toOffset: number,
    size: number,
  ): boolean;
  metaFields(): CaskMetaFields;
  /**
   * pinned: a backup (backup.ts) is still linking or copying files it listed; none of the
   * store's files may be deleted until `unpinned()` resolves. A backup lists no retired file
   * and no file that has left `files`, so only files listed before that may be pinned.
   */
  pinned(): boolean;
  /** unpinned resolves once no backup pins files (check `pinned()` again after it). */
  unpinned(): Promise<void>;
  /**
   * commitMeta writes engine fields to both metadata copies: the commit point. A function is
   * given the fields current when the (serialized) update runs.
   */
  commitMeta(
    fields: Partial<CaskMetaFields> | ((current: CaskMetaFields) => Partial<CaskMetaFields>),
  ): Promise<void>;
}

/** CHUNK_BYTES: at most this many bytes are copied per step; between steps reads and writes run. */
const CHUNK_BYTES = 1024 * 1024;
/**
 * CHUNK_VISITS: at most this many key directory entries are examined per step. A step also ends
 * once it has run the host's stepMs: requests wait for a step to end, so that bounds what
 * compaction adds to their latency (steps bounded only by bytes and entries ran 10-50 ms under
 * load, a pread per record copied: the GET p99 of issue 14's mixed load).
 */
const CHUNK_VISITS = 65_536;
/**
 * STEP_BUFFER_BYTES: the buffer a compaction encodes each step's records into: a step stops
 * taking records at CHUNK_BYTES, so this holds any step whose last record is at most 64 KiB (a
 * larger one grows it).
 */
const STEP_BUFFER_BYTES = CHUNK_BYTES + 64 * 1024;
/** CLOCK_EVERY: records relocated (or tombstones carried) between two looks at the clock. */
const CLOCK_EVERY = 64;
/** FROM_WORDS: words per copied record in Output.from: source file id, source value offset. */
const FROM_WORDS = 2;

/** DamagedRecord: where compaction found a damaged record and where it carried it. */
export interface DamagedRecord {
  /** key: the key's first bytes in hex (the key directory's key: the record's own may be damaged). */
  readonly key: string;
  readonly fileId: number;
  /** offset: where the record starts in that file. */
  readonly offset: number;
  readonly toFile: number;
  readonly toOffset: number;
  readonly error: string;
}

export interface CompactionResult {
  readonly inputs: number;
  readonly outputs: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly keysCopied: number;
  /** damagedCarried: records that failed verification, carried as they are (see `damaged`). */
  readonly damagedCarried: number;
  /** steps: how many times it gave the event loop back between two steps of its work. */
  readonly steps: number;
}

/** Output: a compaction output being written, not yet visible to readers. */
interface Output {
  readonly id: number;
  readonly file: File;
  size: number;
  readonly hint: HintWriter;
  /** from: for each record copied, in order, where it came from (FROM_WORDS words each). */
  from: Uint32Array;
  count: number;
  /** named: it has its final `.data` name (with its hint file): complete, never to be discarded. */
  named: boolean;
  /** tombstoneBytes: bytes of the DELETE records carried into it (see carriedTombstones). */
  tombstoneBytes: number;
  /** minSeq: the smallest seq of a record written to it (DataFile.minSeq). */
  minSeq: number;
}

/** compact runs one compaction; it returns undefined when there was nothing to compact or it stopped for close. */
export async function compact(host: CompactionHost): Promise<CompactionResult | undefined> {
  try {
    return await compactInputs(host);
  } catch (err) {
    throw err instanceof CairnError ? err : new IoError(`compaction failed: ${messageOf(err)}`, err);
  }
}

async function compactInputs(host: CompactionHost): Promise<CompactionResult | undefined> {
  const inputs = await host.chooseInputs();
  if (inputs.length === 0) return undefined;
  const inputSet = new Set(inputs);
  const bytesBefore = inputs.reduce((n, id) => n + host.files.get(id).size, 0);
  const seqFloor = host.seqFloor();
  // The tombstones that must outlive their input: see carriedTombstones.
  const carried = await carriedTombstones(host, inputSet, seqFloor);
  let carriedAt = 0;
  /** finished: the outputs completed so far, with where their records came from (for undo). */
  const finished: { readonly data: DataFile; readonly from: Uint32Array }[] = [];
  let out: Output | undefined;
  let keysCopied = 0;
  let damagedCarried = 0;
  let steps = 0;
  // Every step's time slice, sized to the load (stdx/pacer.ts).
  const slice = new Pacer(
    host.stepMs,
    {
      publishedBytes: () => host.publishedBytes(),
      behind: () => host.behind(),
      workPerByte: host.copyPerWrittenByte,
    },
    host.loop,
  );
  /** pause ends a step: the event loop serves requests before the next one. */
  const pause = (): Promise<void> => {
    steps++;
    return slice.pause();
  };

  try {
    let resume: WalkResume | undefined;
    let walked = false;
    // A step's records are encoded one after another into one buffer, written with one `write`
    // (issue 14: a buffer per record copied, then their concatenation, were a third of what a
    // SET allocated under compaction). Steps run one at a time and each awaits its write, so the
    // next step may encode into the same buffer.
    let chunk = Buffer.allocUnsafe(STEP_BUFFER_BYTES);
    /** room: `chunk`, grown (its first `used` bytes kept) until it holds `need` bytes. */
    const room = (used: number, need: number): Buffer => {
      if (need > chunk.length) {
        const grown = Buffer.allocUnsafe(Math.max(need, chunk.length * 2));
        chunk.copy(grown, 0, 0, used);
        chunk = grown;
      }
      return chunk;
    };
    for (;;) {
      if (host.stopping()) return undefined;
      let bytes = 0;
      out ??= await startOutput(host);
      const target = out;
      let writeAt = target.size;
      let full = false;
      slice.start();
      if (!walked) {
        resume = host.walkFiles(inputSet, resume, CHUNK_VISITS, slice.over, (key, loc) => {
          // The key is lent for the call: what is kept of it (the hint entry, the record) is copied.
          if (bytes >= CHUNK_BYTES) return false;
          const expiresAt = host.expiryOf(key);
          const expires = expiresAt !== undefined;
          // The revision travels with the record (a record without one, from before format 3,
          // stays without one: version 0).
          const revision = loc.version !== 0;
          const size = recordBytes(key.length, loc.valueLen, expires, revision);
          if (writeAt + size > host.dataFileBytes && writeAt > DATA_HEADER_BYTES) {
            full = true;
            return false;
          }
          // The value type travels too: loc.valueLen (so `size`) counts a typed record's type
          // byte already, and the copy carries the same TYPED flag and byte.
          const buf = room(bytes, bytes + size);
          let read: { value: Buffer; valueType: number } | CorruptionError;
          try {
            read = host.readValue(key, loc, expires);
          } catch (err) {
            // Damage, not an I/O failure (which fails the compaction): see the top of the file.
            if (!(err instanceof CorruptionError)) throw err;
            read = err;
          }
          if (read instanceof CorruptionError) {
            const raw = host.readRecordBytes(key, loc, expires);
            assert(raw.length === size, `carried record of ${raw.length} bytes, expected ${size}`);
            raw.copy(buf, bytes);
            damagedCarried++;
            host.damaged({
              key: asBuffer(key).toString('hex').slice(0, 64),
              fileId: loc.fileId,
              offset: recordStart(loc.valueOffset, key.length, expires, revision),
              toFile: target.id,
              toOffset: writeAt,
              error: read.message,
            });
          } else {
            encodeRecord(
              buf,
              bytes,
              loc.seq,
              Kind.PUT,
              key,
              read.value,
              expiresAt,
              loc.create,
              loc.version,
              read.valueType,
            );
          }
          const valueAt = writeAt + RECORD_HEADER_BYTES + extraBytes(expires, revision) + key.length;
          target.hint.add(key, loc.seq, valueAt, loc.valueLen, expiresAt, loc.create, loc.version);
          noteSource(target, loc.fileId, loc.valueOffset);
          if (loc.seq < target.minSeq) target.minSeq = loc.seq;
          writeAt += size;
          bytes += size;
          return true;
        });
        walked = resume === undefined;
        slice.worked(bytes);
      }
      let done = walked;
      // After the walk, the tombstones that must be carried (the key directory has no entry to
      // walk for a deleted key), in chunks as well. A key put again meanwhile needs none: its
      // newer put shadows every older record and is itself live (copied if it is in an input).
      // (Even when the walk spent the slice: the loop below stops after CLOCK_EVERY tombstones
      // at most once the slice is over, and it must carry some each step, or a step budget of 0
      // would never finish.)
      if (done && !full) {
        while (carriedAt < carried.length) {
          const t = carried[carriedAt] as Tombstone;
          if (host.isLive(t.key)) {
            carriedAt++;
            continue;
          }
          const size = recordBytes(t.key.length, 0, false, false);
          if (writeAt + size > host.dataFileBytes && writeAt > DATA_HEADER_BYTES) {
            full = true;
            break;
          }
          const buf = room(bytes, bytes + size);
          encodeRecord(buf, bytes, t.seq, Kind.DELETE, t.key, undefined);
          target.hint.addTombstone(t.key, t.seq);
          target.tombstoneBytes += size;
          if (t.seq < target.minSeq) target.minSeq = t.seq;
          writeAt += size;
          bytes += size;
          carriedAt++;
          if (bytes >= CHUNK_BYTES || (carriedAt % CLOCK_EVERY === 0 && slice.over())) break;
        }
      }
      if (carriedAt < carried.length) done = false;
      if (bytes > 0) {
        await target.file.write(chunk.subarray(0, bytes), target.size);
        target.size = writeAt;
      }
      if (full) {
        const data = await finishOutput(host, target, slice, pause);
        out = undefined;
        finished.push({ data, from: target.from });
        keysCopied += await relocate(host, target, data, slice, pause);
      }
      if (done) break;
      // Yield to the event loop between steps so reads and writes are not stalled.
      await pause();
    }
    if (out !== undefined) {
      const target = out;
      if (target.count > 0 || target.tombstoneBytes > 0) {
        const data = await finishOutput(host, target, slice, pause);
        out = undefined;
        finished.push({ data, from: target.from });
        keysCopied += await relocate(host, target, data, slice, pause);
      } else {
        // Nothing was left to copy into the last output: drop it rather than keep an empty file.
        out = undefined;
        await discardOutput(host, target);
      }
    }
    // Every record of the inputs that was not copied was replaced by a newer write (or deleted),
    // and that write may still be in the page cache only (durability `interval` or `never`, which
    // every cluster member's engine runs). Retiring the inputs before it is durable would let a
    // power cut lose the key outright, old durable versions and all, while lastTs still counts
    // past them (found by the replica simulator on cask, seed 570794658 with --transactions; a
    // member's log replay from lastTs could not bring them back). So: durable first.
    if (!host.stopping()) await host.sync();
  } catch (err) {
    // Failed (a full disk, EIO): nothing points into the unfinished output, and the finished
    // ones are undone, so that a compaction that cannot complete leaves the disk as it found it
    // instead of a little fuller after every attempt.
    if (out !== undefined) await discardOutput(host, out);
    out = undefined;
    await undoFinished(host, finished);
    throw err;
  } finally {
    // Stopped for close: nothing points into the unfinished output (finished ones stay: valid
    // copies, compacted next time).
    if (out !== undefined) await discardOutput(host, out);
  }
  if (host.stopping()) return undefined;

  // Commit point: the inputs are retired in the metadata.
  const previous = host.metaFields();
  const stillThere: number[] = [];
  for (const id of previous.retired) if (await host.fs.exists(dataPath(host.dir, id))) stillThere.push(id);
  // The outputs join the metadata's `files` and the inputs leave it in the same update that
  // retires them: at every instant the list names every file that holds live records. Every
  // other open file is listed too (an output an earlier, failed compaction had to leave; it is
  // durable under its name, as every file in `files` is).
  const outputs = host.files.ids().filter((id) => !inputSet.has(id));
  await host.commitMeta((current) => ({
    retired: [...new Set([...stillThere, ...inputs])].sort((a, b) => a - b),
    seqFloor: Math.max(previous.seqFloor, seqFloor),
    files: listFiles(current.files, outputs, inputs),
  }));

  // Retired: from here a failure to delete an input only leaves it for the next open to delete.
  // A backup cut before the commit may still be linking or copying the inputs: wait for it (a
  // backup cut after the commit leaves retired files out). Closing does not wait: the inputs are
  // retired, and the next open deletes them.
  let keepInputs = false;
  while (host.pinned()) {
    if (host.stopping()) {
      keepInputs = true;
      break;
    }
    await host.unpinned();
  }
  for (const id of inputs) {
    const input = host.files.remove(id);
    host.retired(id);
    assert(input.liveKeys === 0, `compacted input ${id} still holds ${input.liveKeys} live keys`);
    await input.file.close().catch(() => {});
  }
  if (!keepInputs) {
    for (const id of inputs) {
      await host.fs.unlink(dataPath(host.dir, id));
      await host.fs.unlink(hintPath(host.dir, id));
    }
    await host.fs.syncDir(host.dir);
  }
  return {
    inputs: inputs.length,
    outputs: finished.length,
    bytesBefore,
    bytesAfter: finished.reduce((n, o) => n + o.data.size, 0),
    keysCopied,
    damagedCarried,
    steps,
  };
}

/** startOutput creates the next output under its `.compacting` name, with its header. */
async function startOutput(host: CompactionHost): Promise<Output> {
  const id = host.files.allocate();
  const filePath = compactingPath(host.dir, id);
  await host.fs.unlink(filePath);
  const file = await host.fs.open(filePath, 'create');
  try {
    await file.write(encodeDataHeader(FILE_HEADER_FORMAT, id), 0);
  } catch (err) {
    await file.close().catch(() => {});
    await host.fs.unlink(filePath).catch(() => {});
    throw err;
  }
  return {
    id,
    file,
    size: DATA_HEADER_BYTES,
    hint: new HintWriter(FILE_HEADER_FORMAT, id),
    from: new Uint32Array(1024 * FROM_WORDS),
    count: 0,
    named: false,
    tombstoneBytes: 0,
    minSeq: Number.POSITIVE_INFINITY,
  };
}

/**
 * carriedTombstones lists the inputs' tombstones that a compaction must copy, newest per key,
 * in no particular order. A tombstone may go with its input only if no put it shadows can
 * survive elsewhere: every other data file's records are newer than it (DataFile.minSeq; a file
 * sealed by rotation holds records in seq order, a compaction output copies of older ones). The
 * older puts inside the inputs go with them. A full compaction keeps none (every other file is
 * the new active one, whose records are all newer); a partial one keeps those whose key may
 * still have an older put in a file it leaves alone (docs/compaction.md). Whether the key was
 * put again since is decided when the tombstone would be written.
 */
async function carriedTombstones(
  host: CompactionHost,
  inputs: ReadonlySet<number>,
  seqFloor: number,
): Promise<Tombstone[]> {
  let floorOutside = Number.POSITIVE_INFINITY;
  for (const f of host.files.all()) if (!inputs.has(f.id) && f.minSeq < floorOutside) floorOutside = f.minSeq;
  // Every input record's seq is at most seqFloor: above it no tombstone can be needed.
  if (floorOutside > seqFloor) return [];
  const newest = new Map<string, Tombstone>();
  for (const id of inputs) {
    for (const t of await host.tombstonesOf(id)) {
      if (t.seq < floorOutside) continue;
      const name = keyString(t.key);
      const seen = newest.get(name);
      if (seen === undefined || seen.seq < t.seq) newest.set(name, t);
    }
  }
  return [...newest.values()];
}

/** noteSource records where the record just added to `out` was copied from. */
function noteSource(out: Output, fileId: number, valueOffset: number): void {
  if ((out.count + 1) * FROM_WORDS > out.from.length) {
    const grown = new Uint32Array(out.from.length * 2);
    grown.set(out.from);
    out.from = grown;
  }
  out.from[out.count * FROM_WORDS] = fileId;
  out.from[out.count * FROM_WORDS + 1] = valueOffset;
  out.count++;
}

/**
 * finishOutput makes an output durable and gives it its final name: data fdatasynced, hint file
 * written beside it, renamed to `.data`, directory fsynced; then it joins the engine's files,
 * read-only. Keys do not point into it yet (see relocate).
 */
async function finishOutput(
  host: CompactionHost,
  out: Output,
  slice: Pacer,
  pause: () => Promise<void>,
): Promise<DataFile> {
  const { fs, dir } = host;
  await out.file.datasync();
  const hintFile = hintPath(dir, out.id);
  const hintTmp = `${hintFile}${TEMP_SUFFIX}`;
  const hintBytes = await out.hint.finishInSteps(out.size, slice, pause);
  await fs.unlink(hintTmp);
  const hint = await fs.open(hintTmp, 'create');
  try {
    await hint.write(hintBytes, 0);
    await hint.datasync();
  } finally {
    await hint.close();
  }
  await fs.rename(hintTmp, hintFile);
  await fs.rename(compactingPath(dir, out.id), dataPath(dir, out.id));
  out.named = true;
  await fs.syncDir(dir);
  // The handle was opened under the temporary name: reopen by the final one (for its path in
  // messages), read-only, as every sealed file is read.
  await out.file.close();
  const file = await fs.open(dataPath(dir, out.id), 'read');
  const data: DataFile = {
    id: out.id,
    file,
    size: out.size,
    allocated: out.size,
    liveBytes: 0,
    liveKeys: 0,
    minSeq: out.minSeq,
    // Written with the output (finishOutput), listing every record it holds.
    hinted: true,
  };
  host.files.add(data);
  // The carried tombstones are needed (carriedTombstones): counted as live, so that they alone
  // never make the file look worth compacting again. (An open counts them dead again: at worst
  // one more copy.)
  if (out.tombstoneBytes > 0) host.files.addLiveBytes(data.id, out.tombstoneBytes);
  return data;
}

/**
 * relocate points every key copied into a finished output at its copy, if the key still points
 * at the record that was copied (a write since then wins), a time slice per turn of the event
 * loop. The keys, offsets and sizes are read back from the output's hint writer, entry i being
 * the i-th record copied (decoding the finished hint file instead took 10-40 ms in one step).
 */
async function relocate(
  host: CompactionHost,
  out: Output,
  data: DataFile,
  slice: Pacer,
  pause: () => Promise<void>,
): Promise<number> {
  const hint = out.hint;
  const n = hint.entries;
  assert(n === out.count, `output ${out.id}: ${n} hint entries for ${out.count} records`);
  slice.start();
  let moved = 0;
  for (let i = 0; i < n; i++) {
    const fromFile = out.from[i * FROM_WORDS] as number;
    const fromOffset = out.from[i * FROM_WORDS + 1] as number;
    const to = hint.entryValueOffset(i);
    if (host.move(hint.entryKey(i), fromFile, fromOffset, data.id, to, hint.entryRecordBytes(i))) moved++;
    if ((i + 1) % CLOCK_EVERY === 0 && slice.over()) {
      await pause();
      slice.start();
    }
  }
  return moved;
}

/**
 * undoFinished moves every key of the finished outputs back to the record it was copied from
 * (only a key that still points at its copy: a later write wins), then deletes the outputs. The
 * inputs are intact (nothing was retired). Best effort: an output whose hint file cannot be read
 * back stays, as the valid copy it is, for the next compaction.
 */
async function undoFinished(
  host: CompactionHost,
  finished: readonly { readonly data: DataFile; readonly from: Uint32Array }[],
): Promise<void> {
  for (const { data, from } of [...finished].reverse()) {
    let hint: Uint8Array;
    try {
      // Read into a buffer of its own, no copy needed: decodeHint lends views of it per entry.
      hint = await host.fs.readFile(hintPath(host.dir, data.id));
    } catch {
      continue;
    }
    const back: { key: Buffer; valueAt: number; size: number }[] = [];
    const reason = decodeHint(
      hint,
      data.id,
      data.size,
      (key, _seq, valueAt, valueLen, expiresAt, _create, version) => {
        back.push({
          key: Buffer.from(key),
          valueAt,
          size: recordBytes(key.length, valueLen, expiresAt !== undefined, version !== 0),
        });
      },
      () => {},
    );
    if (reason !== undefined) continue;
    for (let i = 0; i < back.length; i++) {
      const m = back[i]!;
      const fromFile = from[i * FROM_WORDS] as number;
      host.move(m.key, data.id, m.valueAt, fromFile, from[i * FROM_WORDS + 1] as number, m.size);
      if ((i + 1) % CHUNK_VISITS === 0) await host.loop.nextTurn();
    }
    if (data.liveKeys !== 0) continue; // cannot happen: every key it held went back or was overwritten
    // A backup may be copying this output (it was in `files` when the backup was cut): wait,
    // then take it out of `files` in the same step, so no later backup lists it. Closing leaves
    // it, a valid copy of its inputs' records, for the next compaction.
    let pinnedAtClose = false;
    while (host.pinned()) {
      if (host.stopping()) {
        pinnedAtClose = true;
        break;
      }
      await host.unpinned();
    }
    if (pinnedAtClose) continue;
    host.files.remove(data.id);
    await data.file.close().catch(() => {});
    await host.fs.unlink(dataPath(host.dir, data.id)).catch(() => {});
    await host.fs.unlink(hintPath(host.dir, data.id)).catch(() => {});
  }
}

/**
 * discardOutput closes and deletes an unfinished output and its hint file; nothing points into
 * it. One that already has its final name is complete (a valid copy of input records, like a
 * finished output) and is left for the next compaction. Failures here are left to recovery,
 * which removes these names at the next open.
 */
async function discardOutput(host: CompactionHost, out: Output): Promise<void> {
  await out.file.close().catch(() => {});
  if (out.named) return;
  await host.fs.unlink(compactingPath(host.dir, out.id)).catch(() => {});
  await host.fs.unlink(`${hintPath(host.dir, out.id)}${TEMP_SUFFIX}`).catch(() => {});
  await host.fs.unlink(hintPath(host.dir, out.id)).catch(() => {});
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
