// `cairn` end to end against the built binary: get/set/rm/scan/stats/check, the shared directory
// format with kvs and the embedded API, usage errors, and `check` never modifying a store.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { FORMAT_NEW_STORE } from '../../src/storage/meta.js';
import { tmpDir } from '../support/tmp-dir.js';
import { cairn, ensureBuilt, kvs, ROOT, STACK_FRAME } from './support.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

beforeAll(ensureBuilt);

/** seeded returns a fresh store holding `entries`, written through the embedded API. */
async function seeded(entries: readonly (readonly [string, string | Uint8Array])[]): Promise<string> {
  const dir = tmpDir('cli');
  const db = await open(dir);
  await db.batch(entries.map(([key, value]) => ({ type: 'set' as const, key, value })));
  await db.close();
  return dir;
}

/** snapshot records every file's bytes and mtime under `dir` (recursively). */
function snapshot(dir: string): Map<string, { bytes: Buffer; mtimeMs: number }> {
  const out = new Map<string, { bytes: Buffer; mtimeMs: number }>();
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.set(path.relative(dir, full), { bytes: fs.readFileSync(full), mtimeMs: fs.statSync(full).mtimeMs });
  }
  return out;
}

describe.concurrent('cairn: data commands', () => {
  it('set, get and rm with --dir, and the current directory by default', async ({ expect }) => {
    const cwd = tmpDir('cli');
    const dir = path.join(tmpDir('cli'), 'store');
    const set = await cairn(cwd, 'set', 'k', 'v1', '--dir', dir);
    expect(set.code).toBe(0);
    expect(set.out).toBe('');
    expect(set.stderr).toBe('');
    expect(fs.readdirSync(cwd)).toEqual([]);
    expect((await cairn(cwd, 'get', 'k', '-d', dir)).out).toBe('v1\n');
    expect((await cairn(dir, 'get', 'k')).out).toBe('v1\n');
    const rm = await cairn(dir, 'rm', 'k');
    expect(rm.code).toBe(0);
    expect(rm.out).toBe('');
    const missing = await cairn(cwd, 'get', 'k', '--dir', dir);
    expect(missing.code).toBe(1);
    expect(missing.out).toBe('');
    expect(missing.stderr).toBe('cairn: key not found: k\n');
    const rmMissing = await cairn(cwd, 'rm', 'k', '--dir', dir);
    expect(rmMissing.code).toBe(1);
    expect(rmMissing.stderr).toBe('cairn: key not found: k\n');
  });

  it('reads what kvs wrote, and kvs reads what cairn wrote', async ({ expect }) => {
    const dir = tmpDir('cli');
    expect((await kvs(dir, 'set', 'from-kvs', 'one')).code).toBe(0);
    expect((await cairn(dir, 'get', 'from-kvs')).out).toBe('one\n');
    expect((await cairn(dir, 'set', 'from-cairn', 'two')).code).toBe(0);
    expect((await kvs(dir, 'get', 'from-cairn')).out).toBe('two\n');
    const db = await open(dir);
    expect(await db.getString('from-cairn')).toBe('two');
    await db.close();
  });

  it('scan: key<TAB>value lines in key order; prefix, start, end, limit, reverse', async ({ expect }) => {
    const dir = await seeded([
      ['b', '2'],
      ['a', '1'],
      ['user:2', 'bob'],
      ['user:1', 'alice'],
      ['user:3', 'carol'],
      ['z', '26'],
    ]);
    const lines = async (...args: string[]) => {
      const r = await cairn(dir, 'scan', ...args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      return r.out;
    };
    const [all, prefix, range, limited, reversed] = [
      await lines(),
      await lines('--prefix', 'user:'),
      await lines('--start', 'b', '--end', 'user:3'),
      await lines('--limit', '2'),
      await lines('--prefix', 'user:', '--reverse', '-n', '2'),
    ];
    expect(all).toBe('a\t1\nb\t2\nuser:1\talice\nuser:2\tbob\nuser:3\tcarol\nz\t26\n');
    expect(prefix).toBe('user:1\talice\nuser:2\tbob\nuser:3\tcarol\n');
    expect(range).toBe('b\t2\nuser:1\talice\nuser:2\tbob\n');
    expect(limited).toBe('a\t1\nb\t2\n');
    expect(reversed).toBe('user:3\tcarol\nuser:2\tbob\n');
  });

  it('scan --json: one object per line; non-UTF-8 bytes in base64, flagged', async ({ expect }) => {
    const binary = Uint8Array.from([0xff, 0x00, 0x0a, 0x09]);
    const dir = await seeded([
      ['bin', binary],
      ['text', 'héllo\twörld\n🚀'],
    ]);
    const r = await cairn(dir, 'scan', '--json');
    expect(r.code).toBe(0);
    const rows = r.out
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(rows).toEqual([
      { key: 'bin', value: Buffer.from(binary).toString('base64'), valueEncoding: 'base64' },
      { key: 'text', value: 'héllo\twörld\n🚀' },
    ]);
    // Raw output is byte for byte.
    const raw = await cairn(dir, 'get', 'bin');
    expect(raw.stdout.equals(Buffer.concat([binary, Buffer.from('\n')]))).toBe(true);
  });

  it('stats: engine, keys and bytes; --json', async ({ expect }) => {
    const dir = await seeded([
      ['a', '1'],
      ['b', '2'],
    ]);
    const text = await cairn(dir, 'stats');
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^engine: +cask$/m);
    expect(text.out).toMatch(/^keys: +2$/m);
    expect(text.out).toMatch(/^disk bytes: +\d+$/m);
    const json = await cairn(dir, 'stats', '--json');
    const stats = JSON.parse(json.out) as Record<string, unknown>;
    expect(stats).toMatchObject({ dir: fs.realpathSync(dir), engine: 'cask', keys: 2 });
    expect(stats.diskBytes).toBeGreaterThan(0);
  });

  it('--engine lmdb creates an lmdb store that kvs and the API then use', async ({ expect }) => {
    const dir = path.join(tmpDir('cli'), 'lmdb-store');
    expect((await cairn(ROOT, 'set', 'k', 'v', '--engine', 'lmdb', '--dir', dir)).code).toBe(0);
    expect((await cairn(dir, 'stats', '--json')).out).toMatch(/"engine":"lmdb"/);
    expect((await kvs(dir, 'get', 'k')).out).toBe('v\n');
    // Naming the other engine for an existing store is refused.
    const wrong = await cairn(dir, 'get', 'k', '--engine', 'cask');
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/^cairn: .*holds a 'lmdb' store, not 'cask'\n$/);
  });

  it('read commands on a missing directory fail without creating it', async ({ expect }) => {
    const dir = path.join(tmpDir('cli'), 'nope');
    for (const args of [['get', 'k'], ['rm', 'k'], ['scan'], ['stats'], ['check', dir]]) {
      const r = await cairn(ROOT, ...args, ...(args[0] === 'check' ? [] : ['--dir', dir]));
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`cairn: no such directory: ${dir}\n`);
    }
    expect(fs.existsSync(dir)).toBe(false);
  });

  // Found from outside: `cairn stats` (or get, rm, scan, snapshot save --dir) in a directory
  // without a store wrote META-1, META-2 and a data file into it.
  it('read commands on a directory without a store fail without writing into it', async ({ expect }) => {
    const dir = tmpDir('cli');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const runs = [
      ['get', 'k'],
      ['rm', 'k'],
      ['scan'],
      ['stats'],
      ['snapshot', 'save', path.join(dir, 'x.snap')],
    ];
    for (const args of runs) {
      const r = await cairn(ROOT, ...args, '--dir', dir);
      expect(r.code, args[0]).toBe(2);
      expect(r.stderr).toBe(`cairn: no store in ${dir} (\`cairn set\` creates one)\n`);
    }
    expect(fs.readdirSync(dir)).toEqual(['notes.txt']);
    // set creates the store there, and the reads then work.
    expect((await cairn(ROOT, 'set', 'k', 'v', '--dir', dir)).code).toBe(0);
    expect((await cairn(ROOT, 'get', 'k', '--dir', dir)).out).toBe('v\n');
  });

  // Found from outside: the entries before a damaged record were gathered for output and dropped
  // with the error, so `cairn scan` of a damaged store printed nothing at all.
  it('scan prints the entries before a damaged record, then the error (exit 2)', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir);
    for (const k of ['a', 'b', 'c', 'd']) await db.set(`key-${k}`, `value-${k}`);
    await db.close();
    const dataName = fs.readdirSync(dir).find((n) => n.endsWith('.data'));
    const dataFile = path.join(dir, dataName!);
    const bytes = fs.readFileSync(dataFile);
    const at = bytes.indexOf('value-c');
    expect(at).toBeGreaterThan(0);
    bytes[at] = (bytes[at] as number) ^ 0x01;
    fs.writeFileSync(dataFile, bytes);
    for (const json of [false, true]) {
      const r = await cairn(ROOT, 'scan', '--dir', dir, ...(json ? ['--json'] : []));
      expect(r.code).toBe(2);
      expect(r.out).toBe(
        json
          ? '{"key":"key-a","value":"value-a"}\n{"key":"key-b","value":"value-b"}\n'
          : 'key-a\tvalue-a\nkey-b\tvalue-b\n',
      );
      expect(r.stderr).toMatch(/^cairn: record at .* failed verification\n$/);
    }
  });

  it("a stopped cluster member's directory: writes refused (exit 2, nothing written), reads work", async ({
    expect,
  }) => {
    const dir = await seeded([['k', 'v']]);
    fs.mkdirSync(path.join(dir, 'raft'));
    fs.writeFileSync(path.join(dir, 'raft', 'member.json'), '{}');
    const before = snapshot(dir);
    for (const args of [
      ['set', 'k', 'x'],
      ['rm', 'k'],
    ]) {
      const r = await cairn(dir, ...args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^cairn: .* is a cluster member's data directory .*Write through the cluster/);
      expect(r.stderr).not.toMatch(STACK_FRAME);
    }
    const k = await kvs(dir, 'set', 'k', 'x');
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/^kvs: .* is a cluster member's data directory/);
    expect(snapshot(dir)).toEqual(before);
    const got = await cairn(dir, 'get', 'k');
    expect({ code: got.code, out: got.out }).toEqual({ code: 0, out: 'v\n' });
  });

  it('a locked directory: one line on stderr, exit 2', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir);
    try {
      const r = await cairn(dir, 'get', 'k');
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^cairn: data directory .* is in use by another process \(pid \d+\)\n$/);
      expect(r.stderr).not.toMatch(STACK_FRAME);
    } finally {
      await db.close();
    }
  });
});

describe.concurrent('cairn: usage', () => {
  it('-V and --version print "cairn <version>"', async ({ expect }) => {
    const dir = tmpDir('cli');
    for (const flag of ['-V', '--version']) {
      const r = await cairn(dir, flag);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`cairn ${VERSION}\n`);
    }
  });

  it('no command, unknown command, unknown flag, bad arguments: usage on stderr, exit 2', async ({
    expect,
  }) => {
    const dir = tmpDir('cli');
    const cases = [
      [],
      ['frobnicate'],
      ['--bogus'],
      ['get'],
      ['get', 'a', 'b'],
      ['set', 'a'],
      ['scan', '--limit', '-1'],
      ['scan', '--limit', 'many'],
      ['scan', '--nope'],
      ['get', 'k', '--engine', 'rocks'],
      ['check', 'a', 'b'],
    ];
    const results = await Promise.all(cases.map((args) => cairn(dir, ...args)));
    results.forEach((r, i) => {
      expect(r.code, JSON.stringify(cases[i])).toBe(2);
      expect(r.out).toBe('');
      expect(r.stderr).toMatch(/Usage: cairn/);
    });
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('--help lists the commands on stdout, exit 0', async ({ expect }) => {
    const r = await cairn(tmpDir('cli'), '--help');
    expect(r.code).toBe(0);
    for (const name of ['get', 'set', 'rm', 'scan', 'stats', 'check']) {
      expect(r.out).toMatch(new RegExp(`^  ${name} `, 'm'));
    }
  });

  it('a cluster command names the default --endpoints once', async ({ expect }) => {
    const r = await cairn(tmpDir('cli'), 'member', 'list', '--help');
    expect(r.code).toBe(0);
    expect(r.out.match(/127\.0\.0\.1:8379/g)).toHaveLength(1);
  });

  it('check --help says how to check a store directory named hash', async ({ expect }) => {
    const r = await cairn(tmpDir('cli'), 'check', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('`cairn check ./hash`');
  });
});

describe.concurrent('cairn check', () => {
  it('a clean store: the report, exit 0, nothing changed', async ({ expect }) => {
    const dir = await seeded([
      ['a', '1'],
      ['b', '2'],
    ]);
    const before = snapshot(dir);
    const r = await cairn(ROOT, 'check', dir);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      new RegExp(`^metadata: +generation \\d+, engine cask, format ${FORMAT_NEW_STORE}$`, 'm'),
    );
    expect(r.out).toMatch(/^data files: +1$/m);
    expect(r.out).toMatch(/^hint files used: +0$/m);
    expect(r.out).toMatch(/^records: +3$/m); // one batch record and its two members
    expect(r.out).toMatch(/^keys: +2$/m);
    expect(r.out).toMatch(/^problems: +0$/m);
    expect(r.out).toMatch(/^status: +ok$/m);
    expect(snapshot(dir)).toEqual(before);
    // The current directory is the default; --json gives the whole result.
    const json = await cairn(dir, 'check', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ ok: true, report: { keys: 2, problems: [] } });
  });

  it('a flipped byte in a data file: names the problem, exit 1, file unchanged', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir);
    for (let i = 1; i <= 3; i++) await db.set(`key-${i}`, `value-${i}`);
    await db.close();
    const dataName = fs.readdirSync(dir).find((n) => n.endsWith('.data'));
    expect(dataName).toBeDefined();
    const dataFile = path.join(dir, dataName!);
    const bytes = fs.readFileSync(dataFile);
    const at = bytes.indexOf('value-1');
    expect(at).toBeGreaterThan(0);
    bytes[at] = (bytes[at] as number) ^ 0x01;
    fs.writeFileSync(dataFile, bytes);
    const past = new Date(Date.now() - 3_600_000);
    fs.utimesSync(dataFile, past, past);
    const before = snapshot(dir);

    const r = await cairn(ROOT, 'check', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^problems: +1$/m);
    expect(r.out).toMatch(
      // One whole record damaged (its framing holds): its key is named and marked damaged.
      new RegExp(
        `^  corrupt-range in ${dataName} bytes \\d+\\.\\.\\d+: the record of key [0-9a-f]+ failed verification.*would keep`,
        'm',
      ),
    );
    expect(r.out).toMatch(/^status: +DAMAGED/m);
    const json = await cairn(ROOT, 'check', dir, '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.out)).toMatchObject({
      ok: false,
      report: { problems: [{ kind: 'corrupt-range', file: dataName }] },
    });
    // Nothing was repaired, moved, truncated or even touched.
    expect(snapshot(dir)).toEqual(before);
    expect(Math.abs(fs.statSync(dataFile).mtimeMs - past.getTime())).toBeLessThan(1);
  });

  it('damaged metadata copy: reported, exit 1; an lmdb store: metadata only', async ({ expect }) => {
    const dir = await seeded([['a', '1']]);
    const meta1 = path.join(dir, 'META-1');
    const bytes = fs.readFileSync(meta1);
    bytes[bytes.length - 2] = (bytes[bytes.length - 2] as number) ^ 0xff;
    fs.writeFileSync(meta1, bytes);
    const before = snapshot(dir);
    const r = await cairn(ROOT, 'check', dir);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^ {2}metadata problem: META-1: checksum mismatch$/m);
    expect(snapshot(dir)).toEqual(before);

    const lmdbDir = tmpDir('cli');
    const db = await open(lmdbDir, { engine: 'lmdb' });
    await db.close();
    const lmdb = await cairn(ROOT, 'check', lmdbDir);
    expect(lmdb.code).toBe(0);
    expect(lmdb.out).toMatch(/engine lmdb/);
    expect(lmdb.out).toMatch(/^data: +not checked/m);
  });

  it('a directory that is not a store: exit 1', async ({ expect }) => {
    const r = await cairn(ROOT, 'check', tmpDir('cli'));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^metadata: +no valid copy/m);
    expect(r.out).toMatch(/META-1: missing/);
  });
});

describe.concurrent('cairn repair', () => {
  it('rebuilds lost metadata: refused before, every key after, refused again', async ({ expect }) => {
    const dir = await seeded([
      ['a', '1'],
      ['b', '2'],
      ['c', '3'],
    ]);
    const db = await open(dir);
    await db.delete('b');
    await db.set('ttl', 'v', { ttlMs: 3_600_000 });
    await db.close();
    fs.unlinkSync(path.join(dir, 'META-1'));
    fs.truncateSync(path.join(dir, 'META-2'), 4);

    const refused = await cairn(ROOT, 'get', 'a', '--dir', dir);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^cairn: .*no valid metadata copy.*`cairn repair .*`/);
    const check = await cairn(ROOT, 'check', dir);
    expect(check.code).toBe(1);
    expect(check.out).toMatch(/`cairn repair .*`/);

    const r = await cairn(ROOT, 'repair', dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^metadata: +generation 1, engine cask, format 3$/m);
    expect(r.out).toMatch(/^saved copy: +corrupt\/META-2\.\d+ /m);
    expect(r.out).toMatch(/^status: +metadata rebuilt/m);

    expect((await cairn(ROOT, 'get', 'a', '--dir', dir)).out).toBe('1\n');
    expect((await cairn(ROOT, 'get', 'b', '--dir', dir)).code).toBe(1);
    expect((await cairn(ROOT, 'scan', '--dir', dir)).out).toBe('a\t1\nc\t3\nttl\tv\n');
    const reopened = await open(dir);
    expect(await reopened.ttl('ttl')).toBeGreaterThan(3_000_000);
    await reopened.close();
    expect((await cairn(ROOT, 'check', dir)).code).toBe(0);

    const again = await cairn(dir, 'repair', '--json');
    expect(again.code).toBe(2);
    expect(again.out).toBe('');
    expect(again.stderr).toMatch(/^cairn: nothing to rebuild: .* has a valid metadata copy/);
  });

  it('--json: one object with the metadata written and what it inferred', async ({ expect }) => {
    const dir = await seeded([['k', 'v']]);
    for (const name of ['META-1', 'META-2']) fs.unlinkSync(path.join(dir, name));
    const r = await cairn(ROOT, 'repair', dir, '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as Record<string, unknown>;
    expect(report).toMatchObject({
      dir,
      meta: { engine: 'cask', format: FORMAT_NEW_STORE, generation: 1 },
      source: 'data files',
      keys: 1,
      suspects: { count: 0, named: [] },
      saved: [],
    });
  });

  it('refuses a directory that is no store, and an lmdb store, changing nothing', async ({ expect }) => {
    const empty = tmpDir('cli');
    const none = await cairn(ROOT, 'repair', empty);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^cairn: nothing to rebuild from: .* holds no data files/);
    expect(fs.readdirSync(empty)).toEqual([]);

    const lmdb = tmpDir('cli');
    const db = await open(lmdb, { engine: 'lmdb' });
    await db.set('k', 'v');
    await db.close();
    for (const name of ['META-1', 'META-2']) fs.unlinkSync(path.join(lmdb, name));
    const before = snapshot(lmdb);
    const r = await cairn(ROOT, 'repair', lmdb);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cairn: .* holds an lmdb store/);
    expect(snapshot(lmdb)).toEqual(before);
  });
});
