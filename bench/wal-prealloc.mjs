// wal-prealloc: what preallocation buys a synced append on this disk (docs/wal.md,
// "Preallocation"). Three processes (a cluster's three members on one disk) each append ROUNDS
// O_DSYNC writes of BYTES, beside a fourth that appends buffered 4 KiB writes (an engine's data
// file), three ways:
//   grow      the file grows with every append (the WAL before preallocation);
//   unsynced  over zeros written ahead but not fdatasynced (not yet allocated on ext4);
//   synced    over zeros written ahead and fdatasynced (what the WAL does).
// Each way runs ROUNDS_OF_WAYS times, alternated; it prints every process's p50 and p90.
//
//   node bench/wal-prealloc.mjs [DIR]     DIR: a directory on the disk to measure (default: the OS temp dir)
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** ROUNDS: appends per process; BYTES: one append (about a Raft save of a 10-key transaction). */
const ROUNDS = 600;
const BYTES = 1500;
/** AHEAD: zeros written ahead of the data (wal.ts, PREALLOCATE_BYTES). */
const AHEAD = 2 * 1024 * 1024;
/** WRITERS: processes appending synced writes at once; ROUNDS_OF_WAYS: alternations of the three ways. */
const WRITERS = 3;
const ROUNDS_OF_WAYS = 2;
/** BACKGROUND_MS: how long the buffered writer runs (longer than a way's appends take). */
const BACKGROUND_MS = 3000;

const [role, arg, dirArg] = process.argv.slice(2);

async function appender(way, dir) {
  const file = path.join(dir, `wal-${process.pid}`);
  const { O_WRONLY, O_CREAT, O_TRUNC, O_DSYNC } = fs.constants;
  if (way !== 'grow') {
    const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_TRUNC);
    fs.writeSync(fd, Buffer.alloc(AHEAD), 0, AHEAD, 0);
    if (way === 'synced') fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  }
  const fd = fs.openSync(file, O_WRONLY | O_CREAT | O_DSYNC | (way === 'grow' ? O_TRUNC : 0));
  const data = Buffer.alloc(BYTES, 1);
  const ms = [];
  for (let i = 0, pos = 0; i < ROUNDS; i++, pos += BYTES) {
    const t = performance.now();
    await new Promise((resolve, reject) =>
      fs.write(fd, data, 0, BYTES, pos, (e) => (e ? reject(e) : resolve())),
    );
    ms.push(performance.now() - t);
  }
  fs.closeSync(fd);
  fs.rmSync(file);
  ms.sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(3);
  console.log(JSON.stringify({ p50: at(0.5), p90: at(0.9) }));
}

async function background(dir) {
  const fd = fs.openSync(path.join(dir, `bg-${process.pid}`), 'w');
  const block = Buffer.alloc(4096, 2);
  const end = Date.now() + BACKGROUND_MS;
  for (let pos = 0; Date.now() < end; pos += block.length) {
    fs.writeSync(fd, block, 0, block.length, pos);
    // Now and then a pause, so the event loop (and the writeback it races) breathes.
    if (pos % (256 * 4096) === 0) await new Promise((r) => setTimeout(r, 1));
  }
  fs.closeSync(fd);
}

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args[0]} exited ${code}`))));
  });
}

async function main() {
  const dir = fs.mkdtempSync(
    path.join(role === undefined ? os.tmpdir() : path.resolve(role), 'cairn-wal-prealloc-'),
  );
  try {
    for (let round = 1; round <= ROUNDS_OF_WAYS; round++) {
      for (const way of ['grow', 'unsynced', 'synced']) {
        const bg = run(['--background', '', dir]);
        const outs = await Promise.all(Array.from({ length: WRITERS }, () => run(['--append', way, dir])));
        await bg;
        for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f));
        const cells = outs.map((o) => JSON.parse(o)).map((r) => `p50 ${r.p50} p90 ${r.p90}`);
        console.log(`round ${round} ${way.padEnd(8)} ${cells.join(' | ')} ms`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (role === '--append') await appender(arg, dirArg);
else if (role === '--background') await background(dirArg);
else await main();
