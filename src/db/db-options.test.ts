// Options are validated at the embedded entry point before anything is opened (defects-2026-12.md
// entries 4, 6 and 15; docs/hardening.md, rule 7): a wrong value is an InvalidArgumentError that
// names the option and what it accepts, never a silent default (`durability: 'Always'` used to
// turn fsync off) and never a bare AssertionError; a refused open leaves no lock behind.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { systemClock, type Timer } from '../io/clock.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { ClosedError, InvalidArgumentError, IoError } from '../storage/errors.js';
import { type OpenOptions, open } from './db.js';

async function refused(dir: string, options: unknown): Promise<InvalidArgumentError> {
  const err = await open(dir, options as OpenOptions).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InvalidArgumentError);
  return err as InvalidArgumentError;
}

describe('open() validates its options', () => {
  for (const engine of ['cask', 'lmdb'] as const) {
    it(`refuses a durability it does not know, naming the accepted ones (${engine})`, async () => {
      const dir = tmpDir('opt');
      for (const durability of ['Always', 'sync', 'fsync', '', 1, null]) {
        const err = await refused(dir, { engine, durability });
        expect(err.message).toMatch(/option durability must be one of 'always', 'interval', 'never', got/);
      }
      // Nothing was opened: the directory is free, and a good open fsyncs every write.
      const db = await open(dir, { engine, durability: 'always' });
      await db.set('k', 'v');
      expect(db.stats().fsyncs).toBeGreaterThan(0);
      await db.close();
    });
  }

  it('refuses out-of-range values with InvalidArgumentError naming the option, not an AssertionError', async () => {
    const dir = tmpDir('opt');
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ dataFileBytes: 1 }, /option dataFileBytes must be an integer in \[4096, 2147483648\], got 1/],
      [{ syncIntervalMs: 0 }, /option syncIntervalMs must be a number of milliseconds in \(0, /],
      [{ compactionDeadRatio: 2 }, /option compactionDeadRatio must be a number in \(0, 1\], got 2/],
      [{ cacheBytes: -1 }, /option cacheBytes must be an integer in \[0, /],
      [{ compactionMinDeadBytes: '1' }, /option compactionMinDeadBytes .* got "1"/],
      [{ compactionStepMs: 5000 }, /option compactionStepMs must be an integer in \[0, 1000\], got 5000/],
      [{ autoCompact: 'yes' }, /option autoCompact must be true or false, got "yes"/],
      [{ versionRetentionMs: -5 }, /option versionRetentionMs must be a non-negative number/],
      [{ engine: 'leveldb' }, /option engine must be one of 'cask', 'lmdb', got "leveldb"/],
      [{ onEvent: 'log' }, /option onEvent must be a function/],
      [{ durabilty: 'never' }, /unknown option durabilty; the options are .*durability/],
    ];
    for (const [options, message] of cases) expect((await refused(dir, options)).message).toMatch(message);
    expect((await refused(dir, 'fast')).message).toMatch(/options must be an object, got "fast"/);
  });

  it('leaves no lock or file handle behind when it refuses (entry 6)', async () => {
    const dir = tmpDir('opt');
    await refused(dir, { versionRetentionMs: -5 });
    const db = await open(dir); // not LockedError
    await db.set('k', 'v');
    await db.close();
  });

  for (const engine of ['cask', 'lmdb'] as const) {
    it(`refuses a clock or fs missing a method before it creates anything (${engine})`, async () => {
      const parent = tmpDir('opt');
      const dir = path.join(parent, 'store');
      const cases: [Record<string, unknown>, RegExp][] = [
        [
          { clock: {} },
          /option clock must be an object with the methods nowMs, monotonicMs, every, after; nowMs, monotonicMs, every, after are not a function/,
        ],
        [
          { clock: { nowMs: () => Date.now() } },
          /option clock .*; monotonicMs, every, after are not a function/,
        ],
        [{ clock: { ...systemClock, after: 5 } }, /option clock .*; after is not a function/],
        [{ clock: null }, /option clock must be an object with the methods .*, got null/],
        // Found from outside: a clock answering a Date, a string or NaN was taken, and the new
        // store's metadata was written with it: every later open refused the directory.
        [
          { clock: { ...systemClock, nowMs: () => new Date() } },
          /option clock: nowMs\(\) must return the time as a number of milliseconds/,
        ],
        [
          { clock: { ...systemClock, nowMs: () => String(Date.now()) } },
          /option clock: nowMs\(\) must return/,
        ],
        [
          { clock: { ...systemClock, nowMs: () => Number.NaN } },
          /option clock: nowMs\(\) must return .*got NaN/,
        ],
        [
          { clock: { ...systemClock, monotonicMs: () => undefined } },
          /option clock: monotonicMs\(\) must return/,
        ],
        [
          { fs: {} },
          /option fs must be an object with the methods open, readdir, mkdir, .*; open, readdir, .* are not a function/,
        ],
        [{ fs: 'node' }, /option fs must be an object with the methods .*, got "node"/],
      ];
      for (const [options, message] of cases) {
        expect((await refused(dir, { engine, ...options })).message).toMatch(message);
        expect(fs.existsSync(dir), JSON.stringify(Object.keys(options))).toBe(false);
      }
      const db = await open(dir, { engine, clock: systemClock, fs: nodeFileSystem });
      await db.close();
    });
  }

  for (const engine of ['cask', 'lmdb'] as const) {
    for (const durability of ['always', 'interval'] as const) {
      it(`gives the directory back when close() throws: a timer that cannot be cancelled (${engine}, ${durability})`, async () => {
        const dir = tmpDir('opt');
        const broken = { ...systemClock, every: () => ({}) as Timer, after: () => ({}) as Timer };
        const db = await open(dir, { engine, durability, clock: broken });
        await db.set('k', 'v');
        await expect(db.close()).rejects.toThrow(TypeError);
        const again = await open(dir); // not LockedError
        expect((await again.get('k'))?.toString()).toBe('v');
        await again.close();
      });
    }
  }

  it('refuses a path that is not a directory, or none, with a clear error', async () => {
    const dir = tmpDir('opt');
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, 'x');
    expect((await refused(file, {})).message).toMatch(/afile is not a directory \(it is a file\)/);
    expect((await refused('', {})).message).toMatch(/the data directory must be a non-empty path/);
    expect((await refused(`${dir}/a\0b`, {})).message).toMatch(/holds a NUL byte/);
  });

  for (const engine of ['cask', 'lmdb'] as const) {
    for (const readOnly of engine === 'cask' ? [false, true] : [false]) {
      it(`a path under a file is an IoError naming it, not a raw ENOTDIR (${engine}${readOnly ? ', readOnly' : ''})`, async () => {
        const file = path.join(tmpDir('opt'), 'afile');
        fs.writeFileSync(file, 'x');
        const sub = path.join(file, 'sub');
        const err = await open(sub, { engine, readOnly }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(IoError);
        expect((err as IoError).message).toContain(`could not open the store in ${sub}: ENOTDIR`);
      });
    }
  }
});

describe('inputs are taken as they are, or refused (entry 17)', () => {
  it('refuses a scan limit that is not a non-negative integer, as transactions do', async () => {
    const db = await open(tmpDir('inputs'));
    await db.set('a', '1');
    await db.set('b', '2');
    for (const limit of [1.5, -1, '2', Number.NaN]) {
      const scan = async () => {
        for await (const _ of db.scan({ limit: limit as number }));
      };
      await expect(scan(), String(limit)).rejects.toThrow(/scan limit must be a non-negative integer/);
    }
    await db.close();
  });

  it('refuses strings with a lone surrogate instead of storing U+FFFD for them', async () => {
    const db = await open(tmpDir('inputs'));
    await expect(db.set('\ud800', 'x')).rejects.toThrow(/lone surrogate/);
    await expect(db.set('k', 'a\udc00b')).rejects.toThrow(/lone surrogate/);
    await expect(db.get('\udc00')).rejects.toBeInstanceOf(InvalidArgumentError);
    await db.set('\ud83d\ude00', 'pair'); // a well-formed pair is fine
    expect((await db.get('\u{1F600}'))?.toString()).toBe('pair');
    expect(await db.get('\ufffd')).toBeUndefined();
    await db.close();
  });
});

// The calls after open check their options and arguments the same way (found by a user's
// walk-through, 2026-12-06): a misspelt option stored a key without its expiry, or ran a
// transaction at the default isolation; null options and a non-function threw bare TypeErrors.
describe('every call validates its options and arguments', () => {
  it('refuses misspelt or malformed options by name, and stores nothing', async () => {
    const db = await open(tmpDir('opt-calls'));
    try {
      const cases: [() => Promise<unknown>, RegExp][] = [
        [
          () => db.set('a', 'v', { ttl: 100 } as never),
          /unknown option ttl; the options are expiresAt, ttlMs/,
        ],
        [() => db.set('a', 'v', null as never), /options must be an object, got null/],
        [() => db.set('a', 'v', 100 as never), /options must be an object, got 100/],
        [() => db.expire('a', { tll: 5 } as never), /unknown option tll/],
        [() => db.batch([{ type: 'set', key: 'b', value: 'v', ttl: 100 } as never]), /unknown option ttl/],
        [() => db.batch([{ type: 'delete', key: 'b', value: 'v' } as never]), /unknown option value/],
        [() => db.batch([null as never]), /a batch operation must be an object, got null/],
        [() => db.transaction(5 as never), /transaction takes a function/],
        [() => db.transaction(async () => 1, { isolaton: 'snapshot' } as never), /unknown option isolaton/],
        [() => db.begin({ iso: 'x' } as never), /unknown option iso/],
        [() => db.snapshot({ when: 1 } as never), /unknown option when/],
        [async () => db.scan({ prefx: 'zz' } as never), /unknown option prefx/],
        [
          () => db.compareAndSwap({ compare: [{ key: 'k', target: 'value', op: '=', value: 5 }] } as never),
          /'value' comparison's value must be a string or bytes, got number/,
        ],
        [
          () => db.compareAndSwap({ compare: [], success: [{ type: 'set', key: 'k', value: 5 }] } as never),
          /'set' operation's value must be a string or bytes, got number/,
        ],
        [() => db.compareAndSwap({ compare: [], success: [null] } as never), /must be an object/],
        // Found from outside: misspelt fields were ignored (`sucess` "succeeded" writing nothing).
        [
          () => db.compareAndSwap({ compare: [], sucess: [{ type: 'set', key: 'k', value: 'v' }] } as never),
          /unknown option sucess/,
        ],
        [
          () =>
            db.compareAndSwap({
              compare: [],
              success: [{ type: 'set', key: 'k', value: 'v', ttlMs: 1000 }],
            } as never),
          /unknown option ttlMs/,
        ],
        [
          () =>
            db.compareAndSwap({ compare: [], success: [{ type: 'delete', key: 'k', value: 'v' }] } as never),
          /unknown option value/,
        ],
        [
          () =>
            db.compareAndSwap({
              compare: [{ key: 'k', target: 'version', op: '=', vaule: 0 }],
            } as never),
          /unknown option vaule/,
        ],
        [
          () => db.compareAndSwap({ compare: [{ key: 'k', target: 'exists', value: true }] } as never),
          /unknown option value/,
        ],
        [
          () => db.compareAndSwap({ compare: [null] } as never),
          /every comparison of `compare` must be an object/,
        ],
      ];
      for (const [call, message] of cases) {
        const err = await call().catch((e: unknown) => e);
        expect(err, String(message)).toBeInstanceOf(InvalidArgumentError);
        expect((err as Error).message).toMatch(message);
      }
      expect(db.stats().keys).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('begin and snapshot after close are refused with ClosedError', async () => {
    const db = await open(tmpDir('opt-closed'));
    await db.close();
    await expect(db.begin()).rejects.toBeInstanceOf(ClosedError);
    await expect(db.snapshot()).rejects.toBeInstanceOf(ClosedError);
  });

  for (const engine of ['cask', 'lmdb'] as const) {
    it(`calls that would not reach the engine are refused after close too (${engine})`, async () => {
      const db = await open(tmpDir('opt-closed'), { engine });
      await db.set('a', '1');
      await db.close();
      await expect(db.batch([])).rejects.toBeInstanceOf(ClosedError);
      await expect(db.batch([{ type: 'set', key: 'b', value: 'x' }])).rejects.toBeInstanceOf(ClosedError);
      await expect(
        db.compareAndSwap({ compare: [], success: [{ type: 'set', key: 'a', value: '2' }] }),
      ).rejects.toBeInstanceOf(ClosedError);
      await expect(db.compareAndSwap({ compare: [] })).rejects.toBeInstanceOf(ClosedError);
      // stats() and txnStats() answer the last numbers after close (metrics.test.ts; found from
      // outside: stats() threw ClosedError on both engines, against the README).
      expect(db.txnStats().readers).toBe(0);
      expect(db.stats().keys).toBe(1);
      expect(db.stats().engine).toBe(engine);
      await expect(db.backupSource()).rejects.toBeInstanceOf(ClosedError);
      await expect(db.backup(tmpDir('opt-closed-backup'))).rejects.toBeInstanceOf(ClosedError);
    });
  }

  it('refuses a scan reverse that is not a boolean, in Db, transactions and snapshots', async () => {
    const db = await open(tmpDir('opt-reverse'));
    try {
      await db.set('a', '1');
      for (const reverse of ['yes', 1, null]) {
        expect(() => db.scan({ reverse: reverse as never })).toThrow(
          /scan reverse must be true or false, got/,
        );
        const tx = await db.begin();
        const snap = await db.snapshot();
        for (const reader of [tx, snap]) {
          const scan = async () => {
            for await (const _ of reader.scan({ reverse: reverse as never }));
          };
          await expect(scan()).rejects.toThrow(/scan reverse must be true or false/);
        }
        tx.rollback();
        snap.release();
      }
    } finally {
      await db.close();
    }
  });

  // Found from outside: a bound that was neither a string nor bytes passed through unchecked.
  // Db.scan({ prefix: 5 }) listed every key and { end: 5 } none; a transaction's or snapshot's
  // scan threw a bare TypeError, took an array as bytes, and ignored a misspelt option.
  it('refuses scan bounds that are not strings or bytes, in Db, transactions and snapshots', async () => {
    const db = await open(tmpDir('opt-bounds'));
    try {
      await db.batch([
        { type: 'set', key: 'a', value: '1' },
        { type: 'set', key: 'b', value: '2' },
      ]);
      const tx = await db.begin();
      const snap = await db.snapshot();
      const scanners = [(o: object) => db.scan(o), (o: object) => tx.scan(o), (o: object) => snap.scan(o)];
      for (const [i, scan] of scanners.entries()) {
        for (const name of ['start', 'end', 'prefix']) {
          for (const bound of [5, null, {}, [98], true]) {
            const all = async () => {
              for await (const _ of scan({ [name]: bound }));
            };
            const err = await all().catch((e: unknown) => e);
            expect(err, `${i} ${name} ${JSON.stringify(bound)}`).toBeInstanceOf(InvalidArgumentError);
            expect((err as Error).message).toMatch(
              new RegExp(`scan ${name} must be a string or a Uint8Array, got`),
            );
          }
        }
        const misspelt = async () => {
          for await (const _ of scan({ prefx: 'b' }));
        };
        await expect(misspelt(), String(i)).rejects.toThrow(/unknown option prefx/);
        const nul = async () => {
          for await (const _ of scan(null as never));
        };
        await expect(nul(), String(i)).rejects.toThrow(/options must be an object, got null/);
        // Good bounds still work, as strings and as bytes.
        const keys: string[] = [];
        for await (const [k] of scan({ prefix: Buffer.from('b') })) keys.push(k.toString());
        for await (const [k] of scan({ start: 'a', end: new Uint8Array([98]) })) keys.push(k.toString());
        expect(keys, String(i)).toEqual(['b', 'a']);
      }
      tx.rollback();
      snap.release();
    } finally {
      await db.close();
    }
  });

  it('rollback() and release() are idempotent, as documented: a finally may call them again', async () => {
    const db = await open(tmpDir('opt-idem'));
    try {
      const tx = await db.begin();
      tx.set('k', 'v');
      await tx.commit();
      tx.rollback(); // a no-op after commit
      expect((await db.get('k'))?.toString()).toBe('v');
      const snap = await db.snapshot();
      snap.release();
      snap.release();
      await expect(snap.get('k')).rejects.toThrow(/finished|released/);
    } finally {
      await db.close();
    }
  });
});
