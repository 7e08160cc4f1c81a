// Parsing `IP:PORT` / `HOST:PORT` addresses for the server and client command lines.
import { isIP } from 'node:net';
import { CliError } from './program.js';

export interface Address {
  readonly host: string;
  readonly port: number;
}

/** DEFAULT_KVS_ADDR: the talent-plan course's default address for kvs-server and kvs-client. */
export const DEFAULT_KVS_ADDR = '127.0.0.1:4000';

/**
 * parseAddress accepts `IP:PORT`, `[IPv6]:PORT` and, unless `ipOnly`, `HOST:PORT`, with a port
 * in 0..65535 (0 only when `allowZero`: the OS picks a free port).
 */
export function parseAddress(text: string, options: { ipOnly?: boolean; allowZero?: boolean } = {}): Address {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw new CliError(`invalid address '${text}': expected IP:PORT`);
  const host = (m[1] ?? m[2]) as string;
  const port = Number(m[3]);
  if (port > 65535 || (port === 0 && options.allowZero !== true)) {
    throw new CliError(`invalid address '${text}': port must be 1-65535`);
  }
  if (m[1] !== undefined && isIP(host) !== 6)
    throw new CliError(`invalid address '${text}': bad IPv6 address`);
  if (options.ipOnly === true && isIP(host) === 0)
    throw new CliError(`invalid address '${text}': not an IP address`);
  return { host, port };
}
