// The snapshot archive: one stream holding a backup's files (`cairn snapshot save`, GET
// /v1/snapshot), and its restore into a new directory (`cairn snapshot restore`). The grammar is
// in docs/backup.md, "Archive format"; in short: a header, then per file its name, length and a
// checksum of those, its bytes and a checksum of the bytes, then a trailer with counts.
//
// Restore trusts nothing: every header and trailer is checksummed, every length is bounded before
// anything is allocated or written, a name must be exactly one of a store's file names (no
// directory part: `../x` cannot name anything), files are checksummed as they are written, and
// the metadata is written last, only once the whole archive verified. On any failure every file
// written is removed, so the directory is left as it was found (empty).
import * as path from 'node:path';
import type { File, FileSystem } from '../io/file-system.js';
import { assert } from '../stdx/assert.js';
import { crc32c } from '../stdx/crc32c.js';
import { prepareTarget } from './cask/backup.js';
import type { BackupSource } from './engine.js';
import { CorruptionError, IoError } from './errors.js';
import { decodeMeta, META_FILES } from './meta.js';

export const ARCHIVE_MAGIC = 'CAIRNSNP';
export const ARCHIVE_VERSION = 1;
/** ENGINE_NAME_BYTES_MAX: the engine name in the header ('cask'). */
const ENGINE_NAME_BYTES_MAX = 16;
/** NAME_BYTES_MAX: a file name of a store is at most 15 bytes (`NNNNNNNNNN.data`); generous. */
const NAME_BYTES_MAX = 64;
/** FILE_BYTES_MAX: data files rotate at 2 GiB at most and hold u32 offsets: below 4 GiB. */
export const FILE_BYTES_MAX = 4 * 1024 * 1024 * 1024;
/** META_ENTRY_BYTES_MAX: a metadata copy is small JSON; meta.ts bounds it at 16 MiB. */
const META_ENTRY_BYTES_MAX = 16 * 1024 * 1024 + 8;
/** ENTRIES_MAX: far above any store (a 64 TiB store of 64 MiB files has a million files and hints). */
export const ENTRIES_MAX = 4_000_000;
/** CHUNK_BYTES: bytes read from a file and handed to the stream per step. */
const CHUNK_BYTES = 1024 * 1024;
/** STORE_FILE_NAME: the only names an archive may hold: data, hint and metadata files. */
const STORE_FILE_NAME = /^(?:\d{10}\.(?:data|hint)|META-[12])$/;

const TAG_END = 0x00;
const TAG_FILE = 0x01;
const HEADER_FIXED_BYTES = 8 + 4 + 1;
const ENTRY_HEAD_FIXED_BYTES = 1 + 1; // tag, name_len; then name, length u64, crc u32
const TRAILER_BYTES = 1 + 4 + 8 + 8 + 8 + 4;

/** ArchiveSummary: what an archive's trailer says it holds (checked against what it held). */
export interface ArchiveSummary {
  readonly engine: string;
  readonly files: number;
  readonly bytes: number;
  readonly keys: number;
  readonly lastTs: number;
}

/**
 * writeArchive yields the archive of a backup source, chunk by chunk (each chunk is fresh: the
 * consumer may keep it). It reads the files as it goes; the caller closes the source.
 */
export async function* writeArchive(source: BackupSource): AsyncGenerator<Buffer> {
  const engine = Buffer.from(source.engine, 'ascii');
  assert(engine.length <= ENGINE_NAME_BYTES_MAX, `engine name ${source.engine} too long`);
  const header = Buffer.alloc(HEADER_FIXED_BYTES + engine.length + 4);
  header.write(ARCHIVE_MAGIC, 0, 'ascii');
  header.writeUInt32LE(ARCHIVE_VERSION, 8);
  header.writeUInt8(engine.length, 12);
  engine.copy(header, 13);
  header.writeUInt32LE(crc32c(header.subarray(0, header.length - 4)), header.length - 4);
  yield header;
  let bytes = 0;
  for (const file of source.files) {
    assert(STORE_FILE_NAME.test(file.name), `backup file name ${file.name} is not a store file name`);
    assert(file.size <= FILE_BYTES_MAX, `backup file ${file.name} is larger than an archive holds`);
    const name = Buffer.from(file.name, 'ascii');
    const head = Buffer.alloc(ENTRY_HEAD_FIXED_BYTES + name.length + 8 + 4);
    head.writeUInt8(TAG_FILE, 0);
    head.writeUInt8(name.length, 1);
    name.copy(head, 2);
    head.writeBigUInt64LE(BigInt(file.size), 2 + name.length);
    head.writeUInt32LE(crc32c(head.subarray(0, head.length - 4)), head.length - 4);
    yield head;
    let crc = 0;
    let at = 0;
    while (at < file.size) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, file.size - at));
      const n = await source.read(file.name, chunk, 0, chunk.length, at);
      if (n === 0)
        throw new IoError(`${file.name} ended at byte ${at} of ${file.size} while archived`, undefined);
      const part = chunk.subarray(0, n);
      crc = crc32c(part, crc);
      at += n;
      yield part;
    }
    const tail = Buffer.alloc(4);
    tail.writeUInt32LE(crc, 0);
    yield tail;
    bytes += file.size;
  }
  const end = Buffer.alloc(TRAILER_BYTES);
  end.writeUInt8(TAG_END, 0);
  end.writeUInt32LE(source.files.length, 1);
  end.writeBigUInt64LE(BigInt(bytes), 5);
  end.writeBigUInt64LE(BigInt(source.keys), 13);
  end.writeBigUInt64LE(BigInt(source.lastTs), 21);
  end.writeUInt32LE(crc32c(end.subarray(0, TRAILER_BYTES - 4)), TRAILER_BYTES - 4);
  yield end;
}

/**
 * ByteReader reads exact byte counts from a stream of chunks. It keeps the chunks it is given
 * until they are consumed (views, not copies): the producer must not reuse them (file and HTTP
 * streams hand out fresh ones).
 */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  /** consumed: bytes handed out so far (error messages say where the archive went wrong). */
  consumed = 0;

  constructor(private readonly input: AsyncIterator<Uint8Array>) {}

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.input.next();
    if (next.done === true) {
      this.done = true;
      return false;
    }
    const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return true;
  }

  /** exact returns the next `n` bytes (a copy), or fails with `what` if the stream ends first. */
  async exact(n: number, what: string): Promise<Buffer> {
    while (this.buffered < n) {
      if (!(await this.fill())) {
        throw new CorruptionError(
          `the snapshot archive is truncated: it ends at byte ${this.consumed + this.buffered} in ${what}`,
        );
      }
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const first = this.chunks[0] as Buffer;
      const take = Math.min(first.length, n - at);
      first.copy(out, at, 0, take);
      at += take;
      if (take === first.length) this.chunks.shift();
      else this.chunks[0] = first.subarray(take);
    }
    this.buffered -= n;
    this.consumed += n;
    return out;
  }

  /** upTo returns the next 1..max bytes (a view the caller must use before the next call). */
  async upTo(max: number, what: string): Promise<Buffer> {
    while (this.buffered === 0) {
      if (!(await this.fill())) {
        throw new CorruptionError(
          `the snapshot archive is truncated: it ends at byte ${this.consumed} in ${what}`,
        );
      }
    }
    const first = this.chunks[0] as Buffer;
    const take = Math.min(first.length, max);
    if (take === first.length) this.chunks.shift();
    else this.chunks[0] = first.subarray(take);
    this.buffered -= take;
    this.consumed += take;
    return first.subarray(0, take);
  }

  /** atEnd tells whether the stream holds no more bytes. */
  async atEnd(): Promise<boolean> {
    while (this.buffered === 0) if (!(await this.fill())) return true;
    return false;
  }
}

/**
 * restoreArchive unpacks an archive into `dir` (new or empty), verifying everything (see the
 * file comment), and makes it durable: files fdatasynced, the directory fsynced, the metadata
 * written last. Hostile or damaged input fails with CorruptionError and leaves no file behind.
 */
export async function restoreArchive(
  fs: FileSystem,
  input: AsyncIterable<Uint8Array>,
  dir: string,
): Promise<ArchiveSummary> {
  await prepareTarget(fs, dir);
  const written: string[] = [];
  try {
    return await unpack(new ByteReader(input[Symbol.asyncIterator]()), { fs, dir, written });
  } catch (err) {
    for (const file of written.reverse()) await fs.unlink(file).catch(() => {});
    await fs.syncDir(dir).catch(() => {});
    throw err;
  }
}

/**
 * verifyArchive reads a whole archive and checks everything restore checks, writing nothing
 * (`cairn snapshot save` verifies what it received before it names the file).
 */
export function verifyArchive(input: AsyncIterable<Uint8Array>): Promise<ArchiveSummary> {
  return unpack(new ByteReader(input[Symbol.asyncIterator]()), undefined);
}

/** readFileChunks yields a file's bytes in fresh chunks (an archive's input for restore). */
export async function* readFileChunks(fs: FileSystem, file: string): AsyncGenerator<Buffer> {
  const handle = await fs.open(file, 'read');
  try {
    for (let at = 0; ; ) {
      const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
      const n = await handle.read(chunk, 0, chunk.length, at);
      if (n === 0) return;
      at += n;
      yield chunk.subarray(0, n);
    }
  } finally {
    await handle.close();
  }
}

/** Target: where unpack writes (undefined: verify only). */
interface Target {
  readonly fs: FileSystem;
  readonly dir: string;
  /** written: every path created so far, for removal on failure. */
  readonly written: string[];
}

async function unpack(reader: ByteReader, target: Target | undefined): Promise<ArchiveSummary> {
  const fixed = await reader.exact(HEADER_FIXED_BYTES, 'the header');
  if (fixed.subarray(0, 8).toString('latin1') !== ARCHIVE_MAGIC) {
    throw new CorruptionError('not a Cairn snapshot archive (its first bytes are not CAIRNSNP)');
  }
  const version = fixed.readUInt32LE(8);
  const engineLen = fixed.readUInt8(12);
  if (engineLen > ENGINE_NAME_BYTES_MAX)
    throw new CorruptionError(`the archive header names an engine of ${engineLen} bytes`);
  const rest = await reader.exact(engineLen + 4, 'the header');
  const header = Buffer.concat([fixed, rest]);
  if (crc32c(header.subarray(0, header.length - 4)) !== header.readUInt32LE(header.length - 4)) {
    throw new CorruptionError('the archive header fails its checksum');
  }
  if (version !== ARCHIVE_VERSION) {
    throw new CorruptionError(
      `the archive is of version ${version}; this build reads version ${ARCHIVE_VERSION}`,
    );
  }
  const engine = rest.subarray(0, engineLen).toString('latin1');
  if (engine !== 'cask')
    throw new CorruptionError(`the archive holds a '${engine}' store; only cask stores are restored`);

  const seen = new Set<string>();
  const metas = new Map<string, Buffer>();
  let bytes = 0;
  for (;;) {
    const tag = (await reader.exact(1, 'an entry tag')).readUInt8(0);
    if (tag === TAG_END) break;
    if (tag !== TAG_FILE)
      throw new CorruptionError(`unknown entry tag ${tag} at byte ${reader.consumed - 1} of the archive`);
    if (seen.size >= ENTRIES_MAX)
      throw new CorruptionError(`the archive holds more than ${ENTRIES_MAX} files`);
    const nameLen = (await reader.exact(1, 'an entry header')).readUInt8(0);
    if (nameLen === 0 || nameLen > NAME_BYTES_MAX) {
      throw new CorruptionError(
        `an entry name of ${nameLen} bytes at byte ${reader.consumed - 1} of the archive`,
      );
    }
    const headRest = await reader.exact(nameLen + 8 + 4, 'an entry header');
    const head = Buffer.concat([Buffer.from([tag, nameLen]), headRest]);
    if (crc32c(head.subarray(0, head.length - 4)) !== head.readUInt32LE(head.length - 4)) {
      throw new CorruptionError(`an entry header fails its checksum (entry ${seen.size + 1})`);
    }
    const name = headRest.subarray(0, nameLen).toString('latin1');
    const length = headRest.readBigUInt64LE(nameLen);
    if (!STORE_FILE_NAME.test(name)) {
      throw new CorruptionError(
        `the archive names a file '${name}', which is not a store file name (NNNNNNNNNN.data, .hint, META-1, META-2)`,
      );
    }
    if (seen.has(name)) throw new CorruptionError(`the archive holds ${name} twice`);
    seen.add(name);
    const isMeta = name.startsWith('META-');
    const limit = isMeta ? META_ENTRY_BYTES_MAX : FILE_BYTES_MAX;
    if (length > BigInt(limit)) throw new CorruptionError(`${name} claims ${length} bytes; at most ${limit}`);
    if (!isMeta && metas.size > 0)
      throw new CorruptionError(`${name} follows the metadata; the metadata must come last`);
    const size = Number(length);
    bytes += size;
    if (isMeta) {
      const body = await reader.exact(size, name);
      const crc = (await reader.exact(4, `the checksum of ${name}`)).readUInt32LE(0);
      if (crc32c(body) !== crc) throw new CorruptionError(`${name} fails its checksum`);
      const decoded = decodeMeta(body);
      if (typeof decoded === 'string')
        throw new CorruptionError(`${name} in the archive is not valid metadata (${decoded})`);
      if (decoded.engine !== engine)
        throw new CorruptionError(`${name} names engine '${decoded.engine}', the archive '${engine}'`);
      metas.set(name, body);
      continue;
    }
    await unpackFile(reader, name, size, target);
  }
  const trailerRest = await reader.exact(TRAILER_BYTES - 1, 'the trailer');
  const trailer = Buffer.concat([Buffer.from([TAG_END]), trailerRest]);
  if (crc32c(trailer.subarray(0, TRAILER_BYTES - 4)) !== trailer.readUInt32LE(TRAILER_BYTES - 4)) {
    throw new CorruptionError('the archive trailer fails its checksum');
  }
  const files = trailer.readUInt32LE(1);
  const totalBytes = Number(trailer.readBigUInt64LE(5));
  if (files !== seen.size || totalBytes !== bytes) {
    throw new CorruptionError(
      `the archive trailer says ${files} files of ${totalBytes} bytes; it held ${seen.size} of ${bytes}`,
    );
  }
  for (const name of META_FILES)
    if (!metas.has(name)) throw new CorruptionError(`the archive holds no ${name}`);
  if (!(await reader.atEnd())) throw new CorruptionError('the archive goes on after its trailer');
  if (target !== undefined) await writeMetas(target, metas);
  return {
    engine,
    files,
    bytes,
    keys: Number(trailer.readBigUInt64LE(13)),
    lastTs: Number(trailer.readBigUInt64LE(21)),
  };
}

/**
 * writeMetas writes the metadata copies, last: the data and hint files are durable (each
 * fdatasynced) and named (the directory synced) before the metadata makes them a store; each
 * copy by temporary name, fdatasync and rename.
 */
async function writeMetas(target: Target, metas: ReadonlyMap<string, Buffer>): Promise<void> {
  const { fs, dir, written } = target;
  await fs.syncDir(dir);
  for (const name of META_FILES) {
    const final = path.join(dir, name);
    const tmp = `${final}.tmp`;
    written.push(tmp, final);
    const file = await fs.open(tmp, 'create');
    try {
      await file.write(metas.get(name) as Buffer, 0);
      await file.datasync();
    } finally {
      await file.close();
    }
    await fs.rename(tmp, final);
    await fs.syncDir(dir);
  }
}

/** unpackFile streams one file's bytes from the archive into the target (if any), checksumming them. */
async function unpackFile(
  reader: ByteReader,
  name: string,
  size: number,
  target: Target | undefined,
): Promise<void> {
  let file: File | undefined;
  if (target !== undefined) {
    const filePath = path.join(target.dir, name);
    target.written.push(filePath);
    file = await target.fs.open(filePath, 'create');
  }
  try {
    let crc = 0;
    let at = 0;
    while (at < size) {
      const part = await reader.upTo(Math.min(CHUNK_BYTES, size - at), name);
      crc = crc32c(part, crc);
      await file?.write(part, at);
      at += part.length;
    }
    const expected = (await reader.exact(4, `the checksum of ${name}`)).readUInt32LE(0);
    if (crc !== expected) throw new CorruptionError(`${name} fails its checksum: the archive is damaged`);
    await file?.datasync();
  } finally {
    await file?.close();
  }
}
