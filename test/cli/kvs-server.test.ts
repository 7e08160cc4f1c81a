// The talent-plan kvs-server / kvs-client contract, end to end with the built binaries: set,
// get, overwrite, missing key, rm, SIGKILL and restart, engine recorded and enforced, bad
// addresses and flags, logs on stderr, listening within a second.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { canConnect, freePort } from '../support/ports.js';
import { tmpDir } from '../support/tmp-dir.js';
import { BIN, ensureBuilt, run, STACK_FRAME } from './support.js';

/** LISTEN_DEADLINE_MS: the course requires the server to listen within one second. */
const LISTEN_DEADLINE_MS = 1_000;
/** STARTUP_WAIT_MS: how long the test waits for startup at all (slow CI machines). */
const STARTUP_WAIT_MS = 15_000;

const servers: ChildProcess[] = [];

beforeAll(async () => {
  await ensureBuilt();
}, 120_000);

afterAll(() => {
  for (const s of servers) s.kill('SIGKILL');
});

interface Started {
  readonly child: ChildProcess;
  readonly addr: string;
  readonly stderr: () => string;
}

async function startServer(cwd: string, ...args: string[]): Promise<Started> {
  const port = await freePort();
  const addr = `127.0.0.1:${port}`;
  const t0 = performance.now();
  const child = spawn(process.execPath, [BIN['kvs-server'], '--addr', addr, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  for (;;) {
    // Listening, and the start-up log line (which carries startupMs) has arrived.
    if (/listening on/.test(err) && (await canConnect(port))) break;
    if (child.exitCode !== null) throw new Error(`kvs-server exited: ${err}`);
    if (performance.now() - t0 > STARTUP_WAIT_MS) throw new Error(`kvs-server did not listen: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { child, addr, stderr: () => err };
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

const client = (cwd: string, addr: string, ...args: string[]) =>
  run('kvs-client', [...args, '--addr', addr], cwd);

describe('kvs-server and kvs-client', () => {
  it('serve the course scenario, survive SIGKILL, and keep the data', async ({ expect }) => {
    const dir = tmpDir('kvs-server');
    const elsewhere = tmpDir('kvs-client');
    const server = await startServer(dir);
    // The server logs how long it took from process start to listening (Node's own start-up
    // included); the test's clock would also count the harness's scheduling of the spawn.
    const startup = /"startupMs":(\d+)/.exec(server.stderr());
    expect(startup).not.toBeNull();
    expect(Number(startup?.[1])).toBeLessThan(LISTEN_DEADLINE_MS);
    const { addr } = server;

    let r = await client(elsewhere, addr, 'set', 'key1', 'value1');
    expect([r.code, r.out, r.stderr]).toEqual([0, '', '']);
    r = await client(elsewhere, addr, 'get', 'key1');
    expect([r.code, r.out]).toEqual([0, 'value1\n']);
    await client(elsewhere, addr, 'set', 'key1', 'value2');
    r = await client(elsewhere, addr, 'get', 'key1');
    expect(r.out).toBe('value2\n');
    r = await client(elsewhere, addr, 'get', 'missing');
    expect([r.code, r.out]).toEqual([0, 'Key not found\n']);
    r = await client(elsewhere, addr, 'rm', 'missing');
    expect(r.code).not.toBe(0);
    expect(r.out).toBe('');
    expect(r.stderr).toBe('Key not found\n');
    await client(elsewhere, addr, 'set', 'key2', 'value3');
    r = await client(elsewhere, addr, 'rm', 'key2');
    expect([r.code, r.out]).toEqual([0, '']);
    r = await client(elsewhere, addr, 'get', 'key2');
    expect(r.out).toBe('Key not found\n');

    // Logs go to stderr and name the version, the engine and the address.
    expect(server.stderr()).toMatch(/0\.1\.0/);
    expect(server.stderr()).toMatch(/kvs/);
    expect(server.stderr()).toContain(addr);

    // Every acknowledged write survives kill -9.
    expect(await stop(server.child, 'SIGKILL')).toBe(null);
    const again = await startServer(dir);
    r = await client(elsewhere, again.addr, 'get', 'key1');
    expect(r.out).toBe('value2\n');
    r = await client(elsewhere, again.addr, 'get', 'key2');
    expect(r.out).toBe('Key not found\n');
    // A graceful stop exits 0.
    expect(await stop(again.child, 'SIGTERM')).toBe(0);
  });

  it('records the engine and refuses another one', async ({ expect }) => {
    const dir = tmpDir('kvs-server');
    const first = await startServer(dir, '--engine', 'lmdb');
    await client(dir, first.addr, 'set', 'k', 'v');
    expect(first.stderr()).toMatch(/lmdb/);
    await stop(first.child, 'SIGTERM');
    const port = await freePort();
    const r = await run('kvs-server', ['--addr', `127.0.0.1:${port}`, '--engine', 'kvs'], dir);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/engine/);
    expect(r.stderr).not.toMatch(STACK_FRAME);
    // Without --engine the recorded one is used.
    const again = await startServer(dir);
    expect((await client(dir, again.addr, 'get', 'k')).out).toBe('v\n');
    await stop(again.child, 'SIGTERM');
  });

  it('rejects bad addresses, unknown engines and a port in use', async ({ expect }) => {
    const dir = tmpDir('kvs-server');
    for (const args of [
      ['--addr', 'nonsense'],
      ['--addr', '127.0.0.1:99999'],
      ['--engine', 'rocks'],
      ['--frob'],
    ]) {
      const r = await run('kvs-server', args, dir);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.length).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(STACK_FRAME);
    }
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const taken = (holder.address() as net.AddressInfo).port;
    const r = await run('kvs-server', ['--addr', `127.0.0.1:${taken}`], tmpDir('kvs-server'));
    holder.close();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/in use/);
  });

  it('a start that never served leaves no store behind, so it fixes no engine', async ({ expect }) => {
    // Address not available, then a port in use: each exits 1, and the directory stays as it
    // was (a file of the user's is kept), so a later start may still choose lmdb.
    const dir = tmpDir('kvs-server');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', () => resolve()));
    const taken = (holder.address() as net.AddressInfo).port;
    try {
      for (const addr of [`1.2.3.4:${await freePort()}`, `127.0.0.1:${taken}`]) {
        const r = await run('kvs-server', ['--addr', addr], dir);
        expect(r.code, addr).toBe(1);
        expect(r.stderr).toMatch(/cannot listen|in use/);
        expect(fs.readdirSync(dir), addr).toEqual(['notes.txt']);
      }
    } finally {
      holder.close();
    }
    const lmdb = await startServer(dir, '--engine', 'lmdb');
    expect(lmdb.stderr()).toMatch(/"engine":"lmdb"/);
    await stop(lmdb.child, 'SIGTERM');
    // An existing store is never touched by a failed start.
    const holder2 = net.createServer();
    await new Promise<void>((resolve) => holder2.listen(0, '127.0.0.1', () => resolve()));
    const taken2 = (holder2.address() as net.AddressInfo).port;
    const before = fs.readdirSync(dir).sort();
    const r = await run('kvs-server', ['--addr', `127.0.0.1:${taken2}`], dir);
    holder2.close();
    expect(r.code).toBe(1);
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });

  it('client: bad arguments, bad address, no server, version', async ({ expect }) => {
    const dir = tmpDir('kvs-client');
    for (const args of [
      [],
      ['get'],
      ['set', 'k'],
      ['frob', 'k'],
      ['get', 'k', '--addr', 'bad'],
      ['get', 'k', '--x'],
    ]) {
      const r = await run('kvs-client', args, dir);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.length).toBeGreaterThan(0);
      expect(r.stderr).not.toMatch(STACK_FRAME);
    }
    const r = await run('kvs-client', ['get', 'k', '--addr', `127.0.0.1:${await freePort()}`], dir);
    expect(r.code).not.toBe(0);
    // As docs/cli.md says: the message, not the class name (entry 17 of defects-2026-12.md).
    expect(r.stderr).toMatch(/^kvs-client: could not connect to 127\.0\.0\.1:\d+/);
    const v = await run('kvs-client', ['-V'], dir);
    expect(v.out).toMatch(/^kvs-client \d+\.\d+\.\d+/);
    const sv = await run('kvs-server', ['-V'], dir);
    expect(sv.out).toMatch(/^kvs-server \d+\.\d+\.\d+/);
  });
});
