// Simulated clients of the replica simulator. Each client issues one operation at a time, with a
// think time from the seed, and records it for the linearizability checker (sim/linearizability.ts)
// with its invoke and complete times in simulated milliseconds:
//
// - GET: `replica.linearizable()` (ReadIndex) on any member that is up, then the Db's read there.
//   A read that fails is left out (it had no effect and returned nothing).
// - SET, DELETE, INCR (a read-modify-write through `db.pipeline.update`) on the member that is the
//   ready leader, or now and then on any member (which must refuse with ClusterDownError).
//
// Outcomes: success completes the operation with its output. ClusterDownError means it did not
// happen: it is left out of the history, so if it did happen after all, the checker finds a read
// that nobody can explain. UncertainError, any other error, a crash of the member or a member
// failure leave it ambiguous (complete undefined: it may have happened at any time after invoke).

import type { Prng } from '../src/stdx/prng.js';
import { ClusterDownError } from '../src/storage/errors.js';
import type { KvOperation } from './linearizability.js';
import type { Running, SimMember } from './replica-member.js';
import type { SimProcess, SimScheduler } from './replica-scheduler.js';

/** THINK_MS_MAX: the longest pause of a client between two operations. */
export const THINK_MS_MAX = 200;
/** LONG_TTL_MS: an expiry some SETs carry: far beyond any run, so it never fires, but it is replicated. */
export const LONG_TTL_MS = 24 * 3600 * 1000;
/**
 * OP_DEADLINE_MS: no request may wait longer on a live member (the Replica's request timeout is
 * 5 s; a write that waits on an earlier pending write may take two of them).
 */
export const OP_DEADLINE_MS = 15_000;
/** FOLLOWER_WRITE_RATE: how often a write goes to a member that is not the ready leader. */
export const FOLLOWER_WRITE_RATE = 0.05;
/** PUT_VALUE_BASE: SET values are distinct integers from here up (INCR stays valid on them). */
const PUT_VALUE_BASE = 1_000_000;

interface InFlight {
  readonly proc: SimProcess;
  /** finish settles the operation once; later outcomes are ignored. */
  readonly finish: (outcome: Outcome) => void;
}

type Outcome =
  | { readonly kind: 'ok'; readonly output: string | number | boolean | null }
  | { readonly kind: 'dropped' }
  | { readonly kind: 'ambiguous' };

export interface ClientStats {
  issued: number;
  ok: number;
  ambiguous: number;
  dropped: number;
}

export class SimClients {
  readonly history: KvOperation[] = [];
  readonly stats: ClientStats = { issued: 0, ok: 0, ambiguous: 0, dropped: 0 };
  private readonly inFlight = new Set<InFlight>();
  private stopped = false;
  private nextValue = PUT_VALUE_BASE;

  constructor(
    private readonly sched: SimScheduler,
    private readonly prng: Prng,
    private readonly members: readonly SimMember[],
    readonly keys: readonly string[],
    private readonly trace: (line: string) => void,
    /** followerDeletes: also send DELETEs to any member (the finding in docs/replica-sim.md). */
    private readonly followerDeletes = true,
  ) {}

  start(clients: number): void {
    for (let c = 0; c < clients; c++) this.next(c);
  }

  stop(): void {
    this.stopped = true;
  }

  get pending(): number {
    return this.inFlight.size;
  }

  /** crashed ends every operation in flight on a process that died: ambiguous. */
  crashed(proc: SimProcess): void {
    for (const op of [...this.inFlight]) if (op.proc === proc) op.finish({ kind: 'ambiguous' });
  }

  private next(client: number): void {
    if (this.stopped) return;
    this.sched.at(this.prng.range(0, THINK_MS_MAX), () => this.issue(client));
  }

  /** leader: the member that is the ready leader (the newest term's, if two think so). */
  leader(): SimMember | undefined {
    let best: SimMember | undefined;
    for (const m of this.members) {
      const r = m.running?.replica;
      if (r === undefined || !r.leaderReady) continue;
      if (best === undefined || r.status().term > (best.running?.replica.status().term ?? 0)) best = m;
    }
    return best;
  }

  private issue(client: number): void {
    if (this.stopped) return;
    const key = this.prng.pick(this.keys);
    const roll = this.prng.float();
    if (roll < 0.35) {
      const up = this.members.filter((m) => m.up);
      if (up.length === 0) {
        this.next(client);
        return;
      }
      this.get(client, key, this.prng.pick(up));
      return;
    }
    const up = this.members.filter((m) => m.up);
    if (up.length > 0 && this.prng.chance(FOLLOWER_WRITE_RATE)) {
      // Any member: one that is not the ready leader must refuse. Only writes that always reach
      // the engine seam: a DELETE of a key absent there is answered from the member's own
      // (possibly stale) state without asking the leader (see docs/replica-sim.md, "Findings").
      const m = this.prng.pick(up);
      if (roll < 0.6) this.put(client, key, m);
      else if (roll < 0.7 && this.followerDeletes) this.delete(client, key, m);
      else this.incr(client, key, m, this.prng.range(1, 5));
      return;
    }
    const target = this.leader();
    if (target === undefined) {
      this.next(client);
      return;
    }
    if (roll < 0.6) this.put(client, key, target);
    else if (roll < 0.7) this.delete(client, key, target);
    else this.incr(client, key, target, this.prng.range(1, 5));
  }

  /** get records a linearizable read on member m (the final reads use it too). */
  get(client: number, key: string, m: SimMember, onDone?: (ok: boolean) => void): void {
    const run = m.running as Running;
    this.track(
      client,
      run.proc,
      { kind: 'get', key },
      async () => {
        await run.replica.linearizable();
        const v = await run.db.get(key);
        return v === undefined ? null : v.toString();
      },
      onDone,
    );
  }

  private put(client: number, key: string, m: SimMember): void {
    const run = m.running as Running;
    const value = String(this.nextValue++);
    const ttl = this.prng.chance(0.2) ? { ttlMs: LONG_TTL_MS } : undefined;
    this.track(client, run.proc, { kind: 'put', key, value }, async () => {
      await run.db.set(key, value, ttl);
      return null;
    });
  }

  private delete(client: number, key: string, m: SimMember): void {
    const run = m.running as Running;
    this.track(client, run.proc, { kind: 'delete', key }, () => run.db.delete(key));
  }

  private incr(client: number, key: string, m: SimMember, by: number): void {
    const run = m.running as Running;
    this.track(client, run.proc, { kind: 'incr', key, by }, async () => {
      const { result, durable } = run.db.pipeline.update(Buffer.from(key), (current) => {
        const n = current === undefined ? 0 : Number(current.toString());
        if (!Number.isSafeInteger(n)) return { result: undefined };
        return { result: n + by, write: Buffer.from(String(n + by)) };
      });
      await durable;
      if (result === undefined) throw new NotAnInteger();
      return result;
    });
  }

  private track(
    client: number,
    proc: SimProcess,
    call: { kind: 'get' | 'put' | 'delete' | 'incr'; key: string; value?: string; by?: number },
    run: () => Promise<string | number | boolean | null>,
    onDone?: (ok: boolean) => void,
  ): void {
    const invoke = this.sched.now;
    const id = this.stats.issued++;
    this.trace(`c${client} #${id} ${call.kind} ${call.key} ${call.value ?? call.by ?? ''} on ${proc.name}`);
    let done = false;
    const op: InFlight = {
      proc,
      finish: (outcome) => {
        if (done) return;
        done = true;
        this.inFlight.delete(op);
        deadline.cancel();
        this.record(client, id, call, invoke, outcome);
        onDone?.(outcome.kind === 'ok');
        this.next(client);
      },
    };
    const deadline = this.sched.at(OP_DEADLINE_MS, () => {
      if (!done && proc.alive) {
        this.sched.fail(
          new Error(`client ${client} #${id} ${call.kind} on ${proc.name} waited ${OP_DEADLINE_MS} ms`),
        );
      }
    });
    this.inFlight.add(op);
    run().then(
      (output) => op.finish({ kind: 'ok', output }),
      (err: unknown) => {
        const definite = err instanceof ClusterDownError || err instanceof NotAnInteger;
        op.finish(definite || call.kind === 'get' ? { kind: 'dropped' } : { kind: 'ambiguous' });
      },
    );
  }

  private record(
    client: number,
    id: number,
    call: { kind: 'get' | 'put' | 'delete' | 'incr'; key: string; value?: string; by?: number },
    invoke: number,
    outcome: Outcome,
  ): void {
    this.trace(`c${client} #${id} ${outcome.kind} ${outcome.kind === 'ok' ? String(outcome.output) : ''}`);
    if (outcome.kind === 'dropped') {
      this.stats.dropped++;
      return;
    }
    const complete = outcome.kind === 'ok' ? this.sched.now : undefined;
    const output = outcome.kind === 'ok' ? outcome.output : undefined;
    if (outcome.kind === 'ok') this.stats.ok++;
    else this.stats.ambiguous++;
    const base = { client, key: call.key, invoke, complete };
    switch (call.kind) {
      case 'get':
        this.history.push({ ...base, kind: 'get', output: output as string | null });
        break;
      case 'put':
        this.history.push({ ...base, kind: 'put', value: call.value as string });
        break;
      case 'delete':
        this.history.push({
          ...base,
          kind: 'delete',
          ...(output === undefined ? {} : { output: output as boolean }),
        });
        break;
      case 'incr':
        this.history.push({
          ...base,
          kind: 'incr',
          by: call.by as number,
          ...(output === undefined ? {} : { output: output as number }),
        });
        break;
    }
  }
}

/** NotAnInteger: an INCR found a value that is not an integer; it changed nothing (a definite error). */
class NotAnInteger extends Error {}
