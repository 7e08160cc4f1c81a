// Loopback ports for tests that start servers as child processes.
//
// A port the OS hands out for port 0 comes from the ephemeral range (32768-60999 on Linux), the
// same range every outgoing connection takes its local port from. Between the test learning
// such a port and the child process binding it, another process's connection (a member's peer
// link retrying, a client) or another test file running in parallel could take it: the member
// then fails with EADDRINUSE (seen in test/cluster/membership.test.ts, 2026-12-05). So ports
// come from below the ephemeral range, where the OS never assigns a port by itself, in a block
// of its own for each vitest worker, handed out in turn and checked to be free.
import * as net from 'node:net';

/** PORTS_FIRST, PORTS_END: the range handed out, below Linux's ephemeral ports. */
const PORTS_FIRST = 10_000;
const PORTS_END = 32_768;
/** BLOCK_PORTS: the ports of one vitest worker's block. */
const BLOCK_PORTS = 2_000;
const BLOCKS = Math.floor((PORTS_END - PORTS_FIRST) / BLOCK_PORTS);

const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 1);
const blockStart =
  PORTS_FIRST + ((Number.isInteger(worker) && worker > 0 ? worker - 1 : 0) % BLOCKS) * BLOCK_PORTS;
/** next: the block's next port to try; a file's process starts at its own offset, so files run one after another in a worker do not reuse each other's ports. */
let next = process.pid % BLOCK_PORTS;

/** freePort returns a port on 127.0.0.1 that is free now and that no other test worker hands out. */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < BLOCK_PORTS; tries++) {
    const port = blockStart + next;
    next = (next + 1) % BLOCK_PORTS;
    if (await bindable(port)) return port;
  }
  return osPort();
}

/** bindable tells whether a listener can bind 127.0.0.1:port now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** osPort asks the OS for a free port (the fallback when a whole block is taken). */
function osPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** canConnect tells whether something accepts connections on 127.0.0.1:port. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
