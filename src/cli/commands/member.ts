// cairn member list|add|promote|remove: the cluster's membership, etcdctl style, over the
// members' HTTP API (docs/cluster-ops.md). Changes go to any endpoint; it forwards them to the leader.
import type { Command } from 'commander';
import { AdminHttpError, requestAny } from '../admin-client.js';
import { write } from '../output.js';
import { type Cli, EXIT_FAILURE } from '../program.js';
import { addEndpointsOption, endpointsOf } from './cluster-options.js';
import { table } from './table.js';

export interface MemberJson {
  name: string;
  id: string;
  peerAddr: string;
  resp: string;
  http: string;
  role: string;
  isLeader: boolean;
  /** started: the member is recorded as started (absent: an answering member built before the marks). */
  started?: boolean;
}

/** MEMBER_LIST_HEADERS: the columns of `cairn member list`. */
export const MEMBER_LIST_HEADERS = ['NAME', 'ID', 'ROLE', 'LEADER', 'STARTED', 'PEER ADDR', 'HTTP', 'RESP'];

/**
 * memberRows: the rows of `cairn member list`. STARTED: whether the cluster recorded that the
 * member has started (a started mark; docs/cluster.md, "A member that lost its directory"): "no"
 * for one that never acknowledged anything yet, so an empty directory may start it; "?" when the
 * answering member does not say (a build before the marks).
 */
export function memberRows(members: readonly MemberJson[]): string[][] {
  return members.map((m) => [
    m.name,
    m.id,
    m.role,
    m.isLeader ? 'yes' : '',
    m.started === undefined ? '?' : m.started ? 'yes' : 'no',
    m.peerAddr,
    m.http,
    m.resp,
  ]);
}

export function registerMember(program: Command, cli: Cli): void {
  const member = program.command('member').description('list, add, promote and remove cluster members');

  addEndpointsOption(
    member
      .command('list')
      .description('list the members (linearizable; --serializable: as the answering member knows them)')
      .option('--serializable', 'answer from the first endpoint without a ReadIndex round'),
  ).action(async (options: Record<string, unknown>) => {
    const path =
      options.serializable === true ? '/v1/cluster/members?consistency=serializable' : '/v1/cluster/members';
    const body = (await requestAny(endpointsOf(options), 'GET', path)) as { members: MemberJson[] };
    if (options.json === true) {
      await write(`${JSON.stringify(body)}\n`);
      return;
    }
    await write(table(MEMBER_LIST_HEADERS, memberRows(body.members)));
  });

  addEndpointsOption(
    member
      .command('add')
      .description('add a member as a learner (promote it once it has caught up)')
      .argument('<name>', "the new member's --name")
      .requiredOption('--peer-url <HOST:PORT>', 'where the other members reach it (its --listen-peer)'),
  ).action(async (name: string, options: Record<string, unknown>) => {
    const body = (await notFound(cli, name, () =>
      requestAny(endpointsOf(options), 'POST', '/v1/cluster/members', {
        name,
        peerAddr: String(options.peerUrl),
      }),
    )) as
      | { member: MemberJson; initialCluster: string; initialClusterState: string; clusterToken: string }
      | undefined;
    if (body === undefined) return;
    if (options.json === true) {
      await write(`${JSON.stringify(body)}\n`);
      return;
    }
    await write(
      [
        `Member ${body.member.name} (id ${body.member.id}) added to the cluster as a learner.`,
        '',
        'Start it on its machine with (and its own --dir, --addr, --http):',
        `  cairn serve --name ${body.member.name} --listen-peer ${body.member.peerAddr} \\`,
        `    --initial-cluster ${body.initialCluster} --initial-cluster-state existing \\`,
        `    --cluster-token ${shellWord(body.clusterToken)}`,
        `Then, once it has caught up: cairn member promote ${body.member.name}`,
        '',
      ].join('\n'),
    );
  });

  addEndpointsOption(
    member
      .command('promote')
      .description('make a learner that has caught up a voter')
      .argument('<name>', 'the learner'),
  ).action(async (name: string, options: Record<string, unknown>) => {
    const body = await notFound(cli, name, () =>
      requestAny(endpointsOf(options), 'POST', `/v1/cluster/members/${encodeURIComponent(name)}/promote`),
    );
    if (body === undefined) return;
    await write(options.json === true ? `${JSON.stringify(body)}\n` : `Member ${name} promoted to voter.\n`);
  });

  addEndpointsOption(
    member
      .command('remove')
      .description('remove a member (the leader hands over first when it is the one removed)')
      .argument('<name>', 'the member')
      .option('--force', 'skip the check that a quorum of the remaining voters is active'),
  ).action(async (name: string, options: Record<string, unknown>) => {
    const query = options.force === true ? '?force=true' : '';
    const body = await notFound(cli, name, () =>
      requestAny(endpointsOf(options), 'DELETE', `/v1/cluster/members/${encodeURIComponent(name)}${query}`),
    );
    if (body === undefined) return;
    await write(
      options.json === true ? `${JSON.stringify(body)}\n` : `Member ${name} removed from the cluster.\n`,
    );
  });
}

/** notFound runs a request; an unknown member is a negative answer (exit 1), like `cairn get` of a missing key. */
export async function notFound(cli: Cli, name: string, op: () => Promise<unknown>): Promise<unknown> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof AdminHttpError && err.code === 'NOT_FOUND') {
      process.stderr.write(`${cli.name}: no member named '${name}'\n`);
      cli.exitCode = EXIT_FAILURE;
      return undefined;
    }
    throw err;
  }
}

/**
 * shellWord quotes `text` for a POSIX shell when it holds anything but the characters a token or
 * address usually has, so that a printed command line can be pasted as it is.
 */
export function shellWord(text: string): string {
  if (/^[A-Za-z0-9._:,=/@+-]+$/.test(text)) return text;
  return `'${text.replaceAll("'", "'\\''")}'`;
}
