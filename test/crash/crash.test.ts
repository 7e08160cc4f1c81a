// Crash test with real processes: a child writes in `always` mode and reports every
// acknowledged write; we SIGKILL it at random moments, reopen the store and check that every
// acknowledged write survived, every batch is all there or not there, and recovery found
// nothing worse than a torn tail. CAIRN_CRASH_CYCLES sets the number of cycles (CI: 20).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/stdx/prng.js';
import { openCask } from '../../src/storage/cask/cask-engine.js';
import { tmpDir } from '../support/tmp-dir.js';
import { killAfterReady } from './kill-child.js';

const CYCLES = Number(process.env.CAIRN_CRASH_CYCLES ?? 20);
const CHILD = path.join(import.meta.dirname, 'crash-writer.ts');
const TOLERATED = new Set(['torn-tail', 'torn-batch', 'leftover-temp', 'retired-file', 'orphan-hint']);

/** FAR_EXPIRES_AT: crash-writer.ts's expiry for `ttl` puts (a copy: importing would run the writer). */
const FAR_EXPIRES_AT = Date.UTC(2100, 0, 1);

interface Acks {
  puts: Map<string, string>;
  ttl: Map<string, string>;
  batches: string[];
  hot: Map<string, string>;
}

async function runAndKill(dir: string, cycle: number, killAfterMs: number): Promise<Acks> {
  const acks: Acks = { puts: new Map(), ttl: new Map(), batches: [], hot: new Map() };
  await killAfterReady(CHILD, [dir, String(cycle)], killAfterMs, (line) => {
    const [, kind, a, c] = line.split(' ');
    if (kind === 'put') acks.puts.set(a!, c!);
    else if (kind === 'ttl') acks.ttl.set(a!, c!);
    else if (kind === 'batch') acks.batches.push(a!);
    else if (kind === 'hot') acks.hot.set(a!, c!);
  });
  return acks;
}

describe('crash test (SIGKILL)', () => {
  it(`keeps every acknowledged write through ${CYCLES} kills`, {
    timeout: 60_000 + CYCLES * 5_000,
  }, async () => {
    const dir = tmpDir('crash');
    const rng = new Prng(Number(process.env.CAIRN_CRASH_SEED ?? Date.now() % 1e9));
    const allPuts = new Map<string, string>();
    const allTtl = new Map<string, string>();
    const allBatches: string[] = [];
    const hot = new Map<string, string>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const acks = await runAndKill(dir, cycle, rng.range(20, 300));
      for (const [k, v] of acks.puts) allPuts.set(k, v);
      for (const [k, v] of acks.ttl) allTtl.set(k, v);
      allBatches.push(...acks.batches);
      for (const [k, v] of acks.hot) hot.set(k, v);

      const db = await openCask(dir, { dataFileBytes: 64 * 1024, autoCompact: false });
      try {
        const bad = db.recovery.problems.filter((p) => !TOLERATED.has(p.kind));
        expect(bad, `cycle ${cycle}: recovery found damage`).toEqual([]);
        // Every write acknowledged in this cycle, and (to keep a long run linear) every earlier
        // one on every tenth cycle and on the last: later crashes and compactions must not lose them.
        const full = cycle % 10 === 9 || cycle === CYCLES - 1;
        for (const [k, v] of full ? allPuts : acks.puts) {
          const got = await db.get(Buffer.from(k));
          const value = got === undefined ? undefined : String(got).replace(/~+$/, '');
          expect(value, `cycle ${cycle}: ${k}`).toBe(v);
        }
        // Puts with an expiry keep both their value and their expiry.
        for (const [k, v] of full ? allTtl : acks.ttl) {
          expect(String(await db.get(Buffer.from(k))), `cycle ${cycle}: ${k}`).toBe(v);
          expect(await db.expiry(Buffer.from(k)), `cycle ${cycle}: expiry of ${k}`).toBe(FAR_EXPIRES_AT);
        }
        for (const id of full ? allBatches : acks.batches) {
          for (let j = 0; j < 4; j++) {
            expect(String(await db.get(Buffer.from(`${id}-${j}`))), `batch ${id}`).toBe(id);
          }
        }
        // Batches that were written but not acknowledged must be whole or absent.
        for await (const [key, value] of db.scan({
          start: Buffer.from(`c${cycle}-`),
          end: Buffer.from(`c${cycle}.`),
        })) {
          const name = String(key);
          const m = /^(c\d+-w\d+-\d+)-[0-3]$/.exec(name);
          if (m === null) continue;
          expect(String(value)).toBe(m[1]);
          for (let j = 0; j < 4; j++)
            expect(await db.has(Buffer.from(`${m[1]}-${j}`)), `torn batch ${m[1]}`).toBe(true);
        }
        // A hot key holds its last acknowledged value or a later one, never an older one.
        for (const [k, v] of hot) {
          const got = String(await db.get(Buffer.from(k)));
          expect(got >= v, `hot key ${k}: ${got} < acknowledged ${v}`).toBe(true);
        }
      } finally {
        await db.close();
      }
    }
    expect(allPuts.size).toBeGreaterThan(CYCLES);
    expect(allTtl.size).toBeGreaterThan(0);
  });
});
