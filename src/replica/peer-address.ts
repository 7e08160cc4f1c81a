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
