import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import type { Clock } from '../../io/clock.js';
import { CommandTable } from './command-table.js';
import { allCommands } from './commands/index.js';
import { Session } from './session.js';
import { TxnKeyStore } from './txn-key-store.js';

let db: Db;

beforeAll(async () => {
  db = await open(tmpDir('resp-session'));
});

afterAll(async () => {
  await db.close();
});

/** manualClock: a Clock whose time moves only by advance(), which runs the timers then due. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0;
  let timers: { at: number; fn: () => void; cancelled: boolean }[] = [];
  const after = (ms: number, fn: () => void) => {
    const timer = { at: now + ms, fn, cancelled: false };
    timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  };
  return {
    nowMs: () => now,
    monotonicMs: () => now,
    every: () => {
      throw new Error('not used');
    },
    after,
    advance(ms) {
      now += ms;
      const due = timers.filter((t) => t.at <= now && !t.cancelled);
      timers = timers.filter((t) => t.at > now && !t.cancelled);
      for (const t of due) t.fn();
    },
  };
}

describe('Session', () => {
  it('queues copies of the arguments, not views that pin the socket chunk', () => {
    const session = new Session(db);
    const spec = new CommandTable(allCommands()).get('set')!;
    // As the parser hands them out: views into one large chunk.
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const args = [chunk.subarray(0, 3), chunk.subarray(3, 4), chunk.subarray(4, 9)];
    session.multi();
    session.enqueue(spec, args);
    chunk.fill(0x7a);
    const [queued] = session.takeQueue().commands;
    expect(queued!.args.map((a) => a.toString())).toEqual(['aaa', 'a', 'aaaaa']);
    for (const a of queued!.args) expect(a.buffer).not.toBe(chunk.buffer);
    // One allocation of exactly the argument bytes.
    expect(queued!.args[0]!.buffer.byteLength).toBe(9);
    session.close();
  });

  it('close releases the watch and rolls back the open transaction', async () => {
    const session = new Session(db);
    const before = db.txnStats().readers;
    session.watch([Buffer.from('k')]);
    session.begin(new TxnKeyStore(await db.begin()));
    expect(db.txnStats().readers).toBe(before + 2);
    session.close();
    expect(db.txnStats().readers).toBe(before);
  });

  it('a transaction begun after the connection closed is rolled back at once, not leaked', async () => {
    const session = new Session(db);
    const before = db.txnStats().readers;
    const pending = db.begin();
    session.close();
    const tx = await pending;
    expect(() => session.begin(new TxnKeyStore(tx))).toThrow('connection closed');
    expect(tx.finished).toBe(true);
    expect(() => session.watch([Buffer.from('k')])).toThrow('connection closed');
    expect(db.txnStats().readers).toBe(before);
  });

  it('drops an idle watch and rolls back an idle transaction, releasing their versions', async () => {
    const idleMs = 50;
    const session = new Session(db, idleMs);
    const before = db.txnStats().readers;
    session.watch([Buffer.from('idle:w')]);
    const tx = await db.begin();
    session.begin(new TxnKeyStore(tx));
    expect(db.txnStats().readers).toBe(before + 2);
    await new Promise((r) => setTimeout(r, idleMs * 3));
    expect(db.txnStats().readers).toBe(before);
    expect(tx.finished).toBe(true);
    expect(session.txn).toBeUndefined();
    expect(session.rolledBackForIdleness).toMatch(/rolled back after 50 ms idle/);
    // The dropped watch fails its EXEC; TXN.COMMIT reports the rollback and ends the state.
    expect(session.takeWatch()?.changed()).toBe(true);
    expect(() => session.endTxn('TXN.COMMIT')).toThrow(/rolled back after 50 ms idle/);
    expect(session.rolledBackForIdleness).toBeUndefined();
    session.close();
  });

  it('keeps a watch and a transaction of a connection that stays active, or busy', async () => {
    const idleMs = 60;
    let busy = false;
    const session = new Session(db, idleMs, () => busy);
    session.watch([Buffer.from('idle:a')]);
    session.begin(new TxnKeyStore(await db.begin()));
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, idleMs / 3));
      session.touch();
    }
    busy = true; // a command running longer than idleMs
    await new Promise((r) => setTimeout(r, idleMs * 3));
    busy = false;
    session.touch();
    expect(session.txn).toBeDefined();
    expect(session.rolledBackForIdleness).toBeUndefined();
    expect(session.takeWatch()?.changed()).toBe(false);
    session.endTxn('TXN.ROLLBACK')?.tx.rollback();
    session.close();
  });

  it('a second WATCH of a key keeps the first watch', async () => {
    const session = new Session(db);
    session.watch([Buffer.from('w')]);
    await db.set('w', '1');
    session.watch([Buffer.from('w')]);
    const watch = session.takeWatch();
    expect(watch?.changed()).toBe(true);
    watch?.release();
    session.close();
  });

  it('measures idleness with the clock it is given', async () => {
    const idleMs = 1000;
    const clock = manualClock();
    const session = new Session(db, idleMs, () => false, clock);
    const tx = await db.begin();
    session.begin(new TxnKeyStore(tx));
    clock.advance(idleMs / 2);
    session.touch();
    // The first timer finds the session active half a period ago and waits the rest.
    clock.advance(idleMs / 2);
    expect(session.txn).toBeDefined();
    clock.advance(idleMs / 2);
    expect(tx.finished).toBe(true);
    expect(session.rolledBackForIdleness).toMatch(/rolled back after 1000 ms idle/);
    session.close();
  });
});
