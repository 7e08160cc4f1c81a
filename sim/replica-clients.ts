// Simulated clients of the replica simulator. Each client issues one operation at a time, with a
// think time from the seed, and records it for the linearizability checker (sim/linearizability.ts)
// with its invoke and complete times in simulated milliseconds:
//
// - GET: `replica.linearizable()` (ReadIndex) on any member that is up, then the Db's read there.
//   A read that fails is left out (it had no effect and returned nothing).
// - SET, DELETE, INCR (a read-modify-write through `db.pipeline.update`) on the member that is the
//   ready leader, or now and then on any member (which must refuse with ClusterDownError).
// - With `cas` (the transactions scenario): now and then a compare-and-swap instead
//   (`db.compareAndSwap`, what TXN.CAS and HTTP /v1/txn run), on the ready leader or any member:
//   set the key to a new value if it still holds what this client last saw of it. A refused one
//   reads the key in its failure branch, so the next try compares with a fresher value.
//
// - With `resp` (the RESP scenario): now and then the operation is a RESP command instead (GET,
//   SET, DEL, INCRBY; with `cas`, half of the compare-and-swaps as TXN.CAS), sent over a
//   simulated connection to any member that is up, whose RESP server runs it or forwards it to
//   the leader (sim/replica-resp.ts). A CLUSTERDOWN reply means it did not happen, UNCERTAIN or a
//   lost connection that it may have.
// - With `ttl` (the expiry scenario): now and then the operation is on the expiry key `x0`
//   instead: a SET with a time to live of TTL_MS_MIN..TTL_MS_MAX, a plain SET, a DEL or a GET
//   (no INCR there: INCR keeps a key's expiry, which the model's conditional expiry does not
//   follow). Every SET with a time to live adds an `expire` of its value to the history, its
//   window the SET's shifted by the time to live: members' clocks agree in this scenario, so the
//   key must read as present before then and absent after, on every member, whatever the leader
//   changes, crashes and the expiry cycle's replicated deletes in between (docs/replica-sim.md,
//   "Expiry").
//
// Outcomes: success completes the operation with its output. ClusterDownError means it did not
// happen: it is left out of the history, so if it did happen after all, the checker finds a read
// that nobody can explain. UncertainError, any other error, a crash of the member or a member
// failure leave it ambiguous (complete undefined: it may have happened at any time after invoke).

import { RespError, type RespValue } from '../src/protocol/resp/index.js';
import type { Prng } from '../src/stdx/prng.js';
import { ClusterDownError, UncertainError } from '../src/storage/errors.js';
import type { Comparison } from '../src/txn/compare-and-swap.js';
import type { KvOperation } from './linearizability.js';
import type { Running, SimMember } from './replica-member.js';
import { SimOperations } from './replica-operations.js';
import { respAddress, type SimRespLinks } from './replica-resp.js';
import type { SimProcess, SimScheduler } from './replica-scheduler.js';

/** THINK_MS_MAX: the longest pause of a client between two operations. */
export const THINK_MS_MAX = 200;
/** LONG_TTL_MS: an expiry some SETs carry: far beyond any run, so it never fires, but it is replicated. */
export const LONG_TTL_MS = 24 * 3600 * 1000;
/** FOLLOWER_WRITE_RATE: how often a write goes to a member that is not the ready leader. */
export const FOLLOWER_WRITE_RATE = 0.05;
/** CAS_RATE: the share of operations that are compare-and-swaps when `cas` is on. */
export const CAS_RATE = 0.2;
/** TTL_KEY: the expiry scenario's key (apart from the others: no INCR on it). */
export const TTL_KEY = 'x0';
/** TTL_RATE: the share of operations on TTL_KEY when `ttl` is on. */
export const TTL_RATE = 0.5;
/**
 * TTL_MS_MIN, TTL_MS_SHORT, TTL_MS_MAX: the times to live the expiry scenario's SETs carry: half
 * up to TTL_MS_SHORT, so that expiries often meet the expiry cycle (every 100 ms) while another
 * write of the key is pending (a cycle that deleted it then would delete the newer value), half
 * up to TTL_MS_MAX, across leader changes and crashes.
 */
const TTL_MS_MIN = 20;
const TTL_MS_SHORT = 300;
const TTL_MS_MAX = 3_000;
/** RESP_RATE: the share of operations that are RESP commands when `resp` is on. */
export const RESP_RATE = 0.5;
/** PUT_VALUE_BASE: SET values are distinct integers from here up (INCR stays valid on them). */
const PUT_VALUE_BASE = 1_000_000;

type Outcome =
  | { readonly kind: 'ok'; readonly output: string | number | boolean | null }
  | { readonly kind: 'dropped' }
  | { readonly kind: 'ambiguous' };

export interface ClientStats {
  issued: number;
  ok: number;
  ambiguous: number;
  dropped: number;
  /** casTaken, casRefused: compare-and-swaps that completed, and whether they wrote. */
  casTaken: number;
  casRefused: number;
  /** resp, respOk, respRefused: RESP commands sent, answered with success, answered CLUSTERDOWN. */
  resp: number;
  respOk: number;
  respRefused: number;
  /** ttlSets, ttlAbsent: acknowledged SETs with a time to live on TTL_KEY, and reads of it that found it absent. */
  ttlSets: number;
  ttlAbsent: number;
}

/**
 * Attached: other simulated clients (sim/replica-bank.ts) that stop, crash and drain with these:
 * `crashed`, `stop` and `pending` cover them too.
 */
export interface Attached {
  crashed(proc: SimProcess): void;
  stop(): void;
  readonly pending: number;
}

type Call =
  | { kind: 'get' | 'delete'; key: string }
  | { kind: 'put'; key: string; value: string; ttlMs?: number }
  | { kind: 'incr'; key: string; by: number }
  | { kind: 'cas'; key: string; expected: string | null; value: string };

export class SimClients {
  readonly history: KvOperation[] = [];
  readonly stats: ClientStats = {
    issued: 0,
    ok: 0,
    ambiguous: 0,
    dropped: 0,
    casTaken: 0,
    casRefused: 0,
    resp: 0,
    respOk: 0,
    respRefused: 0,
    ttlSets: 0,
    ttlAbsent: 0,
  };
  private readonly inFlight: SimOperations;
  private readonly attached: Attached[] = [];
  private stopped = false;
  private nextValue = PUT_VALUE_BASE;
  /** seen: what each client last saw of each key (`client/key`), the value its CAS expects. */
  private readonly seen = new Map<string, string | null>();

  constructor(
    private readonly sched: SimScheduler,
    private readonly prng: Prng,
    private readonly members: readonly SimMember[],
    readonly keys: readonly string[],
    private readonly trace: (line: string) => void,
    /** followerDeletes: also send DELETEs to any member (the finding in docs/replica-sim.md). */
    private readonly followerDeletes = true,
    /**
     * cas: a stream of its own that decides, before each operation, whether it is a
     * compare-and-swap (undefined: none, and the main stream's draws stay as they were).
     */
    private readonly cas?: Prng,
    /**
     * resp: a stream of its own that decides, before each operation, whether it is a RESP
     * command, and the connections it goes over (undefined: none).
     */
    private readonly resp?: { readonly prng: Prng; readonly links: SimRespLinks },
    /** ttl: a stream of its own that decides, before each operation, whether it is on TTL_KEY. */
    private readonly ttl?: Prng,
  ) {
    this.inFlight = new SimOperations(sched);
  }

  /** attach: `other` stops, crashes and drains with these clients. */
  attach(other: Attached): void {
    this.attached.push(other);
  }

  start(clients: number): void {
    for (let c = 0; c < clients; c++) this.next(c);
  }

  stop(): void {
    this.stopped = true;
    for (const a of this.attached) a.stop();
  }

  get pending(): number {
    return this.attached.reduce((n, a) => n + a.pending, this.inFlight.size);
  }

  /** crashed ends every operation in flight on a process that died: ambiguous. */
  crashed(proc: SimProcess): void {
    this.inFlight.crashed(proc);
    for (const a of this.attached) a.crashed(proc);
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
    if (this.ttl?.chance(TTL_RATE)) {
      this.ttlOperation(client, this.ttl);
      return;
    }
    if (this.resp?.prng.chance(RESP_RATE)) {
      this.respCommand(client, this.resp.prng);
      return;
    }
    if (this.cas?.chance(CAS_RATE)) {
      const up = this.members.filter((m) => m.up);
      // Mostly the ready leader; now and then any member, which must refuse unless it leads.
      const target = this.cas.chance(FOLLOWER_WRITE_RATE) ? undefined : this.leader();
      const m = target ?? (up.length > 0 ? this.cas.pick(up) : undefined);
      if (m === undefined) this.next(client);
      else this.compareAndSwap(client, this.cas.pick(this.keys), m);
      return;
    }
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

  /**
   * ttlOperation: on TTL_KEY, a SET with a time to live (40%), a plain SET (10%), a DEL (10%) or a
   * GET (40%), on the ready leader. Not a linearizable read on a follower (`get` on any member):
   * it hides by the clock when it runs a state as old as its read index, which near an expiry is
   * not linearizable; the servers forward such reads to the leader (Replica.linearizable,
   * docs/replica-sim.md, "Findings"). Over RESP (below) any member takes them, as the servers do.
   */
  private ttlOperation(client: number, prng: Prng): void {
    const key = TTL_KEY;
    const roll = prng.float();
    let call: Call;
    if (roll < 0.4) call = { kind: 'get', key };
    else if (roll < 0.8) {
      const ttlMs = prng.range(TTL_MS_MIN, prng.chance(0.5) ? TTL_MS_SHORT : TTL_MS_MAX);
      call = { kind: 'put', key, value: String(this.nextValue++), ttlMs };
    } else if (roll < 0.9) call = { kind: 'put', key, value: String(this.nextValue++) };
    else call = { kind: 'delete', key };
    const up = this.members.filter((m) => m.up);
    if (this.resp !== undefined && up.length > 0 && this.resp.prng.chance(RESP_RATE)) {
      // Over RESP to any member, as the others (the resp stream decides, so runs without it
      // draw as before).
      this.sendResp(client, this.resp.prng.pick(up), call, respArgs(call), this.resp.links);
      return;
    }
    const leader = this.leader();
    if (leader === undefined) this.next(client);
    else if (call.kind === 'get') this.get(client, key, leader);
    else if (call.kind === 'put') this.putValue(client, leader, call, call.ttlMs);
    else this.delete(client, key, leader);
  }

  /**
   * respCommand: GET, SET, DEL or INCRBY on a random key, sent as RESP to any member that is up
   * (every member accepts every command: it runs it as the ready leader or forwards it).
   */
  private respCommand(client: number, prng: Prng): void {
    const up = this.members.filter((m) => m.up);
    if (up.length === 0 || this.resp === undefined) {
      this.next(client);
      return;
    }
    const m = prng.pick(up);
    const key = prng.pick(this.keys);
    const roll = prng.float();
    let call: Call;
    if (roll < 0.35) call = { kind: 'get', key };
    else if (roll < 0.6) call = { kind: 'put', key, value: String(this.nextValue++) };
    else if (roll < 0.7) call = { kind: 'delete', key };
    else call = { kind: 'incr', key, by: prng.range(1, 5) };
    const args = respArgs(call);
    // A fifth of the SETs carry an expiry of a day (replicated, never reached in a run).
    if (call.kind === 'put' && prng.chance(0.2)) args.push('PX', String(LONG_TTL_MS));
    this.sendResp(client, m, call, args, this.resp.links);
  }

  /** sendResp sends `args` (the command `call` records) to member m over RESP and tracks it. */
  private sendResp(
    client: number,
    m: SimMember,
    call: Call,
    args: readonly string[],
    links: SimRespLinks,
  ): void {
    const run = m.running as Running;
    this.stats.resp++;
    this.track(client, run.proc, call, async () => {
      const reply = await links.call(`c${client}`, respAddress(m.id), args);
      const output = this.respOutput(call, reply);
      this.stats.respOk++;
      return output;
    });
  }

  /** respOutput: what a RESP reply says of the call's outcome, in the history's terms. */
  private respOutput(call: Call, reply: RespValue): string | number | boolean | null {
    if (reply instanceof RespError) {
      // Definite: CLUSTERDOWN (not run), or INCRBY on a value that is not an integer.
      if (reply.code === 'CLUSTERDOWN') {
        this.stats.respRefused++;
        throw new ClusterDownError(reply.message);
      }
      if (call.kind === 'incr' && /not an integer/.test(reply.message)) throw new NotAnInteger();
      // UNCERTAIN, and anything else unexpected: it may have run.
      throw new UncertainError(reply.message);
    }
    switch (call.kind) {
      case 'get':
        if (reply === null) return null;
        if (Buffer.isBuffer(reply) || typeof reply === 'string') return reply.toString();
        break;
      case 'put':
        if (reply === 'OK') return null;
        break;
      case 'delete':
        if (typeof reply === 'number') return reply > 0;
        break;
      case 'incr':
        if (typeof reply === 'number') return reply;
        break;
      case 'cas':
        break;
    }
    // A reply of the wrong type is a server bug, not a fault: the run fails.
    const err = new Error(`unexpected reply to ${call.kind} ${call.key}: ${String(reply)}`);
    this.sched.fail(err);
    throw err;
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

  /** put: a SET of a new value on member m, a fifth of them with an expiry of a day (never reached). */
  private put(client: number, key: string, m: SimMember): void {
    const call = { kind: 'put', key, value: String(this.nextValue++) } as const;
    this.putValue(client, m, call, this.prng.chance(0.2) ? LONG_TTL_MS : undefined);
  }

  /** putValue: the SET `call` on member m, with an expiry of `ttlMs` if given. */
  private putValue(
    client: number,
    m: SimMember,
    call: Call & { kind: 'put' },
    ttlMs: number | undefined,
  ): void {
    const run = m.running as Running;
    this.track(client, run.proc, call, async () => {
      await run.db.set(call.key, call.value, ttlMs === undefined ? undefined : { ttlMs });
      return null;
    });
  }

  /**
   * compareAndSwap: set `key` to a new value if it holds what this client last saw of it (absent
   * if nothing), as TXN.CAS does; a refused one reads the key in its failure branch.
   */
  private compareAndSwap(client: number, key: string, m: SimMember): void {
    const run = m.running as Running;
    const seenKey = `${client}/${key}`;
    const expected = this.seen.get(seenKey) ?? null;
    const value = String(this.nextValue++);
    const call: Call = { kind: 'cas', key, expected, value };
    if (this.resp?.prng.chance(RESP_RATE)) {
      // TXN.CAS over RESP, to any member that is up (it forwards to the leader).
      const up = this.members.filter((x) => x.up);
      this.respCas(client, call, seenKey, this.resp.prng.pick(up.length > 0 ? up : [m]), this.resp.links);
      return;
    }
    const compare: Comparison =
      expected === null
        ? { key, target: 'exists', exists: false }
        : { key, target: 'value', op: '=', value: expected };
    this.track(client, run.proc, call, async () => {
      const r = await run.db.compareAndSwap({
        compare: [compare],
        success: [{ type: 'set', key, value }],
        failure: [{ type: 'get', key }],
      });
      const read = r.results[0];
      if (r.succeeded) this.seen.set(seenKey, value);
      else if (read?.type === 'get') this.seen.set(seenKey, read.value?.toString() ?? null);
      return r.succeeded;
    });
  }

  /**
   * respCas: the compare-and-swap as `TXN.CAS 1 <compare> THEN 1 SET key value ELSE 1 GET key`;
   * the reply is [1, [OK]] when it swapped, [0, [value]] when not.
   */
  private respCas(
    client: number,
    call: Call & { kind: 'cas' },
    seenKey: string,
    m: SimMember,
    links: SimRespLinks,
  ): void {
    const run = m.running as Running;
    const { value } = call;
    const args = respArgs(call);
    this.stats.resp++;
    this.track(client, run.proc, call, async () => {
      const reply = await links.call(`c${client}`, respAddress(m.id), args);
      if (reply instanceof RespError) return this.respOutput(call, reply); // throws
      const [took, results] = Array.isArray(reply) ? reply : [];
      if ((took !== 0 && took !== 1) || !Array.isArray(results) || results.length !== 1)
        return this.respOutput(call, reply); // a reply of the wrong shape: fails the run
      this.stats.respOk++;
      const read = results[0];
      if (took === 1) this.seen.set(seenKey, value);
      else this.seen.set(seenKey, read === null || read === undefined ? null : String(read));
      return took === 1;
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
    call: Call,
    run: () => Promise<string | number | boolean | null>,
    onDone?: (ok: boolean) => void,
  ): void {
    const invoke = this.sched.now;
    const id = this.stats.issued++;
    this.trace(`c${client} #${id} ${call.kind} ${call.key} ${describe(call)} on ${proc.name}`);
    this.inFlight.run(proc, `client ${client} #${id} ${call.kind}`, run, (settled) => {
      let outcome: Outcome;
      if (settled.kind === 'ok') outcome = { kind: 'ok', output: settled.value };
      else if (settled.kind === 'crashed') outcome = { kind: 'ambiguous' };
      else {
        const definite = settled.err instanceof ClusterDownError || settled.err instanceof NotAnInteger;
        outcome = definite || call.kind === 'get' ? { kind: 'dropped' } : { kind: 'ambiguous' };
      }
      this.record(client, id, call, invoke, outcome);
      onDone?.(outcome.kind === 'ok');
      this.next(client);
    });
  }

  /** saw notes what a completed operation told its client of its key (the value a CAS expects). */
  private saw(client: number, call: Call, output: string | number | boolean | null): void {
    const seenKey = `${client}/${call.key}`;
    switch (call.kind) {
      case 'get':
        this.seen.set(seenKey, output as string | null);
        break;
      case 'put':
        this.seen.set(seenKey, call.value);
        break;
      case 'delete':
        this.seen.set(seenKey, null);
        break;
      case 'incr':
        this.seen.set(seenKey, String(output));
        break;
      case 'cas':
        break; // compareAndSwap noted it: a refused one's read is in its result only
    }
  }

  private record(client: number, id: number, call: Call, invoke: number, outcome: Outcome): void {
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
    if (outcome.kind === 'ok') this.saw(client, call, outcome.output);
    if (outcome.kind === 'ok' && call.key === TTL_KEY) {
      if (call.kind === 'put' && call.ttlMs !== undefined) this.stats.ttlSets++;
      if (call.kind === 'get' && outcome.output === null) this.stats.ttlAbsent++;
    }
    switch (call.kind) {
      case 'get':
        this.history.push({ ...base, kind: 'get', output: output as string | null });
        break;
      case 'put':
        this.history.push({ ...base, kind: 'put', value: call.value });
        if (call.ttlMs !== undefined) {
          // The time to live runs out within the SET's window shifted by it (clocks agree).
          this.history.push({
            client,
            key: call.key,
            kind: 'expire',
            value: call.value,
            invoke: invoke + call.ttlMs,
            complete: complete === undefined ? undefined : complete + call.ttlMs,
          });
        }
        break;
      case 'cas':
        if (output === true) this.stats.casTaken++;
        else if (output === false) this.stats.casRefused++;
        this.history.push({
          ...base,
          kind: 'cas',
          expected: call.expected,
          value: call.value,
          ...(output === undefined ? {} : { output: output as boolean }),
        });
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
          by: call.by,
          ...(output === undefined ? {} : { output: output as number }),
        });
        break;
    }
  }
}

function describe(call: Call): string {
  switch (call.kind) {
    case 'put':
      return call.ttlMs === undefined ? call.value : `${call.value} px ${call.ttlMs}`;
    case 'incr':
      return String(call.by);
    case 'cas':
      return `${call.expected ?? 'absent'} -> ${call.value}`;
    default:
      return '';
  }
}

/** respArgs: the RESP command for a call (SET carries the call's time to live, if any). */
function respArgs(call: Call): string[] {
  switch (call.kind) {
    case 'get':
      return ['GET', call.key];
    case 'put':
      return ['SET', call.key, call.value, ...(call.ttlMs === undefined ? [] : ['PX', String(call.ttlMs)])];
    case 'delete':
      return ['DEL', call.key];
    case 'incr':
      return ['INCRBY', call.key, String(call.by)];
    case 'cas': {
      const compare =
        call.expected === null ? [call.key, 'EXISTS', '0'] : [call.key, 'VALUE', '=', call.expected];
      // The ELSE branch reads what the next swap of this client expects.
      return [
        'TXN.CAS',
        '1',
        ...compare,
        'THEN',
        '1',
        'SET',
        call.key,
        call.value,
        'ELSE',
        '1',
        'GET',
        call.key,
      ];
    }
  }
}

/** NotAnInteger: an INCR found a value that is not an integer; it changed nothing (a definite error). */
class NotAnInteger extends Error {}
