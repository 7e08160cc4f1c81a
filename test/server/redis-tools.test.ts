// The real redis-cli (interactive-style and --pipe) and redis-benchmark against our server.
// Skipped, with a message, when redis-cli is not installed (Debian: apt-get install redis-tools).
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Running, startServer } from './support.js';

const run = promisify(execFile);
const hasRedisCli = spawnSync('redis-cli', ['--version']).status === 0;
const hasBenchmark = spawnSync('redis-benchmark', ['--version']).status === 0;
if (!hasRedisCli)
  console.warn('redis-tools.test.ts: redis-cli not on PATH, skipping (install Debian package redis-tools)');

describe.skipIf(!hasRedisCli)('redis-tools against the RESP server', () => {
  let r: Running;
  beforeAll(async () => {
    r = await startServer();
  });
  afterAll(async () => {
    await r?.stop();
  });

  const cli = async (input: string, ...args: string[]) => {
    const child = execFile('redis-cli', ['-h', '127.0.0.1', '-p', String(r.port), ...args]);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stdin?.end(input);
    await new Promise((res) => child.on('close', res));
    return out;
  };

  it('redis-cli runs commands from stdin like a terminal session', async () => {
    const out = await cli('SET greeting hello\nGET greeting\nINCR n\nFOO\nDBSIZE\n');
    expect(out).toContain('OK');
    expect(out).toContain('hello');
    expect(out).toMatch(/1\n/);
    expect(out).toContain("ERR unknown command 'FOO'");
    const { stdout } = await run('redis-cli', ['-p', String(r.port), '-3', 'HELLO', '3']);
    expect(stdout).toContain('proto');
  });

  it('redis-cli --pipe mass insertion', async () => {
    let input = '';
    for (let i = 0; i < 5000; i++)
      input += `*3\r\n$3\r\nSET\r\n$${`mass:${i}`.length}\r\nmass:${i}\r\n$1\r\nv\r\n`;
    const out = await cli(input, '--pipe');
    expect(out).toContain('errors: 0, replies: 5000');
    expect(await r.db.getString('mass:4999')).toBe('v');
    const scanned = await cli('', '--scan', '--pattern', 'mass:49*');
    expect(scanned.trim().split('\n').sort()).toHaveLength(111);
  });

  it.skipIf(!hasBenchmark)('redis-benchmark -t set,get,incr,mset completes', async () => {
    const { stdout } = await run(
      'redis-benchmark',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(r.port),
        '-t',
        'set,get,incr,mset',
        '-n',
        '2000',
        '-r',
        '1000',
        '-q',
        '-P',
        '16',
      ],
      { timeout: 30_000 },
    );
    for (const t of ['SET', 'GET', 'INCR', 'MSET'])
      expect(stdout).toMatch(new RegExp(`${t}.*requests per second`));
  });
});
