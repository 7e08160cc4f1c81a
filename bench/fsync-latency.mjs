// fsync-latency: what one durable append costs on this disk, four ways, so that a slow save in a
// profile can be told apart from a slow disk (docs/benchmarks.md, "Where the leader's time goes
// under the transaction load"): write + fdatasync and an O_DSYNC write, each on the event loop
// (sync calls) and through libuv's thread pool (callbacks), ROUNDS appends of BYTES each.
//
//   node bench/fsync-latency.mjs [DIR]        DIR: a directory on the disk to measure (default: the OS temp dir)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** ROUNDS: appends per way; BYTES: one append (about a Raft save of a 10-key transaction). */
const ROUNDS = 400;
const BYTES = 1500;

const dir = fs.mkdtempSync(path.join(process.argv[2] ?? os.tmpdir(), 'cairn-fsync-'));
const file = path.join(dir, 'append');
const data = Buffer.alloc(BYTES, 1);
const { O_WRONLY, O_CREAT, O_TRUNC, O_DSYNC } = fs.constants;

async function measure(name, flags, append) {
  const fd = fs.openSync(file, flags);
  const ms = [];
  try {
    for (let i = 0, pos = 0; i < ROUNDS; i++, pos += BYTES) {
      const t = performance.now();
      await append(fd, pos);
      ms.push(performance.now() - t);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
  ms.sort((a, b) => a - b);
  const at = (q) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))].toFixed(3);
  console.log(`${name.padEnd(34)} p50 ${at(0.5)} ms  p90 ${at(0.9)} ms  p99 ${at(0.99)} ms`);
}

const write = (fd, pos) =>
  new Promise((resolve, reject) => fs.write(fd, data, 0, BYTES, pos, (e) => (e ? reject(e) : resolve())));
const datasync = (fd) =>
  new Promise((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
const plain = O_WRONLY | O_CREAT | O_TRUNC;

try {
  await measure('write + fdatasync, event loop', plain, (fd, pos) => {
    fs.writeSync(fd, data, 0, BYTES, pos);
    fs.fdatasyncSync(fd);
  });
  if (O_DSYNC !== undefined) {
    await measure('O_DSYNC write, event loop', plain | O_DSYNC, (fd, pos) => {
      fs.writeSync(fd, data, 0, BYTES, pos);
    });
  }
  await measure('write + fdatasync, thread pool', plain, async (fd, pos) => {
    await write(fd, pos);
    await datasync(fd);
  });
  if (O_DSYNC !== undefined) await measure('O_DSYNC write, thread pool', plain | O_DSYNC, write);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
