// A peer's address, "host:port" or "[ipv6]:port": one parser for the transport, the start check
// (start-check.ts, which the transport imports) and the cluster protocol's replies.

/** InvalidPeerAddressError: an address is not "host:port". */
export class InvalidPeerAddressError extends Error {
  override name = 'InvalidPeerAddressError';
}

/** parseHostPort parses "host:port" or "[ipv6]:port". */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || port > 65535)
    throw new InvalidPeerAddressError(`invalid address '${text}': expected HOST:PORT`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** WILDCARD_HOSTS: listen hosts that take connections on every interface. */
const WILDCARD_HOSTS: ReadonlySet<string> = new Set(['0.0.0.0', '::', '']);
/** LOOPBACK_HOSTS: names of this machine's loopback interface, as equal to one another. */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['127.0.0.1', 'localhost', '::1']);

/**
 * unreachableListen: why peers that dial `advertised` (this member's --initial-cluster address)
 * would not reach a member listening on `listen` (its --listen-peer), or undefined when they
 * would or may. The two may differ on purpose (a proxy or NAT in between), so the caller warns and
 * goes on; a different port, or a specific host that is not the advertised one, is far more often
 * a mistyped flag, and the member would otherwise wait for its peers without a word.
 */
export function unreachableListen(listen: string, advertised: string): string | undefined {
  const l = parseHostPort(listen);
  const a = parseHostPort(advertised);
  if (l.port !== a.port) return `port ${l.port} is not the advertised port ${a.port}`;
  const same = l.host === a.host || (LOOPBACK_HOSTS.has(l.host) && LOOPBACK_HOSTS.has(a.host));
  if (!same && !WILDCARD_HOSTS.has(l.host)) return `host ${l.host} is not the advertised host ${a.host}`;
  return undefined;
}
