// Crash test for transactions with real processes: a child commits large multi-key transactions
// (TXN_KEYS keys plus a transfer between accounts) and reports each acknowledged commit; we
// SIGKILL it at random moments and reopen. Every acknowledged transaction must be there whole,
// every other one whole or absent, and the accounts' total unchanged. CAIRN_TXN_CRASH_CYCLES
// sets the number of cycles (CI: 6).
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { Prng } from '../../src/stdx/prng.js';
import { tmpDir } from '../support/tmp-dir.js';
import { killAfterReady } from './kill-child.js';
import { ACCOUNTS, account, INITIAL, TXN_KEYS, txnKey, txnValue } from './txn-shape.js';

const CYCLES = Number(process.env.CAIRN_TXN_CRASH_CYCLES ?? 6);
const CHILD = path.join(import.meta.dirname, 'txn-writer.ts');

async function runAndKill(dir: string, cycle: number, killAfterMs: number): Promise<string[]> {
  const acks: string[] = [];
  await killAfterReady(CHILD, [dir, String(cycle)], killAfterMs, (line) => {
    if (line.startsWith('ack ')) acks.push(line.slice(4));
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
    const rng = new Prng(Number(process.env.CAIRN_CRASH_SEED ?? Date.now() % 1e9));
    const acked: string[] = [];
    let seenTotal = 0;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      acked.push(...(await runAndKill(dir, cycle, rng.range(50, 400))));
      const db = await open(dir);
      try {
        // Every transaction on disk is whole: count keys per transaction id.
        const counts = new Map<string, number>();
        for await (const [k, v] of db.scan({ start: 'c', end: 'd' })) {
          const id = k.toString().split('/')[0]!;
          expect(v.toString(), `value of ${k}`).toBe(txnValue(id));
          counts.set(id, (counts.get(id) ?? 0) + 1);
        }
        for (const [id, n] of counts) expect(n, `transaction ${id} is torn`).toBe(TXN_KEYS);
        for (const id of acked) expect(counts.get(id), `acknowledged transaction ${id} lost`).toBe(TXN_KEYS);
        expect(await db.get(txnKey(acked[0] ?? 'none', 0))).toBeDefined();
        let total = 0;
        for (let i = 0; i < ACCOUNTS; i++) total += Number((await db.getString(account(i)))!);
        expect(total).toBe(ACCOUNTS * INITIAL);
        seenTotal = counts.size;
      } finally {
        await db.close();
      }
    }
    expect(acked.length).toBeGreaterThan(0);
    expect(seenTotal).toBeGreaterThanOrEqual(acked.length);
  });
});
