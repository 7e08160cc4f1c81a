// The bank-transfer invariant: 10,000 transfers between 100 accounts run as concurrent
// serializable transactions on a durable cask store, while auditors sum every account in
// snapshots. No snapshot may ever see a different total, and neither may a reopened store.
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { open } from '../db/db.js';
import { Prng } from '../stdx/prng.js';
import type { Isolation } from './mvcc.js';

const ACCOUNTS = 100;
const INITIAL = 1000;
/** TRANSFERS, WORKERS: 10,000 transfers, at most WORKERS transactions in flight at once. */
const TRANSFERS = Number(process.env.CAIRN_BANK_TRANSFERS ?? 10_000);
const WORKERS = 200;
/** ATTEMPTS: retries per transfer; contention on 100 accounts with 200 in flight is high. */
const ATTEMPTS = 1000;

const account = (i: number) => `acct:${String(i).padStart(3, '0')}`;

async function bank(isolation: Isolation) {
  const dir = tmpDir('bank');
  let db = await open(dir);
  await db.batch(
    Array.from({ length: ACCOUNTS }, (_, i) => ({ type: 'set', key: account(i), value: String(INITIAL) })),
  );
  const expected = ACCOUNTS * INITIAL;
  const prng = new Prng(42);
  let next = 0;
  let committed = 0;
  let audits = 0;
  let running = true;

  const sum = async () => {
    const snap = await db.snapshot();
    try {
      let total = 0;
      let count = 0;
      for await (const [, v] of snap.scan({ prefix: 'acct:' })) {
        total += Number(v.toString());
        count++;
      }
      expect(count).toBe(ACCOUNTS);
      // Point reads spread over many event-loop turns, so commits land between them: only a
      // real snapshot keeps this sum right.
      let pointTotal = 0;
      for (let i = 0; i < ACCOUNTS; i++) {
        pointTotal += Number((await snap.get(account(i)))!.toString());
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      expect(pointTotal).toBe(total);
      return total;
    } finally {
      snap.release();
    }
  };

  const worker = async () => {
    while (next < TRANSFERS) {
      next++;
      const from = prng.int(ACCOUNTS);
      const to = (from + 1 + prng.int(ACCOUNTS - 1)) % ACCOUNTS;
      const amount = 1 + prng.int(50);
      await db.transaction(
        async (tx) => {
          const a = Number((await tx.get(account(from)))!.toString());
          const b = Number((await tx.get(account(to)))!.toString());
          if (a < amount) return; // insufficient funds: a read-only transaction
          tx.set(account(from), String(a - amount));
          tx.set(account(to), String(b + amount));
        },
        { isolation, maxAttempts: ATTEMPTS },
      );
      committed++;
    }
  };
  const auditor = async () => {
    while (running) {
      expect(await sum()).toBe(expected);
      audits++;
      await new Promise((r) => setImmediate(r));
    }
  };

  const auditors = [auditor(), auditor()];
  await Promise.all(Array.from({ length: WORKERS }, worker));
  running = false;
  await Promise.all(auditors);
  expect(committed).toBe(TRANSFERS);
  expect(audits).toBeGreaterThan(0);
  expect(await sum()).toBe(expected);
  const stats = db.txnStats();
  expect(stats.readers).toBe(0);
  expect(stats.versionsRetained).toBe(0);
  await db.close();
  db = await open(dir);
  expect(await sum()).toBe(expected);
  await db.close();
  return stats;
}

describe('bank transfers', () => {
  it('serializable: 10,000 concurrent transfers keep the total in every snapshot and after reopen', {
    timeout: 120_000,
  }, async () => {
    const stats = await bank('serializable');
    expect(stats.conflicts).toBeGreaterThan(0); // contention was real
  });

  it('snapshot isolation keeps the total too (each transfer writes both accounts it reads)', {
    timeout: 120_000,
  }, async () => {
    await bank('snapshot');
  });
});
