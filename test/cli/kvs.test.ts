// `kvs` end to end against the built binary: the talent-plan course's cli tests (cli_no_args,
// cli_version, cli_get_non_existent_value, cli_set, cli_get_stored, cli_rm_stored,
// cli_invalid_get/set/rm/subcommand) plus interop with the embedded API, binary-safe values and
// operating errors (locked, incompatible, unrecognised directory).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { open } from '../../src/db/db.js';
import { encodeMeta, FORMAT_VERSION, META_FILES } from '../../src/storage/meta.js';
import { tmpDir } from '../support/tmp-dir.js';
import { ensureBuilt, kvs, ROOT, type RunResult, STACK_FRAME } from './support.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

beforeAll(ensureBuilt);

/** expectUsageError: a command-line mistake prints usage on stderr, nothing on stdout, fails. */
function expectUsageError(expect: import('vitest').ExpectStatic, r: RunResult): void {
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  expect(r.stdout.length).toBe(0);
  expect(r.stderr).toMatch(/Usage: kvs/);
  expect(r.stderr).not.toMatch(STACK_FRAME);
}

describe.concurrent('kvs: talent-plan cli tests', () => {
  it('cli_no_args: usage on stderr, non-zero', async ({ expect }) => {
    const r = await kvs(tmpDir('cli'));
    expectUsageError(expect, r);
    // docs/cli.md: `error: ...` and the usage.
    expect(r.stderr).toMatch(/^error: a command is required/);
  });

  it('cli_version: -V and --version print "kvs <version>"', async ({ expect }) => {
    const dir = tmpDir('cli');
    for (const flag of ['-V', '--version']) {
      const r = await kvs(dir, flag);
      expect(r.code).toBe(0);
      expect(r.out).toBe(`kvs ${VERSION}\n`);
    }
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('cli_get_non_existent_value: "Key not found" on stdout, exit 0', async ({ expect }) => {
    const r = await kvs(tmpDir('cli'), 'get', 'key1');
    expect(r.code).toBe(0);
    expect(r.out).toBe('Key not found\n');
    expect(r.stderr).toBe('');
  });

  it('cli_set: empty stdout, exit 0, then get returns it', async ({ expect }) => {
    const dir = tmpDir('cli');
    const r = await kvs(dir, 'set', 'key1', 'value1');
    expect(r.code).toBe(0);
    expect(r.out).toBe('');
    expect(r.stderr).toBe('');
    const got = await kvs(dir, 'get', 'key1');
    expect(got.code).toBe(0);
    expect(got.out).toBe('value1\n');
  });

  it('cli_get_stored: values written by the embedded API', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir);
    await db.set('key1', 'value1');
    await db.set('key2', 'value2');
    await db.close();
    for (const [key, want] of [
      ['key1', 'value1\n'],
      ['key2', 'value2\n'],
    ]) {
      const r = await kvs(dir, 'get', key as string);
      expect(r.code).toBe(0);
      expect(r.out).toBe(want);
    }
  });

  it('cli_rm_stored: rm is silent, then get says Key not found', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir);
    await db.set('key1', 'value1');
    await db.close();
    const rm = await kvs(dir, 'rm', 'key1');
    expect(rm.code).toBe(0);
    expect(rm.out).toBe('');
    expect(rm.stderr).toBe('');
    const get = await kvs(dir, 'get', 'key1');
    expect(get.code).toBe(0);
    expect(get.out).toBe('Key not found\n');
  });

  it('rm of a missing key: "Key not found" on stdout, exit 1', async ({ expect }) => {
    const r = await kvs(tmpDir('cli'), 'rm', 'key1');
    expect(r.code).toBe(1);
    expect(r.out).toBe('Key not found\n');
  });

  it('cli_invalid_get: no key, extra argument', async ({ expect }) => {
    const dir = tmpDir('cli');
    const results = await Promise.all([kvs(dir, 'get'), kvs(dir, 'get', 'extra', 'field')]);
    for (const r of results) expectUsageError(expect, r);
  });

  it('cli_invalid_set: no arguments, missing value, extra argument', async ({ expect }) => {
    const dir = tmpDir('cli');
    const results = await Promise.all([
      kvs(dir, 'set'),
      kvs(dir, 'set', 'missing_field'),
      kvs(dir, 'set', 'extra', 'extra', 'field'),
    ]);
    for (const r of results) expectUsageError(expect, r);
  });

  it('cli_invalid_rm: no key, extra argument', async ({ expect }) => {
    const dir = tmpDir('cli');
    const results = await Promise.all([kvs(dir, 'rm'), kvs(dir, 'rm', 'extra', 'field')]);
    for (const r of results) expectUsageError(expect, r);
  });

  it('cli_invalid_subcommand and unknown flags', async ({ expect }) => {
    const dir = tmpDir('cli');
    const results = await Promise.all([kvs(dir, 'unknown', 'subcommand'), kvs(dir, '--bogus')]);
    for (const r of results) expectUsageError(expect, r);
    // A usage error touches nothing.
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe.concurrent('kvs: data and errors', () => {
  it('overwrite, remove and read back through the embedded API', async ({ expect }) => {
    const dir = tmpDir('cli');
    for (const args of [
      ['set', 'a', '1'],
      ['set', 'a', '2'],
      ['set', 'b', '3'],
      ['rm', 'b'],
    ]) {
      expect((await kvs(dir, ...args)).code).toBe(0);
    }
    const db = await open(dir);
    try {
      expect(await db.getString('a')).toBe('2');
      expect(await db.has('b')).toBe(false);
    } finally {
      await db.close();
    }
  });

  it('UTF-8 keys and values round-trip both ways', async ({ expect }) => {
    const dir = tmpDir('cli');
    const key = 'clé 🔑 ключ';
    const value = 'héllo wörld ✓ 🚀 日本語 \t tab';
    expect((await kvs(dir, 'set', key, value)).code).toBe(0);
    const db = await open(dir);
    expect(await db.getString(key)).toBe(value);
    await db.set('ключ-2', '値');
    await db.close();
    expect((await kvs(dir, 'get', key)).out).toBe(`${value}\n`);
    expect((await kvs(dir, 'get', 'ключ-2')).out).toBe('値\n');
  });

  it('binary values come out byte for byte', async ({ expect }) => {
    const dir = tmpDir('cli');
    const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const db = await open(dir);
    await db.set('bin', value);
    await db.close();
    const r = await kvs(dir, 'get', 'bin');
    expect(r.code).toBe(0);
    expect(r.stdout.equals(Buffer.concat([value, Buffer.from('\n')]))).toBe(true);
  });

  it('empty value and a key that looks like a flag (after --)', async ({ expect }) => {
    const dir = tmpDir('cli');
    expect((await kvs(dir, 'set', 'empty', '')).code).toBe(0);
    expect((await kvs(dir, 'get', 'empty')).out).toBe('\n');
    expect((await kvs(dir, 'set', '--', '-k', '-v')).code).toBe(0);
    expect((await kvs(dir, 'get', '--', '-k')).out).toBe('-v\n');
  });

  it('a locked directory: one clear line on stderr, non-zero, no stack trace', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir);
    try {
      for (const args of [
        ['get', 'a'],
        ['set', 'a', 'b'],
        ['rm', 'a'],
      ]) {
        const r = await kvs(dir, ...args);
        expect(r.code).toBe(1);
        expect(r.out).toBe('');
        expect(r.stderr).toMatch(/^kvs: data directory .* is in use by another process \(pid \d+\)\n$/);
        expect(r.stderr).not.toMatch(STACK_FRAME);
      }
    } finally {
      await db.close();
    }
    expect((await kvs(dir, 'get', 'a')).out).toBe('Key not found\n');
  });

  it('reads the engine recorded in the directory (lmdb)', async ({ expect }) => {
    const dir = tmpDir('cli');
    const db = await open(dir, { engine: 'lmdb' });
    await db.set('k', 'from lmdb');
    await db.close();
    expect((await kvs(dir, 'get', 'k')).out).toBe('from lmdb\n');
    expect((await kvs(dir, 'set', 'k', 'from kvs')).code).toBe(0);
    const again = await open(dir);
    expect(again.stats().engine).toBe('lmdb');
    expect(await again.getString('k')).toBe('from kvs');
    await again.close();
  });

  it('a store written by a newer format: incompatible, one line, untouched', async ({ expect }) => {
    const dir = tmpDir('cli');
    const meta = encodeMeta({
      format: FORMAT_VERSION + 1,
      engine: 'cask',
      generation: 1,
      createdAtMs: 0,
      fields: {},
    });
    for (const name of META_FILES) fs.writeFileSync(path.join(dir, name), meta);
    const r = await kvs(dir, 'get', 'a');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.stderr).toMatch(/^kvs: .*newer Cairn.*\n$/);
    expect(r.stderr).not.toMatch(STACK_FRAME);
    expect(fs.readdirSync(dir).sort()).toEqual([...META_FILES]);
    for (const name of META_FILES) expect(fs.readFileSync(path.join(dir, name)).equals(meta)).toBe(true);
  });

  it('a directory with unrelated files: the store is created beside them, untouched', async ({ expect }) => {
    const dir = tmpDir('cli');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'not a database\n');
    expect((await kvs(dir, 'set', 'a', 'b')).code).toBe(0);
    const r = await kvs(dir, 'get', 'a');
    expect(r.code).toBe(0);
    expect(r.out).toBe('b\n');
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('not a database\n');
  });

  it('store files without metadata: one line, non-zero, nothing changed', async ({ expect }) => {
    const dir = tmpDir('cli');
    expect((await kvs(dir, 'set', 'a', 'b')).code).toBe(0);
    for (const copy of ['META-1', 'META-2']) fs.rmSync(path.join(dir, copy));
    const before = fs.readdirSync(dir).sort();
    const r = await kvs(dir, 'set', 'a', 'c');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^kvs: .*no valid metadata/);
    expect(r.stderr).not.toMatch(STACK_FRAME);
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });
});
