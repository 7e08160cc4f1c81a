// The server's SET path below the RESP layer, in process: `pipeline.put` of 100-byte values to
// random keys of a store that holds them all, in turns of WORKLOAD_TURN puts (as a read of pipelined
// commands from many clients), durability 'never' and compaction off, so that what is measured
// is the JavaScript cost of a write (stamp, pending state, encode, group commit, publish), not
// the disk. Prints CPU µs per put, and the young-generation collections (scavenges) and their
// time, which follow from the bytes a put allocates. For A/B runs of two builds, `--dist DIR`
// loads the built tree `DIR/dist/src/index.js`; alternate the builds, this VM drifts.
//
// `--batch K` writes K keys per `pipeline.batch` call instead of one `put` each (what a write of
// several keys, such as MSET's, costs per key).
//
//   npx tsx bench/put-path.ts [--keys N] [--puts N] [--batch K] [--dist DIR]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import {
  argValue,
  fixedOrder,
  loadApi,
  redisStyleKeys,
  WORKLOAD_TURN,
  WORKLOAD_VALUE_BYTES,
  workloadSize,
} from './build-under-test.js';

const PUTS_DEFAULT = 400_000;

const { keyCount, count: puts } = workloadSize('--puts', PUTS_DEFAULT);
const dist = argValue('--dist');
const batch = Number(argValue('--batch') ?? 1);
if (!Number.isInteger(batch) || batch < 1) throw new Error('--batch takes a whole number of keys >= 1');
const api = await loadApi(dist);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-put-path-'));
const db = await api.open(dir, { durability: 'never', autoCompact: false });
const pipeline = db.pipeline;
const value = Buffer.alloc(WORKLOAD_VALUE_BYTES, 7);
const keys = redisStyleKeys(keyCount);
const order = fixedOrder(puts, keyCount);

async function run(from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += WORKLOAD_TURN) {
    let last: Promise<void> | undefined;
    const end = Math.min(to, i + WORKLOAD_TURN);
    if (batch === 1) for (let j = i; j < end; j++) last = pipeline.put(keys[order[j]!]!, value);
    else
      for (let j = i; j < end; j += batch) {
        const ops = [];
        for (let k = j; k < Math.min(end, j + batch); k++)
          ops.push({ type: 'put' as const, key: keys[order[k]!]!, value });
        last = pipeline.batch(ops);
      }
    await last;
  }
}

try {
  for (let i = 0; i < keyCount; i += WORKLOAD_TURN) {
    let last: Promise<void> | undefined;
    for (let j = i; j < Math.min(keyCount, i + WORKLOAD_TURN); j++) last = pipeline.put(keys[j]!, value);
    await last;
  }
  await run(0, Math.min(puts, 50_000)); // warm-up
  let scavenges = 0;
  let scavengeMs = 0;
  let majors = 0;
  const gc = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      // detail.kind: 1 is a scavenge (minor), others are mark-compacts and weak callbacks.
      if ((e as unknown as { detail: { kind: number } }).detail.kind === 1) {
        scavenges++;
        scavengeMs += e.duration;
      } else majors++;
    }
  });
  gc.observe({ entryTypes: ['gc'] });
  const cpu = process.cpuUsage();
  const started = performance.now();
  await run(0, puts);
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  await new Promise((resolve) => setImmediate(resolve));
  gc.disconnect();
  const cpuUs = (used.user + used.system) / puts;
  console.log(
    `${dist ?? 'src'}: ${cpuUs.toFixed(2)} µs CPU per put, ${Math.round((puts / wallMs) * 1000)} puts/s, ` +
      `${scavenges} scavenges (${scavengeMs.toFixed(0)} ms, ${((scavengeMs * 1000) / puts).toFixed(2)} µs a put), ` +
      `${majors} other collections (${keyCount} keys, ${puts} puts${batch > 1 ? `, ${batch} per batch` : ''})`,
  );
} finally {
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
