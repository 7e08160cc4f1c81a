// The bank-transfer invariant over RESP: many connections move money between accounts with
// WATCH/MULTI/EXEC retry loops and with TXN.BEGIN/TXN.COMMIT, while auditors sum every account
// inside a snapshot (TXN.BEGIN ISOLATION SNAPSHOT + one GET per account, and MULTI + MGET + EXEC). Money is
// never created or destroyed, so every audit and the final state must show the initial total.
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectIoredis, type Running, startServer } from './support.js';

const ACCOUNTS = 100;
const INITIAL_BALANCE = 1000;
const CLIENTS = 20;
const TRANSFERS_PER_CLIENT = 200;
const TOTAL = ACCOUNTS * INITIAL_BALANCE;
/** ATTEMPTS_MAX: a transfer that keeps losing races this often fails the test (livelock). */
const ATTEMPTS_MAX = 1000;

const account = (i: number): string => `acct:${String(i).padStart(3, '0')}`;
const ALL = Array.from({ length: ACCOUNTS }, (_, i) => account(i));

let r: Running;
const clients: Redis[] = [];

async function connect(): Promise<Redis> {
  const c = await connectIoredis(r.port);
  clients.push(c);
  return c;
}

/** pick returns two distinct accounts and an amount, deterministically from a seed. */
function pick(seed: number): [string, string, number] {
  const from = (seed * 7919) % ACCOUNTS;
  const to = (from + 1 + ((seed * 104729) % (ACCOUNTS - 1))) % ACCOUNTS;
  return [account(from), account(to), 1 + (seed % 50)];
}

/** transferWatch: WATCH both, read, MULTI/EXEC; a nil EXEC means someone interfered: retry. */
async function transferWatch(io: Redis, seed: number): Promise<number> {
  const [from, to, amount] = pick(seed);
  for (let attempt = 1; attempt <= ATTEMPTS_MAX; attempt++) {
    await io.watch(from, to);
    const [a, b] = (await io.mget(from, to)).map(Number) as [number, number];
    if (a < amount) {
      await io.unwatch();
      return attempt;
    }
    const result = await io
      .multi()
      .set(from, String(a - amount))
      .set(to, String(b + amount))
      .exec();
    if (result !== null) return attempt;
  }
  throw new Error('transfer never got through');
}

/** transferTxn: an interactive transaction; CONFLICT at commit means retry. */
async function transferTxn(io: Redis, seed: number): Promise<number> {
  const [from, to, amount] = pick(seed);
  for (let attempt = 1; attempt <= ATTEMPTS_MAX; attempt++) {
    await io.call('txn.begin');
    const a = Number(await io.get(from));
    if (a < amount) {
      await io.call('txn.rollback');
      return attempt;
    }
    await io.decrby(from, amount);
    await io.incrby(to, amount);
    try {
      await io.call('txn.commit');
      return attempt;
    } catch (err) {
      if (!String(err).includes('CONFLICT')) throw err;
    }
  }
  throw new Error('transfer never got through');
}

const sum = (values: (string | null)[]): number => values.reduce((s, v) => s + Number(v), 0);

beforeAll(async () => {
  r = await startServer();
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await r.stop();
});

it('concurrent transfers keep the total in every snapshot audit and at the end', {
  timeout: 60_000,
}, async () => {
  const setup = await connect();
  await setup.mset(...ALL.flatMap((k) => [k, String(INITIAL_BALANCE)]));
  const workers = await Promise.all(Array.from({ length: CLIENTS }, () => connect()));
  const snapshotAuditor = await connect();
  const multiAuditor = await connect();

  let done = false;
  const audits: number[] = [];
  // One GET per account, one round trip each: transfers commit between them, so only a real
  // snapshot keeps the sum right (an MGET alone is atomic anyway).
  const auditSnapshot = async (): Promise<void> => {
    while (!done) {
      await snapshotAuditor.call('txn.begin', 'isolation', 'snapshot');
      const values: (string | null)[] = [];
      for (const k of ALL) values.push(await snapshotAuditor.get(k));
      audits.push(sum(values));
      audits.push(sum(await snapshotAuditor.mget(...ALL)));
      await snapshotAuditor.call('txn.commit');
    }
  };
  const auditMulti = async (): Promise<void> => {
    while (!done) {
      const result = await multiAuditor
        .multi()
        .mget(...ALL)
        .exec();
      audits.push(sum(result![0]![1] as (string | null)[]));
    }
  };

  let retries = 0;
  const work = workers.map(async (io, w) => {
    for (let i = 0; i < TRANSFERS_PER_CLIENT; i++) {
      const seed = w * TRANSFERS_PER_CLIENT + i + 1;
      const attempts = w % 2 === 0 ? await transferWatch(io, seed) : await transferTxn(io, seed);
      retries += attempts - 1;
    }
  });
  const auditing = [auditSnapshot(), auditMulti()];
  await Promise.all(work);
  done = true;
  await Promise.all(auditing);

  expect(CLIENTS * TRANSFERS_PER_CLIENT).toBeGreaterThanOrEqual(2000);
  expect(audits.length).toBeGreaterThan(10);
  expect(audits.filter((t) => t !== TOTAL)).toEqual([]);
  const final = await setup.mget(...ALL);
  expect(sum(final)).toBe(TOTAL);
  expect(final.every((v) => v !== null && Number(v) >= 0)).toBe(true);
  // Contention is real: some transfers had to retry (otherwise the test proves little).
  expect(retries).toBeGreaterThan(0);
});
