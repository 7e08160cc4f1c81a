// --requirepass on a cluster: the HTTP API asks for the password as RESP's AUTH does (Bearer, or
// Basic with any user name), on every member; a follower relays the client's credentials to the
// leader and sends its own when it asks the leader itself; the operator commands take it with
// --password or CAIRN_PASSWORD; /healthz stays open.
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { run } from '../cli/support.js';
import { tmpDir } from '../support/tmp-dir.js';
import { ProcCluster } from './proc-cluster.js';

const PASSWORD = 's3cret pass';
const BEARER = { authorization: `Bearer ${PASSWORD}` };
const BASIC = { authorization: `Basic ${Buffer.from(`anyone:${PASSWORD}`).toString('base64')}` };

let cluster: ProcCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function cairn(args: readonly string[], env: Record<string, string> = {}) {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const r = await run('cairn', args, process.cwd());
    return { code: r.code, out: r.out, err: r.stderr };
  } finally {
    process.env = saved;
  }
}

describe('a cluster with --requirepass', () => {
  it('asks for the password on HTTP everywhere, relays it to the leader, and the operator commands send it', async () => {
    cluster = await ProcCluster.start(['n1', 'n2', 'n3'], { password: PASSWORD });
    const leader = await cluster.leader();
    const follower = ['n1', 'n2', 'n3'].find((n) => n !== leader)!;
    const http = `http://${cluster.endpoints(follower)}`;

    const refused = await fetch(`${http}/v1/kv/a`, { method: 'PUT', body: 'v' });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toMatch(/^Basic realm="cairn"/);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    const wrong = await fetch(`${http}/v1/kv/a`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    // Through the follower to the leader, and read back through the follower with Basic.
    expect((await fetch(`${http}/v1/kv/a`, { method: 'PUT', body: 'v', headers: BEARER })).status).toBe(204);
    const got = await fetch(`${http}/v1/kv/a`, { headers: BASIC });
    expect([got.status, await got.text()]).toEqual([200, 'v']);
    expect(String(await cluster.call(leader, 'GET', 'a'))).toBe('v');
    // The follower's view of the members' progress comes from the leader, asked with its own password.
    const view = (await (await fetch(`${http}/v1/cluster`, { headers: BEARER })).json()) as {
      members: { matchIndex: number | null }[];
    };
    expect(view.members.every((m) => typeof m.matchIndex === 'number')).toBe(true);
    expect((await fetch(`${http}/metrics`)).status).toBe(401);
    expect((await fetch(`${http}/healthz`)).status).toBe(200);

    const endpoints = cluster.endpoints(follower);
    const bare = await cairn(['member', 'list', '--endpoints', endpoints]);
    expect(bare.code).not.toBe(0);
    expect(bare.err).toMatch(/--password, or in CAIRN_PASSWORD/);
    const flag = await cairn(['member', 'list', '--endpoints', endpoints, '--password', PASSWORD]);
    expect(flag.code, flag.err).toBe(0);
    expect(flag.out).toMatch(/n1/);
    const env = await cairn(['move-leader', follower, '--endpoints', endpoints], {
      CAIRN_PASSWORD: PASSWORD,
    });
    expect(env.code, env.err).toBe(0);
    expect(await cluster.leader()).toBe(follower);
    const file = path.join(tmpDir('auth-snapshot'), 'snap.cairn');
    const saved = await cairn(['snapshot', 'save', file, '--endpoints', endpoints, '--password', PASSWORD]);
    expect(saved.code, saved.err).toBe(0);
    const unsaved = await cairn(['snapshot', 'save', `${file}.2`, '--endpoints', endpoints]);
    expect(unsaved.code).not.toBe(0);
    expect(unsaved.err).toMatch(/HTTP 401/);
  }, 60_000);
});
