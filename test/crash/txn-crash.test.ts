// Crash test for transactions with real processes: a child commits large multi-key transactions
// (TXN_KEYS keys plus a transfer between accounts) and reports each acknowledged commit; we
// SIGKILL it at random moments and reopen. Every acknowledged transaction must be there whole,
// every other one whole or absent, and the accounts' total unchanged. Revisions too: every key of
// a transaction has its commit timestamp as mod (the one acknowledged, for acknowledged ones),
// timestamps keep increasing across restarts, and the accounts' version counts add up to the
// transfers on disk. CAIRN_TXN_CRASH_CYCLES sets the number of cycles (CI: 6).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { Prng } from '../../src/stdx/prng.js';
import type { Revision } from '../../src/storage/engine.js';
import { tmpDir } from '../support/tmp-dir.js';
import { killAfterReady } from './kill-child.js';
import { ACCOUNTS, account, INITIAL, TXN_KEYS, txnKey, txnValue } from './txn-shape.js';

const CYCLES = Number(process.env.CAIRN_TXN_CRASH_CYCLES ?? 6);

/** check throws `what()` when `ok` is false (a per-key check that costs nothing when it holds). */
function check(ok: boolean, what: () => string): void {
  if (!ok) throw new Error(what());
}
const CHILD = path.join(import.meta.dirname, 'txn-writer.ts');

/** runAndKill runs the writer until killed; returns the acknowledged transaction ids and timestamps. */
async function runAndKill(dir: string, cycle: number, killAfterMs: number): Promise<[string, number][]> {
  const acks: [string, number][] = [];
  await killAfterReady(CHILD, [dir, String(cycle)], killAfterMs, (line) => {
    if (!line.startsWith('ack ')) return;
    const [id, ts] = line.slice(4).split(' ');
    acks.push([id!, Number(ts)]);
  });
  return acks;
}

describe('transaction crash test (SIGKILL)', () => {
  it(`keeps transactions whole and acknowledged ones present through ${CYCLES} kills`, {
    timeout: 60_000 + CYCLES * 10_000,
  }, async () => {
    const dir = tmpDir('txn-crash');
    const setup = await open(dir);
    await setup.batch(
      Array.from({ length: ACCOUNTS }, (_, i) => ({ type: 'set', key: account(i), value: String(INITIAL) })),
    );
    await setup.close();
    const seed = Number(process.env.CAIRN_CRASH_SEED ?? Date.now() % 1e9);
    // A failure names its seed: CAIRN_CRASH_SEED=<seed> replays the same kill times.
    console.log(`txn crash test: seed ${seed}`);
    const rng = new Prng(seed);
    const acked = new Map<string, number>();
    let seenTotal = 0;
    /** mods: each transaction's commit timestamp as found on disk, from earlier cycles. */
    const mods = new Map<string, number>();
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      for (const [id, ts] of await runAndKill(dir, cycle, rng.range(50, 400))) acked.set(id, ts);
      const db = await open(dir);
      try {
        // Every transaction on disk is whole: count keys per transaction id, and every key of it
        // carries the transaction's commit timestamp as its mod.
        const counts = new Map<string, number>();
        const before = Math.max(0, ...mods.values());
        // Every key of every transaction is checked at every cycle, so the work grows with the
        // store: a failed check throws its message directly, without an `expect` per key (four
        // of them per key made 150 cycles outrun the test's timeout).
        for await (const [k, v] of db.scan({ start: 'c', end: 'd' })) {
          const id = k.toString().split('/')[0]!;
          const value = v.toString();
          check(value === txnValue(id), () => `value of ${k}: ${value}, expected ${txnValue(id)}`);
          counts.set(id, (counts.get(id) ?? 0) + 1);
          const rev = await db.revision(k);
          check(rev !== undefined, () => `no revision for ${k}`);
          const { create, mod, version } = rev as Revision;
          check(create === mod && version === 1, () => `revision of ${k}: ${JSON.stringify(rev)}`);
          const known = mods.get(id);
          if (known === undefined) {
            mods.set(id, mod);
            // Written after the previous restart: above every timestamp from before it.
            check(
              !id.startsWith(`c${cycle}-`) || mod > before,
              () => `mod of ${k}: ${mod}, not above ${before}`,
            );
          } else check(mod === known, () => `mod of ${k}: ${mod}, expected ${known}`);
        }
        for (const [id, n] of counts) expect(n, `transaction ${id} is torn`).toBe(TXN_KEYS);
        for (const [id, ts] of acked) {
          expect(counts.get(id), `acknowledged transaction ${id} lost`).toBe(TXN_KEYS);
          expect(mods.get(id), `commit timestamp of ${id}`).toBe(ts);
        }
        // Read through get as well as scan. (Until a cycle's child acknowledges its first
        // transaction there is none to read: a loaded machine may kill a child before it does;
        // the end of the test requires that some were.)
        const first = [...acked.keys()][0];
        if (first !== undefined) expect(await db.get(txnKey(first, 0)), `${first} by get`).toBeDefined();
        let total = 0;
        let transfers = 0;
        for (let i = 0; i < ACCOUNTS; i++) {
          total += Number((await db.getString(account(i)))!);
          transfers += (await db.revision(account(i)))!.version - 1;
        }
        expect(total).toBe(ACCOUNTS * INITIAL);
        // Each transaction on disk moved money between two accounts: two writes.
        expect(transfers).toBe(2 * counts.size);
        seenTotal = counts.size;
      } finally {
        await db.close();
      }
    }
    expect(acked.size).toBeGreaterThan(0);
    expect(seenTotal).toBeGreaterThanOrEqual(acked.size);
  });
});
