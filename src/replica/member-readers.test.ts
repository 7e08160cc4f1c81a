// retireReadersOnChange: a member's open snapshots fail, retryably, after a change of leadership
// and after a snapshot from the leader replaced its engine; not before, and not after it stops.
import { describe, expect, it } from 'vitest';
import { Db } from '../db/db.js';
import type { Engine } from '../storage/engine.js';
import { TxnConflictError } from '../txn/errors.js';
import { ManualEngine } from '../txn/manual-engine.js';
import { type ReaderEvents, retireReadersOnChange } from './member-readers.js';

class FakeReplica implements ReaderEvents {
  leaderReady = false;
  readonly onEngine = new Set<(engine: Engine) => void>();
  private readonly listeners = new Set<() => void>();

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  change(leaderReady: boolean): void {
    this.leaderReady = leaderReady;
    for (const l of this.listeners) l();
  }

  replaceEngine(engine: Engine): void {
    for (const f of this.onEngine) f(engine);
  }
}

async function setup() {
  const engine = new ManualEngine();
  engine.autoCommit = true;
  const db = new Db('/nonexistent', engine);
  await db.set('a', '1');
  const replica = new FakeReplica();
  const leading: boolean[] = [];
  const stop = retireReadersOnChange(replica, db.pipeline.mvcc, (ready) => leading.push(ready));
  return { db, engine, replica, leading, stop };
}

describe('retireReadersOnChange', () => {
  it('an engine replaced by a snapshot from the leader retires the snapshots open across it', async () => {
    const { db, engine, replica } = await setup();
    const snap = await db.snapshot();
    expect(await snap.getString('a')).toBe('1');
    replica.replaceEngine(engine);
    await expect(snap.getString('a')).rejects.toThrow(TxnConflictError);
    await expect(snap.getString('a')).rejects.toThrow(/replaced this member's state/);
    // A snapshot taken after the replacement reads.
    const later = await db.snapshot();
    expect(await later.getString('a')).toBe('1');
    later.release();
  });

  it('a change of leadership retires them too, and says which way it went; a repeat of the same state does not', async () => {
    const { db, replica, leading } = await setup();
    const snap = await db.snapshot();
    replica.change(false); // no change: it was not leading
    expect(await snap.getString('a')).toBe('1');
    replica.change(true);
    await expect(snap.getString('a')).rejects.toThrow(TxnConflictError);
    expect(leading).toEqual([true]);
  });

  it('stops when told', async () => {
    const { db, engine, replica, stop } = await setup();
    stop();
    const snap = await db.snapshot();
    replica.replaceEngine(engine);
    replica.change(true);
    expect(await snap.getString('a')).toBe('1');
    snap.release();
  });
});
