// Cluster benchmark (issue 13): a 3-member Cairn cluster against a 3-member etcd cluster, both
// started by this script on loopback in the same run, both durable with their defaults (Cairn
// `--sync always`, etcd's fsync of its WAL and backend), driven from this Node process.
//
//   npm run bench:cluster                          DURATION_MS_FULL per point, then the profile
//   npm run bench:cluster -- --quick               DURATION_MS_QUICK per point (a smoke run)
//   npm run bench:cluster -- --no-profile          skip the profiled run of the Cairn leader
//   npm run bench:cluster -- --profile-only        only the profiled run: leader and a follower
//   npm run bench:cluster -- --profile-workload txn   profile the 16-client leader-only txn row
//                                                  instead of 64-client writes (txn-all: the
//                                                  16-client row through every member)
//   npm run bench:cluster -- --only write          only the rows of one workload (write,
//                                                  read-linearizable, read-serializable, txn)
//   npm run bench:cluster -- --member-node-flags "--max-semi-space-size=64"   node flags for
//                                                  every Cairn member of the measured cluster
//   npm run bench:cluster -- --etcd-client agent   etcd through node:http keep-alive agents
//   npm run bench:cluster -- --write-docs          the result block into docs/benchmarks.md
//   npm run bench:cluster -- --out /tmp/r.md       the result block appended to a file
//
// Build first (`npm run build`): members run dist/src/cli/cairn.js. etcd is Debian's
// `etcd-server` (`apt-get install etcd-server`); without it the etcd rows are skipped.
//
// Load: closed loops ("clients") in this process, each with its own persistent connection, one
// request in flight at a time, spread round-robin over the three members (as etcd's client
// balances over its endpoints; followers forward to the leader) or, in "leader" rows, all on the
// leader. Each point runs WARMUP_MS unrecorded, then the measured duration; an operation counts
// if it started inside the measured window, and throughput is those operations over the time
// from the window's start until the last of them finished.
// - Cairn: RESP through CairnClient (src/client/client.ts: one socket, no parsing beyond RESP,
//   the lightest client we have). Writes are SET, linearizable reads GET (ReadIndex), serializable
//   reads GET on a connection that sent READONLY.
// - etcd: its gRPC gateway's JSON API, POST /v3/kv/put and /v3/kv/range (base64 keys and values;
//   `"serializable": true` for serializable reads), by default through RawHttpClient below: one
//   keep-alive HTTP/1.1 socket per client and no more parsing than the status line and
//   Content-Length, so both systems pay about the same client CPU. `--etcd-client agent` uses
//   node:http with a keep-alive Agent instead (heavier client). The gateway runs inside etcd and
//   forwards each request over a loopback gRPC connection to itself: that hop is etcd's cost here,
//   which a Go client speaking gRPC would not pay.
// - Transactions (Cairn only): TXN.BEGIN ISOLATION SERIALIZABLE, GET of TXN_KEYS keys (pipelined),
//   SET of each read value changed (pipelined), TXN.COMMIT; a -CONFLICT reply retries the same
//   keys, at most MAX_ATTEMPTS times. "commit" latency is the TXN.COMMIT round trip of the
//   attempt that committed; "txn" latency is from the first TXN.BEGIN to that commit.
//
// Keys: KEY_PREFIX plus a decimal index; writes pick uniformly among KEYSPACE keys, reads and
// transactions among the READ_KEYSPACE keys preloaded before the first point. Values are
// VALUE_BYTES random bytes (VALUE_VARIANTS of them, reused).
//
// CPU: the machine this was written for has 2 cores, shared by this load generator and the six
// server processes. Each row reports the generator's CPU (process.cpuUsage) and the three active
// members' CPU (utime + stime from /proc/PID/stat), in percent of one core; both clusters stay up
// for the whole run (rows alternate Cairn and etcd, so drift of a noisy machine hits both), the
// idle one costs only its heartbeats.
//
// Leader counters: before and after each row the leader's /metrics give fsyncs per second of the
// Raft WAL and of the storage engine and proposals committed per second (Cairn:
// cairn_raft_wal_fsync_duration_seconds_count, cairn_fsyncs_total,
// cairn_raft_proposals_committed_total; etcd: etcd_disk_wal_fsync_duration_seconds_count,
// etcd_disk_backend_commit_duration_seconds_count, etcd_server_proposals_committed_total).
//
// Profile: after the measured rows, a fresh Cairn cluster whose members run with `node
// --cpu-prof` takes the 64-client write load for one point; the leader's profile, cut to the
// measured window (V8's sample timestamps and process.hrtime are the same monotonic clock on
// Linux), is summarized as self time by function and by source directory.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Table from 'cli-table3';
import { CairnClient } from '../src/client/client.js';
import { RespError } from '../src/protocol/resp/index.js';
import { Prng } from '../src/stdx/prng.js';
import { cleanUpOnExit, cleanupSync, freePort as freePortOn, live, tempDirs } from './child-processes.js';

const HOST = '127.0.0.1';
const MEMBERS = 3;
const VALUE_BYTES = 100;
/** VALUE_VARIANTS: distinct random values, reused (no allocation per operation). */
const VALUE_VARIANTS = 64;
/** KEYSPACE: writes pick uniformly among this many keys. */
const KEYSPACE = 100_000;
/** READ_KEYSPACE: keys preloaded before the first point; reads and transactions pick among them. */
const READ_KEYSPACE = 10_000;
const KEY_PREFIX = 'bench:';
const PRELOAD_CLIENTS = 64;
const WRITE_CLIENTS = [1, 64, 256] as const;
const READ_CLIENTS = 64;
const TXN_CLIENTS = [16, 64] as const;
/** TXN_KEYS: keys read and written by each transaction. */
const TXN_KEYS = 10;
/** MAX_ATTEMPTS: a transaction that conflicts this many times gives up (counted). */
const MAX_ATTEMPTS = 10;
const DURATION_MS_FULL = 5000;
const DURATION_MS_QUICK = 1000;
/** WARMUP_MS: unrecorded load before each point's window (JIT, connection set-up, caches). */
const WARMUP_MS_FULL = 1000;
const WARMUP_MS_QUICK = 300;
/** PROFILE_CLIENTS: the write point profiled on the Cairn leader. */
const PROFILE_CLIENTS = 64;
/** PROFILE_TOP: functions listed from the leader's profile. */
const PROFILE_TOP = 20;
/** CALLER_DEPTH: how far up the stack a native function's caller in our code is looked for. */
const CALLER_DEPTH = 12;
/** START_TIMEOUT_MS: members must answer and a leader be ready within this. */
const START_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
/** STOP_TIMEOUT_MS: grace after SIGTERM (Cairn flushes, a profiled member writes its profile). */
const STOP_TIMEOUT_MS = 20_000;
/** REQUEST_TIMEOUT_MS: an HTTP request of the harness (status, metrics) taking longer failed. */
const REQUEST_TIMEOUT_MS = 5000;
/** CLK_TCK_DEFAULT: /proc/PID/stat's tick rate when `getconf CLK_TCK` cannot say (Linux: 100). */
const CLK_TCK_DEFAULT = 100;
/** STDERR_TAIL_CHARS: kept from each member's stderr, for error messages. */
const STDERR_TAIL_CHARS = 4096;
/** HTTP_RESPONSE_MAX: a gateway response larger than this is a bug (ours are < 1 KiB). */
const HTTP_RESPONSE_MAX = 1 << 20;
const SEED = 0x13c1;
/** Targets (issue 13): Cairn / etcd at 64 and 256 clients; transaction commit p50 at 16 clients. */
const TARGET_RATIO = 1.0;
const TARGET_TXN_P50_MS = 2.5;
const TARGET_TXN_CLIENTS = 16;

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CAIRN_CLI = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'cairn.js');
const DOCS = path.join(REPO_ROOT, 'docs', 'benchmarks.md');
/** DOCS_SECTION: --write-docs puts the result block at the end of this section. */
const DOCS_SECTION = '## Cluster (issue 13)';

type System = 'cairn' | 'etcd';
type Workload = 'write' | 'read-linearizable' | 'read-serializable' | 'txn';
type Spread = 'all' | 'leader';

interface Args {
  readonly quick: boolean;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly profile: boolean;
  /** profileOnly: skip the rows; profile the leader and a follower (where forwarding costs). */
  readonly profileOnly: boolean;
  /** profileRow: the row the profiled run measures (default: 64-client writes through all members). */
  readonly profileRow: Row;
  /** only: run just the rows whose workload matches (write, read-linearizable, ..., txn). */
  readonly only: string | undefined;
  readonly memberNodeFlags: readonly string[];
  readonly etcdClient: 'raw' | 'agent';
  readonly writeDocs: boolean;
  readonly out: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let durationMs: number | undefined;
  let profile = true;
  let profileOnly = false;
  let only: string | undefined;
  let profileWorkload: 'write' | 'txn' | 'txn-all' = 'write';
  let memberNodeFlags: string[] = [];
  let etcdClient: 'raw' | 'agent' = 'raw';
  let writeDocs = false;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    if (arg === '--quick') quick = true;
    else if (arg === '--no-profile') profile = false;
    else if (arg === '--profile-only') profileOnly = true;
    else if (arg === '--only') only = value();
    else if (arg === '--profile-workload') {
      const v = value();
      if (v !== 'write' && v !== 'txn' && v !== 'txn-all')
        throw new Error('--profile-workload is write, txn or txn-all');
      profileWorkload = v;
    } else if (arg === '--write-docs') writeDocs = true;
    else if (arg === '--out') out = path.resolve(value());
    else if (arg === '--member-node-flags') memberNodeFlags = value().split(/\s+/).filter(Boolean);
    else if (arg === '--etcd-client') {
      const v = value();
      if (v !== 'raw' && v !== 'agent') throw new Error('--etcd-client is raw or agent');
      etcdClient = v;
    } else if (arg === '--duration-ms') {
      durationMs = Number(value());
      if (!Number.isSafeInteger(durationMs) || durationMs <= 0)
        throw new Error('--duration-ms needs a positive integer');
    } else throw new Error(`unknown argument: ${arg}`);
  }
  return {
    quick,
    durationMs: durationMs ?? (quick ? DURATION_MS_QUICK : DURATION_MS_FULL),
    warmupMs: quick ? WARMUP_MS_QUICK : WARMUP_MS_FULL,
    profile: profile || profileOnly,
    profileOnly,
    // txn: the target's row (16 clients on the leader), so the profile is the commit path alone.
    // txn-all: the same clients spread over every member (what forwarding costs).
    profileRow:
      profileWorkload === 'write'
        ? { system: 'cairn', workload: 'write', clients: PROFILE_CLIENTS, spread: 'all' }
        : {
            system: 'cairn',
            workload: 'txn',
            clients: TARGET_TXN_CLIENTS,
            spread: profileWorkload === 'txn' ? 'leader' : 'all',
          },
    only,
    memberNodeFlags,
    etcdClient,
    writeDocs,
    out,
  };
}

// ---- processes -----------------------------------------------------------------------------------

cleanUpOnExit('the clusters');

function tempDir(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairn-bench-cluster-${name}-`));
  tempDirs.add(dir);
  return dir;
}

const freePort = (): Promise<number> => freePortOn(HOST);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Member {
  readonly name: string;
  readonly client: number;
  readonly http: number;
  readonly peer: number;
  readonly child: ChildProcess;
  readonly stderr: () => string;
}

interface Cluster {
  readonly system: System;
  readonly members: readonly Member[];
  readonly dir: string;
  /** commandLine: member 1's command line with placeholders, for the record. */
  readonly commandLine: string;
  /** leader: the member that is leader now (asked again before every row). */
  leader(): Promise<Member>;
}

function spawnMember(
  name: string,
  command: string,
  args: readonly string[],
): Omit<Member, 'client' | 'http' | 'peer'> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  live.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL_CHARS);
  });
  child.once('error', (err) => {
    stderr += `\nspawn error: ${err.message}`;
  });
  return { name, child, stderr: () => stderr };
}

function assertRunning(cluster: Cluster): void {
  for (const m of cluster.members) {
    if (m.child.exitCode !== null || m.child.signalCode !== null) {
      throw new Error(
        `${cluster.system} member ${m.name} exited (${m.child.exitCode ?? m.child.signalCode}): ${m.stderr()}`,
      );
    }
  }
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await Promise.all(
    cluster.members.map(async ({ child }) => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(true), STOP_TIMEOUT_MS);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      live.delete(child);
    }),
  );
  fs.rmSync(cluster.dir, { recursive: true, force: true });
  tempDirs.delete(cluster.dir);
}

/** placeholders: a recorded command line without this run's directories and ports. */
function placeholders(args: readonly string[], dir: string, ports: readonly number[]): string {
  return args
    .map((a) => {
      let s = a === CAIRN_CLI ? path.relative(REPO_ROOT, CAIRN_CLI) : a.split(dir).join('DIR');
      for (const p of ports) s = s.split(`:${p}`).join(':PORT');
      return s;
    })
    .join(' ');
}

/** httpRequest: one request of the harness (status, metrics), outside measured windows. */
function httpRequest(port: number, method: string, pathname: string, body?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: HOST, port, method, path: pathname, timeout: REQUEST_TIMEOUT_MS, agent: false },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          data += c;
        });
        res.on('end', () => {
          if (res.statusCode === 200) resolve(data);
          else reject(new Error(`${method} ${pathname}: HTTP ${res.statusCode}: ${data.slice(0, 200)}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${pathname}: timeout`)));
    req.on('error', reject);
    req.end(body);
  });
}

async function startCairn(label: string, nodeFlags: readonly string[]): Promise<Cluster> {
  const dir = tempDir(label);
  const ports = await Promise.all(
    Array.from({ length: MEMBERS }, async () => ({
      client: await freePort(),
      http: await freePort(),
      peer: await freePort(),
    })),
  );
  const initial = ports.map((p, i) => `n${i + 1}=${HOST}:${p.peer}`).join(',');
  const members: Member[] = [];
  let commandLine = '';
  ports.forEach((p, i) => {
    const name = `n${i + 1}`;
    const args = [
      ...nodeFlags.map((f) => f.replaceAll('{name}', name)),
      CAIRN_CLI,
      'serve',
      '--name',
      name,
      '--dir',
      path.join(dir, name),
      '--addr',
      `${HOST}:${p.client}`,
      '--http',
      `${HOST}:${p.http}`,
      '--listen-peer',
      `${HOST}:${p.peer}`,
      '--initial-cluster',
      initial,
      '--cluster-token',
      'bench',
      '--log-level',
      'warn',
    ];
    if (i === 0)
      commandLine = `node ${placeholders(
        args,
        dir,
        ports.flatMap((q) => [q.client, q.http, q.peer]),
      )}`;
    members.push({ ...spawnMember(name, process.execPath, args), ...p });
  });
  const cluster: Cluster = {
    system: 'cairn',
    members,
    dir,
    commandLine,
    async leader() {
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        assertRunning(cluster);
        for (const m of members) {
          try {
            const c = await CairnClient.connect(HOST, m.client, REQUEST_TIMEOUT_MS);
            try {
              if (/cairn_leader_ready:1/.test(String(await c.call('INFO', 'replication')))) return m;
            } finally {
              await c.close();
            }
          } catch {
            // Not up yet: the next member, then the next poll.
          }
        }
        if (Date.now() > deadline) throw new Error(`cairn: no ready leader within ${START_TIMEOUT_MS} ms`);
        await sleep(POLL_MS);
      }
    },
  };
  return cluster;
}

async function startEtcd(): Promise<Cluster> {
  const dir = tempDir('etcd');
  const ports = await Promise.all(
    Array.from({ length: MEMBERS }, async () => ({ client: await freePort(), peer: await freePort() })),
  );
  const initial = ports.map((p, i) => `e${i + 1}=http://${HOST}:${p.peer}`).join(',');
  const members: Member[] = [];
  let commandLine = '';
  ports.forEach((p, i) => {
    const name = `e${i + 1}`;
    const args = [
      '--name',
      name,
      '--data-dir',
      path.join(dir, name),
      '--listen-client-urls',
      `http://${HOST}:${p.client}`,
      '--advertise-client-urls',
      `http://${HOST}:${p.client}`,
      '--listen-peer-urls',
      `http://${HOST}:${p.peer}`,
      '--initial-advertise-peer-urls',
      `http://${HOST}:${p.peer}`,
      '--initial-cluster',
      initial,
      '--initial-cluster-token',
      'bench',
      '--initial-cluster-state',
      'new',
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ];
    if (i === 0)
      commandLine = `etcd ${placeholders(
        args,
        dir,
        ports.flatMap((q) => [q.client, q.peer]),
      )}`;
    // etcd serves /metrics on its client port.
    members.push({ ...spawnMember(name, 'etcd', args), client: p.client, http: p.client, peer: p.peer });
  });
  const cluster: Cluster = {
    system: 'etcd',
    members,
    dir,
    commandLine,
    async leader() {
      const deadline = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        assertRunning(cluster);
        for (const m of members) {
          try {
            const status = JSON.parse(
              await httpRequest(m.client, 'POST', '/v3/maintenance/status', '{}'),
            ) as {
              header: { member_id: string };
              leader?: string;
            };
            if (status.leader !== undefined && status.leader === status.header.member_id) return m;
          } catch {
            // Not up yet.
          }
        }
        if (Date.now() > deadline) throw new Error(`etcd: no leader within ${START_TIMEOUT_MS} ms`);
        await sleep(POLL_MS);
      }
    },
  };
  return cluster;
}

// ---- data ----------------------------------------------------------------------------------------

const prng = new Prng(SEED);
const KEYS: readonly string[] = Array.from({ length: KEYSPACE }, (_, i) => `${KEY_PREFIX}${i}`);
const KEYS_B64: readonly string[] = KEYS.map((k) => Buffer.from(k).toString('base64'));
const VALUES: readonly Buffer[] = Array.from({ length: VALUE_VARIANTS }, () => {
  const v = Buffer.allocUnsafe(VALUE_BYTES);
  for (let i = 0; i < VALUE_BYTES; i += 4) v.writeUInt32LE(prng.u32(), i);
  return v;
});
const VALUES_B64: readonly string[] = VALUES.map((v) => v.toString('base64'));

// ---- clients -------------------------------------------------------------------------------------

/** One request in flight at a time per client, over its own persistent connection. */
interface Conn {
  write(key: number, value: number): Promise<void>;
  read(key: number): Promise<void>;
  close(): Promise<void>;
}

class CairnConn implements Conn {
  private constructor(readonly client: CairnClient) {}

  static async open(port: number, serializable: boolean): Promise<CairnConn> {
    const client = await CairnClient.connect(HOST, port);
    if (serializable) await client.call('READONLY');
    return new CairnConn(client);
  }

  async write(key: number, value: number): Promise<void> {
    const reply = await this.client.call('SET', KEYS[key]!, VALUES[value]!);
    if (reply !== 'OK') throw new Error(`SET: unexpected reply ${String(reply)}`);
  }

  async read(key: number): Promise<void> {
    const reply = await this.client.call('GET', KEYS[key]!);
    if (!Buffer.isBuffer(reply) || reply.length !== VALUE_BYTES)
      throw new Error(`GET ${KEYS[key]}: expected a ${VALUE_BYTES}-byte value`);
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

interface HttpReply {
  readonly status: number;
  readonly body: string;
}

/**
 * RawHttpClient: HTTP/1.1 keep-alive over one socket, one request at a time, responses framed by
 * Content-Length (what etcd's gateway sends). The least client CPU we can spend per request.
 */
class RawHttpClient {
  private buf: Buffer = Buffer.alloc(0);
  private waiter: { resolve(r: HttpReply): void; reject(e: Error): void } | undefined;
  private failure: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly hostHeader: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed')));
  }

  static connect(port: number): Promise<RawHttpClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: HOST, port });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        socket.removeAllListeners('error');
        resolve(new RawHttpClient(socket, `${HOST}:${port}`));
      });
      socket.once('error', reject);
    });
  }

  post(pathname: string, body: string): Promise<HttpReply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.waiter !== undefined) return Promise.reject(new Error('one request at a time'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.socket.write(
        `POST ${pathname} HTTP/1.1\r\nHost: ${this.hostHeader}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    });
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const end = this.buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (this.buf.length > HTTP_RESPONSE_MAX) this.fail(new Error('response head too large'));
      return;
    }
    const head = this.buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (m === null) {
      this.fail(new Error(`response without Content-Length: ${head.slice(0, 200)}`));
      return;
    }
    const length = Number(m[1]);
    if (length > HTTP_RESPONSE_MAX) {
      this.fail(new Error('response too large'));
      return;
    }
    if (this.buf.length < end + 4 + length) return;
    const body = this.buf.toString('utf8', end + 4, end + 4 + length);
    this.buf = this.buf.subarray(end + 4 + length);
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve({ status, body });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
    this.socket.destroy();
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}

/** AgentHttpClient: the same requests through node:http and a keep-alive Agent (--etcd-client agent). */
class AgentHttpClient {
  constructor(
    private readonly port: number,
    private readonly agent: http.Agent,
  ) {}

  post(pathname: string, body: string): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: HOST,
          port: this.port,
          method: 'POST',
          path: pathname,
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let data = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            data += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  async close(): Promise<void> {}
}

class EtcdConn implements Conn {
  constructor(
    private readonly http: RawHttpClient | AgentHttpClient,
    private readonly serializable: boolean,
  ) {}

  async write(key: number, value: number): Promise<void> {
    const r = await this.http.post('/v3/kv/put', `{"key":"${KEYS_B64[key]}","value":"${VALUES_B64[value]}"}`);
    if (r.status !== 200) throw new Error(`put: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  }

  async read(key: number): Promise<void> {
    const r = await this.http.post(
      '/v3/kv/range',
      this.serializable ? `{"key":"${KEYS_B64[key]}","serializable":true}` : `{"key":"${KEYS_B64[key]}"}`,
    );
    // A found key's reply carries "kvs"; a missing one does not (the preload wrote every read key).
    if (r.status !== 200 || !r.body.includes('"kvs"'))
      throw new Error(`range: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

interface Pool {
  readonly conns: readonly Conn[];
  close(): Promise<void>;
}

async function openPool(
  cluster: Cluster,
  targets: readonly Member[],
  clients: number,
  serializable: boolean,
  etcdClient: 'raw' | 'agent',
): Promise<Pool> {
  const agents = new Map<number, http.Agent>();
  const conns = await Promise.all(
    Array.from({ length: clients }, async (_, i): Promise<Conn> => {
      const m = targets[i % targets.length]!;
      if (cluster.system === 'cairn') return CairnConn.open(m.client, serializable);
      if (etcdClient === 'raw') return new EtcdConn(await RawHttpClient.connect(m.client), serializable);
      let agent = agents.get(m.client);
      if (agent === undefined) {
        agent = new http.Agent({ keepAlive: true, maxSockets: clients });
        agents.set(m.client, agent);
      }
      return new EtcdConn(new AgentHttpClient(m.client, agent), serializable);
    }),
  );
  return {
    conns,
    async close() {
      await Promise.all(conns.map((c) => c.close()));
      for (const a of agents.values()) a.destroy();
    },
  };
}

// ---- measurement ---------------------------------------------------------------------------------

interface Row {
  readonly system: System;
  readonly workload: Workload;
  readonly clients: number;
  readonly spread: Spread;
}

interface LeaderRates {
  readonly walFsyncs: number;
  /** walFsyncSeconds: the WAL fsync histogram's sum (a rate over the row: busy seconds per second). */
  readonly walFsyncSeconds: number;
  readonly engineFsyncs: number;
  readonly proposals: number;
  readonly leaderChanges: number;
}

interface Result {
  readonly row: Row;
  readonly ops: number;
  readonly seconds: number;
  /** latencies in ms, sorted: of the operation (txn rows: of the whole transaction). */
  readonly latencies: Float64Array;
  /** commitLatencies: txn rows, the committing TXN.COMMIT round trip, ms, sorted. */
  readonly commitLatencies: Float64Array | undefined;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly aborts: number;
  readonly gaveUp: number;
  /** genCpu, serverCpu: percent of one core over the window. */
  readonly genCpu: number;
  readonly serverCpu: number;
  readonly leader: LeaderRates | undefined;
  /** windowStartUs, windowEndUs: the measured window on the monotonic clock (V8 profiles' clock). */
  readonly windowStartUs: number;
  readonly windowEndUs: number;
}

const opsPerSecond = (r: Result): number => r.ops / r.seconds;

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

let clkTck = CLK_TCK_DEFAULT;

/** cpuTicks: utime + stime of a process from /proc/PID/stat (0 where /proc is absent). */
function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // Fields after the parenthesized command name, which may itself contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

const METRICS: Readonly<Record<System, Record<keyof LeaderRates, string>>> = {
  cairn: {
    walFsyncs: 'cairn_raft_wal_fsync_duration_seconds_count',
    walFsyncSeconds: 'cairn_raft_wal_fsync_duration_seconds_sum',
    engineFsyncs: 'cairn_fsyncs_total',
    proposals: 'cairn_raft_proposals_committed_total',
    leaderChanges: 'cairn_raft_leader_changes_seen_total',
  },
  etcd: {
    walFsyncs: 'etcd_disk_wal_fsync_duration_seconds_count',
    walFsyncSeconds: 'etcd_disk_wal_fsync_duration_seconds_sum',
    engineFsyncs: 'etcd_disk_backend_commit_duration_seconds_count',
    proposals: 'etcd_server_proposals_committed_total',
    leaderChanges: 'etcd_server_leader_changes_seen_total',
  },
};

async function scrape(system: System, m: Member): Promise<LeaderRates | undefined> {
  try {
    const text = await httpRequest(m.http, 'GET', '/metrics');
    const read = (name: string): number => {
      const line = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
      return line === null ? Number.NaN : Number(line[1]);
    };
    const names = METRICS[system];
    return {
      walFsyncs: read(names.walFsyncs),
      walFsyncSeconds: read(names.walFsyncSeconds),
      engineFsyncs: read(names.engineFsyncs),
      proposals: read(names.proposals),
      leaderChanges: read(names.leaderChanges),
    };
  } catch {
    return undefined;
  }
}

/** pickDistinct: `n` distinct indexes below `space`. */
function pickDistinct(rng: Prng, space: number, n: number): number[] {
  const picked: number[] = [];
  while (picked.length < n) {
    const i = rng.int(space);
    if (!picked.includes(i)) picked.push(i);
  }
  return picked;
}

/** changed: a copy of a read value with its first byte bumped (the transaction's "modify"). */
function changed(value: unknown): Buffer {
  const copy = Buffer.isBuffer(value) && value.length > 0 ? Buffer.from(value) : Buffer.from(VALUES[0]!);
  copy[0] = (copy[0]! + 1) & 0xff;
  return copy;
}

interface TxnOutcome {
  readonly aborts: number;
  readonly committed: boolean;
  /** commitMs: the committing TXN.COMMIT round trip. */
  readonly commitMs: number;
}

async function runTxn(client: CairnClient, keys: readonly number[]): Promise<TxnOutcome> {
  let aborts = 0;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    // Pipelined: the reads go out behind TXN.BEGIN, the writes and the commit together; the server
    // runs a connection's commands in order, so this is the same transaction as one at a time.
    const begin = client.call('TXN.BEGIN', 'ISOLATION', 'SERIALIZABLE');
    const gets = keys.map((k) => client.call('GET', KEYS[k]!));
    const [, ...values] = await Promise.all([begin, ...gets]);
    const sets = keys.map((k, j) => client.call('SET', KEYS[k]!, changed(values[j])));
    const t0 = performance.now();
    const commit = client.call('TXN.COMMIT');
    try {
      await Promise.all([...sets, commit]);
      return { aborts, committed: true, commitMs: performance.now() - t0 };
    } catch (err) {
      if (err instanceof RespError && err.code === 'CONFLICT') {
        aborts++;
        continue;
      }
      throw err;
    }
  }
  return { aborts, committed: false, commitMs: 0 };
}

async function measure(cluster: Cluster, row: Row, args: Args): Promise<Result> {
  const leader = await cluster.leader();
  const targets = row.spread === 'leader' ? [leader] : cluster.members;
  const pool = await openPool(
    cluster,
    targets,
    row.clients,
    row.workload === 'read-serializable',
    args.etcdClient,
  );
  const rng = new Prng(SEED ^ row.clients);
  const latencies: number[] = [];
  const commitLatencies: number[] = [];
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  let aborts = 0;
  let gaveUp = 0;
  let lastEnd = 0;
  const start = performance.now();
  const startUs = Number(process.hrtime.bigint() / 1000n);
  const windowStart = start + args.warmupMs;
  const deadline = windowStart + args.durationMs;
  let before: { gen: NodeJS.CpuUsage; srv: number; metrics: LeaderRates | undefined } | undefined;
  const sampleBefore = async (): Promise<void> => {
    await sleep(windowStart - performance.now());
    before = {
      gen: process.cpuUsage(),
      srv: cluster.members.reduce((s, m) => s + cpuTicks(m.child.pid), 0),
      metrics: await scrape(cluster.system, leader),
    };
  };
  const sampler = sampleBefore();

  const loop = async (conn: Conn): Promise<void> => {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= deadline) return;
      try {
        if (row.workload === 'write') await conn.write(rng.int(KEYSPACE), rng.int(VALUE_VARIANTS));
        else if (row.workload === 'txn') {
          const keys = pickDistinct(rng, READ_KEYSPACE, TXN_KEYS);
          const outcome = await runTxn((conn as CairnConn).client, keys);
          if (t0 >= windowStart) {
            aborts += outcome.aborts;
            if (!outcome.committed) gaveUp++;
            else commitLatencies.push(outcome.commitMs);
          }
          if (!outcome.committed) continue;
        } else await conn.read(rng.int(READ_KEYSPACE));
        const t1 = performance.now();
        if (t0 >= windowStart) {
          ops++;
          latencies.push(t1 - t0);
          lastEnd = Math.max(lastEnd, t1);
        }
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        // A broken connection fails every call at once: do not spin on it.
        if (errors > row.clients * MAX_ATTEMPTS) throw new Error(`too many errors; first: ${firstError}`);
      }
    }
  };
  try {
    await Promise.all(pool.conns.map(loop));
  } finally {
    await sampler;
    await pool.close();
  }
  const end = Math.max(lastEnd, deadline);
  const genCpu = process.cpuUsage(before?.gen);
  const srv = cluster.members.reduce((s, m) => s + cpuTicks(m.child.pid), 0);
  const after = await scrape(cluster.system, leader);
  const seconds = (end - windowStart) / 1000;
  const rate = (k: keyof LeaderRates): number =>
    after === undefined || before?.metrics === undefined
      ? Number.NaN
      : (after[k] - before.metrics[k]) / seconds;
  assertRunning(cluster);
  return {
    row,
    ops,
    seconds,
    latencies: Float64Array.from(latencies).sort(),
    commitLatencies: row.workload === 'txn' ? Float64Array.from(commitLatencies).sort() : undefined,
    errors,
    firstError,
    aborts,
    gaveUp,
    genCpu: ((genCpu.user + genCpu.system) / 1e3 / (end - windowStart)) * 100,
    windowStartUs: startUs + (windowStart - start) * 1000,
    windowEndUs: startUs + (end - start) * 1000,
    serverCpu: (((srv - (before?.srv ?? srv)) / clkTck) * 1000 * 100) / (end - windowStart),
    leader:
      after === undefined
        ? undefined
        : {
            walFsyncs: rate('walFsyncs'),
            walFsyncSeconds: rate('walFsyncSeconds'),
            engineFsyncs: rate('engineFsyncs'),
            proposals: rate('proposals'),
            // A count, not a rate: any change during the row is worth a note.
            leaderChanges: after.leaderChanges - (before?.metrics?.leaderChanges ?? after.leaderChanges),
          },
  };
}

/** preload writes every READ_KEYSPACE key once, so that every read finds a value. */
async function preload(cluster: Cluster, etcdClient: 'raw' | 'agent'): Promise<void> {
  const pool = await openPool(cluster, cluster.members, PRELOAD_CLIENTS, false, etcdClient);
  let next = 0;
  try {
    await Promise.all(
      pool.conns.map(async (conn) => {
        while (next < READ_KEYSPACE) {
          const k = next++;
          await conn.write(k, k % VALUE_VARIANTS);
        }
      }),
    );
  } finally {
    await pool.close();
  }
}

// ---- profile -------------------------------------------------------------------------------------

interface ProfileNode {
  readonly id: number;
  readonly children?: readonly number[];
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

interface ProfileSummary {
  readonly leader: string;
  readonly seconds: number;
  readonly samples: number;
  readonly windowed: boolean;
  readonly functions: readonly { name: string; where: string; percent: number }[];
  readonly groups: readonly { group: string; percent: number }[];
  readonly result: Result;
  readonly file: string;
  /** follower: the same summary of one follower's profile. */
  readonly follower: Pick<ProfileSummary, 'leader' | 'samples' | 'functions' | 'groups'>;
}

function shortUrl(url: string): string {
  if (url === '') return '';
  const p = url.startsWith('file://') ? fileURLToPath(url) : url;
  return p.startsWith(REPO_ROOT) ? path.relative(REPO_ROOT, p) : p;
}

/** groupOf: where a function's self time belongs, by file (our source directory, node, a package). */
function groupOf(name: string, url: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const m = /(?:^|\/)dist\/src\/([^/]+)\//.exec(url);
  if (m !== null) return `src/${m[1]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  return pkg === null ? url : `package ${pkg[1]}`;
}

/** summarize: self time by function and by group, over the samples between fromUs and toUs. */
function summarize(
  profile: CpuProfile,
  fromUs: number,
  toUs: number,
): Pick<ProfileSummary, 'samples' | 'windowed' | 'functions' | 'groups'> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n.id);
  /** caller: a native function's nearest caller in our code (so a socket write and a WAL write differ). */
  const caller = (id: number): string => {
    let fallback = '';
    for (
      let p = parentOf.get(id), depth = 0;
      p !== undefined && depth < CALLER_DEPTH;
      p = parentOf.get(p), depth++
    ) {
      const f = byId.get(p)!.callFrame;
      const where = `${f.functionName === '' ? '(anonymous)' : f.functionName} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
      if (f.url.includes('/dist/src/')) return `from ${where}`;
      if (fallback === '' && f.url !== '') fallback = `from ${where}`;
    }
    return fallback;
  };
  const count = (from: number, to: number): Map<number, number> => {
    const hits = new Map<number, number>();
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      t += profile.timeDeltas[i]!;
      if (t < from || t > to) continue;
      const id = profile.samples[i]!;
      hits.set(id, (hits.get(id) ?? 0) + 1);
    }
    return hits;
  };
  let hits = count(fromUs, toUs);
  let windowed = true;
  if (hits.size === 0) {
    // The clocks did not line up (not Linux?): the whole profile, start-up and shutdown included.
    hits = count(Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    windowed = false;
  }
  let total = 0;
  const fns = new Map<string, { name: string; where: string; n: number }>();
  const groups = new Map<string, number>();
  for (const [id, n] of hits) {
    total += n;
    const f = byId.get(id)!.callFrame;
    const name = f.functionName === '' ? '(anonymous)' : f.functionName;
    const url = shortUrl(f.url);
    const where = url !== '' ? `${url}:${f.lineNumber + 1}` : name.startsWith('(') ? '' : caller(id);
    const key = `${name} ${where}`;
    const e = fns.get(key) ?? { name, where, n: 0 };
    e.n += n;
    fns.set(key, e);
    const g = groupOf(name, url);
    groups.set(g, (groups.get(g) ?? 0) + n);
  }
  return {
    samples: total,
    windowed,
    functions: [...fns.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, PROFILE_TOP)
      .map((e) => ({ name: e.name, where: e.where, percent: (e.n / total) * 100 })),
    groups: [...groups]
      .sort((a, b) => b[1] - a[1])
      .map(([group, n]) => ({ group, percent: (n / total) * 100 })),
  };
}

async function profileLeader(args: Args): Promise<ProfileSummary> {
  const profDir = tempDir('profile');
  const cluster = await startCairn('profiled', [
    '--cpu-prof',
    `--cpu-prof-dir=${profDir}`,
    '--cpu-prof-name={name}.cpuprofile',
  ]);
  let leader: Member;
  let result: Result;
  try {
    leader = await cluster.leader();
    await preload(cluster, args.etcdClient);
    result = await measure(cluster, args.profileRow, args);
  } finally {
    // SIGTERM: the members exit normally, which is when node writes their profiles.
    await stopCluster(cluster);
  }
  const file = path.join(profDir, `${leader.name}.cpuprofile`);
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const kept = path.join(os.tmpdir(), 'cairn-bench-cluster-leader.cpuprofile');
  fs.copyFileSync(file, kept);
  const other = cluster.members.find((m) => m.name !== leader.name)!;
  const followerProfile = JSON.parse(
    fs.readFileSync(path.join(profDir, `${other.name}.cpuprofile`), 'utf8'),
  ) as CpuProfile;
  fs.copyFileSync(
    path.join(profDir, `${other.name}.cpuprofile`),
    path.join(os.tmpdir(), 'cairn-bench-cluster-follower.cpuprofile'),
  );
  return {
    leader: leader.name,
    seconds: result.seconds,
    result,
    file: kept,
    ...summarize(profile, result.windowStartUs, result.windowEndUs),
    follower: { leader: other.name, ...summarize(followerProfile, result.windowStartUs, result.windowEndUs) },
  };
}

// ---- report --------------------------------------------------------------------------------------

const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
const ms = (n: number): string => (Number.isFinite(n) ? n.toFixed(2) : '-');
const pct = (n: number): string => (Number.isFinite(n) ? `${Math.round(n)}%` : '-');

function rowLabel(row: Row): string {
  const what =
    row.workload === 'write'
      ? 'writes'
      : row.workload === 'read-linearizable'
        ? 'linearizable reads'
        : row.workload === 'read-serializable'
          ? 'serializable reads'
          : `${TXN_KEYS}-key serializable RMW txns`;
  return `${what}, ${row.clients} clients${row.spread === 'leader' ? ', leader only' : ''}`;
}

const ROWS: readonly Omit<Row, 'system'>[] = [
  ...WRITE_CLIENTS.map((clients) => ({ workload: 'write' as const, clients, spread: 'all' as const })),
  { workload: 'write', clients: 64, spread: 'leader' },
  { workload: 'write', clients: 256, spread: 'leader' },
  { workload: 'read-linearizable', clients: READ_CLIENTS, spread: 'all' },
  { workload: 'read-linearizable', clients: READ_CLIENTS, spread: 'leader' },
  { workload: 'read-serializable', clients: READ_CLIENTS, spread: 'all' },
  ...TXN_CLIENTS.map((clients) => ({ workload: 'txn' as const, clients, spread: 'all' as const })),
  { workload: 'txn', clients: TARGET_TXN_CLIENTS, spread: 'leader' },
];

interface Line {
  readonly label: string;
  readonly cairn: Result | undefined;
  readonly etcd: Result | undefined;
}

function ratioOf(l: Line): number {
  return l.cairn !== undefined && l.etcd !== undefined && l.etcd.ops > 0
    ? opsPerSecond(l.cairn) / opsPerSecond(l.etcd)
    : Number.NaN;
}

const HEAD = [
  'workload',
  'cairn ops/s',
  'cairn p50 ms',
  'cairn p99 ms',
  'etcd ops/s',
  'etcd p50 ms',
  'etcd p99 ms',
  'cairn/etcd',
  'gen CPU c/e',
  'servers CPU c/e',
];

function cells(l: Line): string[] {
  const r = ratioOf(l);
  const side = (x: Result | undefined): string[] =>
    x === undefined
      ? ['-', '-', '-']
      : [fmt(opsPerSecond(x)), ms(percentile(x.latencies, 0.5)), ms(percentile(x.latencies, 0.99))];
  const both = (f: (x: Result) => number): string =>
    `${l.cairn === undefined ? '-' : pct(f(l.cairn))} / ${l.etcd === undefined ? '-' : pct(f(l.etcd))}`;
  return [
    l.label,
    ...side(l.cairn),
    ...side(l.etcd),
    Number.isFinite(r) ? `${r.toFixed(2)}x` : '-',
    both((x) => x.genCpu),
    both((x) => x.serverCpu),
  ];
}

const LEADER_HEAD = [
  'workload',
  'system',
  'WAL fsyncs/s',
  'WAL fsync mean ms',
  'engine fsyncs/s',
  'proposals/s',
  'ops per WAL fsync',
  'errors',
  'leader changes',
];

function leaderCells(l: Line): string[][] {
  const out: string[][] = [];
  for (const x of [l.cairn, l.etcd]) {
    if (x === undefined) continue;
    const lr = x.leader;
    out.push([
      l.label,
      x.row.system,
      fmt(lr?.walFsyncs ?? Number.NaN),
      lr === undefined || lr.walFsyncs <= 0 ? '-' : ms((lr.walFsyncSeconds / lr.walFsyncs) * 1000),
      fmt(lr?.engineFsyncs ?? Number.NaN),
      fmt(lr?.proposals ?? Number.NaN),
      lr === undefined || lr.walFsyncs <= 0 ? '-' : (opsPerSecond(x) / lr.walFsyncs).toFixed(1),
      x.errors === 0 ? '0' : `${x.errors} (${x.firstError})`,
      String(lr?.leaderChanges ?? '-'),
    ]);
  }
  return out;
}

const TXN_HEAD = [
  'transactions',
  'commits/s',
  'txn p50 ms',
  'txn p99 ms',
  'commit p50 ms',
  'commit p99 ms',
  'aborts',
  'gave up',
];

function txnCells(x: Result): string[] {
  const c = x.commitLatencies ?? new Float64Array();
  return [
    rowLabel(x.row),
    fmt(opsPerSecond(x)),
    ms(percentile(x.latencies, 0.5)),
    ms(percentile(x.latencies, 0.99)),
    ms(percentile(c, 0.5)),
    ms(percentile(c, 0.99)),
    `${x.aborts} (${((x.aborts / Math.max(1, x.ops + x.aborts)) * 100).toFixed(2)}% of attempts)`,
    String(x.gaveUp),
  ];
}

interface Verdict {
  readonly target: string;
  readonly reached: string;
  readonly verdict: 'PASS' | 'MISS' | 'n/a';
}

function verdicts(lines: readonly Line[], txns: readonly Result[]): Verdict[] {
  const out: Verdict[] = [];
  for (const l of lines) {
    const row = l.cairn?.row;
    if (row === undefined || row.spread !== 'all') continue;
    if (!(row.clients === 64 || row.clients === 256)) continue;
    if (row.workload !== 'write' && row.workload !== 'read-linearizable') continue;
    const r = ratioOf(l);
    out.push({
      target: `${l.label}: cairn/etcd >= ${TARGET_RATIO.toFixed(1)}x`,
      reached: Number.isFinite(r) ? `${r.toFixed(2)}x` : '-',
      verdict: Number.isFinite(r) ? (r >= TARGET_RATIO ? 'PASS' : 'MISS') : 'n/a',
    });
  }
  for (const t of txns.filter((x) => x.row.clients === TARGET_TXN_CLIENTS)) {
    for (const [what, sorted] of [
      ['TXN.COMMIT round trip', t.commitLatencies ?? new Float64Array()],
      ['whole transaction (BEGIN to commit)', t.latencies],
    ] as const) {
      const p50 = percentile(sorted, 0.5);
      out.push({
        target: `${TXN_KEYS}-key txn at ${TARGET_TXN_CLIENTS} clients${t.row.spread === 'leader' ? ' (leader only)' : ''}, ${what}: p50 <= ${TARGET_TXN_P50_MS} ms`,
        reached: `${ms(p50)} ms`,
        verdict: Number.isFinite(p50) ? (p50 <= TARGET_TXN_P50_MS ? 'PASS' : 'MISS') : 'n/a',
      });
    }
  }
  return out;
}

async function versionOf(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)(command, [...args]);
    return stdout.split('\n')[0]!.trim();
  } catch {
    return 'not installed';
  }
}

const mdRow = (c: readonly string[]): string => `| ${c.join(' | ')} |`;
const mdHead = (h: readonly string[]): string[] => [
  mdRow(h),
  `|---|${h
    .slice(1)
    .map(() => '---:|')
    .join('')}`,
];

function markdown(
  args: Args,
  lines: readonly Line[],
  txns: readonly Result[],
  checked: readonly Verdict[],
  commands: readonly string[],
  etcdVersion: string,
  profile: ProfileSummary | undefined,
  skipped: readonly string[],
): string {
  const cpus = os.cpus();
  const out = [
    `### Run of ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC ${args.quick ? '(quick)' : ''}`.trim(),
    '',
    `- command: \`${['npm run bench:cluster --', ...process.argv.slice(2)].join(' ')}\``,
    `- machine: ${os.availableParallelism()} CPUs (nproc), ${cpus[0]?.model ?? 'unknown CPU'}, ` +
      `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.platform()} ${os.release()}; the load ` +
      'generator (this Node process) and all six server processes share these CPUs',
    `- node ${process.version}; ${etcdVersion}; ${fmt(args.durationMs)} ms per point after ` +
      `${fmt(args.warmupMs)} ms of warm-up; ${VALUE_BYTES}-byte values; writes over ${fmt(KEYSPACE)} keys, ` +
      `reads and transactions over ${fmt(READ_KEYSPACE)} preloaded keys; etcd client: ${args.etcdClient === 'raw' ? 'raw keep-alive HTTP/1.1 sockets' : 'node:http keep-alive Agent'}`,
    '- members (DIR: a fresh temporary directory, PORT: free loopback ports):',
    ...commands.map((c) => `  - \`${c}\``),
    ...skipped.map((s) => `- skipped: ${s}`),
    '',
    ...mdHead(HEAD),
    ...lines.map((l) => mdRow(cells(l))),
    '',
    'CPU columns: percent of one core over the window (cairn / etcd row); "servers" is the three members.',
    '',
    ...mdHead(LEADER_HEAD),
    ...lines.flatMap(leaderCells).map(mdRow),
    '',
  ];
  if (txns.length > 0) out.push(...mdHead(TXN_HEAD), ...txns.map(txnCells).map(mdRow), '');
  out.push(
    ...mdHead(['target', 'reached', 'result']),
    ...checked.map((c) => mdRow([c.target, c.reached, c.verdict])),
    '',
  );
  if (profile !== undefined) {
    const r = profile.result;
    out.push(
      `Profile of the Cairn leader (${profile.leader}) under ${PROFILE_CLIENTS}-client writes, ` +
        `\`node --cpu-prof\` on every member of a fresh cluster: ${fmt(opsPerSecond(r))} ops/s, p50 ` +
        `${ms(percentile(r.latencies, 0.5))} ms, p99 ${ms(percentile(r.latencies, 0.99))} ms; leader ` +
        `${fmt(r.leader?.walFsyncs ?? Number.NaN)} WAL fsyncs/s, ${fmt(r.leader?.engineFsyncs ?? Number.NaN)} ` +
        `engine fsyncs/s, ${fmt(r.leader?.proposals ?? Number.NaN)} proposals/s; ${fmt(profile.samples)} samples` +
        `${profile.windowed ? ' in the measured window' : ' (whole profile: the window could not be located)'}.`,
      '',
      ...mdHead(['self time by group', '%']),
      ...profile.groups.map((g) => mdRow([g.group, g.percent.toFixed(1)])),
      '',
      ...mdHead(['self time by function', 'where', '%']),
      ...profile.functions.map((f) => mdRow([f.name, f.where, f.percent.toFixed(1)])),
      '',
    );
  }
  return out.join('\n');
}

/** writeDocs puts the block at the end of DOCS_SECTION (created at the end of the file if absent). */
function writeDocs(block: string): void {
  let text = fs.readFileSync(DOCS, 'utf8');
  if (!text.includes(`\n${DOCS_SECTION}\n`)) text = `${text.trimEnd()}\n\n${DOCS_SECTION}\n`;
  const start = text.indexOf(`\n${DOCS_SECTION}\n`) + 1;
  const next = text.indexOf('\n## ', start + DOCS_SECTION.length);
  const at = next < 0 ? text.length : next + 1;
  const before = text.slice(0, at).trimEnd();
  fs.writeFileSync(DOCS, `${before}\n\n${block.trimEnd()}\n${next < 0 ? '' : `\n${text.slice(at)}`}`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(CAIRN_CLI)) throw new Error(`${CAIRN_CLI} not found: run \`npm run build\` first`);
  const tck = Number((await versionOf('getconf', ['CLK_TCK'])).trim());
  if (Number.isSafeInteger(tck) && tck > 0) clkTck = tck;
  const etcdVersion = await versionOf('etcd', ['--version']);
  const skipped: string[] = [];

  console.error(
    `starting 3 Cairn members${args.memberNodeFlags.length > 0 ? ` (node ${args.memberNodeFlags.join(' ')})` : ''}`,
  );
  if (args.profileOnly) {
    const p = await profileLeader(args);
    console.log(`${fmt(opsPerSecond(p.result))} writes/s under the profile`);
    for (const [who, x] of [
      [`leader ${p.leader}`, p],
      [`follower ${p.follower.leader}`, p.follower],
    ] as const) {
      const g = new Table({ head: [`${who}: self time by group`, '%'] });
      for (const e of x.groups) g.push([e.group, e.percent.toFixed(1)]);
      console.log(g.toString());
      const f = new Table({ head: [`${who}: self time by function`, 'where', '%'] });
      for (const e of x.functions) f.push([e.name, e.where, e.percent.toFixed(1)]);
      console.log(f.toString());
    }
    return;
  }
  const cairn = await startCairn('cairn', args.memberNodeFlags);
  let etcd: Cluster | undefined;
  const lines: Line[] = [];
  const txns: Result[] = [];
  const commands = [cairn.commandLine];
  try {
    if (etcdVersion === 'not installed') skipped.push('etcd (not installed: apt-get install etcd-server)');
    else {
      console.error('starting 3 etcd members');
      etcd = await startEtcd();
      commands.push(etcd.commandLine);
    }
    for (const c of [cairn, etcd]) {
      if (c === undefined) continue;
      const leader = await c.leader();
      console.error(`${c.system}: leader ${leader.name}; preloading ${fmt(READ_KEYSPACE)} keys`);
      await preload(c, args.etcdClient);
    }
    for (const spec of ROWS) {
      if (args.only !== undefined && spec.workload !== args.only) continue;
      const label = rowLabel({ ...spec, system: 'cairn' });
      const cairnResult = await measure(cairn, { ...spec, system: 'cairn' }, args);
      const etcdResult =
        etcd === undefined || spec.workload === 'txn'
          ? undefined
          : await measure(etcd, { ...spec, system: 'etcd' }, args);
      const line = { label, cairn: cairnResult, etcd: etcdResult };
      lines.push(line);
      if (spec.workload === 'txn') txns.push(cairnResult);
      const c = cells(line);
      console.error(
        `  ${label}: cairn ${c[1]}/s p50 ${c[2]} p99 ${c[3]}; etcd ${c[4]}/s p50 ${c[5]} p99 ${c[6]}; ${c[7]}`,
      );
    }
  } finally {
    await stopCluster(cairn);
    if (etcd !== undefined) await stopCluster(etcd);
  }

  let profile: ProfileSummary | undefined;
  if (args.profile) {
    console.error(`profiling the Cairn leader under ${PROFILE_CLIENTS}-client writes (fresh cluster)`);
    profile = await profileLeader(args);
  }

  const table = new Table({ head: HEAD });
  for (const l of lines) table.push(cells(l));
  console.log(table.toString());
  console.log('CPU columns: % of one core over the window, cairn / etcd; "servers" = the three members');
  const leaderTable = new Table({ head: LEADER_HEAD });
  for (const l of lines) for (const c of leaderCells(l)) leaderTable.push(c);
  console.log(leaderTable.toString());
  if (txns.length > 0) {
    const t = new Table({ head: TXN_HEAD });
    for (const x of txns) t.push(txnCells(x));
    console.log(t.toString());
  }
  const checked = verdicts(lines, txns);
  const vt = new Table({ head: ['target', 'reached', 'result'] });
  for (const c of checked) vt.push([c.target, c.reached, c.verdict]);
  console.log(vt.toString());
  if (profile !== undefined) {
    const g = new Table({ head: ['self time by group', '%'] });
    for (const x of profile.groups) g.push([x.group, x.percent.toFixed(1)]);
    console.log(g.toString());
    const f = new Table({ head: ['self time by function', 'where', '%'] });
    for (const x of profile.functions) f.push([x.name, x.where, x.percent.toFixed(1)]);
    console.log(f.toString());
    console.log(`leader profile (${profile.leader}) kept at ${profile.file}`);
  }
  console.log(
    `note: ${os.availableParallelism()} CPUs shared by this load generator and six server processes`,
  );
  const block = markdown(args, lines, txns, checked, commands, etcdVersion, profile, skipped);
  if (args.out !== undefined) {
    fs.appendFileSync(args.out, `${block}\n`);
    console.log(`results appended to ${args.out}`);
  }
  if (args.writeDocs) {
    writeDocs(block);
    console.log(`results written to ${path.relative(process.cwd(), DOCS)} (${DOCS_SECTION})`);
  }
}

try {
  await main();
} finally {
  cleanupSync();
}
