// Failpoints: named disk faults a running server can be told to suffer, for the multi-process
// robustness tests (docs/cluster.md, "Tests"), in the spirit of etcd's gofail. They are read from
// the environment variable CAIRN_FAILPOINTS once, at start-up; without it the real file system
// is used untouched.
//
//   CAIRN_FAILPOINTS = point *("," point)
//   point            = name ["@" n]          ; n: the n-th matching operation (default 1)
//   name             = "wal-fsync-eio"       ; an fdatasync of the Raft log fails with EIO
//                    / "wal-torn-write"      ; a Raft log write lands half, then fails
//                    / "engine-fsync-eio"    ; an fdatasync of an engine data file fails with EIO
//                    / "engine-write-enospc" ; an engine data file write fails with ENOSPC
//                    / "power-loss"          ; at the n-th mutating operation: every file falls
//                                            ; back to what was fsynced, then the process dies
//                                            ; (SIGKILL): lost unsynced data, as in a power cut
//
// A failpoint that fires makes the member fail (its log or engine refuses to go on) or die; a
// restart without the variable recovers.
import { type FaultRule, FaultyFileSystem } from './faulty-file-system.js';
import { type File, type FileSystem, type OpenMode, type PathKind, writeThenSync } from './file-system.js';

const WAL = /[/\\]raft[/\\]wal[/\\]/;
const DATA_FILE = /\.data$/;

const RULES: Readonly<Record<string, (n: number) => FaultRule>> = {
  'wal-fsync-eio': (n) => ({ op: 'datasync', code: 'EIO', path: WAL, skip: n - 1 }),
  'wal-torn-write': (n) => ({ op: 'write', code: 'EIO', path: WAL, skip: n - 1, tornBytes: 8 }),
  'engine-fsync-eio': (n) => ({ op: 'datasync', code: 'EIO', path: DATA_FILE, skip: n - 1 }),
  'engine-write-enospc': (n) => ({ op: 'write', code: 'ENOSPC', path: DATA_FILE, skip: n - 1 }),
};

/** FailpointError: CAIRN_FAILPOINTS names something unknown or malformed. */
export class FailpointError extends Error {
  override name = 'FailpointError';
}

/**
 * failpointFileSystem returns `inner` when `spec` is empty, else a file system that suffers the
 * failpoints it names.
 */
export function failpointFileSystem(spec: string | undefined, inner: FileSystem): FileSystem {
  if (spec === undefined || spec.trim() === '') return inner;
  const faulty = new FaultyFileSystem(inner);
  let powerLossAt: number | undefined;
  for (const point of spec.split(',').map((p) => p.trim())) {
    const m = /^([a-z-]+)(?:@(\d+))?$/.exec(point);
    const n = m?.[2] === undefined ? 1 : Number(m[2]);
    if (m === null || n < 1) throw new FailpointError(`CAIRN_FAILPOINTS: malformed failpoint '${point}'`);
    const name = m[1]!;
    if (name === 'power-loss') {
      powerLossAt = n;
      continue;
    }
    const rule = RULES[name];
    if (rule === undefined) {
      throw new FailpointError(
        `CAIRN_FAILPOINTS: unknown failpoint '${name}' (known: ${[...Object.keys(RULES), 'power-loss'].join(', ')})`,
      );
    }
    faulty.inject(rule(n));
  }
  return powerLossAt === undefined ? faulty : new PowerLossFileSystem(faulty, powerLossAt);
}

/**
 * PowerLossFileSystem: before the n-th mutating operation, the machine "loses power": every
 * operation fails from then on, the files fall back to their fsynced state, and the process
 * kills itself, so nothing it still holds in memory is written.
 */
class PowerLossFileSystem implements FileSystem {
  constructor(
    private readonly faulty: FaultyFileSystem,
    private readonly at: number,
  ) {}

  private async step(): Promise<void> {
    if (this.faulty.mutations + 1 < this.at) return;
    this.faulty.dieAfter = this.faulty.mutations;
    await this.faulty.powerLoss();
    process.kill(process.pid, 'SIGKILL');
    // Never returns in practice; the operation fails if the signal is late.
    await new Promise(() => {});
  }

  async open(path: string, mode: OpenMode): Promise<File> {
    if (mode === 'create') await this.step();
    const file = await this.faulty.open(path, mode);
    return new PowerLossFile(file, () => this.step());
  }
  async readdir(dir: string): Promise<string[]> {
    return this.faulty.readdir(dir);
  }
  async mkdir(dir: string): Promise<void> {
    await this.step();
    return this.faulty.mkdir(dir);
  }
  async rename(from: string, to: string): Promise<void> {
    await this.step();
    return this.faulty.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    await this.step();
    return this.faulty.unlink(path);
  }
  async link(existing: string, newPath: string): Promise<void> {
    await this.step();
    return this.faulty.link(existing, newPath);
  }
  async syncDir(dir: string): Promise<void> {
    await this.step();
    return this.faulty.syncDir(dir);
  }
  exists(path: string): Promise<boolean> {
    return this.faulty.exists(path);
  }
  kind(path: string): Promise<PathKind | undefined> {
    return this.faulty.kind(path);
  }
  readFile(path: string): Promise<Uint8Array> {
    return this.faulty.readFile(path);
  }
}

/** PowerLossFile: a file whose asynchronous mutations count toward the power-loss point. */
class PowerLossFile implements File {
  constructor(
    private readonly inner: File,
    private readonly step: () => Promise<void>,
  ) {}

  get path(): string {
    return this.inner.path;
  }
  readSync(buffer: Uint8Array, offset: number, length: number, position: number): number {
    return this.inner.readSync(buffer, offset, length, position);
  }
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.inner.read(buffer, offset, length, position);
  }
  async write(data: Uint8Array, position: number): Promise<void> {
    await this.step();
    return this.inner.write(data, position);
  }
  // The synchronous twins cannot wait for the power loss; they count through FaultyFileSystem and
  // fail once it has happened (dieAfter), which is what a dead machine's writes do.
  writeSync(data: Uint8Array, position: number): void {
    this.inner.writeSync(data, position);
  }
  // Through this file's own write and datasync, so every fault and failpoint applies to both.
  writeDurable(data: Uint8Array, position: number): Promise<void> {
    return writeThenSync(this, data, position);
  }

  async datasync(): Promise<void> {
    await this.step();
    return this.inner.datasync();
  }
  datasyncSync(): void {
    this.inner.datasyncSync();
  }
  truncateSync(length: number): void {
    this.inner.truncateSync(length);
  }
  async truncate(length: number): Promise<void> {
    await this.step();
    return this.inner.truncate(length);
  }
  size(): Promise<number> {
    return this.inner.size();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
