// Child process of the transaction crash test: runs large multi-key transactions on a durable
// store until its parent SIGKILLs it, printing one line per acknowledged commit.
//
//   node --import tsx test/crash/txn-writer.ts DIR CYCLE
//
// Transaction `cC-wW-I` writes TXN_KEYS keys `cC-wW-I/NNN` (value: its id, padded) and moves
// money between two of ACCOUNTS accounts (read-modify-write under serializable isolation).
// Lines: `ready`, `ack ID TS` (TS: the commit timestamp, which is every written key's mod).
import { open } from '../../src/db/db.js';
import { ACCOUNTS, account, TXN_KEYS, txnKey, txnValue } from './txn-shape.js';

const [dir, cycle] = process.argv.slice(2);
if (dir === undefined || cycle === undefined) throw new Error('usage: txn-writer DIR CYCLE');
const WRITERS = 4;

const db = await open(dir, { dataFileBytes: 256 * 1024 });
process.stdout.write('ready\n');

async function writer(w: number): Promise<void> {
  for (let i = 0; ; i++) {
    const id = `c${cycle}-w${w}-${i}`;
    const from = (i * 7 + w) % ACCOUNTS;
    const to = (from + 1 + (i % (ACCOUNTS - 1))) % ACCOUNTS;
    const { ts } = await db.runTransaction(
      async (tx) => {
        for (let j = 0; j < TXN_KEYS; j++) tx.set(txnKey(id, j), txnValue(id));
        const a = Number((await tx.get(account(from)))!.toString());
        const b = Number((await tx.get(account(to)))!.toString());
        tx.set(account(from), String(a - 1));
        tx.set(account(to), String(b + 1));
      },
      { maxAttempts: 1000 },
    );
    process.stdout.write(`ack ${id} ${ts}\n`);
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
