// The cask engine's `write` alone, in process: the workload of put-path.ts (100-byte values to
// random keys of a store that holds them all, in turns of WORKLOAD_TURN writes, durability 'never',
// compaction off, the servers' value cache) without the write pipeline above it, so the two
// together split a SET's cost below RESP into the engine's part and the pipeline's. Each write
// carries the revision the pipeline would give it. Prints CPU µs per write. For A/B runs,
// `--dist DIR` loads the built tree `DIR/dist/src`; alternate the builds, this VM drifts.
//
//   npx tsx bench/engine-write.ts [--keys N] [--writes N] [--dist DIR]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_CACHE_BYTES } from '../src/storage/cask/cask-options.js';
import {
  argValue,
  fixedOrder,
  loadCask,
  redisStyleKeys,
  WORKLOAD_TURN,
  WORKLOAD_VALUE_BYTES,
  workloadSize,
} from './build-under-test.js';

const WRITES_DEFAULT = 1_000_000;

const { keyCount, count: writes } = workloadSize('--writes', WRITES_DEFAULT);
const dist = argValue('--dist');
const { openCask } = await loadCask(dist);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-engine-write-'));
const engine = await openCask(dir, {
  durability: 'never',
  autoCompact: false,
  cacheBytes: DEFAULT_CACHE_BYTES,
});
const value = Buffer.alloc(WORKLOAD_VALUE_BYTES, 7);
const keys = redisStyleKeys(keyCount);
const order = fixedOrder(writes, keyCount);
let ts = engine.lastTs();
const created = new Float64Array(keyCount);
const versions = new Uint32Array(keyCount);

async function run(from: number, to: number, pick: (i: number) => number): Promise<void> {
  for (let i = from; i < to; i += WORKLOAD_TURN) {
    let last: Promise<void> | undefined;
    for (let j = i; j < Math.min(to, i + WORKLOAD_TURN); j++) {
      const k = pick(j);
      ts++;
      if (versions[k] === 0) created[k] = ts;
      versions[k] = (versions[k] as number) + 1;
      last = engine.write(ts, [
        {
          type: 'put',
          key: keys[k] as Buffer,
          value,
          expiresAt: undefined,
          create: created[k] as number,
          version: versions[k] as number,
        },
      ]);
    }
    await last;
  }
}

try {
  await run(0, keyCount, (i) => i);
  await run(0, Math.min(writes, 50_000), (i) => order[i] as number); // warm-up
  const cpu = process.cpuUsage();
  await run(0, writes, (i) => order[i] as number);
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / writes;
  console.log(
    `${dist ?? 'src'}: engine.write ${cpuUs.toFixed(2)} µs CPU per write (${keyCount} keys, ${writes} writes)`,
  );
} finally {
  await engine.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
