// cairn serve end to end: configuration from flags, environment and a config file (including
// the log level), how-to-connect output, RESP and HTTP on the same store, INFO and /metrics
// agreeing, and a graceful SIGTERM.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'vitest';
import { CairnClient } from '../../src/client/client.js';
import { freePort } from '../support/ports.js';
import { tmpDir } from '../support/tmp-dir.js';
import { BIN, builtChildren, run } from './support.js';

const STARTUP_WAIT_MS = 15_000;
const children = builtChildren();

interface Served {
  readonly child: ChildProcess;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

async function serve(args: string[], env: NodeJS.ProcessEnv, readyPattern: RegExp): Promise<Served> {
  const child = spawn(process.execPath, [BIN.cairn, 'serve', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const t0 = performance.now();
  while (!readyPattern.test(err)) {
    if (child.exitCode !== null) throw new Error(`cairn serve exited: ${err}`);
    if (performance.now() - t0 > STARTUP_WAIT_MS) throw new Error(`cairn serve did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, stderr: () => err, exited };
}

function infoField(info: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  if (m === null) throw new Error(`INFO has no ${name}`);
  return Number(m[1]);
}

function metric(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\d+(?:\\.\\d+)?)$`, 'm').exec(text);
  if (m === null) throw new Error(`/metrics has no ${name}`);
  return Number(m[1]);
}

describe('cairn serve', () => {
  it('takes its settings from a config file, the environment and flags; serves RESP and HTTP', async ({
    expect,
  }) => {
    const base = tmpDir('serve');
    const [resp, http] = [await freePort(), await freePort()];
    const config = path.join(base, 'cairn.json');
    // The file sets the directory and a log level the environment overrides; flags set the ports.
    fs.writeFileSync(
      config,
      JSON.stringify({ dir: path.join(base, 'store'), logLevel: 'info', sync: 'always' }),
    );
    const server = await serve(
      [
        '--addr',
        `127.0.0.1:${resp}`,
        '--http',
        `127.0.0.1:${http}`,
        '--config',
        config,
        '--txn-idle-ms',
        '200',
      ],
      { CAIRN_LOG_LEVEL: 'silent' },
      /Stop with Ctrl-C/,
    );
    expect(server.stderr()).toContain(`redis-cli -h 127.0.0.1 -p ${resp}`);
    expect(server.stderr()).toContain(`http://127.0.0.1:${http}/v1/kv/hello`);
    expect(server.stderr()).not.toMatch(/"level"/); // silent: no log lines at all

    const client = await CairnClient.connect('127.0.0.1', resp);
    for (let i = 0; i < 20; i++) await client.set(`k${i}`, `v${i}`);
    await client.del('k0');
    const body = await (await fetch(`http://127.0.0.1:${http}/v1/kv/k5`)).text();
    expect(body).toBe('v5');

    // INFO and /metrics read the same numbers.
    const info = String(await client.call('INFO'));
    const metrics = await (await fetch(`http://127.0.0.1:${http}/metrics`)).text();
    expect(infoField(info, 'cairn_fsyncs')).toBe(metric(metrics, 'cairn_fsyncs_total'));
    expect(/db0:keys=(\d+)/.exec(info)?.[1]).toBe(String(metric(metrics, 'cairn_keys')));
    expect(metric(metrics, 'cairn_keys')).toBe(19);
    expect(metrics).toMatch(/cairn_commands_total\{command="set",protocol="resp",result="ok"\} 20/);
    // --txn-idle-ms reaches the RESP server: an idle transaction is rolled back.
    expect(await client.call('TXN.BEGIN')).toBe('OK');
    await new Promise((r) => setTimeout(r, 500));
    await expect(client.call('GET', 'k1')).rejects.toThrow(/rolled back after 200 ms idle/);
    expect(await client.call('TXN.ROLLBACK')).toBe('OK');
    await client.close();

    // The data directory came from the config file.
    expect(fs.existsSync(path.join(base, 'store', 'META-1'))).toBe(true);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('logs JSON lines at the configured level and exits non-zero when the port is taken', async ({
    expect,
  }) => {
    const base = tmpDir('serve');
    const resp = await freePort();
    const server = await serve(
      ['--dir', base, '--addr', `127.0.0.1:${resp}`, '--http', 'off'],
      { CAIRN_LOG_LEVEL: 'info' },
      /listening on/,
    );
    const line = server
      .stderr()
      .split('\n')
      .find((l) => l.includes('listening on'));
    const entry = JSON.parse(line ?? '{}') as Record<string, unknown>;
    expect(entry).toMatchObject({ level: 30, engine: 'cask', addr: `127.0.0.1:${resp}`, sync: 'always' });
    expect(entry.http).toBeUndefined();

    const second = spawn(
      process.execPath,
      [BIN.cairn, 'serve', '--dir', tmpDir('serve'), '--addr', `127.0.0.1:${resp}`, '--http', 'off'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    second.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/address already in use: 127\.0\.0\.1:\d+/);
    // One line that names the address, without the error class or Node's repetition of it.
    expect(err).not.toMatch(/ServerStartError|EADDRINUSE/);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
  });

  it('endpoint health and status take a single server: healthy, exit 0', async ({ expect }) => {
    // It was "unhealthy: this server is not a cluster member", exit 1, while its /healthz said 200.
    const http = `127.0.0.1:${await freePort()}`;
    const server = await serve(
      ['--dir', tmpDir('serve'), '--addr', `127.0.0.1:${await freePort()}`, '--http', http],
      {},
      /Cairn is serving/,
    );
    const health = await run('cairn', ['endpoint', 'health', '--endpoints', http, '--json'], '.');
    expect(health.stderr).toBe('');
    expect(health.code).toBe(0);
    expect(JSON.parse(health.out)).toEqual([{ endpoint: http, health: true, tookMs: expect.any(Number) }]);
    const status = await run('cairn', ['endpoint', 'status', '--endpoints', http, '--json'], '.');
    expect(status.code).toBe(0);
    expect((JSON.parse(status.out) as { mode: string }[])[0]?.mode).toBe('single');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it("refuses a member's settings without the member (a forgotten --name), creating nothing", async ({
    expect,
  }) => {
    const dir = path.join(tmpDir('serve'), 'meant-for-a-member');
    const r = await run(
      'cairn',
      ['serve', '--dir', dir, '--addr', `127.0.0.1:${await freePort()}`, '--http', 'off'].concat([
        '--cluster-token',
        'prod',
        '--initial-cluster-state',
        'existing',
      ]),
      '.',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--initial-cluster-state, --cluster-token apply only to a cluster member/);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('says a --dir naming a file is a file, not a Raft path inside it', async ({ expect }) => {
    const file = path.join(tmpDir('serve'), 'afile');
    fs.writeFileSync(file, 'x');
    const r = await run(
      'cairn',
      ['serve', '--dir', file, '--addr', `127.0.0.1:${await freePort()}`, '--http', 'off'],
      '.',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/the data directory .*afile is a file, not a directory/);
    expect(r.stderr).not.toMatch(/raft|member\.json|ENOTDIR/);
  });
});
