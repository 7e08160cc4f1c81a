import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../../test/support/tmp-dir.js';
import { type Db, open } from '../../db/db.js';
import { Session } from './session.js';
import { TxnKeyStore } from './txn-key-store.js';

let db: Db;

beforeAll(async () => {
  db = await open(tmpDir('resp-session'));
});

afterAll(async () => {
  await db.close();
});

describe('Session', () => {
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
});
