// write-path-floor: what a SET's write path below RESP costs with today's data structures and
// none of the layers' objects around them (issue 14). The same workload as put-path.ts and
// engine-write.ts (100-byte values to random keys of 100k, in turns of WORKLOAD_TURN writes), done by
// hand: per write a pending-write map entry (key string), a revision from the value cache, the
// record encoded with its CRC into one group buffer, and at the end of the turn one file write,
// then per write the key directory's set (point index and tree), the value cache's set and the
// pending entry's removal. No promises, no per-layer descriptors. Not the product: a floor to
// hold the real path (put-path.ts) against, printed beside it from the same process run.
//
//   npx tsx bench/write-path-floor.ts [--keys N] [--writes N]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { keyString } from '../src/stdx/key-string.js';
import { DEFAULT_CACHE_BYTES } from '../src/storage/cask/cask-options.js';
import { KeyDir } from '../src/storage/cask/key-dir.js';
import { encodeRecord, recordBytes } from '../src/storage/cask/record.js';
import { ValueCache } from '../src/storage/cask/value-cache.js';
import {
  fixedOrder,
  redisStyleKeys,
  WORKLOAD_TURN,
  WORKLOAD_VALUE_BYTES,
  workloadSize,
} from './build-under-test.js';

const WRITES_DEFAULT = 1_000_000;

const { keyCount, count: writes } = workloadSize('--writes', WRITES_DEFAULT);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-floor-'));
const fd = fs.openSync(path.join(dir, 'data'), 'w');
const keyDir = new KeyDir();
keyDir.startPointIndex();
while (!keyDir.buildPointIndex(1 << 20)) {}
const cache = new ValueCache(DEFAULT_CACHE_BYTES);
const pending = new Map<string, { ts: number; value: Buffer; create: number; version: number }>();
const value = Buffer.alloc(WORKLOAD_VALUE_BYTES, 7);
const keys = redisStyleKeys(keyCount);
const order = fixedOrder(writes, keyCount);
let ts = 0;
let fileOffset = 0;
const group = Buffer.allocUnsafe(WORKLOAD_TURN * recordBytes(16, WORKLOAD_VALUE_BYTES, false, true));
const turnKeys: Buffer[] = new Array(WORKLOAD_TURN);
const turnAt = new Uint32Array(WORKLOAD_TURN);
const turnCreate = new Float64Array(WORKLOAD_TURN);
const turnVersion = new Uint32Array(WORKLOAD_TURN);
const turnNames: string[] = new Array(WORKLOAD_TURN);

function turn(from: number, to: number, pick: (i: number) => number): void {
  let pos = 0;
  let n = 0;
  for (let j = from; j < to; j++) {
    const key = keys[pick(j)] as Buffer;
    const k = keyString(key);
    ts++;
    // The revision: the newest pending write's, else the value cache's, else the key directory's.
    let create = ts;
    let version = 1;
    const p = pending.get(k);
    if (p !== undefined) {
      create = p.create;
      version = p.version + 1;
    } else {
      const cached = cache.lookup(key);
      if (cached !== undefined) {
        create = cached.create;
        version = cached.version + 1;
      } else {
        const loc = keyDir.get(key);
        if (loc !== undefined) {
          create = loc.create;
          version = loc.version + 1;
        }
      }
    }
    const copy = Buffer.allocUnsafe(value.length);
    value.copy(copy);
    pending.set(k, { ts, value: copy, create, version });
    const start = pos;
    pos = encodeRecord(group, pos, ts, 1, key, value, undefined, create, version, 0);
    turnKeys[n] = key;
    turnAt[n] = start;
    turnCreate[n] = create;
    turnVersion[n] = version;
    turnNames[n] = k;
    n++;
  }
  fs.writeSync(fd, group, 0, pos, fileOffset);
  for (let i = 0; i < n; i++) {
    const key = turnKeys[i] as Buffer;
    const valueAt = (turnAt[i] as number) + recordBytes(key.length, 0, false, true);
    const seq = ts - n + 1 + i;
    keyDir.set(
      key,
      1,
      fileOffset + valueAt,
      WORKLOAD_VALUE_BYTES,
      seq,
      turnCreate[i] as number,
      turnVersion[i] as number,
    );
    cache.set(
      key,
      group.subarray(valueAt, valueAt + WORKLOAD_VALUE_BYTES),
      seq,
      turnCreate[i],
      turnVersion[i],
      0,
    );
    const name = turnNames[i] as string;
    if (pending.get(name)?.ts === seq) pending.delete(name);
  }
  fileOffset += pos;
}

function run(from: number, to: number, pick: (i: number) => number): void {
  for (let i = from; i < to; i += WORKLOAD_TURN) turn(i, Math.min(to, i + WORKLOAD_TURN), pick);
}

run(0, keyCount, (i) => i);
run(0, Math.min(writes, 50_000), (i) => order[i] as number);
const cpu = process.cpuUsage();
run(0, writes, (i) => order[i] as number);
const used = process.cpuUsage(cpu);
console.log(
  `floor: ${((used.user + used.system) / writes).toFixed(2)} µs CPU per write (${keyCount} keys, ${writes} writes)`,
);
fs.closeSync(fd);
fs.rmSync(dir, { recursive: true, force: true });
