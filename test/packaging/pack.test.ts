// The package as a user gets it: `npm pack`, the tarball installed into an empty folder, and the
// three ways in used from there: the embedded API (`import { open } from 'cairn-db'`), the
// `cairn serve` command, and the `cairn-db/client` export talking to it. This proves that
// `files` ships everything needed (dist, the bins) and that the exports resolve, and that the
// install on this Node prints no engine warning.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_NAME } from '../../src/cli/version.js';
import { ensureBuilt, ROOT } from '../cli/support.js';
import { freePort } from '../support/ports.js';
import { tmpDir } from '../support/tmp-dir.js';

const run = promisify(execFile);
/** PACK_TIMEOUT_MS: dist may need a build, and the install fetches deps (from npm's cache when it can). */
const PACK_TIMEOUT_MS = 240_000;
/** SERVE_READY_MS: how long `cairn serve` may take to start listening. */
const SERVE_READY_MS = 20_000;
/** OUTPUT_BYTES_MAX: npm's output kept for the checks (and a failure's message). */
const OUTPUT_BYTES_MAX = 16 * 1024 * 1024;

let app: string;
let installOutput: string;
const children: ChildProcess[] = [];

async function npm(args: readonly string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  return run('npm', [...args], {
    cwd,
    maxBuffer: OUTPUT_BYTES_MAX,
    // A user's npm, not the one running this test: no inherited npm_config_* settings.
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_'))),
  });
}

async function node(script: string): Promise<string> {
  const file = path.join(app, `script-${Date.now()}-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(file, script);
  const { stdout } = await run(process.execPath, [file], { cwd: app });
  return stdout.trim();
}

beforeAll(async () => {
  // dist/ is built the way the CLI tests build it (serialized, only when stale), and packed without
  // the prepare script: a second tsc writing into dist/ would race the CLI tests reading it.
  await ensureBuilt();
  const out = tmpDir('pack-out');
  const { stdout } = await npm(['pack', '--ignore-scripts', '--pack-destination', out, '--json'], ROOT);
  const report = JSON.parse(stdout) as { filename: string }[];
  const tarball = path.join(out, report[0]!.filename);
  app = tmpDir('pack-app');
  fs.writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({ name: 'cairn-user', private: true, type: 'module' }),
  );
  const installed = await npm(['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], app);
  installOutput = `${installed.stdout}${installed.stderr}`;
}, PACK_TIMEOUT_MS);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

describe(`the packed ${PACKAGE_NAME}, installed into an empty folder`, () => {
  it('installs under its registry name, with the four commands and no engine warning', () => {
    expect(installOutput).not.toMatch(/EBADENGINE/);
    const installed = JSON.parse(
      fs.readFileSync(path.join(app, 'node_modules', PACKAGE_NAME, 'package.json'), 'utf8'),
    ) as { name: string };
    expect(installed.name).toBe(PACKAGE_NAME);
    for (const bin of ['cairn', 'kvs', 'kvs-server', 'kvs-client']) {
      expect(fs.existsSync(path.join(app, 'node_modules', '.bin', bin)), bin).toBe(true);
    }
  });

  it('runs the embedded example', async () => {
    const out = await node(`
      import { open } from '${PACKAGE_NAME}';
      const db = await open('./data');
      await db.set('user:1', 'ada');
      await db.batch([{ type: 'set', key: 'user:2', value: 'bob' }]);
      const keys = [];
      for await (const [key] of db.scan({ prefix: 'user:' })) keys.push(key.toString());
      console.log(await db.getString('user:1'), keys.join(','));
      await db.close();
    `);
    expect(out).toBe('ada user:1,user:2');
  });

  it('runs cairn serve, and the cairn-db/client export talks to it', async () => {
    const port = await freePort();
    const child = spawn(
      path.join(app, 'node_modules', '.bin', 'cairn'),
      ['serve', '--dir', path.join(app, 'served'), '--addr', `127.0.0.1:${port}`, '--http', 'off'],
      { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    let log = '';
    child.stdout?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    const deadline = Date.now() + SERVE_READY_MS;
    while (!log.includes(`${PACKAGE_NAME}/client`)) {
      if (child.exitCode !== null) throw new Error(`cairn serve exited: ${log}`);
      if (Date.now() > deadline) throw new Error(`cairn serve did not start: ${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const out = await node(`
      import { CairnClient } from '${PACKAGE_NAME}/client';
      const client = await CairnClient.connect('127.0.0.1', ${port});
      await client.set('greeting', 'hello');
      console.log(String(await client.get('greeting')), await client.del('greeting'));
      await client.close();
    `);
    expect(out).toBe('hello 1');
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  });
});
