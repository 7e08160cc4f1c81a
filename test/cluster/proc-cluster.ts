// ProcCluster: a cluster of real `cairn serve` processes on loopback for the multi-process tests
// (docs/cluster.md, "Tests"). Each member gets its own ports and directory; optionally every
// directed peer link goes through a fault proxy (test/support/fault-proxy.ts), so a test can cut
// or slow any link: member X reaches Y at the proxy "X->Y", whose target is Y's peer port, and
// each member is started with its own view of --initial-cluster.
import { type ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CairnClient } from '../../src/client/client.js';
import type { RespValue } from '../../src/protocol/resp/index.js';
import { BIN, ensureBuilt } from '../cli/support.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import { freePort } from '../support/ports.js';
import { tmpDir } from '../support/tmp-dir.js';

/** START_TIMEOUT_MS: a member that does not accept clients within this failed to start. */
const START_TIMEOUT_MS = 15_000;
const POLL_MS = 25;

export interface MemberSpec {
  readonly name: string;
  readonly dir: string;
  readonly resp: number;
  readonly http: number;
  readonly peer: number;
}

export interface ProcClusterOptions {
  /** proxies: put a fault proxy on every directed peer link. */
  readonly proxies?: boolean;
  readonly token?: string;
  /** extraArgs: more `cairn serve` flags for every member. */
  readonly extraArgs?: readonly string[];
  /** password: every member runs with --requirepass PASSWORD; the test's RESP clients AUTH with it. */
  readonly password?: string;
  /** prepare: runs on each member's (empty) directory before its first start, with its --initial-cluster. */
  readonly prepare?: (spec: MemberSpec, initialCluster: string) => Promise<void>;
  /** deferStart: start no member; the test starts each with startMember (a cluster formed one at a time). */
  readonly deferStart?: boolean;
}

/**
 * LIVE: every member process started in this test process. A test that times out may never
 * reach its cleanup; the members must not outlive the test run (they hold ports and disks).
 */
const LIVE = new Set<ChildProcess>();
const killLive = (): void => {
  for (const child of LIVE) child.kill('SIGKILL');
};
process.once('exit', killLive);
// A worker that vitest stops with a signal (after a test timed out in it) runs no 'exit'
// handlers: members started by a test still waiting were left running for hours, holding CPU,
// ports and disks. Kill them, then die of the same signal.
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    killLive();
    process.kill(process.pid, signal);
  });
}

export class ProcCluster {
  readonly procs = new Map<string, ChildProcess>();
  /** links: "X->Y" to the proxy X uses to reach Y (with proxies). */
  readonly links = new Map<string, FaultProxy>();
  private readonly views = new Map<string, string>();
  readonly logs = new Map<string, string[]>();

  private constructor(
    readonly members: MemberSpec[],
    private readonly options: ProcClusterOptions,
  ) {}

  static async start(names: readonly string[], options: ProcClusterOptions = {}): Promise<ProcCluster> {
    await ensureBuilt();
    const members: MemberSpec[] = [];
    for (const name of names) {
      members.push({
        name,
        dir: tmpDir(`cluster-${name}`),
        resp: await freePort(),
        http: await freePort(),
        peer: await freePort(),
      });
    }
    const cluster = new ProcCluster(members, options);
    for (const x of members) {
      const view: string[] = [];
      for (const y of members) {
        if (x === y || options.proxies !== true) {
          view.push(`${y.name}=127.0.0.1:${y.peer}`);
          continue;
        }
        const proxy = await startFaultProxy({
          listen: { host: '127.0.0.1', port: 0 },
          target: { host: '127.0.0.1', port: y.peer },
        });
        cluster.links.set(`${x.name}->${y.name}`, proxy);
        view.push(`${y.name}=127.0.0.1:${proxy.address()}`);
      }
      cluster.views.set(x.name, view.join(','));
    }
    if (options.prepare !== undefined) {
      for (const m of members) await options.prepare(m, cluster.views.get(m.name)!);
    }
    if (options.deferStart !== true) await Promise.all(members.map((m) => cluster.startMember(m.name)));
    return cluster;
  }

  /**
   * addSpec allocates a directory and ports for a member that joins later (membership tests),
   * and returns the command line that starts it into the running cluster (state `existing`,
   * its --initial-cluster naming every member including itself). No proxies for it.
   */
  async addSpec(name: string): Promise<{ spec: MemberSpec; args: string[] }> {
    const spec: MemberSpec = {
      name,
      dir: tmpDir(`cluster-${name}`),
      resp: await freePort(),
      http: await freePort(),
      peer: await freePort(),
    };
    this.members.push(spec);
    const initial = this.members.map((m) => `${m.name}=127.0.0.1:${m.peer}`).join(',');
    this.views.set(name, initial);
    const args = [
      'serve',
      '--name',
      name,
      '--dir',
      spec.dir,
      '--addr',
      `127.0.0.1:${spec.resp}`,
      '--http',
      `127.0.0.1:${spec.http}`,
      '--listen-peer',
      `127.0.0.1:${spec.peer}`,
      '--initial-cluster',
      initial,
      '--initial-cluster-state',
      'existing',
      '--cluster-token',
      this.options.token ?? 'test-cluster',
      '--log-level',
      'warn',
      ...(this.options.extraArgs ?? []),
      ...(this.options.password === undefined ? [] : ['--requirepass', this.options.password]),
    ];
    return { spec, args };
  }

  /** endpoints: the HTTP endpoints of the named members ("127.0.0.1:PORT,..."), for --endpoints. */
  endpoints(...names: string[]): string {
    return names.map((n) => `127.0.0.1:${this.spec(n).http}`).join(',');
  }

  /**
   * metric reads one sample from a member's /metrics, named with its labels as the exposition
   * writes them (`cairn_raft_term`, `x_count{to="n2"}`); it throws when the member exports none.
   */
  async metric(name: string, sample: string): Promise<number> {
    const text = await (await fetch(`http://${this.endpoints(name)}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
    if (line === undefined) throw new Error(`${name} exports no ${sample}`);
    return Number(line.slice(sample.length + 1));
  }

  spec(name: string): MemberSpec {
    const m = this.members.find((x) => x.name === name);
    if (m === undefined) throw new Error(`no member ${name}`);
    return m;
  }

  /** startMember (re)starts a member with its full first-start command line (a restart script). */
  async startMember(
    name: string,
    args?: readonly string[],
    /** env: extra environment (CAIRN_FAILPOINTS, src/io/failpoints.ts). */
    env: Readonly<Record<string, string>> = {},
  ): Promise<void> {
    const m = this.spec(name);
    const argv = args ?? [
      'serve',
      '--name',
      m.name,
      '--dir',
      m.dir,
      '--addr',
      `127.0.0.1:${m.resp}`,
      '--http',
      `127.0.0.1:${m.http}`,
      '--listen-peer',
      `127.0.0.1:${m.peer}`,
      '--initial-cluster',
      this.views.get(name)!,
      '--cluster-token',
      this.options.token ?? 'test-cluster',
      '--log-level',
      'warn',
      ...(this.options.extraArgs ?? []),
      ...(this.options.password === undefined ? [] : ['--requirepass', this.options.password]),
    ];
    const child = spawn(process.execPath, [BIN.cairn, ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    LIVE.add(child);
    child.once('exit', () => LIVE.delete(child));
    const log: string[] = this.logs.get(name) ?? [];
    this.logs.set(name, log);
    child.stdout.on('data', (b: Buffer) => log.push(b.toString()));
    child.stderr.on('data', (b: Buffer) => log.push(b.toString()));
    this.procs.set(name, child);
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null)
        throw new Error(`member ${name} exited with ${child.exitCode}:\n${log.join('')}`);
      try {
        const c = await CairnClient.connect('127.0.0.1', m.resp, 500);
        await c.close();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`member ${name} did not start:\n${log.join('')}`);
        await sleep(POLL_MS);
      }
    }
  }

  /** exited resolves with the exit code (or signal) once the member's process ends. */
  exited(name: string): Promise<number | string> {
    const child = this.procs.get(name);
    if (child === undefined) return Promise.resolve('not started');
    if (child.exitCode !== null || child.signalCode !== null)
      return Promise.resolve(child.exitCode ?? child.signalCode!);
    return new Promise((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
    );
  }

  /** kill sends a signal to a member (SIGKILL waits for the exit). */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.procs.get(name);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') await exited;
  }

  isRunning(name: string): boolean {
    const child = this.procs.get(name);
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  async client(name: string): Promise<CairnClient> {
    const c = await CairnClient.connect('127.0.0.1', this.spec(name).resp);
    if (this.options.password !== undefined) await c.call('AUTH', this.options.password);
    return c;
  }

  /** call runs one command on a member over a fresh connection. */
  async call(name: string, ...args: string[]): Promise<RespValue> {
    const c = await this.client(name);
    try {
      return await c.call(...args);
    } finally {
      await c.close();
    }
  }

  /** leader waits until some running member reports itself master in ROLE, and returns its name. */
  async leader(timeoutMs = 15_000, among?: readonly string[]): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (const m of this.members) {
        if (!this.isRunning(m.name) || (among !== undefined && !among.includes(m.name))) continue;
        try {
          const info = String(await this.call(m.name, 'INFO', 'replication'));
          if (/cairn_leader_ready:1/.test(info)) return m.name;
        } catch {
          // Not up, or paused: try the next.
        }
      }
      if (Date.now() > deadline) throw new Error(`no leader within ${timeoutMs} ms\n${this.dumpLogs()}`);
      await sleep(POLL_MS * 4);
    }
  }

  /** log: everything a member wrote to stdout and stderr, across its restarts. */
  log(name: string): string {
    return (this.logs.get(name) ?? []).join('');
  }

  dumpLogs(): string {
    return [...this.logs].map(([n, l]) => `--- ${n}\n${l.join('').slice(-4000)}`).join('\n');
  }

  async stop(): Promise<void> {
    for (const name of this.procs.keys()) {
      const child = this.procs.get(name)!;
      if (child.signalCode === 'SIGSTOP') child.kill('SIGCONT');
      await this.kill(name, 'SIGKILL');
    }
    for (const p of this.links.values()) await p.close();
  }

  /** dataFiles lists a member's directory (debugging aid for failures). */
  files(name: string): string[] {
    return fs.readdirSync(path.join(this.spec(name).dir));
  }
}

/**
 * until polls `check` every UNTIL_POLL_MS until it answers true (a throw counts as not yet: a
 * member starting, an election), or fails after `ms`.
 */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = UNTIL_TIMEOUT_MS,
): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // Not yet.
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(UNTIL_POLL_MS);
  }
}

/** UNTIL_TIMEOUT_MS, UNTIL_POLL_MS: until's default limit and polling interval. */
const UNTIL_TIMEOUT_MS = 15_000;
const UNTIL_POLL_MS = 50;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
