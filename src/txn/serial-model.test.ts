// Property test: random concurrent transaction schedules, checked against a serial model.
//
// fast-check generates transactions (gets, sets, deletes, range scans over a small key space, so
// conflicts are common) and an interleaving of their steps. After the run:
// - serializable: replaying the committed transactions one by one in commit-timestamp order on a
//   Map gives exactly the reads each transaction observed, and the store's final state;
// - snapshot: every transaction read the state of all commits at or before its start timestamp
//   (plus its own writes), and no two committed transactions with overlapping lifetimes wrote
//   the same key.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Db } from '../db/db.js';
import { TxnConflictError } from './errors.js';
import { ManualEngine } from './manual-engine.js';
import type { Isolation } from './mvcc.js';
import type { Transaction } from './transaction.js';

const KEYS = ['a', 'b', 'c', 'd', 'e'];
/** RUNS: fast-check runs per isolation level (CAIRN_TXN_MODEL_RUNS overrides for long soaks). */
const RUNS = Number(process.env.CAIRN_TXN_MODEL_RUNS ?? 150);

type Op =
  | { readonly t: 'get'; readonly k: string }
  | { readonly t: 'set'; readonly k: string; readonly v: string }
  | { readonly t: 'del'; readonly k: string }
  | { readonly t: 'scan'; readonly from: string; readonly to: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('get' as const), k: fc.constantFrom(...KEYS) }),
  fc.record({ t: fc.constant('set' as const), k: fc.constantFrom(...KEYS), v: fc.string({ maxLength: 3 }) }),
  fc.record({ t: fc.constant('del' as const), k: fc.constantFrom(...KEYS) }),
  fc
    .tuple(fc.constantFrom(...KEYS), fc.constantFrom(...KEYS))
    .map(([x, y]) =>
      x < y ? { t: 'scan' as const, from: x, to: y } : { t: 'scan' as const, from: y, to: `${x}~` },
    ),
);

interface Run {
  readonly ops: readonly Op[];
  readonly reads: unknown[];
  tx?: Transaction;
  startTs?: number;
  commitTs?: number;
  committed: boolean;
  done: boolean;
}

/** apply runs `op` on a Map model (with the transaction's own writes) and returns what it reads. */
function applyModel(model: Map<string, string>, op: Op): unknown {
  switch (op.t) {
    case 'get':
      return model.get(op.k) ?? null;
    case 'set':
      model.set(op.k, op.v);
      return undefined;
    case 'del':
      model.delete(op.k);
      return undefined;
    case 'scan':
      return [...model.entries()]
        .filter(([k]) => k >= op.from && k < op.to)
        .sort(([x], [y]) => (x < y ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`);
  }
}

async function applyTx(tx: Transaction, op: Op): Promise<unknown> {
  switch (op.t) {
    case 'get':
      return (await tx.get(op.k))?.toString() ?? null;
    case 'set':
      tx.set(op.k, op.v);
      return undefined;
    case 'del':
      tx.delete(op.k);
      return undefined;
    case 'scan': {
      const out: string[] = [];
      for await (const [k, v] of tx.scan({ start: op.from, end: op.to })) out.push(`${k}=${v}`);
      return out;
    }
  }
}

async function execute(isolation: Isolation, txs: readonly (readonly Op[])[], schedule: readonly number[]) {
  const engine = new ManualEngine();
  engine.autoCommit = true;
  const db = new Db('/nonexistent', engine);
  const runs: Run[] = txs.map((ops) => ({ ops, reads: [], committed: false, done: false }));
  // Each schedule entry steps one transaction: begin, one op, or commit.
  const queue = [...schedule, ...txs.flatMap((ops, i) => Array(ops.length + 2).fill(i) as number[])];
  for (const i of queue) {
    const r = runs[i % runs.length]!;
    if (r.done) continue;
    if (r.tx === undefined) {
      r.tx = await db.begin({ isolation });
      r.startTs = r.tx.ts;
    } else if (r.reads.length < r.ops.length) {
      r.reads.push(await applyTx(r.tx, r.ops[r.reads.length]!));
    } else {
      r.done = true;
      try {
        r.commitTs = (await r.tx.commit()).ts;
        r.committed = true;
      } catch (err) {
        if (!(err instanceof TxnConflictError)) throw err;
      }
    }
  }
  const final = new Map<string, string>();
  for (const k of KEYS) {
    const v = await db.getString(k);
    if (v !== undefined) final.set(k, v);
  }
  expect(db.txnStats().readers).toBe(0);
  return { runs, final };
}

/**
 * commitOrder: the serial order of committed transactions. A transaction that wrote nothing
 * "commits" at its snapshot timestamp, which it shares with the commit that produced that
 * snapshot; it reads that commit's writes, so it goes after it.
 */
function commitOrder(x: Run, y: Run): number {
  const readOnly = (r: Run) => (r.ops.some((o) => o.t === 'set' || o.t === 'del') ? 0 : 1);
  return x.commitTs! - y.commitTs! || readOnly(x) - readOnly(y);
}

const scenario = fc.record({
  txs: fc.array(fc.array(opArb, { minLength: 1, maxLength: 5 }), { minLength: 2, maxLength: 5 }),
  schedule: fc.array(fc.nat(4), { maxLength: 40 }),
});

describe('transactions against a serial model', () => {
  it('serializable: committed transactions equal their serial replay in commit order', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ txs, schedule }) => {
        const { runs, final } = await execute('serializable', txs, schedule);
        const model = new Map<string, string>();
        const committed = runs.filter((r) => r.committed).sort(commitOrder);
        for (const r of committed) {
          const reads = r.ops.map((op) => applyModel(model, op));
          expect(reads).toEqual(r.reads);
        }
        expect(final).toEqual(model);
      }),
      { numRuns: RUNS },
    );
  });

  it('snapshot: each transaction reads the commits before its start; overlapping writers never both commit', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ txs, schedule }) => {
        const { runs, final } = await execute('snapshot', txs, schedule);
        const committed = runs.filter((r) => r.committed).sort(commitOrder);
        for (const r of runs.filter((x) => x.reads.length === x.ops.length)) {
          const model = new Map<string, string>();
          for (const c of committed) {
            if (c.commitTs! > r.startTs!) break;
            for (const op of c.ops) applyModel(model, op);
          }
          expect(r.ops.map((op) => applyModel(model, op))).toEqual(r.reads);
        }
        const writes = (r: Run) =>
          new Set(r.ops.filter((o) => o.t === 'set' || o.t === 'del').map((o) => o.k));
        for (const x of committed) {
          for (const y of committed) {
            if (x === y || !(y.startTs! < x.commitTs! && x.startTs! < y.commitTs!)) continue;
            const wy = writes(y);
            expect([...writes(x)].filter((k) => wy.has(k))).toEqual([]);
          }
        }
        const model = new Map<string, string>();
        for (const c of committed) for (const op of c.ops) applyModel(model, op);
        expect(final).toEqual(model);
      }),
      { numRuns: RUNS },
    );
  });
});
