// Options shared by the cluster commands (member, endpoint, move-leader).
import type { Command } from 'commander';
import { DEFAULT_ENDPOINTS, PASSWORD_ENV, parseEndpoints, setAdminPassword } from '../admin-client.js';

/** addEndpointsOption adds --endpoints, --password and --json to a cluster command. */
export function addEndpointsOption(command: Command): Command {
  return addPasswordOption(
    command.option(
      '--endpoints <HOST:PORT,...>',
      "the members' HTTP addresses, tried in order", // commander adds `(default: "...")`
      DEFAULT_ENDPOINTS,
    ),
  ).option('--json', 'print JSON');
}

/** addPasswordOption adds --password (the servers' --requirepass), used by every request the command sends. */
export function addPasswordOption(command: Command): Command {
  return command
    .option('--password <PASSWORD>', `the servers' --requirepass (env ${PASSWORD_ENV})`)
    .hook('preAction', (_command, action) => {
      const password = action.opts().password;
      setAdminPassword(typeof password === 'string' ? password : undefined);
    });
}

export function endpointsOf(options: Record<string, unknown>): string[] {
  return parseEndpoints(String(options.endpoints ?? DEFAULT_ENDPOINTS));
}
