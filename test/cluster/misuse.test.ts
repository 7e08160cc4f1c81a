// Bad input and misuse of a cluster: a member with the wrong token, a directory started under
// another member's name, two members on one peer address, garbage on the peer port. Each is
// refused with a clear message, and the healthy members go on serving.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RespError } from '../../src/protocol/resp/index.js';
import { BIN } from '../cli/support.js';
import { freePort } from '../support/ports.js';
import { tmpDir } from '../support/tmp-dir.js';
import { ProcCluster, sleep } from './proc-cluster.js';

let cluster: ProcCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

function serve(args: readonly string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN.cairn, 'serve', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: `${r.stdout}${r.stderr}` };
}

describe('cluster misuse', () => {
  it('refuses a directory started under another name, a contradicting token, or a list without the member', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3']);
    const n1 = cluster.spec('n1');
    await cluster.kill('n1', 'SIGKILL');
    const base = ['--dir', n1.dir, '--addr', `127.0.0.1:${n1.resp}`, '--http', `127.0.0.1:${n1.http}`];
    const asOther = serve([...base, '--name', 'n2']);
    expect(asOther.status).not.toBe(0);
    expect(asOther.stderr).toMatch(/belongs to another member/);
    const token = serve([...base, '--cluster-token', 'another']);
    expect(token.status).not.toBe(0);
    expect(token.stderr).toMatch(/belongs to cluster 'test-cluster'/);
    const list = serve([...base, '--initial-cluster', 'x=127.0.0.1:1,y=127.0.0.1:2']);
    expect(list.status).not.toBe(0);
    expect(list.stderr).toMatch(/does not list 'n1'/);
    // The other two still form a majority and serve.
    const leader = await cluster.leader(15_000, ['n2', 'n3']);
    expect(await cluster.call(leader, 'SET', 'still', 'here')).toBe('OK');
  }, 60_000);

  it('refuses two members on one peer address and a member listed twice', async () => {
    const dir = tmpDir('misuse');
    const port = await freePort();
    const twice = serve([
      '--dir',
      dir,
      '--addr',
      `127.0.0.1:${await freePort()}`,
      '--http',
      'off',
      '--name',
      'a',
      '--initial-cluster',
      `a=127.0.0.1:${port},b=127.0.0.1:${port}`,
    ]);
    expect(twice.status).not.toBe(0);
    expect(twice.stderr).toMatch(/same peer address/);
    const dup = serve([
      '--dir',
      dir,
      '--http',
      'off',
      '--name',
      'a',
      '--initial-cluster',
      `a=127.0.0.1:${port},a=127.0.0.1:${port + 1}`,
    ]);
    expect(dup.status).not.toBe(0);
    expect(dup.stderr).toMatch(/twice/);
  }, 30_000);

  it('a first start on a peer address in use leaves nothing behind; the corrected one starts', async () => {
    const dir = tmpDir('misuse-first');
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const busy = (taken.address() as net.AddressInfo).port;
    try {
      const args = (peer: number) => [
        '--dir',
        dir,
        '--addr',
        `127.0.0.1:${resp}`,
        '--http',
        `127.0.0.1:${http}`,
        '--name',
        'solo',
        '--listen-peer',
        `127.0.0.1:${peer}`,
        '--initial-cluster',
        `solo=127.0.0.1:${peer}`,
      ];
      const resp = await freePort();
      const http = await freePort();
      const failed = serve(args(busy));
      expect(failed.status).not.toBe(0);
      expect(failed.stderr).toMatch(/already in use/);
      expect(failed.stderr).toMatch(/member directory it created was removed/);
      // Nothing of the member is left: no member.json to contradict the next command line.
      expect(fs.readdirSync(dir).filter((n) => n !== 'LOCK')).toEqual([]);
      // The corrected command line (another peer port) starts the member.
      const free = await freePort();
      const child = spawn(process.execPath, [BIN.cairn, 'serve', ...args(free)], { stdio: 'pipe' });
      let out = '';
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      try {
        const end = Date.now() + 15_000;
        while (!out.includes('peer transport listening')) {
          if (Date.now() > end || child.exitCode !== null) throw new Error(`no start:\n${out}`);
          await sleep(50);
        }
        expect(out).not.toMatch(/contradicts/);
      } finally {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    } finally {
      taken.close();
    }
  }, 40_000);

  it('refuses a member without HTTP (--http off), and its first start leaves nothing behind', async () => {
    const dir = tmpDir('misuse-no-http');
    const peer = await freePort();
    const args = ['--dir', dir, '--addr', `127.0.0.1:${await freePort()}`, '--name', 'a', '--listen-peer'];
    const off = serve([
      ...args,
      `127.0.0.1:${peer}`,
      '--initial-cluster',
      `a=127.0.0.1:${peer}`,
      '--http',
      'off',
    ]);
    expect(off.status).not.toBe(0);
    expect(off.stderr).toMatch(/a cluster member must serve HTTP/);
    expect(fs.readdirSync(dir).filter((n) => n !== 'LOCK')).toEqual([]);
  }, 30_000);

  it('SIGTERM or SIGINT while a new member waits for its peers stops it gracefully (exit 0) and undoes its first start', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const dir = path.join(tmpDir('misuse-stop-starting'), 'new-member');
      const [peer, absent1, absent2] = [await freePort(), await freePort(), await freePort()];
      const args = [
        '--dir',
        dir,
        '--addr',
        `127.0.0.1:${await freePort()}`,
        '--http',
        `127.0.0.1:${await freePort()}`,
      ]
        .concat(['--name', 'a', '--listen-peer', `127.0.0.1:${peer}`])
        .concat(['--initial-cluster', `a=127.0.0.1:${peer},b=127.0.0.1:${absent1},c=127.0.0.1:${absent2}`]);
      const child = spawn(process.execPath, [BIN.cairn, 'serve', ...args], { stdio: 'pipe' });
      let out = '';
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      try {
        // The start check's first round has found no peer: the member waits for them.
        const end = Date.now() + 15_000;
        while (!out.includes('waiting until a peer confirms')) {
          if (Date.now() > end || child.exitCode !== null) throw new Error(`not waiting:\n${out}`);
          await sleep(50);
        }
        child.kill(signal);
        expect(await exited).toBe(0);
        expect(out).toMatch(/stopped before the start finished/);
        expect(out).toMatch(/member directory it created was removed/);
        // The directory too: this start made it.
        expect(fs.existsSync(dir)).toBe(false);
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    }
  }, 40_000);

  it('a member with the wrong cluster token is refused by its peers, and answers CLUSTERDOWN without waiting forever', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3']);
    const n3 = cluster.spec('n3');
    await cluster.kill('n3', 'SIGKILL');
    const leader = await cluster.leader(15_000, ['n1', 'n2']);
    // A fresh directory under n3's name but another token: a member of another cluster.
    const stranger = { ...n3, dir: tmpDir('stranger') };
    await cluster.startMember('n3', [
      'serve',
      '--name',
      'n3',
      '--dir',
      stranger.dir,
      '--addr',
      `127.0.0.1:${n3.resp}`,
      '--http',
      `127.0.0.1:${n3.http}`,
      '--listen-peer',
      `127.0.0.1:${n3.peer}`,
      '--initial-cluster',
      cluster.members.map((m) => `${m.name}=127.0.0.1:${m.peer}`).join(','),
      '--cluster-token',
      'another-cluster',
      '--request-timeout-ms',
      '1000',
      '--log-level',
      'warn',
    ]);
    const started = Date.now();
    const err = await cluster.call('n3', 'SET', 'k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RespError);
    expect((err as RespError).code).toBe('CLUSTERDOWN');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await cluster.call(leader, 'SET', 'k', 'v')).toBe('OK');
    await sleep(300);
    expect(cluster.logs.get(leader)!.join('')).toMatch(/token/i);
  }, 60_000);

  it('garbage, oversized and truncated frames on the peer port are dropped; the member keeps serving', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3']);
    const leader = await cluster.leader();
    for (const payload of [
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.from([0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0, 1]), // announces a 2 GiB frame
      Buffer.from([20, 0, 0, 0, 1, 2, 3, 4, 1, 9]), // a frame cut short, then close
      Buffer.alloc(4096, 0xab),
    ]) {
      await new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: cluster!.spec(leader).peer }, () => {
          s.end(payload);
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      });
    }
    expect(cluster.isRunning(leader)).toBe(true);
    expect(await cluster.call(leader, 'SET', 'after-garbage', '1')).toBe('OK');
    const other = ['n1', 'n2', 'n3'].find((n) => n !== leader)!;
    expect(String(await cluster.call(other, 'GET', 'after-garbage'))).toBe('1');
  }, 60_000);
});
