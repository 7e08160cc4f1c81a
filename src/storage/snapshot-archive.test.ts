// The snapshot archive (docs/backup.md, "Archive format"): a backup streamed through it restores
// to the same store; hostile archives (truncated, bit flips, absurd lengths, names that leave
// the directory, duplicates, trailing bytes) are refused with a clear CorruptionError and leave
// the target directory empty.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { open } from '../db/db.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { crc32c } from '../stdx/crc32c.js';
import { Prng } from '../stdx/prng.js';
import { CorruptionError, InvalidArgumentError } from './errors.js';
import { encodeMeta } from './meta.js';
import {
  ARCHIVE_MAGIC,
  ARCHIVE_VERSION,
  restoreArchive,
  verifyArchive,
  writeArchive,
} from './snapshot-archive.js';

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

/** feed hands `bytes` to a reader in chunks of `size` (fresh copies). */
async function* feed(bytes: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += size) yield Buffer.from(bytes.subarray(at, at + size));
}

/** sampleStore: a small store with several data files, archived. */
async function sampleArchive(): Promise<{ archive: Buffer; model: Map<string, string> }> {
  const db = await open(tmpDir('archive-src'), { dataFileBytes: 4096 });
  const model = new Map<string, string>();
  for (let i = 0; i < 120; i++) {
    await db.set(`k${i % 40}`, `v${i}-${'q'.repeat(i)}`);
    model.set(`k${i % 40}`, `v${i}-${'q'.repeat(i)}`);
  }
  await db.delete('k3');
  model.delete('k3');
  const source = await db.backupSource();
  try {
    return { archive: await collect(writeArchive(source)), model };
  } finally {
    await source.close();
    await db.close();
  }
}

// Crafted archives, written from the grammar in docs/backup.md (not with writeArchive).
function header(engine = 'cask', version = ARCHIVE_VERSION): Buffer {
  const e = Buffer.from(engine);
  const h = Buffer.alloc(13 + e.length + 4);
  h.write(ARCHIVE_MAGIC, 0, 'ascii');
  h.writeUInt32LE(version, 8);
  h.writeUInt8(e.length, 12);
  e.copy(h, 13);
  h.writeUInt32LE(crc32c(h.subarray(0, h.length - 4)), h.length - 4);
  return h;
}

function entryHead(name: string, length: bigint): Buffer {
  const n = Buffer.from(name, 'latin1');
  const h = Buffer.alloc(2 + n.length + 8 + 4);
  h.writeUInt8(1, 0);
  h.writeUInt8(n.length, 1);
  n.copy(h, 2);
  h.writeBigUInt64LE(length, 2 + n.length);
  h.writeUInt32LE(crc32c(h.subarray(0, h.length - 4)), h.length - 4);
  return h;
}

function entry(name: string, bytes: Buffer): Buffer {
  const crc = Buffer.alloc(4);
  crc.writeUInt32LE(crc32c(bytes), 0);
  return Buffer.concat([entryHead(name, BigInt(bytes.length)), bytes, crc]);
}

function trailer(files: number, bytes: number): Buffer {
  const t = Buffer.alloc(33);
  t.writeUInt8(0, 0);
  t.writeUInt32LE(files, 1);
  t.writeBigUInt64LE(BigInt(bytes), 5);
  t.writeUInt32LE(crc32c(t.subarray(0, 29)), 29);
  return t;
}

const META = encodeMeta({
  format: 3,
  engine: 'cask',
  generation: 1,
  createdAtMs: 0,
  fields: { retired: [], seqFloor: 0 },
});

async function expectRefused(archive: Buffer, pattern: RegExp, chunk?: number): Promise<void> {
  const parent = tmpDir('archive-dst');
  const dir = path.join(parent, 'restored');
  const err = await restoreArchive(nodeFileSystem, feed(archive, chunk), dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CorruptionError);
  expect((err as Error).message).toMatch(pattern);
  // Nothing half-written: the directory is empty, and nothing escaped it.
  expect(fs.readdirSync(dir)).toEqual([]);
  expect(fs.readdirSync(parent)).toEqual(['restored']);
  await expect(verifyArchive(feed(archive, chunk))).rejects.toBeInstanceOf(CorruptionError);
}

describe('snapshot archive round trip', () => {
  it('restores a backup to the same store, whatever the chunking', async () => {
    const { archive, model } = await sampleArchive();
    for (const chunk of [1, 7, 4096, archive.length]) {
      const summary = await verifyArchive(feed(archive, chunk));
      expect(summary.keys).toBe(model.size);
      const dir = path.join(tmpDir('archive-dst'), 'restored');
      const restored = await restoreArchive(nodeFileSystem, feed(archive, chunk), dir);
      expect(restored).toEqual(summary);
      const db = await open(dir);
      const seen = new Map<string, string>();
      for await (const [k, v] of db.scan()) seen.set(k.toString(), v.toString());
      expect(seen).toEqual(model);
      await db.close();
    }
  });

  it('refuses a non-empty target before reading anything', async () => {
    const { archive } = await sampleArchive();
    const dir = tmpDir('archive-dst');
    fs.writeFileSync(path.join(dir, 'x'), 'mine');
    await expect(restoreArchive(nodeFileSystem, feed(archive), dir)).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(fs.readdirSync(dir)).toEqual(['x']);
  });
});

describe('hostile archives', () => {
  it('truncated anywhere: refused', async () => {
    const { archive } = await sampleArchive();
    const rng = new Prng(11);
    const cuts = new Set([
      0,
      1,
      8,
      12,
      16,
      20,
      30,
      archive.length - 1,
      archive.length - 33,
      archive.length - 34,
    ]);
    while (cuts.size < 60) cuts.add(rng.int(archive.length));
    for (const cut of cuts) await expectRefused(archive.subarray(0, cut), /truncated|not a Cairn snapshot/);
  });

  it('a flipped bit anywhere: refused', async () => {
    const { archive } = await sampleArchive();
    const rng = new Prng(12);
    const at = new Set([
      0,
      9,
      12,
      13,
      17,
      18,
      19,
      30,
      archive.length - 1,
      archive.length - 20,
      archive.length - 33,
    ]);
    while (at.size < 60) at.add(rng.int(archive.length));
    for (const pos of at) {
      const bad = Buffer.from(archive);
      bad[pos] = (bad[pos] as number) ^ (1 << rng.int(8));
      await expectRefused(bad, /checksum|not a Cairn|truncated|tag|name|claims|goes on|version|entry/);
    }
  });

  it('absurd lengths: refused before anything is allocated or written', async () => {
    const huge = Buffer.concat([header(), entryHead('0000000001.data', 1n << 60n)]);
    await expectRefused(huge, /0000000001\.data claims 1152921504606846976 bytes; at most 4294967296/);
    const bigMeta = Buffer.concat([header(), entryHead('META-1', 1n << 40n)]);
    await expectRefused(bigMeta, /META-1 claims/);
    const longEngine = Buffer.from(header());
    longEngine.writeUInt8(200, 12);
    await expectRefused(longEngine, /engine of 200 bytes/);
  });

  it('names that are not store file names (path traversal, directories, NUL): refused', async () => {
    for (const name of [
      '../x',
      '../../etc/passwd',
      '/tmp/x',
      'sub/0000000001.data',
      'LOCK',
      '0000000001.data\0',
      '.',
      '',
    ]) {
      const archive = Buffer.concat([header(), entry(name, Buffer.from('evil')), trailer(1, 4)]);
      await expectRefused(archive, name === '' ? /entry name of 0 bytes/ : /not a store file name/);
    }
  });

  it('duplicates, data after the metadata, missing metadata, trailing bytes, wrong counts: refused', async () => {
    const data = entry('0000000001.data', Buffer.from('not even a data file'));
    const metas = Buffer.concat([entry('META-1', META), entry('META-2', META)]);
    const dup = Buffer.concat([header(), data, data, metas, trailer(4, 40 + 2 * META.length)]);
    await expectRefused(dup, /holds 0000000001\.data twice/);
    const late = Buffer.concat([header(), metas, data, trailer(3, 20 + 2 * META.length)]);
    await expectRefused(late, /follows the metadata/);
    const noMeta = Buffer.concat([header(), data, entry('META-1', META), trailer(2, 20 + META.length)]);
    await expectRefused(noMeta, /holds no META-2/);
    const ok = Buffer.concat([header(), data, metas, trailer(3, 20 + 2 * META.length)]);
    await expectRefused(Buffer.concat([ok, Buffer.from('x')]), /goes on after its trailer/);
    await expectRefused(
      Buffer.concat([header(), data, metas, trailer(4, 20 + 2 * META.length)]),
      /trailer says 4 files/,
    );
    const badMeta = Buffer.concat([
      header(),
      data,
      entry('META-1', Buffer.from('junk')),
      entry('META-2', META),
      trailer(3, 24 + META.length),
    ]);
    await expectRefused(badMeta, /META-1 in the archive is not valid metadata/);
    await expectRefused(Buffer.concat([header('lmdb'), trailer(0, 0)]), /holds a 'lmdb' store/);
    await expectRefused(Buffer.concat([header('cask', 9), trailer(0, 0)]), /version 9/);
    await expectRefused(Buffer.from('PK\x03\x04 a zip file, not ours'), /not a Cairn snapshot archive/);
  });
});
