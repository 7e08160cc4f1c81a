// cairn check hash: do the cluster's members hold the same state? (etcd's `etcdctl check` and
// `endpoint hashkv --cluster` in one.) The leader appends a check entry; every member digests its
// engine when it applies that entry, so all digests describe the state at one log index, however
// far apart the members are in time (Replica.digest, docs/cluster-ops.md). The command asks every
// member in the member list for its digest at that index.
//
// Exit 0 when every member answered with the same digest; 1 when digests differ or a member
// could not answer; 2 on an operating error (no endpoint answered).
import type { Command } from 'commander';
import { requestAny, requestOne } from '../admin-client.js';
import { write } from '../output.js';
import { type Cli, describeError, EXIT_FAILURE } from '../program.js';
import { addEndpointsOption, endpointsOf } from './cluster-options.js';
import { clusterMembers, UNKNOWN_ADDRESS } from './endpoint.js';
import { table } from './table.js';

interface DigestRow {
  readonly endpoint: string;
  readonly name?: string;
  readonly index?: number;
  readonly digest?: string;
  readonly keys?: number;
  readonly error?: string;
}

export function registerCheckHash(check: Command, cli: Cli): void {
  addEndpointsOption(
    check
      .command('hash')
      .description(
        "compare every cluster member's state digest at one log index (exit 1 if they differ or one cannot answer)",
      ),
  ).action(async (_options: Record<string, unknown>, command: Command) => {
    // `cairn check` has a --json of its own, which commander gives the parent: take both.
    const options = command.optsWithGlobals();
    const endpoints = endpointsOf(options);
    const { index } = (await requestAny(endpoints, 'POST', '/v1/cluster/check')) as { index: number };
    const { members, unknown } = await clusterMembers(endpoints);
    const rows: DigestRow[] = await Promise.all(
      members.map(async ({ name, http: endpoint }) => {
        try {
          return {
            endpoint,
            name,
            ...((await requestOne(endpoint, 'GET', `/v1/cluster/check/${index}`)) as object),
          };
        } catch (err) {
          return { endpoint, name, error: describeError(err) };
        }
      }),
    );
    // A member that could not be asked has not shown it holds the same state.
    for (const name of unknown) rows.push({ endpoint: '', name, error: UNKNOWN_ADDRESS });
    const digests = new Set(rows.filter((r) => r.digest !== undefined).map((r) => r.digest));
    const ok = rows.length > 0 && rows.every((r) => r.error === undefined) && digests.size === 1;
    if (!ok) cli.exitCode = EXIT_FAILURE;
    if (options.json === true) {
      await write(`${JSON.stringify({ index, ok, members: rows })}\n`);
      return;
    }
    const lines = table(
      ['NAME', 'ENDPOINT', 'INDEX', 'HASH', 'KEYS', 'ERROR'],
      rows.map((r) => [
        r.name ?? '',
        r.endpoint,
        r.index === undefined ? '' : String(r.index),
        r.digest ?? '',
        r.keys === undefined ? '' : String(r.keys),
        r.error ?? '',
      ]),
    );
    const verdict = ok
      ? rows.length === 1
        ? `The one member's state at index ${index} is above (there is nothing to compare it with).`
        : `${rows.length} members hold the same state at index ${index}.`
      : digests.size > 1
        ? `MISMATCH: the members' states differ at index ${index}.`
        : `Not every member could answer for index ${index}.`;
    await write(`${lines}${verdict}\n`);
  });
}
