// Options shared by the cluster commands (member, endpoint, move-leader).
import type { Command } from 'commander';
import { DEFAULT_ENDPOINTS, parseEndpoints } from '../admin-client.js';

/** addEndpointsOption adds --endpoints and --json to a cluster command. */
export function addEndpointsOption(command: Command): Command {
  return command
    .option(
      '--endpoints <HOST:PORT,...>',
      "the members' HTTP addresses, tried in order", // commander adds `(default: "...")`
      DEFAULT_ENDPOINTS,
    )
    .option('--json', 'print JSON');
}

export function endpointsOf(options: Record<string, unknown>): string[] {
  return parseEndpoints(String(options.endpoints ?? DEFAULT_ENDPOINTS));
}
