import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { resolveConfig, type ServerConfig } from './config.js';

const defaults: ServerConfig = {
  dir: 'data',
  addr: '127.0.0.1:6379',
  http: '127.0.0.1:8379',
  engine: undefined,
  sync: 'always',
  requirepass: undefined,
  maxclients: 10_000,
  logLevel: 'info',
  cacheBytes: 1024,
  txnIdleMs: 60_000,
};

function configFile(contents: unknown): string {
  const file = path.join(tmpDir('config'), 'cairn.json');
  fs.writeFileSync(file, typeof contents === 'string' ? contents : JSON.stringify(contents));
  return file;
}

describe('resolveConfig', () => {
  it('takes flags over environment over file over defaults', () => {
    const file = configFile({
      dir: 'from-file',
      addr: '0.0.0.0:1',
      sync: 'never',
      maxclients: 5,
      logLevel: 'debug',
    });
    const config = resolveConfig(
      { config: file, dir: 'from-flag' },
      { CAIRN_ADDR: '127.0.0.1:2', CAIRN_DIR: 'from-env', CAIRN_HTTP: 'off' },
      defaults,
    );
    expect(config).toEqual({
      ...defaults,
      dir: 'from-flag',
      addr: '127.0.0.1:2',
      http: undefined,
      sync: 'never',
      maxclients: 5,
      logLevel: 'debug',
      // What came from anywhere but the defaults (a cluster member keeps its recorded addresses
      // for the rest: src/server/server.ts, clientAddrsOf).
      given: new Set(['dir', 'addr', 'http', 'sync', 'maxclients', 'logLevel']),
    });
    expect(resolveConfig({}, {}, defaults).given).toEqual(new Set());
  });

  it('finds the config file through CAIRN_CONFIG and maps engine names', () => {
    const file = configFile({ engine: 'kvs', requirepass: 'secret' });
    const config = resolveConfig({}, { CAIRN_CONFIG: file }, defaults);
    expect(config.engine).toBe('cask');
    expect(config.requirepass).toBe('secret');
    expect(resolveConfig({ engine: 'lmdb' }, {}, defaults).engine).toBe('lmdb');
    expect(resolveConfig({}, { CAIRN_TXN_IDLE_MS: '0' }, defaults).txnIdleMs).toBe(0);
    expect(resolveConfig({ txnIdleMs: '1500' }, {}, defaults).txnIdleMs).toBe(1500);
  });

  it('rejects bad values, unknown settings and unreadable files with clear errors', () => {
    const bad: [Parameters<typeof resolveConfig>[0], NodeJS.ProcessEnv, RegExp][] = [
      [{ sync: 'sometimes' }, {}, /unknown sync mode 'sometimes'/],
      [{ engine: 'rocks' }, {}, /unknown engine 'rocks'/],
      [{}, { CAIRN_MAXCLIENTS: '0' }, /positive integer/],
      [{}, { CAIRN_LOG_LEVEL: 'loud' }, /unknown log level/],
      [{}, { CAIRN_TXN_IDLE_MS: '-5' }, /expected milliseconds/],
      [{ config: configFile({ colour: 'blue' }) }, {}, /unknown setting\(s\) colour/],
      [{ config: configFile('{ not json') }, {}, /not valid JSON/],
      [{ config: configFile([1, 2]) }, {}, /JSON object/],
      [{ config: path.join(tmpDir('config'), 'missing.json') }, {}, /cannot read config file/],
    ];
    for (const [flags, env, message] of bad) {
      let caught: unknown;
      try {
        resolveConfig(flags, env, defaults);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(InvalidArgumentError);
      expect(String((caught as Error).message)).toMatch(message);
    }
  });

  it('names the setting and where a bad value came from, and takes only plain decimal numbers', () => {
    const bad = (flags: Record<string, string>, env: Record<string, string>, file?: unknown) => {
      const config = file === undefined ? {} : { config: configFile(file) };
      try {
        resolveConfig({ ...flags, ...config }, env, defaults);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidArgumentError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(bad({ sync: 'Always' }, {})).toMatch(/^--sync: unknown sync mode 'Always'/);
    expect(bad({ logLevel: 'loud' }, {})).toMatch(/^--log-level: unknown log level 'loud'/);
    expect(bad({}, { CAIRN_MAXCLIENTS: '0x10' })).toMatch(
      /^environment variable CAIRN_MAXCLIENTS: expected a positive integer, got '0x10'/,
    );
    expect(bad({}, {}, { cacheBytes: '1e3' })).toMatch(
      /^'cacheBytes' in config file .*: expected a byte count/,
    );
    for (const v of [' 12', '', '1.5', '-1']) expect(bad({ txnIdleMs: v }, {})).toMatch(/^--txn-idle-ms: /);
  });
});
