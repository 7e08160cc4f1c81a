// cairn endpoint status|health: each member's own view (etcdctl endpoint status / health).
// Unlike the member commands these ask every endpoint, not the first that answers.
//
// status: GET /v1/status of each endpoint, as a table (or --json). An endpoint that does not
//   answer is reported on stderr and makes the exit code 2 (the others are still printed). LAG:
//   how far each member's applied index trails the leader's commit index (endpoint-lag.ts); a
//   member far behind gets an error in ERRORS.
// health: an endpoint is healthy when /healthz answers 200 (its store serves; a member also
//   confirmed a linearizable read through the leader and applied up to it, within the server's
//   HEALTH_READ_TIMEOUT_MS, and its 503 says what failed) and a linearizable read (GET
//   /v1/cluster/members: a ReadIndex round through the leader) succeeds within --timeout (a
//   single server: its /healthz alone). Unhealthy endpoints are reported on stderr; exit 1 if any.
import type { Command } from 'commander';
import { AdminHttpError, EndpointUnreachableError, requestAny, requestOne } from '../admin-client.js';
import { write } from '../output.js';
import { type Cli, CliError, describeError, EXIT_ERROR_CAIRN, EXIT_FAILURE } from '../program.js';
import { addEndpointsOption, endpointsOf } from './cluster-options.js';
import { withLag } from './endpoint-lag.js';
import { table } from './table.js';

/** HEALTH_TIMEOUT_MS_DEFAULT: a linearizable read slower than this is unhealthy (etcdctl's command timeout). */
export const HEALTH_TIMEOUT_MS_DEFAULT = 5_000;

interface StatusJson {
  mode: string;
  name?: string;
  id?: string;
  version: string;
  dataSize: number | null;
  keys: number | null;
  leader?: string | null;
  isLeader?: boolean;
  isLearner?: boolean;
  term?: number;
  commit?: number;
  applied?: number;
  lastIndex?: number;
  errors: string[];
}

export function registerEndpoint(program: Command, cli: Cli): void {
  const endpoint = program.command('endpoint').description("each member's status and health");

  addEndpointsOption(
    endpoint
      .command('status')
      .description("print each endpoint's status: id, version, data size, leader, Raft term and indexes")
      .option('--cluster', 'ask every member of the cluster (their HTTP addresses from the member list)'),
  ).action(async (options: Record<string, unknown>) => {
    const { members, unknown } = await targets(options);
    const fetched: ({ endpoint: string } & StatusJson)[] = [];
    // A member that could not be asked is one that did not answer (exit 2).
    if (unknown.length > 0) cli.exitCode = EXIT_ERROR_CAIRN;
    for (const { http: e } of members) {
      try {
        fetched.push({ endpoint: e, ...((await requestOne(e, 'GET', '/v1/status')) as StatusJson) });
      } catch (err) {
        process.stderr.write(`${cli.name}: ${describeError(err)}\n`);
        cli.exitCode = EXIT_ERROR_CAIRN;
      }
    }
    const rows = withLag(fetched);
    if (options.json === true) {
      await write(`${JSON.stringify(rows)}\n`);
      return;
    }
    const yes = (b: boolean | undefined) => (b === true ? 'yes' : b === false ? 'no' : '');
    await write(
      table(
        [
          'ENDPOINT',
          'NAME',
          'ID',
          'VERSION',
          'DATA SIZE',
          'KEYS',
          'IS LEADER',
          'IS LEARNER',
          'TERM',
          'COMMIT',
          'APPLIED',
          'LAG',
          'LAST INDEX',
          'ERRORS',
        ],
        rows.map((r) => [
          r.endpoint,
          r.name ?? '',
          r.id ?? '',
          r.version,
          r.dataSize === null ? '' : formatBytes(r.dataSize),
          r.keys ?? '',
          yes(r.isLeader),
          yes(r.isLearner),
          r.term ?? '',
          r.commit ?? '',
          r.applied ?? '',
          r.lag ?? '',
          r.lastIndex ?? '',
          r.errors.join('; '),
        ]),
      ),
    );
  });

  addEndpointsOption(
    endpoint
      .command('health')
      .description('check that each endpoint serves a linearizable read in time')
      .option('--cluster', 'check every member of the cluster')
      .option('--timeout <MS>', 'how long a read may take', String(HEALTH_TIMEOUT_MS_DEFAULT)),
  ).action(async (options: Record<string, unknown>) => {
    const timeoutMs = Number(options.timeout);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0)
      throw new CliError('--timeout: a positive number of milliseconds');
    const results: { endpoint: string; name?: string; health: boolean; tookMs: number; error?: string }[] =
      [];
    const { members, unknown } = await targets(options);
    // A member that cannot be reached at all is not healthy.
    for (const name of unknown)
      results.push({ endpoint: '', name, health: false, tookMs: 0, error: UNKNOWN_ADDRESS });
    for (const { http: e } of members) {
      const started = performance.now();
      try {
        await requestOne(e, 'GET', '/healthz', undefined, timeoutMs);
        await linearizableRead(e, timeoutMs);
        results.push({ endpoint: e, health: true, tookMs: Math.round(performance.now() - started) });
      } catch (err) {
        const why =
          err instanceof EndpointUnreachableError ? err.message.replace(`${e}: `, '') : describeError(err);
        results.push({
          endpoint: e,
          health: false,
          tookMs: Math.round(performance.now() - started),
          error: why,
        });
      }
    }
    if (results.some((r) => !r.health)) cli.exitCode = EXIT_FAILURE;
    if (options.json === true) {
      await write(`${JSON.stringify(results)}\n`);
      return;
    }
    for (const r of results) {
      if (r.health) await write(`${r.endpoint} is healthy: a linearizable read took ${r.tookMs} ms\n`);
      else process.stderr.write(`${r.endpoint || r.name} is unhealthy: ${r.error ?? ''}\n`);
    }
  });
}

/**
 * linearizableRead: a read through the leader's ReadIndex round (GET /v1/cluster/members). A
 * single server has no member list and needs no round: every read it serves is linearizable, so
 * its /healthz 200 is the whole answer (it was reported unhealthy, "this server is not a cluster
 * member", though `endpoint status` and `snapshot save` take single servers).
 */
async function linearizableRead(endpoint: string, timeoutMs: number): Promise<void> {
  try {
    await requestOne(endpoint, 'GET', '/v1/cluster/members', undefined, timeoutMs);
  } catch (err) {
    if (!(err instanceof AdminHttpError && err.code === 'INVALID_ARGUMENT')) throw err;
    const status = (await requestOne(endpoint, 'GET', '/v1/status', undefined, timeoutMs)) as StatusJson;
    if (status.mode !== 'single') throw err;
  }
}

/** targets: the endpoints to ask: --endpoints, or with --cluster every member's HTTP address. */
async function targets(options: Record<string, unknown>): Promise<ClusterTargets> {
  const endpoints = endpointsOf(options);
  if (options.cluster !== true)
    return { members: endpoints.map((http) => ({ name: '', http })), unknown: [] };
  return clusterMembers(endpoints);
}

/**
 * ClusterTargets: the members to ask (a name is '' when the endpoints were given), and the names
 * of members whose HTTP address is not known yet (added, never connected): those cannot be
 * asked, and a command that reports on every member must say so in its exit code.
 */
export interface ClusterTargets {
  readonly members: readonly { readonly name: string; readonly http: string }[];
  readonly unknown: readonly string[];
}

/** UNKNOWN_ADDRESS: why a member without a known HTTP address was not asked. */
export const UNKNOWN_ADDRESS = 'its HTTP address is not known yet (never connected)';

/** clusterMembers: every member's name and HTTP address, from the member list of the first that answers. */
export async function clusterMembers(endpoints: readonly string[]): Promise<ClusterTargets> {
  const body = (await requestAny(endpoints, 'GET', '/v1/cluster/members')) as {
    members: { name: string; http: string }[];
  };
  const unknown = body.members.filter((m) => m.http === '').map((m) => m.name);
  if (unknown.length > 0)
    process.stderr.write(
      `cairn: the HTTP address of ${unknown.join(', ')} is not known yet (never connected)\n`,
    );
  return {
    members: body.members.filter((m) => m.http !== '').map((m) => ({ name: m.name, http: m.http })),
    unknown,
  };
}

function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}
