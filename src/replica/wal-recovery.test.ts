// Recovery: a torn tail of the last segment is repaired (its bytes kept in corrupt/ and
// reported); damage anywhere else is refused with a WalCorruptError and nothing on disk changes.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { segmentFiles } from '../../test/support/data-files.js';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { Entry } from '../raft/types.js';
import { DiskLog } from './disk-log.js';
import { WalCorruptError } from './errors.js';
import { viewOf } from './test-support.js';
import { encodeBatch, SEGMENT_HEADER_BYTES, segmentName } from './wal-format.js';

const entry = (index: number, term = 1): Entry => ({
  index,
  term,
  type: 'normal',
  data: new Uint8Array(12).fill(index & 0xff),
});

const SEGMENT_BYTES = 300;

/** build writes entries 1..n one save each (synced) into tiny segments; returns the dir and views. */
async function build(n: number): Promise<{ dir: string; views: ReturnType<typeof viewOf>[] }> {
  const dir = tmpDir('wal-rec');
  const log = await DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
  const views = [viewOf(log)];
  for (let i = 1; i <= n; i++) {
    await log.save({ term: 1, vote: 1, commit: i - 1 }, [entry(i)], undefined, true);
    views.push(viewOf(log));
  }
  await log.close();
  return { dir, views };
}

/** snapshotDir reads every file under dir (recursively), to show that nothing changed. */
function snapshotDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) {
      const p = path.join(e.parentPath, e.name);
      out.set(p, fs.readFileSync(p).toString('hex'));
    }
  }
  return out;
}

async function reopen(dir: string): Promise<DiskLog> {
  return DiskLog.open(nodeFileSystem, dir, { segmentBytes: SEGMENT_BYTES });
}

async function expectCorrupt(dir: string, file: string | RegExp): Promise<WalCorruptError> {
  const before = snapshotDir(dir);
  const err = await reopen(dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(WalCorruptError);
  const c = err as WalCorruptError;
  if (typeof file === 'string') expect(c.file).toBe(file);
  else expect(c.file).toMatch(file);
  expect(c.message).toContain(c.file);
  expect(snapshotDir(dir)).toEqual(before);
  return c;
}

describe('torn tail of the last segment', () => {
  it('a segment cut mid-frame: truncated at the last commit frame, bytes kept, reported', async () => {
    const { dir, views } = await build(5); // three saves fill a segment: the last one holds two
    const last = segmentFiles(dir).at(-1) as string;
    const size = fs.statSync(last).size;
    expect(size).toBeGreaterThan(SEGMENT_HEADER_BYTES);
    const full = fs.readFileSync(last);
    fs.truncateSync(last, size - 13);
    const log = await reopen(dir);
    const r = log.recovery;
    expect(r.tornBytes).toBeGreaterThan(0);
    expect(r.torn?.segment).toBe(last);
    expect(r.torn?.copy).toBe(path.join(dir, 'corrupt', `${path.basename(last)}.${r.torn?.offset}.torn`));
    expect(fs.readFileSync(r.torn?.copy as string)).toEqual(full.subarray(r.torn?.offset, size - 13));
    expect(fs.statSync(last).size).toBe(r.torn?.offset);
    expect(viewOf(log)).toEqual(views[4]); // the last save is gone, every earlier one is there
    await log.save(undefined, [entry(5, 2)], undefined, true);
    await log.close();
    const again = await reopen(dir);
    expect(again.recovery.tornBytes).toBe(0);
    expect(again.term(5)).toBe(2);
    await again.close();
  });

  it('garbage after the last commit frame is cut off and kept', async () => {
    const { dir, views } = await build(4);
    const last = segmentFiles(dir).at(-1) as string;
    const size = fs.statSync(last).size;
    const garbage = Buffer.from('not a frame, just bytes from somewhere else!');
    fs.appendFileSync(last, garbage);
    const log = await reopen(dir);
    expect(log.recovery.torn).toMatchObject({ segment: last, offset: size });
    expect(log.recovery.tornBytes).toBe(garbage.length);
    expect(fs.readFileSync(log.recovery.torn?.copy as string)).toEqual(garbage);
    expect(viewOf(log)).toEqual(views[4]);
    await log.close();
  });

  it('a batch without its commit frame is not replayed', async () => {
    const { dir, views } = await build(3);
    const last = segmentFiles(dir).at(-1) as string;
    const batch = encodeBatch([
      { type: 'entry', entry: entry(4) },
      { type: 'hardState', hardState: { term: 1, vote: 1, commit: 3 } },
    ]);
    const noCommit = batch.subarray(0, batch.length - 24);
    fs.appendFileSync(last, noCommit);
    const log = await reopen(dir);
    expect(log.recovery.torn?.reason).toMatch(/commit frame/);
    expect(log.recovery.tornBytes).toBe(noCommit.length);
    expect(viewOf(log)).toEqual(views[3]);
    await log.close();
  });

  it('zeros after the data are free space (preallocated): no torn tail, and appends go on over them', async () => {
    const { dir, views } = await build(3);
    const last = segmentFiles(dir).at(-1) as string;
    const dataBytes = fs.statSync(last).size; // a clean close trims the preallocated zeros
    fs.appendFileSync(last, new Uint8Array(64));
    let log = await reopen(dir);
    expect(log.recovery.torn).toBeUndefined();
    expect(log.recovery.tornBytes).toBe(0);
    expect(fs.existsSync(path.join(dir, 'corrupt'))).toBe(false);
    expect(viewOf(log)).toEqual(views[3]);
    await log.save({ term: 1, vote: 1, commit: 3 }, [entry(4)], undefined, true);
    const after = viewOf(log);
    await log.close();
    log = await reopen(dir);
    expect(log.recovery.torn).toBeUndefined();
    expect(viewOf(log)).toEqual(after);
    await log.close();
    expect(fs.statSync(segmentFiles(dir).at(-1) as string).size).toBeGreaterThan(dataBytes);
  });

  it('zeroed space with bytes after it is a torn tail; a second torn copy at the same offset gets a new name', async () => {
    const { dir, views } = await build(3);
    const last = segmentFiles(dir).at(-1) as string;
    fs.appendFileSync(last, Buffer.concat([new Uint8Array(64), Buffer.from('late')]));
    let log = await reopen(dir);
    expect(log.recovery.torn?.reason).toBe('zeroed data');
    expect(log.recovery.tornBytes).toBe(68);
    const first = log.recovery.torn?.copy as string;
    await log.close();
    fs.appendFileSync(last, Buffer.concat([new Uint8Array(64), Buffer.from('late')]));
    log = await reopen(dir);
    expect(log.recovery.torn?.copy).toBe(`${first}.1`);
    expect(viewOf(log)).toEqual(views[3]);
    await log.close();
  });

  it('a flipped bit in a committed batch of the last segment reads as a torn tail (the residual risk)', async () => {
    const { dir, views } = await build(8);
    const last = segmentFiles(dir).at(-1) as string;
    const buf = fs.readFileSync(last);
    buf[SEGMENT_HEADER_BYTES + 20] = (buf[SEGMENT_HEADER_BYTES + 20] as number) ^ 1;
    fs.writeFileSync(last, buf);
    const log = await reopen(dir);
    expect(log.recovery.torn?.offset).toBe(SEGMENT_HEADER_BYTES);
    expect(fs.readFileSync(log.recovery.torn?.copy as string)).toEqual(buf.subarray(SEGMENT_HEADER_BYTES));
    expect(log.lastIndex()).toBeLessThan(8);
    expect(viewOf(log)).toEqual(views[log.lastIndex()]);
    await log.close();
  });

  it('a frame header claiming 4 GiB at the end of the last segment is a torn tail, nothing allocated', async () => {
    const { dir, views } = await build(4);
    const last = segmentFiles(dir).at(-1) as string;
    const size = fs.statSync(last).size;
    const hostile = Buffer.alloc(24);
    hostile.writeUInt32LE(0x1234_5678, 0); // some crc
    hostile[4] = 1; // entry
    hostile.writeUInt32LE(0xffff_ffff, 8);
    fs.appendFileSync(last, hostile);
    const log = await reopen(dir);
    expect(log.recovery.torn).toMatchObject({
      offset: size,
      reason: 'frame length 4294967295 over the limit',
    });
    expect(viewOf(log)).toEqual(views[4]);
    await log.close();
  });

  it('a last segment whose header never became durable is set aside whole', async () => {
    const { dir, views } = await build(5);
    const files = segmentFiles(dir);
    const seq = files.length + 1;
    const bogus = path.join(dir, segmentName(seq, 6));
    fs.writeFileSync(bogus, new Uint8Array(SEGMENT_HEADER_BYTES - 8));
    const log = await reopen(dir);
    expect(log.recovery.torn).toMatchObject({ segment: bogus, offset: 0 });
    expect(fs.existsSync(bogus)).toBe(false);
    expect(fs.existsSync(log.recovery.torn?.copy as string)).toBe(true);
    expect(viewOf(log)).toEqual(views[5]);
    await log.save(undefined, [entry(6)], undefined, true);
    await log.close();
    const again = await reopen(dir);
    expect(again.lastIndex()).toBe(6);
    await again.close();
  });
});

describe('corruption is refused and nothing changes', () => {
  it('a flipped bit in a sealed segment', async () => {
    const { dir } = await build(12);
    const files = segmentFiles(dir);
    expect(files.length).toBeGreaterThan(2);
    const sealed = files[1] as string;
    const buf = fs.readFileSync(sealed);
    buf[buf.length - 30] = (buf[buf.length - 30] as number) ^ 0x40;
    fs.writeFileSync(sealed, buf);
    const err = await expectCorrupt(dir, sealed);
    expect(err.offset).toBeGreaterThanOrEqual(SEGMENT_HEADER_BYTES);
  });

  it('a sealed segment cut short', async () => {
    const { dir } = await build(12);
    const sealed = segmentFiles(dir)[0] as string;
    fs.truncateSync(sealed, fs.statSync(sealed).size - 8);
    await expectCorrupt(dir, sealed);
  });

  it('a missing middle segment', async () => {
    const { dir } = await build(12);
    const files = segmentFiles(dir);
    fs.unlinkSync(files[1] as string);
    await expectCorrupt(dir, files[2] as string);
  });

  it('a missing first segment (entries before the others are gone, no compaction covers them)', async () => {
    const { dir } = await build(12);
    const files = segmentFiles(dir);
    fs.unlinkSync(files[0] as string);
    const err = await expectCorrupt(dir, files[1] as string);
    expect(err.reason).toMatch(/missing/);
  });

  it('a bad header, in a sealed segment or in the last one with frames after it', async () => {
    const { dir } = await build(11);
    const files = segmentFiles(dir);
    for (const file of [files[0] as string, files.at(-1) as string]) {
      const good = fs.readFileSync(file);
      const bad = Buffer.from(good);
      bad[3] = (bad[3] as number) ^ 1; // the magic
      fs.writeFileSync(file, bad);
      const err = await expectCorrupt(dir, file);
      expect(err.offset).toBe(0);
      fs.writeFileSync(file, good);
    }
    const log = await reopen(dir);
    expect(log.lastIndex()).toBe(11);
    await log.close();
  });

  it('a segment whose header disagrees with its name', async () => {
    const { dir } = await build(12);
    const files = segmentFiles(dir);
    const f = files[1] as string;
    const renamed = path.join(dir, path.basename(f).replace(/-\d{20}/, `-${'7'.padStart(20, '0')}`));
    fs.renameSync(f, renamed);
    await expectCorrupt(dir, renamed);
  });
});
