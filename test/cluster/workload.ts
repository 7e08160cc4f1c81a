// A recorded client workload against a ProcCluster: concurrent clients doing GET, SET (unique
// values), DEL, compare-and-swap (TXN.CAS: set a unique value if the key still holds what this
// client last saw of it, or is still missing) and INCR on a few keys through any member, every
// call recorded with its invoke and completion times for the linearizability checker
// (sim/linearizability.ts).
//
// Outcomes: a reply is a completed call; CLUSTERDOWN means the command did not run, so the call is
// left out; UNCERTAIN, a lost connection or a timeout of a write leaves it ambiguous (it may have
// happened at any time after its invocation); a failed read is left out (reads change nothing).

import { expect } from 'vitest';
import { checkLinearizability, type KvOperation } from '../../sim/linearizability.js';
import { CairnClient } from '../../src/client/client.js';
import { RespError } from '../../src/protocol/resp/index.js';
import type { ProcCluster } from './proc-cluster.js';
import { sleep } from './proc-cluster.js';

/** CALL_TIMEOUT_MS: longer than the members' request timeout, so a member answers first. */
const CALL_TIMEOUT_MS = 8_000;
/** RECONNECT_PAUSE_MS: a client whose connection failed waits this long before another member. */
export const RECONNECT_PAUSE_MS = 50;

export interface WorkloadOptions {
  readonly clients: number;
  readonly keys: number;
  /** members: whom each client may talk to (round robin by client number). */
  readonly members: readonly string[];
  /** prefix: put before every key (default none), to keep the workload's keys apart from a test's own. */
  readonly prefix?: string;
}

export interface WorkloadStats {
  ok: number;
  clusterDown: number;
  ambiguous: number;
  /** casTook, casRefused: compare-and-swaps answered, by outcome. */
  casTook: number;
  casRefused: number;
  errors: Map<string, number>;
}

export class Workload {
  readonly history: KvOperation[] = [];
  readonly stats: WorkloadStats = {
    ok: 0,
    clusterDown: 0,
    ambiguous: 0,
    casTook: 0,
    casRefused: 0,
    errors: new Map(),
  };
  private running = false;
  private loops: Promise<void>[] = [];
  /** acknowledged: key -> values whose SET was acknowledged (for the lost-write check). */
  readonly acknowledged = new Map<string, Set<string>>();

  constructor(
    private readonly cluster: ProcCluster,
    private readonly options: WorkloadOptions,
  ) {}

  /** isCounter: the key is one of the workload's INCR counters. */
  isCounter(key: string): boolean {
    return key.startsWith(`${this.prefix}n`);
  }

  private get prefix(): string {
    return this.options.prefix ?? '';
  }

  /** t0: the time origin of the recorded history. */
  private t0 = 0;

  start(): void {
    this.running = true;
    this.t0 = performance.now();
    for (let c = 0; c < this.options.clients; c++) this.loops.push(this.loop(c, this.t0));
  }

  /**
   * settle keeps the workload running until more than MIN_OK_OPS operations succeeded (what
   * expectSound asks), or `timeoutMs` passed: a round on a loaded machine makes less progress
   * in the same time, and should be judged on its history, not on the machine's speed.
   */
  async settle(timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.stats.ok <= MIN_OK_OPS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  private async loop(client: number, t0: number): Promise<void> {
    const members = this.options.members;
    let conn: CairnClient | undefined;
    let seq = 0;
    let memberIndex = client % members.length;
    /** seen: what this client last read or wrote of each key (null: missing), its CAS's expectation. */
    const seen = new Map<string, string | null>();
    while (this.running) {
      if (conn === undefined) {
        try {
          conn = await CairnClient.connect('127.0.0.1', this.cluster.spec(members[memberIndex]!).resp, 1_000);
        } catch {
          memberIndex = (memberIndex + 1) % members.length;
          await sleep(RECONNECT_PAUSE_MS);
          continue;
        }
      }
      const key = `${this.prefix}k${Math.floor(Math.random() * this.options.keys)}`;
      const dice = Math.random();
      const invoke = performance.now() - t0;
      let args: string[];
      let op: KvOperation;
      if (dice < 0.4) {
        args = ['GET', key];
        op = { client, key, kind: 'get', invoke, complete: undefined };
      } else if (dice < 0.7) {
        const value = `c${client}-${++seq}`;
        args = ['SET', key, value];
        op = { client, key, kind: 'put', value, invoke, complete: undefined };
      } else if (dice < 0.8) {
        const value = `c${client}-${++seq}`;
        const expected = seen.get(key) ?? null;
        const compare = expected === null ? [key, 'EXISTS', '0'] : [key, 'VALUE', '=', expected];
        args = ['TXN.CAS', '1', ...compare, 'THEN', '1', 'SET', key, value];
        op = { client, key, kind: 'cas', expected, value, invoke, complete: undefined };
      } else if (dice < 0.9) {
        args = ['DEL', key];
        op = { client, key, kind: 'delete', invoke, complete: undefined };
      } else {
        // INCR on a key holding a non-number is an error Redis gives; keep counters apart.
        const counter = `${this.prefix}n${Math.floor(Math.random() * this.options.keys)}`;
        args = ['INCR', counter];
        op = { client, key: counter, kind: 'incr', by: 1, invoke, complete: undefined };
      }
      let reply: unknown;
      let failure: unknown;
      try {
        reply = await withTimeout(conn.call(...args), CALL_TIMEOUT_MS);
      } catch (err) {
        failure = err;
      }
      const complete = performance.now() - t0;
      if (failure === undefined) {
        this.stats.ok++;
        const done = completed(op, reply, complete);
        this.history.push(done);
        if (done.kind === 'cas' && done.output === true) this.stats.casTook++;
        else if (done.kind === 'cas') this.stats.casRefused++;
        if (done.kind === 'put' || (done.kind === 'cas' && done.output === true)) {
          let set = this.acknowledged.get(done.key);
          if (set === undefined) this.acknowledged.set(done.key, (set = new Set()));
          set.add(done.value);
          seen.set(done.key, done.value);
        } else if (done.kind === 'get') seen.set(done.key, done.output ?? null);
        else if (done.kind === 'delete') seen.set(done.key, null);
        continue;
      }
      const code = failure instanceof RespError ? failure.code : (failure as Error).name;
      this.stats.errors.set(code, (this.stats.errors.get(code) ?? 0) + 1);
      if (failure instanceof RespError && failure.code === 'CLUSTERDOWN') {
        this.stats.clusterDown++;
        continue; // Did not take effect.
      }
      if (failure instanceof RespError && failure.code !== 'UNCERTAIN') {
        throw new Error(`unexpected error reply to ${args.join(' ')}: ${failure.message}`);
      }
      if (op.kind !== 'get') {
        this.stats.ambiguous++;
        this.history.push(op); // complete undefined: may or may not have happened
      }
      if (!(failure instanceof RespError)) {
        // The connection is gone or stuck: use another member.
        await conn.close().catch(() => {});
        conn = undefined;
        memberIndex = (memberIndex + 1) % members.length;
      }
    }
    await conn?.close().catch(() => {});
  }

  /** readAll reads every key once through `member` after the run (sequentially, recorded). */
  async readAll(member: string): Promise<Map<string, string | null>> {
    const out = new Map<string, string | null>();
    const c = await CairnClient.connect('127.0.0.1', this.cluster.spec(member).resp).catch((err: unknown) => {
      throw new Error(`cannot read back through ${member}: ${String(err)}\n${this.cluster.dumpLogs()}`);
    });
    try {
      for (let i = 0; i < this.options.keys; i++) {
        for (const key of [`${this.prefix}k${i}`, `${this.prefix}n${i}`]) {
          const invoke = performance.now() - this.t0;
          const reply = await c.call('GET', key);
          const value = reply === null ? null : String(reply);
          const complete = performance.now() - this.t0;
          this.history.push({ client: -1, key, kind: 'get', output: value, invoke, complete });
          out.set(key, value);
        }
      }
    } finally {
      await c.close();
    }
    return out;
  }
}

function completed(op: KvOperation, reply: unknown, complete: number): KvOperation {
  switch (op.kind) {
    case 'get':
      return { ...op, complete, output: reply === null ? null : String(reply) };
    case 'put':
      return { ...op, complete };
    case 'delete':
      return { ...op, complete, output: reply === 1 };
    case 'cas': {
      // [1|0, [the THEN branch's SET: OK]] or [0, []] (no ELSE branch).
      const [took] = reply as [number, unknown[]];
      return { ...op, complete, output: took === 1 };
    }
    case 'incr':
      return { ...op, complete, output: Number(reply) };
    default:
      throw new Error(`unexpected kind ${op.kind}`);
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const err = new Error(`no reply within ${ms} ms`);
      err.name = 'Timeout';
      reject(err);
    }, ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e as Error);
      },
    );
  });
}

/** LINEARIZABILITY_BUDGET_MS: the checker's time budget per history ('unknown' past it fails). */
const LINEARIZABILITY_BUDGET_MS = 30_000;
/** MIN_OK_OPS: a run of only failures proves nothing. */
export const MIN_OK_OPS = 50;
/** SETTLE_TIMEOUT_MS, SETTLE_POLL_MS: how long settle waits for MIN_OK_OPS, and how often it looks. */
const SETTLE_TIMEOUT_MS = 30_000;
const SETTLE_POLL_MS = 50;

/**
 * expectSound checks a finished workload: its history is linearizable, it did something, and
 * every final value read back is one that was written. `context` prefixes failure messages.
 */
export function expectSound(w: Workload, final: Map<string, string | null>, context = ''): void {
  const result = checkLinearizability(w.history, { timeBudgetMs: LINEARIZABILITY_BUDGET_MS });
  expect(result.ok, `${context}history not linearizable: ${JSON.stringify(result).slice(0, 4000)}`).toBe(
    true,
  );
  expect(w.stats.ok).toBeGreaterThan(MIN_OK_OPS);
  // The compare-and-swaps were answered, so the history checks them too (10-35 took and 25-140
  // were refused per run when this was written).
  expect(w.stats.casTook + w.stats.casRefused).toBeGreaterThan(0);
  for (const [key, value] of final) {
    if (value === null || w.isCounter(key)) continue; // counters hold INCR results
    // By a SET, or by a compare-and-swap that took (or may have: an ambiguous one).
    const written = w.history.some(
      (o) =>
        o.key === key && (o.kind === 'put' || (o.kind === 'cas' && o.output !== false)) && o.value === value,
    );
    expect(written, `${context}${key}=${value} was never written`).toBe(true);
  }
}
