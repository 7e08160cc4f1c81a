// cairn move-leader <name>: hand the leadership to another voter (etcdctl move-leader); it
// returns once that member leads.
import type { Command } from 'commander';
import { requestAny } from '../admin-client.js';
import { write } from '../output.js';
import type { Cli } from '../program.js';
import { addEndpointsOption, endpointsOf } from './cluster-options.js';
import { notFound } from './member.js';

export function registerMoveLeader(program: Command, cli: Cli): void {
  addEndpointsOption(
    program
      .command('move-leader')
      .description('make another voter the leader')
      .argument('<name>', 'the member to lead'),
  ).action(async (name: string, options: Record<string, unknown>) => {
    const body = await notFound(cli, name, () =>
      requestAny(endpointsOf(options), 'POST', '/v1/cluster/leader', { name }),
    );
    if (body === undefined) return;
    await write(options.json === true ? `${JSON.stringify(body)}\n` : `Leadership moved to ${name}.\n`);
  });
}
