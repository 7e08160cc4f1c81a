// What the multi-process benchmarks share: the child processes and temporary directories they
// own, removed on exit and on SIGINT/SIGTERM, and free loopback ports for the servers they start.
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';

/** live: child processes this benchmark started and has not seen exit. */
export const live = new Set<ChildProcess>();
/** tempDirs: directories this benchmark made and has not removed. */
export const tempDirs = new Set<string>();

/** cleanupSync kills every live child and removes every temporary directory. */
export function cleanupSync(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** cleanUpOnExit makes an interrupted or finished run leave no process or directory behind. */
export function cleanUpOnExit(what: string): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping ${what} and removing their data`);
      cleanupSync();
      process.exit(130);
    });
  }
  process.once('exit', cleanupSync);
}

/** freePort: a free loopback port: bind to 0, read it, release it (a race, but only with ourselves). */
export async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}
