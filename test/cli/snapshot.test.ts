// cairn snapshot save/restore end to end against a real `cairn serve`: a snapshot taken under
// concurrent writes restores to a store holding a prefix of the writes in commit order with
// every write acknowledged before the save; the restored directory serves as a single server;
// --dir snapshots of a stopped store; refusals (an existing FILE, a damaged archive, a
// non-empty DIR, a multi-member seed) leave nothing behind.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CairnClient } from '../../src/client/client.js';
import { open } from '../../src/db/db.js';
import { freePort } from '../support/ports.js';
import { AckLog, expectPrefix, modTimes, shuffledKeys } from '../support/snapshot-check.js';
import { tmpDir } from '../support/tmp-dir.js';
import { builtChildren, cairn, type ServedCairn, serveCairn } from './support.js';

const children = builtChildren();

interface Server extends ServedCairn {
  readonly http: number;
}

async function serve(dir: string): Promise<Server> {
  const http = await freePort();
  const served = await serveCairn(
    ['--dir', dir, '--http', `127.0.0.1:${http}`, '--log-level', 'warn'],
    children,
  );
  return { ...served, http };
}

describe('cairn snapshot save --endpoints (a single server)', () => {
  it('under writes: restores to a prefix holding every write acknowledged before the save, and serves', async () => {
    const dir = tmpDir('snap-src');
    const server = await serve(dir);
    const log = new AckLog(shuffledKeys(20_000, 7));
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => CairnClient.connect('127.0.0.1', server.resp)),
    );
    const writers = clients.map((c) => log.run(c));
    while (log.acked.size < 1000) await new Promise((r) => setTimeout(r, 5));
    const ackedBefore = new Set(log.acked);
    const work = tmpDir('snap-file');
    const file = path.join(work, 'store.snap');
    // An address where nothing listens first: the endpoints are tried in order (as etcdctl's).
    const nobody = await freePort();
    const saved = await cairn(
      work,
      'snapshot',
      'save',
      file,
      '--endpoints',
      `127.0.0.1:${nobody},127.0.0.1:${server.http}`,
      '--json',
    );
    expect(saved.stderr).toBe('');
    expect(saved.code).toBe(0);
    const ackedDuring = log.acked.size;
    log.stopped = true;
    await Promise.all(writers);
    await Promise.all(clients.map((c) => c.close()));
    await server.stop();
    const summary = JSON.parse(saved.out) as { keys: number; files: number; lastTs: number };
    expect(summary.keys).toBeGreaterThanOrEqual(ackedBefore.size);
    expect(fs.readdirSync(work)).toEqual(['store.snap']);

    const restoredDir = path.join(tmpDir('snap-restore'), 'restored');
    const restored = await cairn(work, 'snapshot', 'restore', file, '--dir', restoredDir);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    const held = await expectPrefix(restoredDir, ackedBefore, await modTimes(dir));
    expect(held).toBe(summary.keys);
    expect(held).toBeLessThanOrEqual(ackedDuring + clients.length);

    // The restored directory is an ordinary single server.
    const again = await serve(restoredDir);
    const client = await CairnClient.connect('127.0.0.1', again.resp);
    const one = [...ackedBefore][0] as string;
    expect((await client.get(one))?.toString()).toBe(`value-of-${one}`);
    await client.set('after-restore', 'ok');
    expect((await client.get('after-restore'))?.toString()).toBe('ok');
    await client.close();
    await again.stop();
  });

  it('refuses an existing FILE and reports an unreachable endpoint', async () => {
    const work = tmpDir('snap-file');
    fs.writeFileSync(path.join(work, 'taken.snap'), 'mine');
    const taken = await cairn(work, 'snapshot', 'save', 'taken.snap', '--endpoint', '127.0.0.1:1');
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toMatch(/exists/);
    expect(fs.readFileSync(path.join(work, 'taken.snap'), 'utf8')).toBe('mine');
    const port = await freePort();
    const down = await cairn(work, 'snapshot', 'save', 'new.snap', '--endpoint', `127.0.0.1:${port}`);
    expect(down.code).not.toBe(0);
    expect(down.stderr).toMatch(/could not reach/);
    expect(fs.readdirSync(work)).toEqual(['taken.snap']);
    // A port that drops the HTTP request unanswered, as a RESP port does: the likely mistake is named.
    const resp = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => resp.listen(0, '127.0.0.1', resolve));
    const respPort = (resp.address() as net.AddressInfo).port;
    const wrong = await cairn(work, 'snapshot', 'save', 'new.snap', '--endpoint', `127.0.0.1:${respPort}`);
    resp.close();
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/could not reach .*: no HTTP answer: is it a RESP port\?/);
    expect(fs.readdirSync(work)).toEqual(['taken.snap']);
    const downs = await cairn(
      work,
      'snapshot',
      'save',
      'new.snap',
      '--endpoints',
      `127.0.0.1:${port},127.0.0.1:1`,
    );
    expect(downs.code).not.toBe(0);
    expect(downs.stderr).toMatch(/no endpoint served a snapshot: could not reach .*; could not reach/);
    expect(fs.readdirSync(work)).toEqual(['taken.snap']);
    const neither = await cairn(work, 'snapshot', 'save', 'new.snap');
    expect(neither.stderr).toMatch(/exactly one of --endpoints/);
    const both = await cairn(
      work,
      'snapshot',
      'save',
      'new.snap',
      '--endpoints',
      '127.0.0.1:1',
      '--dir',
      work,
    );
    expect(both.stderr).toMatch(/exactly one of --endpoints/);
  });
});

describe('cairn snapshot save --dir (a stopped store) and restore', () => {
  it('round trip, then refusals that leave nothing behind', async () => {
    const dir = tmpDir('snap-src');
    const db = await open(dir, { dataFileBytes: 4096 });
    for (let i = 0; i < 500; i++) await db.set(`k${i % 120}`, `v${i}`);
    await db.close();
    const work = tmpDir('snap-file');
    const saved = await cairn(work, 'snapshot', 'save', 'a.snap', '--dir', dir);
    expect(saved.stderr).toBe('');
    expect(saved.out).toMatch(/keys: +120/);
    const restoredDir = path.join(work, 'restored');
    expect((await cairn(work, 'snapshot', 'restore', 'a.snap', '--dir', restoredDir)).code).toBe(0);
    const copy = await open(restoredDir);
    expect(copy.stats().keys).toBe(120);
    expect(await copy.getString('k19')).toBe('v499');
    await copy.close();

    // A non-empty directory.
    const again = await cairn(work, 'snapshot', 'restore', 'a.snap', '--dir', restoredDir);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/not empty/);
    // A directory where the archive goes, and a missing archive: each named for what it is
    // (a directory was "no such file").
    const notFile = await cairn(work, 'snapshot', 'restore', restoredDir, '--dir', path.join(work, 'x'));
    expect(notFile.code).toBe(2);
    expect(notFile.stderr).toMatch(/^cairn: .*restored is a directory, not a snapshot archive/);
    const missing = await cairn(work, 'snapshot', 'restore', 'none.snap', '--dir', path.join(work, 'x'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^cairn: no such file: .*none\.snap\n$/);
    expect(fs.existsSync(path.join(work, 'x'))).toBe(false);
    // A damaged archive: truncated, and with a flipped bit in the middle.
    const bytes = fs.readFileSync(path.join(work, 'a.snap'));
    fs.writeFileSync(path.join(work, 'short.snap'), bytes.subarray(0, bytes.length - 100));
    const flipped = Buffer.from(bytes);
    flipped[bytes.length >> 1] = (flipped[bytes.length >> 1] as number) ^ 0x10;
    fs.writeFileSync(path.join(work, 'flipped.snap'), flipped);
    for (const [name, pattern] of [
      ['short.snap', /truncated/],
      ['flipped.snap', /checksum/],
    ] as const) {
      // A directory the restore made goes again; one that was there (empty) stays, empty.
      const target = path.join(work, `from-${name}`);
      const r = await cairn(work, 'snapshot', 'restore', name, '--dir', target);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(pattern);
      expect(fs.existsSync(target)).toBe(false);
      const given = path.join(work, `into-${name}`);
      fs.mkdirSync(given);
      const r2 = await cairn(work, 'snapshot', 'restore', name, '--dir', given);
      expect(r2.code).not.toBe(0);
      expect(fs.readdirSync(given)).toEqual([]);
    }
    // Seeding more than one member is refused before anything is written.
    const seed = path.join(work, 'seed');
    const many = await cairn(
      work,
      'snapshot',
      'restore',
      'a.snap',
      '--dir',
      seed,
      '--name',
      'n1',
      '--initial-cluster',
      'n1=127.0.0.1:7001,n2=127.0.0.1:7002',
    );
    expect(many.code).not.toBe(0);
    expect(many.stderr).toMatch(/ONE member/);
    expect(fs.existsSync(seed)).toBe(false);
    // Seeding one member writes its identity beside the data.
    const one = await cairn(
      work,
      'snapshot',
      'restore',
      'a.snap',
      '--dir',
      seed,
      '--name',
      'n1',
      '--initial-cluster',
      'n1=127.0.0.1:7001',
    );
    expect(one.stderr).toBe('');
    expect(JSON.parse(fs.readFileSync(path.join(seed, 'raft', 'member.json'), 'utf8')).name).toBe('n1');
  });

  it('saving a store a running server holds is refused clearly', async () => {
    const dir = tmpDir('snap-src');
    const server = await serve(dir);
    const work = tmpDir('snap-file');
    const r = await cairn(work, 'snapshot', 'save', 'x.snap', '--dir', dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/lock|in use|held/i);
    expect(fs.readdirSync(work)).toEqual([]);
    await server.stop();
  });

  it('a stopped lmdb store: says to copy its directory, without calling it online', async () => {
    const dir = tmpDir('snap-lmdb');
    const db = await open(dir, { engine: 'lmdb' });
    await db.set('k', 'v');
    await db.close();
    const work = tmpDir('snap-file');
    const r = await cairn(work, 'snapshot', 'save', 'x.snap', '--dir', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /the lmdb engine has no snapshot archive; this store is stopped, so copy its directory/,
    );
    expect(r.stderr).not.toMatch(/online|while it is closed/);
    expect(fs.readdirSync(work)).toEqual([]);
  });
});
