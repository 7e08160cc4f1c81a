// Compaction (Bitcask's "merge"): copy the live records of every sealed data file into fresh
// files with hint files, then retire the old files. docs/format.md, "Compaction", states the
// protocol and why each crash point is safe; in short:
//
// 1. Seal the active file, so every record older than now lives in a sealed file: the inputs.
// 2. Walk the key directory in key order, a bounded chunk per turn of the event loop. For each
//    key that lives in an input, append its record (same seq) to an output file; once written,
//    move the key to the copy only if it still points at the original (`relocate`), so a write
//    that raced the copy always wins. Tombstones are not copied: every older put they shadow is
//    in an input too, and all inputs go away together. A record with an expiry is copied with it,
//    expired or not: dropping an expired PUT here could let an older version of the key in a
//    file outside this compaction come back at recovery. Expired keys are removed by the active
//    expiry cycle's tombstones instead, and those shadow every older version.
// 3. Finish the outputs: hint file, fdatasync both, fsync the directory.
// 4. Commit: write the input ids into the metadata's `retired` list (both copies, atomically).
//    Before this point a crash leaves the inputs intact and the outputs as harmless duplicates
//    (same records, same seqs); after it, recovery deletes any input still on disk.
// 5. Close and delete the inputs. Reads are synchronous and the key directory no longer points
//    at any input, so nothing can be reading them.

//
// Buffers: the keys it copies come from KeyDir.walk, which hands out copies, so keeping them in
// `copies` across the chunk's write is safe; HintWriter.add copies each key into its entry.

import { assert } from '../../stdx/assert.js';
import { FORMAT_VERSION } from '../meta.js';
import type { CaskEngine } from './cask-engine.js';
import { createDataFile } from './cask-engine.js';
import type { DataFile } from './data-file-set.js';
import { dataPath, hintPath } from './file-names.js';
import { HintWriter } from './hint.js';
import {
  DATA_HEADER_BYTES,
  encodeRecord,
  extraBytes,
  Kind,
  RECORD_HEADER_BYTES,
  recordBytes,
} from './record.js';

/** CHUNK_BYTES: bytes copied per step; between steps reads and writes run. */
const CHUNK_BYTES = 1024 * 1024;
/** CHUNK_VISITS: key directory entries examined per step, copied or not. */
const CHUNK_VISITS = 8192;

export interface CompactionResult {
  readonly inputs: number;
  readonly outputs: number;
  readonly bytesBefore: number;
  readonly bytesAfter: number;
  readonly keysCopied: number;
}

interface Output {
  readonly data: DataFile;
  readonly hint: HintWriter;
}

interface Copy {
  readonly key: Uint8Array;
  readonly fromFile: number;
  readonly fromOffset: number;
  readonly valueAt: number;
  readonly valueLen: number;
  readonly expires: boolean;
  readonly revision: boolean;
}

/** compact runs one compaction; it returns undefined when there was nothing to compact or it stopped for close. */
export async function compact(engine: CaskEngine): Promise<CompactionResult | undefined> {
  await engine.rotate();
  const activeId = engine.active.id;
  const inputs = engine.files.ids().filter((id) => id < activeId);
  if (inputs.length === 0) return undefined;
  const inputSet = new Set(inputs);
  const bytesBefore = inputs.reduce((n, id) => n + engine.files.get(id).size, 0);
  const seqFloor = engine.seqFloor();
  const outputs: Output[] = [];
  let out: Output | undefined;
  let keysCopied = 0;

  const finish = async (o: Output) => {
    await o.data.file.datasync();
    const hintBytes = o.hint.finish(o.data.size);
    const hintFile = await engine.fs.open(`${hintPath(engine.dir, o.data.id)}.tmp`, 'create');
    try {
      await hintFile.write(hintBytes, 0);
      await hintFile.datasync();
    } finally {
      await hintFile.close();
    }
    await engine.fs.rename(`${hintPath(engine.dir, o.data.id)}.tmp`, hintPath(engine.dir, o.data.id));
  };

  let cursor: Uint8Array | undefined;
  let exclusive = false;
  for (;;) {
    if (engine.closing) return undefined;
    const copies: Copy[] = [];
    const buffers: Buffer[] = [];
    let bytes = 0;
    let visits = 0;
    let done = true;
    let last: Uint8Array | undefined;
    if (out === undefined) {
      const data = await createDataFile(engine.fs, engine.dir, engine.files.allocate());
      out = { data, hint: new HintWriter(FORMAT_VERSION, data.id) };
      engine.files.add(out.data);
      outputs.push(out);
    }
    const target = out;
    let writeAt = target.data.size;
    let full = false;
    engine.keyDir.walk(cursor, exclusive, false, (key, loc) => {
      visits++;
      if (inputSet.has(loc.fileId)) {
        const expiresAt = engine.expiryOf(key);
        const expires = expiresAt !== undefined;
        // The revision travels with the record (a record without one, from before format 3,
        // stays without one: version 0).
        const revision = loc.version !== 0;
        const size = recordBytes(key.length, loc.valueLen, expires, revision);
        if (writeAt + size > engine.dataFileBytes && writeAt > DATA_HEADER_BYTES) {
          full = true;
          done = false;
          return false;
        }
        const value = engine.readValue(key, loc, expires);
        const buf = Buffer.allocUnsafe(size);
        encodeRecord(buf, 0, loc.seq, Kind.PUT, key, value, expiresAt, loc.create, loc.version);
        const valueAt = writeAt + RECORD_HEADER_BYTES + extraBytes(expires, revision) + key.length;
        target.hint.add(key, loc.seq, valueAt, loc.valueLen, expiresAt, loc.create, loc.version);
        copies.push({
          key,
          fromFile: loc.fileId,
          fromOffset: loc.valueOffset,
          valueAt,
          valueLen: loc.valueLen,
          expires,
          revision,
        });
        buffers.push(buf);
        writeAt += size;
        bytes += size;
      }
      last = key;
      if (bytes >= CHUNK_BYTES || visits >= CHUNK_VISITS) {
        done = false;
        return false;
      }
      return true;
    });
    if (buffers.length > 0) {
      await target.data.file.write(Buffer.concat(buffers, bytes), target.data.size);
      target.data.size = writeAt;
      target.data.allocated = writeAt;
      for (const c of copies) {
        if (engine.keyDir.relocate(c.key, c.fromFile, c.fromOffset, target.data.id, c.valueAt)) {
          const size = recordBytes(c.key.length, c.valueLen, c.expires, c.revision);
          engine.files.removeLive(c.fromFile, size);
          engine.files.addLive(target.data.id, size);
          keysCopied++;
        }
      }
    }
    if (full) {
      await finish(target);
      out = undefined;
    }
    if (done) break;
    if (last !== undefined) {
      cursor = last;
      exclusive = true;
    }
    // Yield to the event loop between chunks so reads and writes are not stalled.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (out !== undefined) {
    if (out.data.size > DATA_HEADER_BYTES) await finish(out);
    else {
      // Nothing was left to copy into the last output: drop it rather than keep an empty file.
      engine.files.remove(out.data.id);
      outputs.pop();
      await out.data.file.close();
      await engine.fs.unlink(dataPath(engine.dir, out.data.id));
    }
  }
  await engine.fs.syncDir(engine.dir);

  // Commit point: the inputs are retired in the metadata.
  const previous = engine.metaFields();
  const stillThere: number[] = [];
  for (const id of previous.retired)
    if (await engine.fs.exists(dataPath(engine.dir, id))) stillThere.push(id);
  await engine.commitMeta({
    retired: [...new Set([...stillThere, ...inputs])].sort((a, b) => a - b),
    seqFloor: Math.max(previous.seqFloor, seqFloor),
  });

  for (const id of inputs) {
    const input = engine.files.remove(id);
    assert(input.liveKeys === 0, `compacted input ${id} still holds ${input.liveKeys} live keys`);
    await input.file.close();
    await engine.fs.unlink(dataPath(engine.dir, id));
    await engine.fs.unlink(hintPath(engine.dir, id));
  }
  await engine.fs.syncDir(engine.dir);
  return {
    inputs: inputs.length,
    outputs: outputs.length,
    bytesBefore,
    bytesAfter: outputs.reduce((n, o) => n + o.data.size, 0),
    keysCopied,
  };
}
