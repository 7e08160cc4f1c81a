// Recovery rebuilds the key directory from a cask directory's files, and repairs what it can
// without throwing data away (docs/format.md, "Recovery"):
//
// - Every data file is read, through its hint file when one is valid, else record by record.
// - Records resolve by sequence number, not by file order: the newest put or delete of a key
//   wins, so compaction outputs and live files may be read in any order.
// - A damaged range in the middle of a file (bytes that are not a valid record, followed by valid
//   records) is skipped, reported, and its bytes are copied to `corrupt/` for inspection. When it
//   is whole records whose framing holds and only whose checksums fail, their keys are marked
//   damaged (FileScan.markDamaged): their reads fail, never serving an older version.
// - A damaged or incomplete range at the end of a file (a torn write) is copied to `corrupt/`
//   and truncated, so appends continue after the last valid record.
// - A batch whose members do not all follow it before the end of the file was never
//   acknowledged and is dropped (that is atomicity); a batch damaged later, in the middle of a
//   file, keeps the members that are still valid, and is reported.
// - Files that a committed compaction retired (listed in the metadata) are deleted.
//
// With `repair: false` (the `cairn check` command) nothing is changed: the report says what a
// repairing open would do.
//
// Buffers: records are decoded in place from a read buffer that the next chunk of the file
// overwrites (and from a hint file's bytes). Keys reach the key directory as views into it,
// which the directory copies (key-dir.ts); the tombstone and expiry maps take latin1 strings
// (copies); a batch's members wait for the rest of the batch, so their keys are copied.
import * as path from 'node:path';
import type { File, FileSystem } from '../../io/file-system.js';
import { rewriteDurably } from '../../io/rewrite-durably.js';
import { keyString } from '../../stdx/key-string.js';
import { CorruptionError, IncompatibleError, IoError } from '../errors.js';
import { ExpiryIndex } from '../expiry-index.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from '../limits.js';
import { FORMAT_VERSION } from '../meta.js';
import { type DataFile, DataFileSet } from './data-file-set.js';
import {
  CORRUPT_DIR,
  DATA_SUFFIX,
  dataFileName,
  HINT_SUFFIX,
  hintFileName,
  isCorruptLeftover,
  isLeftover,
  parseFileId,
  TEMP_SUFFIX,
} from './file-names.js';
import { decodeHintAt, hintEntryCount, hintRecordedSize, openHintCursor } from './hint.js';
import { HintRun, type KeyCursor, mergeCursors, RunCursor } from './hint-run.js';
import { KeyDir } from './key-dir.js';
import {
  batchCount,
  DATA_HEADER_BYTES,
  type Decoded,
  decodeDataHeader,
  decodeRecord,
  EXPIRY_BYTES,
  INVALID,
  KIND_OFFSET,
  Kind,
  NEED_MORE,
  RECORD_HEADER_BYTES,
  recordBytes,
  recordBytesAt,
  VALUE_TYPE_BYTES,
} from './record.js';
import type { Tombstone } from './store-state.js';

/** SCAN_CHUNK_BYTES: how much of a data file recovery reads at a time. */
const SCAN_CHUNK_BYTES = 8 * 1024 * 1024;
/** SCAN_RUN_MIN_BYTES: a scanned data file this large is loaded as a sorted run (see recover). */
const SCAN_RUN_MIN_BYTES = 1024 * 1024;
/** UNBUFFERED: FileScan.decodeBuffered's answer when the record's outcome needs more of the file. */
const UNBUFFERED = 'unbuffered' as const;
/**
 * SCAN_RUN_RECORD_BYTES_GUESS, SCAN_RUN_KEY_SHARE_GUESS: a scanned file's run is sized for one
 * entry per this many bytes of file, and its keys for this share of the file's bytes.
 */
const SCAN_RUN_RECORD_BYTES_GUESS = 128;
const SCAN_RUN_KEY_SHARE_GUESS = 1 / 8;
/** PRESERVE_CHUNK_BYTES: how much of a damaged range is copied to corrupt/ at a time. */
const PRESERVE_CHUNK_BYTES = 1024 * 1024;

export type ProblemKind =
  | 'torn-tail'
  | 'corrupt-range'
  | 'bad-header'
  | 'short-file'
  | 'hint-rejected'
  | 'orphan-hint'
  | 'torn-batch'
  | 'damaged-batch'
  | 'retired-file'
  | 'leftover-temp'
  /**
   * lost-records: a data file no longer holds records its intact hint file lists (it lost its
   * tail); their keys are marked damaged.
   */
  | 'lost-records'
  /** missing-data-file: a data file the metadata lists is not in the directory (its writes are lost). */
  | 'missing-data-file'
  /**
   * in-flight: what a torn write at the end of the active file looks like while another process
   * has the store open and is appending to it (check only: checkStore reclassifies it).
   */
  | 'in-flight'
  /** damaged-index: the in-memory index built from the files is inconsistent (a bug; check only). */
  | 'damaged-index';

export interface Problem {
  readonly kind: ProblemKind;
  readonly file: string;
  /** from/to: the byte range concerned, when there is one. */
  readonly from?: number;
  readonly to?: number;
  readonly detail: string;
  /** action: what recovery did (or, when checking, would do); settled once the step is done. */
  action: string;
}

export interface RecoveryReport {
  dataFiles: number;
  hintFilesUsed: number;
  records: number;
  keys: number;
  /** maxSeq: the highest sequence number seen anywhere, including the metadata's floor. */
  maxSeq: number;
  problems: Problem[];
}

export interface Recovered {
  readonly keyDir: KeyDir;
  /** expiries: the expiry of every live key that has one (from its newest PUT). */
  readonly expiries: ExpiryIndex;
  readonly files: DataFileSet;
  readonly report: RecoveryReport;
  /** activeId: the data file to keep appending to, or undefined to start a new one. */
  readonly activeId: number | undefined;
  /**
   * tombstones: the DELETE records of every data file read by scanning (no usable hint file),
   * for the hint file the engine writes for it (seal-hint.ts).
   */
  readonly tombstones: Map<number, Tombstone[]>;
  /** hintable: sealed data files read by scanning without any problem: they may get a hint file. */
  readonly hintable: readonly number[];
  /**
   * missing: data files the metadata lists (RecoverOptions.listed) that are not in the
   * directory. They stay listed, so that every open and check reports them.
   */
  readonly missing: readonly number[];
}

export interface RecoverOptions {
  readonly fs: FileSystem;
  readonly dir: string;
  /** retired: data file ids that a committed compaction replaced (from the metadata). */
  readonly retired: readonly number[];
  /**
   * listed: the data files that must exist (the metadata's `files`); undefined for metadata
   * written before the field existed, which cannot tell a lost file from one never written.
   */
  readonly listed?: readonly number[] | undefined;
  /** seqFloor: every sequence number used so far is at most this (from the metadata). */
  readonly seqFloor: number;
  /** syncedEnd: how far the active file was durable at the last clean close (from the metadata). */
  readonly syncedEnd?: { readonly file: number; readonly bytes: number } | undefined;
  /** repair: truncate torn tails, save damaged bytes, delete retired files. */
  readonly repair: boolean;
  /** dataFileBytes: the rotation size; a last file this large is not appended to. */
  readonly dataFileBytes: number;
  /**
   * trustHints: read a file that has a valid hint file through the hint alone (default, for
   * open). `cairn check` passes false, so that every record's checksum is verified: a hint file
   * says where values are, not that they are intact.
   */
  readonly trustHints?: boolean;
}

interface PendingBatch {
  readonly start: number;
  readonly seq: number;
  readonly count: number;
  readonly members: {
    key: Uint8Array;
    kind: Kind;
    valueOffset: number;
    valueLen: number;
    expiresAt: number | undefined;
    create: number;
    version: number;
  }[];
  damaged: boolean;
}

export async function recover(options: RecoverOptions): Promise<Recovered> {
  const report: RecoveryReport = {
    dataFiles: 0,
    hintFilesUsed: 0,
    records: 0,
    keys: 0,
    maxSeq: options.seqFloor,
    problems: [],
  };
  const keyDir = new KeyDir();
  const expiries = new ExpiryIndex();
  const files = new DataFileSet();
  const { names, dataIds, hintIds } = await listDirectory(options, report);
  await removeInterruptedCopies(options, names, report);
  dataIds.sort((a, b) => a - b);
  const retired = new Set(options.retired);
  for (const id of options.retired) files.reserve(id);
  const live = await removeRetiredFiles(options, dataIds, retired, report);
  const missing = reportMissingFiles(options, dataIds, hintIds, retired, report);
  for (const id of missing) files.reserve(id);
  await removeOrphanHints(options, hintIds, dataIds, live, retired, new Set(missing), report);
  const tombstones = new Map<number, Tombstone[]>();
  const apply = applyToIndex(report, keyDir, expiries, tombstones);

  // The active file: the newest data file without a hint file (compaction outputs and sealed
  // files have one). Only it can end in a torn write; every other file was fdatasynced before
  // the next one was started, so damage at its end is corruption (docs/hardening.md, rule 6).
  let activeCandidate: number | undefined;
  for (const id of live) if (!hintIds.has(id)) activeCandidate = id;
  /** uncut: the active file ends in damage that is kept in place, so writes go to a new file. */
  let uncut = false;

  // Every usable hint file is a sorted run (read through a cursor); every other file is scanned
  // record by record into a run that is then sorted; all are merged into the key directory in
  // key order (a load that appends, instead of inserting each key at a random place). Records
  // resolve by seq, so the order is free to choose.
  let lastId: number | undefined;
  const opened: { id: number; file: File; size: number }[] = [];
  /** cursors: one per usable hint file (hint-run.ts's KeyCursor), then one per scanned run. */
  const cursors: KeyCursor[] = [];
  const toScan: { id: number; file: File; size: number }[] = [];
  /** minSeqs: each data file's smallest record seq (DataFile.minSeq), as far as it was read. */
  const minSeqs = new Map<number, number>();
  // Every hint file is read at once (the thread pool reads while this thread decodes the first
  // ones): all of them are held until the merge anyway. A read never awaited (its data file
  // turned out too short) must not become an unhandled rejection.
  const hintReads = new Map<number, Promise<Buffer>>();
  /** describing: unused hint files that still list what their data file held (describingHint). */
  const describing = new Map<number, DescribingHint>();
  if (options.trustHints !== false) {
    for (const id of live) {
      if (!hintIds.has(id)) continue;
      const read = readWhole(options.fs, path.join(options.dir, hintFileName(id)));
      read.catch(() => {});
      hintReads.set(id, read);
    }
  }
  for (const id of live) {
    const data = await openDataFile(options, id, report);
    if (data === undefined) {
      files.reserve(id);
      continue;
    }
    opened.push(data);
    const hintRead = hintReads.get(id);
    const hint = hintRead === undefined ? undefined : await hintRead;
    const read = hint !== undefined ? readHintRun(hint, id, data.size, report, apply) : undefined;
    if (read === undefined && hint !== undefined) {
      const described = describingHint(hint, id, data.size);
      if (described !== undefined) describing.set(id, described);
    }
    if (read !== undefined) {
      cursors.push(read.cursor);
      // A sealed file's hint leaves out replaced records, but the file was appended in seq order,
      // so its first record holds its smallest seq; a compaction output's hint lists every
      // record it holds. The smaller of the two is right for both.
      minSeqs.set(id, Math.min(read.minSeq, await firstRecordSeq(data.file, data.size)));
    } else toScan.push(data);
  }
  // A full check reads every record instead of the hint files, yet an open would use them: a
  // hint file the open would reject is reported all the same (the full `cairn check` reported
  // less than `cairn check --fast` on a damaged hint file, found from outside).
  if (options.trustHints === false) {
    for (const { id, size } of opened) {
      if (!hintIds.has(id)) continue;
      const hint = await readWhole(options.fs, path.join(options.dir, hintFileName(id)));
      const reason = decodeHintAt(
        hint,
        id,
        size,
        () => {},
        () => {},
      );
      if (reason === undefined) continue;
      report.problems.push({
        kind: 'hint-rejected',
        file: hintFileName(id),
        detail: reason,
        action: 'an open would scan the data file instead',
      });
      const described = describingHint(hint, id, size);
      if (described !== undefined) describing.set(id, described);
    }
  }
  const clean: number[] = [];
  /** unordered: scanned files whose records are not in seq order (a compaction output without its hint). */
  const unordered = new Set<number>();
  const hinted = cursors.map((c) => c.id);
  const sizes = new Map<number, number>();
  for (const { id, file, size } of toScan) {
    const problemsBefore = report.problems.length;
    // A scanned file's puts become a run too, sorted, so that they join the merge: inserting a
    // whole data file's keys at random places costs seconds at a million keys, sorting them a
    // fraction. Its deletes go straight to the index (they are remembered as tombstones, which
    // the merge's puts are checked against: records resolve by seq in any order).
    // A small file's keys are applied as they are read (what a run would save is less than
    // what it costs).
    // Sized from the file (a guess: growing eight columns by doubling from a thousand entries
    // was a tenth of the crash open's scan); a wrong guess costs a doubling or some slack.
    const run =
      size >= SCAN_RUN_MIN_BYTES
        ? new HintRun(
            id,
            Buffer.allocUnsafe(Math.ceil(size * SCAN_RUN_KEY_SHARE_GUESS)),
            Math.ceil(size / SCAN_RUN_RECORD_BYTES_GUESS),
          )
        : undefined;
    let minSeq = Number.POSITIVE_INFINITY;
    // ordered: the records' seqs never decrease, as in every file the group commit appends to
    // (a compaction output is in key order). Only such a file may be appended to or given a
    // sealed file's hint: that hint leaves replaced records out, and an open then takes the
    // file's smallest seq from its first record (DataFile.minSeq), which needs the order.
    let lastSeq = 0;
    let ordered = true;
    // seen: every record the scan finds, when a hint file says what the file held (lostRecords).
    const described = describing.get(id);
    const seen = described === undefined ? undefined : new Set<string>();
    const collect: Apply = (key, kind, fileId, valueOffset, valueLen, seq, expiresAt, create, version) => {
      seen?.add(seenKey(key, seq));
      if (seq < minSeq) minSeq = seq;
      if (seq < lastSeq) ordered = false;
      lastSeq = seq;
      if (run !== undefined && kind === Kind.PUT)
        run.pushCopy(key, seq, valueOffset, valueLen, expiresAt, create, version);
      else apply(key, kind, fileId, valueOffset, valueLen, seq, expiresAt, create, version);
    };
    const read = await scanDataFile(options, id, file, size, id === activeCandidate, report, collect);
    if (described !== undefined && seen !== undefined)
      markLostRecords(described, id, size, seen, report, apply);
    if (run !== undefined) {
      run.sort();
      cursors.push(new RunCursor(run));
    }
    sizes.set(id, read.size);
    // Damage kept in place may hide records whose seqs are unknown; a torn tail or batch is cut
    // off (or the open fails), so it hides nothing.
    const hides = report.problems
      .slice(problemsBefore)
      .some((p) => p.kind !== 'torn-tail' && p.kind !== 'torn-batch');
    minSeqs.set(id, hides ? 0 : minSeq);
    if (read.uncut) uncut = true;
    if (!ordered) unordered.add(id);
    if (report.problems.length === problemsBefore && !read.uncut && ordered) clean.push(id);
  }
  mergeCursors(cursors, (c) => {
    apply(
      c.key(),
      Kind.PUT,
      c.id,
      c.valueOffset,
      c.valueLen,
      c.seq,
      Number.isNaN(c.expiresAt) ? undefined : c.expiresAt,
      c.create,
      c.version,
    );
  });
  for (const { id, file, size } of opened) {
    files.add({
      id,
      file,
      size: sizes.get(id) ?? size,
      allocated: sizes.get(id) ?? size,
      liveBytes: 0,
      liveKeys: 0,
      minSeq: minSeqs.get(id) ?? 0,
      // Written before anything this open will write (usable or not: a backup copies it as is).
      hinted: hintIds.has(id),
    });
    lastId = id;
  }

  countLiveBytes(keyDir, expiries, files);
  report.keys = keyDir.size;
  const activeId = appendTarget(
    lastId,
    uncut || (lastId !== undefined && unordered.has(lastId)),
    hintIds,
    files,
    options.dataFileBytes,
  );
  // Deletes of files read through their hint are in the hint already; of a file that gets a new
  // active file after it (activeId undefined), they wait for its hint too.
  for (const id of hinted) tombstones.delete(id);
  const hintable = clean.filter((id) => id !== activeId);
  // Kept only for files that will get a hint: the active one and the hintable (a damaged file
  // gets none, and is reported at every open instead).
  for (const id of [...tombstones.keys()])
    if (id !== activeId && !hintable.includes(id)) tombstones.delete(id);
  return { keyDir, expiries, files, report, activeId, tombstones, hintable, missing };
}

/**
 * reportMissingFiles reports every data file the metadata lists that is not in the directory
 * (deleted by hand, lost by the file system): the writes it held are lost, so older versions
 * of its keys may read again and keys it deleted come back. Nothing is changed: the file stays
 * listed (so every open and check says so until it is put back), and its hint file, if any, is
 * kept as the record of the keys it held. Returns the missing ids.
 */
function reportMissingFiles(
  options: RecoverOptions,
  dataIds: readonly number[],
  hintIds: ReadonlySet<number>,
  retired: ReadonlySet<number>,
  report: RecoveryReport,
): number[] {
  if (options.listed === undefined) return [];
  const present = new Set(dataIds);
  const missing = options.listed.filter((id) => !present.has(id) && !retired.has(id));
  for (const id of missing) {
    const hint = hintIds.has(id)
      ? `; its hint file ${hintFileName(id)} is kept (it lists the keys the file held)`
      : '';
    report.problems.push({
      kind: 'missing-data-file',
      file: dataFileName(id),
      detail:
        'the metadata lists this data file but it is not in the directory: the writes it held are lost ' +
        `(their keys read as older versions or as absent, and keys it deleted may be back)${hint}`,
      action: options.repair
        ? 'none: put the file back, or copy the store with `cairn backup` to accept the loss (reported at every open until then)'
        : 'would report it at every open, changing nothing',
    });
  }
  return missing;
}

/**
 * listDirectory finds the data and hint files of the directory, and removes (when repairing)
 * Cairn's temporary files that an interrupted step left.
 */
async function listDirectory(
  options: RecoverOptions,
  report: RecoveryReport,
): Promise<{ names: string[]; dataIds: number[]; hintIds: Set<number> }> {
  const { fs, dir, repair } = options;
  const names = await fs.readdir(dir);
  const dataIds: number[] = [];
  const hintIds = new Set<number>();
  for (const name of names) {
    const dataId = parseFileId(name, DATA_SUFFIX);
    if (dataId !== undefined) dataIds.push(dataId);
    const hintId = parseFileId(name, HINT_SUFFIX);
    if (hintId !== undefined) hintIds.add(hintId);
    // Only Cairn's own temporary files, by exact name: the directory may hold a user's files.
    if (isLeftover(name)) {
      report.problems.push({
        kind: 'leftover-temp',
        file: name,
        detail: 'temporary file of an interrupted metadata, rotation or compaction step',
        action: repair ? 'deleted' : 'would delete',
      });
      if (repair) await fs.unlink(path.join(dir, name));
    }
  }
  return { names, dataIds, hintIds };
}

/** removeInterruptedCopies removes (when repairing) unfinished copies in corrupt/. */
async function removeInterruptedCopies(
  options: RecoverOptions,
  names: readonly string[],
  report: RecoveryReport,
): Promise<void> {
  const { fs, dir, repair } = options;
  // An interrupted copy into corrupt/ (a crash or a full disk during an earlier recovery); the
  // copy is made again below if the damage is still there.
  const corruptDir = path.join(dir, CORRUPT_DIR);
  if (names.includes(CORRUPT_DIR) && (await fs.exists(corruptDir))) {
    for (const name of await fs.readdir(corruptDir)) {
      if (!isCorruptLeftover(name)) continue;
      report.problems.push({
        kind: 'leftover-temp',
        file: `${CORRUPT_DIR}/${name}`,
        detail: 'interrupted copy of damaged bytes',
        action: repair ? 'deleted' : 'would delete',
      });
      if (repair) await fs.unlink(path.join(corruptDir, name));
    }
  }
}

/**
 * removeRetiredFiles removes (when repairing) the data files, and their hint files, that a
 * committed compaction replaced; it returns the other data files, in the order given.
 */
async function removeRetiredFiles(
  options: RecoverOptions,
  dataIds: readonly number[],
  retired: ReadonlySet<number>,
  report: RecoveryReport,
): Promise<number[]> {
  const { fs, dir, repair } = options;
  const live: number[] = [];
  for (const id of dataIds) {
    if (retired.has(id)) {
      report.problems.push({
        kind: 'retired-file',
        file: dataFileName(id),
        detail: 'replaced by a committed compaction',
        action: repair ? 'deleted' : 'would delete',
      });
      if (repair) {
        await fs.unlink(path.join(dir, dataFileName(id)));
        await fs.unlink(path.join(dir, hintFileName(id)));
      }
      continue;
    }
    live.push(id);
  }
  return live;
}

/**
 * removeOrphanHints removes (when repairing) hint files whose data file is gone, a retired
 * file's included: a seal hint written while a compaction retired its file can land after the
 * compaction deleted the data file (removeRetiredFiles, which only looks at data files, would
 * leave that hint forever).
 */
async function removeOrphanHints(
  options: RecoverOptions,
  hintIds: ReadonlySet<number>,
  dataIds: readonly number[],
  live: readonly number[],
  retired: ReadonlySet<number>,
  missing: ReadonlySet<number>,
  report: RecoveryReport,
): Promise<void> {
  const { fs, dir, repair } = options;
  for (const id of hintIds) {
    if (live.includes(id)) continue;
    // The hint of a listed data file that is missing: evidence of what was lost, kept.
    if (missing.has(id)) continue;
    // A retired file whose data file is still here: removeRetiredFiles deleted its hint too.
    if (retired.has(id) && dataIds.includes(id)) continue;
    report.problems.push({
      kind: 'orphan-hint',
      file: hintFileName(id),
      detail: 'hint file without a data file',
      action: repair ? 'deleted' : 'would delete',
    });
    if (repair) await fs.unlink(path.join(dir, hintFileName(id)));
  }
}

/**
 * applyToIndex is the Apply that resolves records into the key directory and expiry index by
 * seq, whatever order the files are read in: the newest put or delete of a key wins. Deletes
 * are remembered as tombstones, so that an older put read later does not revive the key.
 */
function applyToIndex(
  report: RecoveryReport,
  keyDir: KeyDir,
  expiries: ExpiryIndex,
  byFile: Map<number, Tombstone[]>,
): Apply {
  const tombstones = new Map<string, number>();
  return (key, kind, fileId, valueOffset, valueLen, seq, expiresAt, create, version) => {
    report.records++;
    if (seq > report.maxSeq) report.maxSeq = seq;
    if (kind === Kind.PUT) {
      if (tombstones.size > 0) {
        const dead = tombstones.get(keyString(key));
        if (dead !== undefined && dead > seq) return;
      }
      // The expiry follows the PUT that wins; stores without TTLs skip the name entirely.
      if (
        keyDir.setIfNewer(key, fileId, valueOffset, valueLen, seq, create, version) &&
        (expiresAt !== undefined || expiries.size > 0)
      ) {
        expiries.set(keyString(key), expiresAt);
      }
      return;
    }
    const existing = keyDir.get(key);
    const name = keyString(key);
    if (existing !== undefined && existing.seq < seq) {
      keyDir.remove(key);
      if (expiries.size > 0) expiries.delete(name);
    }
    const dead = tombstones.get(name);
    if (dead === undefined || dead < seq) tombstones.set(name, seq);
    // Kept for the file's hint file (a copy: `key` is a view into a read buffer).
    const list = byFile.get(fileId);
    const tombstone = { key: Buffer.from(key), seq };
    if (list === undefined) byFile.set(fileId, [tombstone]);
    else list.push(tombstone);
  };
}

/**
 * openDataFile opens one data file for reading (and repair); undefined for a file shorter than
 * its header, which it removes (when repairing).
 */
async function openDataFile(
  options: RecoverOptions,
  id: number,
  report: RecoveryReport,
): Promise<{ id: number; file: File; size: number } | undefined> {
  const { fs, dir, repair } = options;
  const file = await fs.open(path.join(dir, dataFileName(id)), repair ? 'readwrite' : 'read');
  const size = await file.size();
  if (size < DATA_HEADER_BYTES) {
    await removeShortFile(options, file, id, size, report);
    return undefined;
  }
  report.dataFiles++;
  return { id, file, size };
}

/**
 * scanDataFile applies a data file's records by scanning it. It returns its size afterwards and
 * whether it ends in damage kept in place.
 */
async function scanDataFile(
  options: RecoverOptions,
  id: number,
  file: File,
  fileSize: number,
  active: boolean,
  report: RecoveryReport,
  apply: Apply,
): Promise<{ size: number; uncut: boolean }> {
  const { fs, dir, repair } = options;
  const tornFrom = tornWriteStart(options, id, active);
  const scanned = await scanFile(fs, dir, file, id, fileSize, repair, tornFrom, report, apply);
  // The active file may hold bytes the crashed writer wrote but never fdatasynced, or whose
  // fdatasync failed: readers will see them from now on (and a cluster member counts them as
  // applied), so they must be durable first. A failed fdatasync leaves its pages readable but
  // clean, and a second one would not write them ("fsyncgate"): everything past what the last
  // clean close synced is written again, then synced (docs/format.md, "Recovery"). After a
  // clean close that is nothing. Damage kept in place starts below tornFrom: nothing past it
  // is trusted then. The header is durable in any data file (createDataFile renames the file to
  // its name only after the header's fdatasync succeeded; a failed one leaves a `.tmp`).
  if (repair && active) await rewriteDurably(file, tornFrom, scanned.uncut ? tornFrom : scanned.size);
  return scanned;
}

/** removeShortFile saves (when repairing) a data file shorter than its header, then deletes it. */
async function removeShortFile(
  options: RecoverOptions,
  file: File,
  id: number,
  size: number,
  report: RecoveryReport,
): Promise<void> {
  const { fs, dir, repair } = options;
  const name = dataFileName(id);
  // A crash between creating a file and making its header durable; it holds no records.
  report.problems.push({
    kind: 'short-file',
    file: name,
    from: 0,
    to: size,
    detail: `only ${size} bytes, shorter than the file header`,
    action: repair ? 'bytes saved to corrupt/, file deleted' : 'would save the bytes and delete the file',
  });
  if (!repair) {
    await file.close();
    return;
  }
  const failed = await preserve(fs, dir, file, name, 0, size);
  await file.close();
  if (failed === undefined) {
    await fs.unlink(path.join(dir, name));
    await fs.unlink(path.join(dir, hintFileName(id)));
    await fs.syncDir(dir);
  } else {
    report.problems.at(-1)!.action = `left in place: the bytes could not be saved (${failed})`;
  }
}

/**
 * readHintRun checks data file `id`'s hint file (its bytes, read whole): a cursor over its
 * entries, a sorted run for mergeCursors, its tombstones applied at once. Undefined, having
 * applied nothing, when the hint file is unusable (the data file is then scanned instead).
 */
function readHintRun(
  hint: Buffer,
  id: number,
  size: number,
  report: RecoveryReport,
  apply: Apply,
): { cursor: KeyCursor; minSeq: number } | undefined {
  let tombstoneMin = Number.POSITIVE_INFINITY;
  // Tombstones are visited only once the whole file has been validated, so they apply at once;
  // `apply` copies what it keeps.
  const visitTombstone = (key: Uint8Array, seq: number): void => {
    if (seq < tombstoneMin) tombstoneMin = seq;
    apply(key, Kind.DELETE, id, 0, 0, seq, undefined, 0, 0);
  };
  // Version 2: validated whole, then decoded a second time in step with the merge (cheaper than
  // storing a million entries in a run's columns first).
  const opened = openHintCursor(hint, id, size, visitTombstone);
  let reason: string | undefined;
  if (typeof opened === 'string') reason = opened;
  else if (opened !== undefined) {
    report.hintFilesUsed++;
    return { cursor: opened, minSeq: opened.minSeq };
  } else {
    // Version 1 (an older build's file): into a run, sized from the trailer's entry count
    // (checked by the decode), in one pass: if the file proves bad part way, the run is dropped.
    const run = new HintRun(id, hint, hintEntryCount(hint));
    reason = decodeHintAt(
      hint,
      id,
      size,
      (keys, keyAt, keyLen, seq, valueOffset, valueLen, expiresAt, create, version) => {
        run.bytes = keys;
        run.push(keyAt, keyLen, seq, valueOffset, valueLen, expiresAt, create, version);
      },
      visitTombstone,
      true,
    );
    if (reason === undefined) {
      report.hintFilesUsed++;
      return { cursor: new RunCursor(run), minSeq: Math.min(tombstoneMin, run.minSeq()) };
    }
  }
  report.problems.push({
    kind: 'hint-rejected',
    file: hintFileName(id),
    detail: reason,
    action: 'data file scanned instead',
  });
  return undefined;
}

/** DescribingHint: a hint file and the data file size it was written for (describingHint). */
interface DescribingHint {
  readonly hint: Buffer;
  readonly size: number;
}

/**
 * describingHint: a hint file the open cannot use because its data file is no longer the size it
 * records (the file lost its tail: damage, a bad copy, a truncation), but which is intact at that
 * size. It still lists every record the file held, newest per key, and every delete, so the
 * records the scan no longer finds can be named and their keys marked damaged (markLostRecords)
 * instead of quietly reading as their previous versions, or as back after a delete.
 */
function describingHint(hint: Buffer, id: number, size: number): DescribingHint | undefined {
  const recorded = hintRecordedSize(hint);
  if (recorded === undefined || recorded === size) return undefined;
  const reason = decodeHintAt(
    hint,
    id,
    recorded,
    () => {},
    () => {},
  );
  return reason === undefined ? { hint, size: recorded } : undefined;
}

/** seenKey names one record (its key and seq) for markLostRecords. */
function seenKey(key: Uint8Array, seq: number): string {
  return `${seq} ${keyString(key)}`;
}

/**
 * markLostRecords marks damaged the key of every record the hint file lists that the scan of its
 * data file did not find (`seen`), at the record's own seq, as markDamaged does for a record that
 * is there but fails verification: the key's reads fail with CorruptionError until it is deleted
 * or written again, and a newer record elsewhere still wins. A lost put points where its record
 * was (past the end of the file now, or at damage); a lost delete, whose place the hint does not
 * record, points past the end of the file. Neither can be read. Reported as `lost-records`; the
 * hint file stays (the file is damaged, so it gets no new one), and every open marks them again.
 */
function markLostRecords(
  described: DescribingHint,
  id: number,
  size: number,
  seen: ReadonlySet<string>,
  report: RecoveryReport,
  apply: Apply,
): void {
  const lost: string[] = [];
  const mark = (
    key: Uint8Array,
    seq: number,
    valueOffset: number,
    valueLen: number,
    expiresAt: number | undefined,
    create: number,
    version: number,
  ): void => {
    if (seen.has(seenKey(key, seq))) return;
    const copy = Buffer.from(key);
    apply(copy, Kind.PUT, id, valueOffset, valueLen, seq, expiresAt, create, version);
    lost.push(copy.toString('hex').slice(0, 64));
  };
  decodeHintAt(
    described.hint,
    id,
    described.size,
    (keys, keyAt, keyLen, seq, valueOffset, valueLen, expiresAt, create, version) =>
      mark(keys.subarray(keyAt, keyAt + keyLen), seq, valueOffset, valueLen, expiresAt, create, version),
    (key, seq) => mark(key, seq, size + RECORD_HEADER_BYTES + key.length, 0, undefined, 0, 0),
  );
  if (lost.length === 0) return;
  report.problems.push({
    kind: 'lost-records',
    file: dataFileName(id),
    from: Math.min(size, described.size),
    to: described.size,
    detail: `the file is ${size} bytes and its hint file ${hintFileName(id)} lists ${described.size}: ${damagedKeys(lost)} it held ${lost.length === 1 ? 'is' : 'are'} no longer in it; ${lost.length === 1 ? 'the key reads' : 'the keys read'} as damaged (CorruptionError) until deleted or written again`,
    action: 'keys marked damaged; the hint file is kept (it names them)',
  });
}

/**
 * scanTombstones lists the DELETE records of a sealed data file by reading it whole (changing
 * nothing): what a partial compaction needs of an input that has neither a hint file nor the
 * store's note of its deletes (a file with damage). Keys are copies.
 */
export async function scanTombstones(
  fs: FileSystem,
  dir: string,
  file: File,
  id: number,
  size: number,
): Promise<Tombstone[]> {
  const found: Tombstone[] = [];
  const report: RecoveryReport = {
    dataFiles: 0,
    hintFilesUsed: 0,
    records: 0,
    keys: 0,
    maxSeq: 0,
    problems: [],
  };
  await scanFile(
    fs,
    dir,
    file,
    id,
    size,
    false,
    Number.POSITIVE_INFINITY,
    report,
    (key, kind, _f, _o, _l, seq) => {
      if (kind === Kind.DELETE) found.push({ key: Buffer.from(key), seq });
    },
  );
  return found;
}

/** FIRST_RECORD_READ_BYTES: bytes read to find a data file's first record (more only if it is longer). */
const FIRST_RECORD_READ_BYTES = 4096;

/**
 * firstRecordSeq is the seq of data file `file`'s first record, verified by its CRC: Infinity
 * when the file holds no record, 0 (unknown: anything may follow) when it does not decode.
 */
export async function firstRecordSeq(file: File, size: number): Promise<number> {
  if (size <= DATA_HEADER_BYTES) return Number.POSITIVE_INFINITY;
  let buf = Buffer.allocUnsafe(Math.min(FIRST_RECORD_READ_BYTES, size - DATA_HEADER_BYTES));
  let got = await file.read(buf, 0, buf.length, DATA_HEADER_BYTES);
  let rec = decodeRecord(buf, 0, got);
  if (rec === NEED_MORE && got >= RECORD_HEADER_BYTES) {
    const need = recordBytesAt(buf, 0);
    if (need <= size - DATA_HEADER_BYTES) {
      buf = Buffer.allocUnsafe(need);
      got = await file.read(buf, 0, need, DATA_HEADER_BYTES);
      rec = decodeRecord(buf, 0, got);
    }
  }
  return rec === NEED_MORE || rec === INVALID ? 0 : rec.seq;
}

/**
 * readWhole reads a file with one read of its size (a hint file is tens of MiB at 1M keys:
 * readFile's chunked reads were a visible share of the open, through the thread pool).
 */
async function readWhole(fs: FileSystem, file: string): Promise<Buffer> {
  const handle = await fs.open(file, 'read');
  try {
    const size = await handle.size();
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = await handle.read(buf, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    await handle.close();
  }
}

/** tornWriteStart is where a torn write may begin in data file `id` (scanFile's tornFrom). */
function tornWriteStart(options: RecoverOptions, id: number, active: boolean): number {
  // In the active file a torn write can only follow what was durable at the last clean close.
  if (!active) return Number.POSITIVE_INFINITY;
  return options.syncedEnd?.file === id ? options.syncedEnd.bytes : DATA_HEADER_BYTES;
}

/** countLiveBytes does the live-byte accounting of every file, once every key has its final location. */
function countLiveBytes(keyDir: KeyDir, expiries: ExpiryIndex, files: DataFileSet): void {
  // Summed per file first, the last file's sums at hand (a million keys, a few files): going
  // through DataFileSet.addLive per key (a lookup and a check) was a tenth of an open.
  const sums = new Map<number, { bytes: number; keys: number }>();
  let lastId = -1;
  let last = { bytes: 0, keys: 0 };
  keyDir.forEachSize((keyLen, fileId, valueLen, version) => {
    if (fileId !== lastId) {
      let sum = sums.get(fileId);
      if (sum === undefined) {
        sum = { bytes: 0, keys: 0 };
        sums.set(fileId, sum);
      }
      last = sum;
      lastId = fileId;
    }
    last.bytes += recordBytes(keyLen, valueLen, false, version !== 0);
    last.keys++;
  });
  for (const [id, sum] of sums) {
    const data = files.get(id);
    data.liveBytes += sum.bytes;
    data.liveKeys += sum.keys;
  }
  // Records with an expiry are EXPIRY_BYTES longer; their keys are few enough to look up again.
  for (const name of expiries.names()) {
    const loc = keyDir.get(Buffer.from(name, 'latin1'));
    if (loc !== undefined) files.addLiveBytes(loc.fileId, EXPIRY_BYTES);
  }
}

/**
 * appendTarget is the data file to keep appending to: the last one read, unless it ends in
 * damage kept in place, is a compaction output (it has a hint file) or is full. Undefined: start
 * a new one.
 */
function appendTarget(
  lastId: number | undefined,
  uncut: boolean,
  hintIds: ReadonlySet<number>,
  files: DataFileSet,
  dataFileBytes: number,
): number | undefined {
  if (lastId !== undefined && !uncut && !hintIds.has(lastId) && files.get(lastId).size < dataFileBytes) {
    return lastId;
  }
  return undefined;
}

type Apply = (
  key: Uint8Array,
  kind: Kind,
  fileId: number,
  valueOffset: number,
  valueLen: number,
  seq: number,
  expiresAt: number | undefined,
  create: number,
  version: number,
) => void;

/**
 * scanFile reads one data file record by record, applying valid records and reporting (and,
 * when repairing, fixing) damage. It returns the file's size afterwards.
 */
async function scanFile(
  fs: FileSystem,
  dir: string,
  file: File,
  id: number,
  size: number,
  repair: boolean,
  /**
   * tornFrom: where a torn write may begin: in the active file, past what the last clean close
   * made durable; Infinity in every other file (docs/hardening.md, rule 6).
   */
  tornFrom: number,
  report: RecoveryReport,
  apply: Apply,
): Promise<{ size: number; uncut: boolean }> {
  checkDataHeader(file, id, report);
  const scan = new FileScan(fs, dir, file, id, size, repair, tornFrom, report, apply);
  await scan.readRecords();
  scan.settleLastBatch();
  await scan.saveMiddleDamage();
  return scan.settleTail();
}

/**
 * checkDataHeader reports a damaged file header (the records after it are still read) and
 * refuses a file of a newer format or one carrying another file's header.
 */
function checkDataHeader(file: File, id: number, report: RecoveryReport): void {
  const name = dataFileName(id);
  const headerBytes = Buffer.alloc(DATA_HEADER_BYTES);
  file.readSync(headerBytes, 0, DATA_HEADER_BYTES, 0);
  const header = decodeDataHeader(headerBytes);
  if (typeof header === 'string') {
    report.problems.push({
      kind: 'bad-header',
      file: name,
      from: 0,
      to: DATA_HEADER_BYTES,
      detail: header,
      action: 'records after the header are still read',
    });
  } else if (header.format > FORMAT_VERSION) {
    throw new IncompatibleError(`${name} was written by a newer format (${header.format})`);
  } else if (header.fileId !== id) {
    throw new CorruptionError(`${name} carries the header of data file ${header.fileId}`);
  }
}

/**
 * DAMAGED_RANGE_BYTES_MAX: the longest damaged range markDamaged reads back to look for damaged
 * records in it: one maximal record (a maximal key and value with every optional field). Longer
 * ranges are reported as they were.
 */
const DAMAGED_RANGE_BYTES_MAX = recordBytes(KEY_BYTES_MAX, VALUE_BYTES_MAX + VALUE_TYPE_BYTES, true, true);
/** DAMAGED_KEYS_NAMED: keys a report names of one damaged range; it counts the rest. */
const DAMAGED_KEYS_NAMED = 8;

/** damagedKeys names the keys of damaged records in a report ("the record of key 6b31", ...). */
function damagedKeys(keys: readonly string[]): string {
  if (keys.length === 1) return `the record of key ${keys[0]}`;
  const named = keys.slice(0, DAMAGED_KEYS_NAMED).join(', ');
  const more = keys.length > DAMAGED_KEYS_NAMED ? ` and ${keys.length - DAMAGED_KEYS_NAMED} more` : '';
  return `${keys.length} records (keys ${named}${more})`;
}

/**
 * FileScan is scanFile's walk through one data file: the chunk of the file in memory, the
 * position, the batch whose members are being collected, and the damage found so far.
 */
class FileScan {
  private readonly name: string;
  private buf: Buffer;
  private bufStart = 0;
  private bufLen = 0;
  private readonly rec: Decoded = {} as Decoded;
  private pos = DATA_HEADER_BYTES;
  private damageStart = -1;
  private batch: PendingBatch | undefined;
  // validEnd: just past the last record that will be kept; appends continue here.
  private validEnd = DATA_HEADER_BYTES;
  private readonly middleDamage: { from: number; to: number }[] = [];

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly file: File,
    private readonly id: number,
    private readonly size: number,
    private readonly repair: boolean,
    private readonly tornFrom: number,
    private readonly report: RecoveryReport,
    private readonly apply: Apply,
  ) {
    this.name = dataFileName(id);
    this.buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, Math.max(size, RECORD_HEADER_BYTES)));
  }

  /** readRecords applies every valid record, collects batches and notes damaged ranges. */
  async readRecords(): Promise<void> {
    while (this.pos < this.size) {
      // A record that lies wholly in the buffer is decoded without an await: a promise and a
      // microtask per record were most of the scan of an unhinted file (the crash open).
      let result: ReturnType<FileScan['decodeBuffered']> | undefined = this.decodeBuffered();
      if (result === UNBUFFERED) result = await this.decodeNext();
      if (result === undefined) {
        if (this.damageStart < 0) this.damageStart = this.pos;
        break;
      }
      if (result === NEED_MORE || result === INVALID) {
        if (this.damageStart < 0) this.damageStart = this.pos;
        this.pos = this.nextCandidate(this.pos);
        continue;
      }
      this.takeRecord();
    }
  }

  /**
   * nextCandidate: the next position where a record may start after none does at `pos`. Byte by
   * byte (the resync), except over zeros: every record's kind byte is non-zero, so a position
   * whose kind byte would fall in a run of zero bytes cannot start one, and the whole run is
   * passed at once. The active file ends in up to PREALLOCATE_BYTES of zeros (2 MiB) after a
   * crash, which the resync took a decode per byte to cross: most of the crash open's scan.
   */
  private nextCandidate(pos: number): number {
    const buf = this.buf;
    const end = this.bufLen;
    let q = pos - this.bufStart + KIND_OFFSET;
    if (pos < this.bufStart || q >= end || buf[q] !== 0) return pos + 1;
    while (q < end && buf[q] === 0) q++;
    return Math.max(pos + 1, this.bufStart + q - KIND_OFFSET);
  }

  /**
   * decodeBuffered is decodeNext for a record whose outcome the buffer already decides (it fits,
   * or it is invalid, or it runs past the end of the file); UNBUFFERED when more must be read.
   */
  private decodeBuffered(): Decoded | typeof NEED_MORE | typeof INVALID | typeof UNBUFFERED {
    const pos = this.pos;
    const bufEnd = this.bufStart + this.bufLen;
    if (pos < this.bufStart || pos + RECORD_HEADER_BYTES > bufEnd) return UNBUFFERED;
    const result = decodeRecord(this.buf, pos - this.bufStart, this.bufLen, this.rec);
    // Past the buffer but not past the file: decodeNext reads on.
    return result === NEED_MORE && bufEnd < this.size ? UNBUFFERED : result;
  }

  /**
   * decodeNext decodes the record at `pos` into `rec`, reading more of the file as needed;
   * undefined when no record header fits before the end of the file.
   */
  private async decodeNext(): Promise<Decoded | typeof NEED_MORE | typeof INVALID | undefined> {
    const pos = this.pos;
    if (pos < this.bufStart || pos + RECORD_HEADER_BYTES > this.bufStart + this.bufLen) {
      if (pos + RECORD_HEADER_BYTES > this.size) return undefined;
      await this.fill(pos, RECORD_HEADER_BYTES);
    }
    let result = decodeRecord(this.buf, pos - this.bufStart, this.bufLen, this.rec);
    if (result === NEED_MORE && this.bufStart + this.bufLen < this.size) {
      const need = recordBytesAt(this.buf, pos - this.bufStart);
      if (pos + need <= this.size) {
        await this.fill(pos, need);
        result = decodeRecord(this.buf, 0, this.bufLen, this.rec);
      }
    }
    return result;
  }

  /** fill reads the file from `from` into the buffer: a chunk, or `atLeast` bytes if more. */
  private async fill(from: number, atLeast: number): Promise<void> {
    const want = Math.min(Math.max(atLeast, SCAN_CHUNK_BYTES), this.size - from);
    if (want > this.buf.length) this.buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const n = await this.file.read(this.buf, got, want - got, from + got);
      if (n === 0) break;
      got += n;
    }
    this.bufStart = from;
    this.bufLen = got;
  }

  /** takeRecord applies the record just decoded at `pos`, or collects it into its batch. */
  private takeRecord(): void {
    const rec = this.rec;
    const recStart = this.pos;
    const base = this.bufStart;
    this.endDamage(recStart);
    this.pos = rec.end + base;
    if (rec.kind === Kind.BATCH) {
      this.beginBatch(recStart);
      return;
    }
    const key = this.buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen);
    const valueOffset = base + rec.valueStart;
    if (rec.member) {
      this.takeMember(key, valueOffset, recStart);
      return;
    }
    this.flushBatch('a record outside the batch follows');
    this.applyRecord(key, rec, valueOffset);
  }

  /** applyRecord applies a record outside any batch (or an orphan member) to the index. */
  private applyRecord(key: Uint8Array, rec: Decoded, valueOffset: number): void {
    this.apply(
      key,
      rec.kind,
      this.id,
      valueOffset,
      rec.valueLen,
      rec.seq,
      rec.expiresAt,
      rec.create,
      rec.version,
    );
    this.validEnd = this.pos;
  }

  /** endDamage closes the damaged range (if any) that a valid record at `recStart` ends. */
  private endDamage(recStart: number): void {
    if (this.damageStart < 0) return;
    this.middleDamage.push({ from: this.damageStart, to: recStart });
    if (this.batch !== undefined) this.batch.damaged = true;
    this.damageStart = -1;
  }

  /** beginBatch starts collecting the members of the BATCH record just decoded. */
  private beginBatch(recStart: number): void {
    const rec = this.rec;
    this.flushBatch('next batch began before all members');
    const batch: PendingBatch = {
      start: recStart,
      seq: rec.seq,
      count: batchCount(this.buf, rec),
      members: [],
      damaged: false,
    };
    this.report.records++;
    // Not maxSeq yet: a batch counts only once its members are applied (flushBatch). One torn at
    // the end of the active file is dropped, and its seq must not become the store's lastTs: a
    // cluster member replays the log from lastTs on, and would skip that entry for good.
    this.batch = batch.count === 0 ? undefined : batch;
  }

  /** takeMember collects a batch member into its batch, or applies one whose batch record is lost. */
  private takeMember(key: Uint8Array, valueOffset: number, recStart: number): void {
    const rec = this.rec;
    const batch = this.batch;
    if (batch !== undefined && batch.seq === rec.seq) {
      batch.members.push({
        // A copy: `key` is a view into `buf`, which the next fill overwrites.
        key: Buffer.from(key),
        kind: rec.kind,
        valueOffset,
        valueLen: rec.valueLen,
        expiresAt: rec.expiresAt,
        create: rec.create,
        version: rec.version,
      });
      if (batch.members.length === batch.count) {
        this.flushBatch(undefined);
        this.validEnd = this.pos;
      }
      return;
    }
    // The member's batch record was lost to damage: the batch was written whole, keep it.
    this.flushBatch('member of another batch follows');
    this.report.problems.push({
      kind: 'damaged-batch',
      file: this.name,
      from: recStart,
      detail: `member of batch seq ${rec.seq} without its batch record`,
      action: 'member applied',
    });
    this.applyRecord(key, rec, valueOffset);
  }

  /** flushBatch applies the members collected of the pending batch, reporting any lost. */
  private flushBatch(reason: string | undefined): void {
    const batch = this.batch;
    if (batch === undefined) return;
    for (const m of batch.members)
      this.apply(
        m.key,
        m.kind,
        this.id,
        m.valueOffset,
        m.valueLen,
        batch.seq,
        m.expiresAt,
        m.create,
        m.version,
      );
    if (reason !== undefined || batch.damaged) {
      this.report.problems.push({
        kind: 'damaged-batch',
        file: this.name,
        from: batch.start,
        detail: `batch seq ${batch.seq}: ${batch.members.length} of ${batch.count} members intact${reason === undefined ? '' : ` (${reason})`}`,
        action: 'intact members applied',
      });
    }
    this.batch = undefined;
  }

  /** settleLastBatch drops or applies a batch that the end of the file cut off. */
  settleLastBatch(): void {
    const batch = this.batch;
    // A batch cut off at the end of the active file is one that was being written when the
    // writer stopped: never acknowledged, so it is dropped whole (atomicity). At the end of any
    // other file the batch was complete once, so its damage is corruption: the intact members
    // are applied, as for damage in the middle of a file.
    if (batch === undefined) return;
    if (batch.start >= this.tornFrom) {
      this.report.problems.push({
        kind: 'torn-batch',
        file: this.name,
        from: batch.start,
        detail: `batch seq ${batch.seq} ends the active file with ${batch.members.length} of ${batch.count} members`,
        action: this.repair
          ? 'dropped (a write cut off by the crash)'
          : 'would drop (a write cut off by the crash)',
      });
      this.batch = undefined;
    } else {
      this.flushBatch('the file ends before all members');
    }
  }

  /**
   * markDamaged: when the damaged bytes [from, to) are one or more whole records, one after
   * another, whose framing (kind, flags, lengths, seq, revision) is sound and only whose
   * checksums fail, each such record's key is marked damaged: applied like a valid put at the
   * record's own seq, pointing at the damaged record. Its reads then fail with CorruptionError,
   * as they do for damage behind a hint file, instead of quietly serving the version before it
   * or reviving a key the damaged record deleted (a damaged tombstone marks its key the same
   * way); a newer record of the key still wins. DEL clears the mark, compaction carries the
   * record as it is (compactor.ts). Returns the keys marked, in hex; none when the range is not
   * such a chain of records (then the keys, whose names the damage hides, fall back to their
   * previous records as before). A flipped bit in a key's bytes marks a key of the wrong name;
   * the damage is reported either way.
   */
  private async markDamaged(from: number, to: number): Promise<string[]> {
    const length = to - from;
    if (length < RECORD_HEADER_BYTES || length > DAMAGED_RANGE_BYTES_MAX) return [];
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = await this.file.read(buf, got, length - got, from + got);
      if (n === 0) return [];
      got += n;
    }
    const found: Decoded[] = [];
    for (let at = 0; at < length; ) {
      const rec = decodeRecord(buf, at, length, undefined, false);
      if (rec === NEED_MORE || rec === INVALID || rec.kind === Kind.BATCH) return [];
      found.push(rec);
      at = rec.end;
    }
    return found.map((rec) => {
      const key = Buffer.from(buf.subarray(rec.keyStart, rec.keyStart + rec.keyLen));
      this.apply(
        key,
        Kind.PUT,
        this.id,
        from + rec.valueStart,
        rec.valueLen,
        rec.seq,
        rec.expiresAt,
        rec.create,
        rec.version,
      );
      return key.toString('hex').slice(0, 64);
    });
  }

  /** saveMiddleDamage reports damaged ranges followed by kept records, and saves their bytes. */
  async saveMiddleDamage(): Promise<void> {
    // Damage ranges that start before validEnd were followed by kept records: those are middle
    // damage; anything at or after validEnd is the file's tail, handled below.
    for (const d of this.middleDamage) {
      if (d.from >= this.validEnd) continue;
      const marked = await this.markDamaged(d.from, d.to);
      const problem: Problem = {
        kind: 'corrupt-range',
        file: this.name,
        from: d.from,
        to: d.to,
        detail:
          marked.length === 0
            ? `${d.to - d.from} bytes are not valid records`
            : `${damagedKeys(marked)} failed verification; ${marked.length === 1 ? 'the key reads' : 'the keys read'} as damaged (CorruptionError) until deleted or written again`,
        action: this.repair
          ? `${marked.length === 0 ? 'skipped' : 'kept in place'}; bytes saved to corrupt/`
          : `would ${marked.length === 0 ? 'skip' : 'keep'} and save the bytes`,
      };
      this.report.problems.push(problem);
      if (this.repair) {
        const failed = await preserve(this.fs, this.dir, this.file, this.name, d.from, d.to);
        if (failed !== undefined)
          problem.action = `skipped; the bytes could not be saved (${failed}), left in place`;
      }
    }
  }

  /**
   * settleTail deals with what follows the last kept record: damage that is kept in place,
   * unused preallocated space, or a torn write. It returns the file's size afterwards and
   * whether it ends in damage kept in place.
   */
  async settleTail(): Promise<{ size: number; uncut: boolean }> {
    if (this.validEnd === this.size) return { size: this.size, uncut: false };
    if (this.validEnd < this.tornFrom) return this.keepDamagedTail();
    if (await allZeros(this.file, this.validEnd, this.size)) return this.dropUnusedSpace();
    return this.cutTornTail();
  }

  private async keepDamagedTail(): Promise<{ size: number; uncut: boolean }> {
    const { name, validEnd, size, tornFrom } = this;
    // A sealed file, or the part of the active file that was durable at the last clean close:
    // whatever is there, a torn write it is not. Kept where it is (the file is not appended to
    // again) and reported until compaction replaces the file. A last record that was durable
    // marks its key damaged (markDamaged); one running past the durable part may be a torn
    // write, never acknowledged, and marks nothing.
    const marked = size <= tornFrom ? await this.markDamaged(validEnd, size) : [];
    const where = Number.isFinite(tornFrom) ? 'the durable part of the active file' : 'a sealed file';
    const problem: Problem = {
      kind: 'corrupt-range',
      file: name,
      from: validEnd,
      to: size,
      detail:
        marked.length === 0
          ? `${size - validEnd} bytes at the end of ${where} are not valid records`
          : `at the end of ${where}, ${damagedKeys(marked)} failed verification; ${marked.length === 1 ? 'the key reads' : 'the keys read'} as damaged (CorruptionError) until deleted or written again`,
      action: this.repair ? 'kept in place; bytes saved to corrupt/' : 'would keep them and save a copy',
    };
    this.report.problems.push(problem);
    if (this.repair) {
      const failed = await preserve(this.fs, this.dir, this.file, name, validEnd, size);
      if (failed !== undefined) problem.action = `kept in place; the bytes could not be saved (${failed})`;
    }
    return { size, uncut: Number.isFinite(tornFrom) };
  }

  private async dropUnusedSpace(): Promise<{ size: number; uncut: boolean }> {
    // Space the writer allocated ahead of its appends (PREALLOCATE_BYTES in cask-engine.ts)
    // and never used: nothing was written there, so there is nothing to report or keep.
    if (this.repair) {
      await this.file.truncate(this.validEnd);
      await this.file.datasync();
      return { size: this.validEnd, uncut: false };
    }
    return { size: this.size, uncut: false };
  }

  private async cutTornTail(): Promise<{ size: number; uncut: boolean }> {
    const { name, validEnd, size } = this;
    // The active file's tail: a torn write, cut so that appends continue after the last record.
    // (Bit rot in its last records would look the same; the bytes are saved either way.)
    const problem: Problem = {
      kind: 'torn-tail',
      file: name,
      from: validEnd,
      to: size,
      detail: `${size - validEnd} bytes after the last complete record of the active file`,
      action: this.repair ? 'bytes saved to corrupt/, file truncated' : 'would save the bytes and truncate',
    };
    this.report.problems.push(problem);
    if (!this.repair) return { size, uncut: false };
    const failed = await preserve(this.fs, this.dir, this.file, name, validEnd, size);
    if (failed !== undefined) {
      // Never cut what could not be saved, and never leave a torn write where it would later
      // pass for damage: this open stops, having changed nothing, until there is room.
      throw new IoError(
        `recovery could not save the torn tail of ${name} (bytes ${validEnd}..${size}) to ${CORRUPT_DIR}/ (${failed}); ` +
          'nothing was changed: free some space and open again (a read-only open, { readOnly: true }, reads the store meanwhile)',
        undefined,
      );
    }
    await this.file.truncate(validEnd);
    await this.file.datasync();
    return { size: validEnd, uncut: false };
  }
}

/** allZeros tells whether bytes [from, to) of a file are all zero. */
async function allZeros(file: File, from: number, to: number): Promise<boolean> {
  const chunk = Buffer.allocUnsafe(Math.min(SCAN_CHUNK_BYTES, to - from));
  for (let pos = from; pos < to; pos += chunk.length) {
    const n = await file.read(chunk, 0, Math.min(chunk.length, to - pos), pos);
    for (let i = 0; i < n; i++) if (chunk[i] !== 0) return false;
    if (n === 0) return true;
  }
  return true;
}

/**
 * preserve copies bytes [from, to) of a damaged file to corrupt/<name>.<from>-<to> (through a
 * `.tmp` name, fsynced, renamed), PRESERVE_CHUNK_BYTES at a time. It returns undefined once the
 * copy is durable, or why it could not be made (a full disk): the caller then leaves the bytes
 * where they are. An earlier interrupted copy's `.tmp` is replaced, so opens stay idempotent.
 */
async function preserve(
  fs: FileSystem,
  dir: string,
  file: File,
  name: string,
  from: number,
  to: number,
): Promise<string | undefined> {
  const corruptDir = path.join(dir, CORRUPT_DIR);
  const target = path.join(corruptDir, `${name}.${from}-${to}`);
  const tmp = `${target}${TEMP_SUFFIX}`;
  try {
    await fs.mkdir(corruptDir);
    if (await fs.exists(target)) return undefined;
    await fs.unlink(tmp);
    const out = await fs.open(tmp, 'create');
    try {
      const chunk = Buffer.allocUnsafe(Math.min(PRESERVE_CHUNK_BYTES, Math.max(to - from, 1)));
      for (let at = from; at < to; ) {
        const n = await file.read(chunk, 0, Math.min(chunk.length, to - at), at);
        if (n === 0) break;
        await out.write(chunk.subarray(0, n), at - from);
        at += n;
      }
      await out.datasync();
    } finally {
      await out.close();
    }
    await fs.rename(tmp, target);
    await fs.syncDir(corruptDir);
    return undefined;
  } catch (err) {
    await fs.unlink(tmp).catch(() => {});
    return err instanceof Error ? err.message : String(err);
  }
}

export type { DataFile };
