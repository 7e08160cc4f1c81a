// Child process of the Db crash test (db-crash.test.ts). First it verifies the store its killed
// predecessor left (db-verify.ts: a separate process reopening it, reading every key by get and
// by scan), then WRITERS concurrent writers do set, delete and batch through the embedded API
// (durability 'always') until the parent SIGKILLs it. With VERIFY_ONLY it stops after verifying.
//
//   node --import tsx test/crash/db-writer.ts DIR CYCLE ORDER SEED KEYS_FILE [VERIFY_ONLY]
//
// Every writer touches only keys it created itself and has one operation in flight at a time,
// so the parent can tell exactly what each key may hold. Lines (one write each, so a line is
// whole or missing when the process dies, and an intent reaches the pipe before its write is
// issued):
//   `verified JSON`                 what the verification read (db-verify.ts, Verified)
//   `ready`                         writing starts
//   `i W set KEY GEN`               intent: writer W is about to set KEY to valueFor(KEY, GEN)
//   `i W del KEY`                   intent: writer W is about to delete KEY
//   `i W batch K1:G1,K2:G2,.. DEL`  intent: one atomic batch setting those keys, deleting DEL (or -)
//   `a W`                           the intent of writer W was acknowledged
import { Prng } from '../../src/stdx/prng.js';
import { type KeyOrder, keyName, valueFor } from './db-shape.js';
import { openVerified } from './db-verify.js';

const [dir, cycleArg, order, seedArg, keysFile, verifyOnly] = process.argv.slice(2);
if (
  dir === undefined ||
  cycleArg === undefined ||
  order === undefined ||
  seedArg === undefined ||
  keysFile === undefined
) {
  throw new Error('usage: db-writer DIR CYCLE ORDER SEED KEYS_FILE [VERIFY_ONLY]');
}
const cycle = Number(cycleArg);
const WRITERS = 16;
/** BATCH_SETS: new keys a batch sets (it also deletes one older key of the writer, if any). */
const BATCH_SETS = 3;

const { db, verified } = await openVerified(dir, keysFile);
await new Promise<void>((resolve, reject) =>
  process.stdout.write(`verified ${JSON.stringify(verified)}\n`, (err) => (err ? reject(err) : resolve())),
);
if (verifyOnly !== undefined) {
  await db.close();
  process.exit(0);
}
process.stdout.write('ready\n');

let nextKey = 0;
let gen = 0;
/**
 * say writes a line; `await say(...)` waits until it has reached the pipe. Node writes to a
 * pipe asynchronously, so an intent must be flushed before its write is issued: a line still in
 * the process's buffer at the kill is lost, while the write it announced may be on disk. Lines
 * leave in order, so a flushed intent also means the acknowledgement before it got out.
 */
const say = (line: string): Promise<void> =>
  new Promise((resolve, reject) => {
    process.stdout.write(`${line}\n`, (err) => (err ? reject(err) : resolve()));
  });

async function writer(w: number): Promise<void> {
  const rng = new Prng(Number(seedArg) * 31 + w);
  /** live: keys this writer created whose last acknowledged write is a set. */
  const live: string[] = [];
  const takeLive = (): string | undefined =>
    live.length === 0 ? undefined : (live.splice(rng.int(live.length), 1)[0] as string);
  for (;;) {
    const roll = rng.int(100);
    if (roll < 55) {
      const key = keyName(order as KeyOrder, cycle, nextKey++);
      const g = ++gen;
      await say(`i ${w} set ${key} ${g}`);
      await db.set(Buffer.from(key), Buffer.from(valueFor(key, g)));
      void say(`a ${w}`);
      live.push(key);
    } else if (roll < 65 && live.length > 0) {
      // Overwrite one of ours: the key keeps its place, the value changes.
      const key = live[rng.int(live.length)] as string;
      const g = ++gen;
      await say(`i ${w} set ${key} ${g}`);
      await db.set(Buffer.from(key), Buffer.from(valueFor(key, g)));
      void say(`a ${w}`);
    } else if (roll < 80 && live.length > 0) {
      const key = takeLive() as string;
      await say(`i ${w} del ${key}`);
      await db.delete(Buffer.from(key));
      void say(`a ${w}`);
    } else {
      const sets = Array.from({ length: BATCH_SETS }, () => ({
        key: keyName(order as KeyOrder, cycle, nextKey++),
        gen: ++gen,
      }));
      const del = takeLive();
      await say(`i ${w} batch ${sets.map((s) => `${s.key}:${s.gen}`).join(',')} ${del ?? '-'}`);
      await db.batch([
        ...sets.map((s) => ({
          type: 'set' as const,
          key: Buffer.from(s.key),
          value: Buffer.from(valueFor(s.key, s.gen)),
        })),
        ...(del === undefined ? [] : [{ type: 'delete' as const, key: Buffer.from(del) }]),
      ]);
      void say(`a ${w}`);
      for (const s of sets) live.push(s.key);
    }
  }
}

await Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)));
