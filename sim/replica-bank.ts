// Bank transfers in the replica simulator (the transactions scenario, docs/replica-sim.md,
// "Transactions"): the multi-key, interactive transactions the server runs for MULTI/EXEC and
// TXN.BEGIN/COMMIT, under the same faults as the single-key clients. Accounts `b0..bN` start
// absent (a balance of 0), so the balances must always add up to 0.
//
// - A transfer is `db.transaction(fn, serializable, one attempt)` on the ready leader (now and
//   then on any member, which must refuse): it reads two accounts and its client's counter
//   `t<client>`, moves an amount between the accounts and adds one to the counter. A refusal
//   (ClusterDownError) or a conflict (TxnConflictError: a concurrent transfer, or the leader
//   changed) promises that nothing was written; anything else (UncertainError, a crash) may or may
//   not have been.
// - An audit reads every account in one snapshot (`db.snapshot()`) on any member that is up, a
//   follower included (its state advances one applied batch at a time): the sum must be 0, else
//   a transfer was applied in part, or two applied from one balance (a lost update).
// - With `resp` (the RESP scenario), now and then a transfer is MULTI/EXEC over RESP instead, sent
//   to any member that is up (it forwards to the leader, on a connection of the client's own
//   there, where the WATCH and MULTI state lives): WATCH the three keys, MGET them, then MULTI,
//   the three SETs and EXEC pipelined, as client libraries send them. Nothing before EXEC writes,
//   so an error or a lost connection before it is definite; EXEC's nil (a watched key changed),
//   CONFLICT, EXECABORT and CLUSTERDOWN are definite; UNCERTAIN or a connection lost while EXEC
//   is unanswered are not. Half of them are interactive transactions instead: TXN.BEGIN
//   (serializable), MGET, then the three SETs and TXN.COMMIT pipelined, judged the same way.
//   An audit is then an MGET of every account on any member.
// - At the end, on every member's engine: the balances add up to 0, and each client's counter
//   lies between its acknowledged transfers and those plus its uncertain ones (an acknowledged
//   transfer lost, or a failure reported for one that was applied, shows up there).

import { RespError, type RespValue } from '../src/protocol/resp/index.js';
import type { Prng } from '../src/stdx/prng.js';
import { ClusterDownError, UncertainError } from '../src/storage/errors.js';
import { TxnConflictError } from '../src/txn/errors.js';
import { SafetyViolation } from './checkers.js';
import type { Attached } from './replica-clients.js';
import { FOLLOWER_WRITE_RATE, RESP_RATE, THINK_MS_MAX } from './replica-clients.js';
import { engineItems, type Running, type SimMember } from './replica-member.js';
import { SimOperations } from './replica-operations.js';
import { respAddress, type SimRespLinks } from './replica-resp.js';
import type { SimProcess, SimScheduler } from './replica-scheduler.js';

/** ACCOUNTS_MIN, ACCOUNTS_MAX: accounts per run (few, for conflicts). */
const ACCOUNTS_MIN = 2;
const ACCOUNTS_MAX = 4;
/** BANK_CLIENTS_MAX: transfer clients per run (each one transfer at a time). */
export const BANK_CLIENTS_MAX = 3;
/** AUDIT_RATE: the share of a bank client's operations that are audits. */
const AUDIT_RATE = 0.25;
/** AMOUNT_MAX: the largest amount a transfer moves. */
const AMOUNT_MAX = 10;

export interface BankStats {
  transfers: number;
  acknowledged: number;
  conflicts: number;
  refused: number;
  uncertain: number;
  audits: number;
  /** localAudits: RESP audits read with READONLY from the member's own state (counted in audits too). */
  localAudits: number;
  /** resp: transfers and audits sent as RESP commands. */
  resp: number;
}

export class SimBank implements Attached {
  readonly accounts: readonly string[];
  readonly stats: BankStats = {
    transfers: 0,
    acknowledged: 0,
    conflicts: 0,
    refused: 0,
    uncertain: 0,
    audits: 0,
    localAudits: 0,
    resp: 0,
  };
  /** acked, uncertain: per client, transfers acknowledged and those whose outcome is unknown. */
  private readonly acked: number[] = [];
  private readonly uncertain: number[] = [];
  private readonly inFlight: SimOperations;
  private stopped = false;

  constructor(
    private readonly sched: SimScheduler,
    /** prng: a stream of its own, so that the other clients' draws stay as they were. */
    private readonly prng: Prng,
    private readonly members: readonly SimMember[],
    private readonly leader: () => SimMember | undefined,
    private readonly trace: (line: string) => void,
    /** resp: a stream of its own that picks RESP transfers and audits, and their connections. */
    private readonly resp?: { readonly prng: Prng; readonly links: SimRespLinks },
  ) {
    this.inFlight = new SimOperations(sched);
    this.accounts = Array.from({ length: prng.range(ACCOUNTS_MIN, ACCOUNTS_MAX) }, (_, i) => `b${i}`);
  }

  start(clients: number): void {
    for (let c = 0; c < clients; c++) {
      this.acked.push(0);
      this.uncertain.push(0);
      this.next(c);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  get pending(): number {
    return this.inFlight.size;
  }

  crashed(proc: SimProcess): void {
    this.inFlight.crashed(proc);
  }

  /**
   * check: the end-of-run invariants on every member that is not gone (their engines are equal by
   * then; each is checked anyway). Throws a SafetyViolation.
   */
  async check(members: readonly SimMember[]): Promise<void> {
    for (const m of members) {
      if (m.gone || m.running === undefined) continue;
      const values = new Map<string, string>();
      for (const e of await engineItems(m.running.engine)) values.set(e.key.toString(), e.value.toString());
      const sum = this.accounts.reduce((s, a) => s + Number(values.get(a) ?? 0), 0);
      if (sum !== 0) throw new SafetyViolation(`bank: n${m.id}'s balances add up to ${sum}, not 0`);
      for (const [c, acked] of this.acked.entries()) {
        const count = Number(values.get(counterKey(c)) ?? 0);
        const most = acked + (this.uncertain[c] ?? 0);
        if (count < acked || count > most)
          throw new SafetyViolation(
            `bank: n${m.id} holds ${count} transfers of client ${c}; ${acked} were acknowledged, at most ${most} may have been applied`,
          );
      }
    }
  }

  private next(client: number): void {
    if (this.stopped) return;
    this.sched.at(this.prng.range(0, THINK_MS_MAX), () => this.issue(client));
  }

  private issue(client: number): void {
    if (this.stopped) return;
    const up = this.members.filter((m) => m.up);
    if (this.resp?.prng.chance(RESP_RATE)) {
      const r = this.resp.prng;
      if (up.length === 0) this.next(client);
      else if (r.chance(AUDIT_RATE)) this.respAudit(client, r.pick(up), r.chance(0.5), this.resp.links);
      else {
        const from = r.pick(this.accounts);
        const to = r.pick(this.accounts.filter((a) => a !== from));
        const form = r.chance(0.5) ? 'multi' : 'interactive';
        this.respTransfer(client, r.pick(up), from, to, r.range(1, AMOUNT_MAX), form, this.resp.links);
      }
      return;
    }
    if (this.prng.chance(AUDIT_RATE)) {
      if (up.length === 0) this.next(client);
      else this.audit(client, this.prng.pick(up));
      return;
    }
    const leader = this.prng.chance(FOLLOWER_WRITE_RATE) ? undefined : this.leader();
    const m = leader ?? (up.length > 0 ? this.prng.pick(up) : undefined);
    if (m === undefined) {
      this.next(client);
      return;
    }
    const from = this.prng.pick(this.accounts);
    const to = this.prng.pick(this.accounts.filter((a) => a !== from));
    this.transfer(client, m, from, to, this.prng.range(1, AMOUNT_MAX));
  }

  private transfer(client: number, m: SimMember, from: string, to: string, amount: number): void {
    const run = m.running as Running;
    const id = this.stats.transfers++;
    this.trace(`b${client} #${id} transfer ${amount} ${from}->${to} on ${run.proc.name}`);
    this.track(
      run.proc,
      `b${client} #${id} transfer`,
      async () => {
        await run.db.transaction(
          async (tx) => {
            const a = Number((await tx.getString(from)) ?? 0);
            const b = Number((await tx.getString(to)) ?? 0);
            const n = Number((await tx.getString(counterKey(client))) ?? 0);
            tx.set(from, String(a - amount));
            tx.set(to, String(b + amount));
            tx.set(counterKey(client), String(n + 1));
          },
          { isolation: 'serializable', maxAttempts: 1 },
        );
      },
      (outcome) => this.settled(client, outcome),
    );
  }

  private audit(client: number, m: SimMember): void {
    const run = m.running as Running;
    this.track(
      run.proc,
      `b${client} audit`,
      async () => {
        const snap = await run.db.snapshot();
        try {
          const values: string[] = [];
          for (const a of this.accounts) values.push((await snap.getString(a)) ?? '0');
          this.audited(`an audit on ${run.proc.name} at ${snap.ts}`, values);
        } finally {
          snap.release();
        }
      },
      () => this.next(client),
    );
  }

  /**
   * respTransfer: the transfer over RESP on any member (see the top of the file), as MULTI/EXEC
   * after WATCH, or as an interactive transaction (TXN.BEGIN, MGET, the SETs, TXN.COMMIT).
   */
  private respTransfer(
    client: number,
    m: SimMember,
    from: string,
    to: string,
    amount: number,
    form: 'multi' | 'interactive',
    links: SimRespLinks,
  ): void {
    const run = m.running as Running;
    const id = this.stats.transfers++;
    this.stats.resp++;
    const who = `b${client}`;
    const addr = respAddress(m.id);
    const counter = counterKey(client);
    this.trace(`b${client} #${id} RESP ${form} transfer ${amount} ${from}->${to} via ${run.proc.name}`);
    const call = (...args: string[]): Promise<RespValue> => links.call(who, addr, args);
    this.track(
      run.proc,
      `b${client} #${id} RESP transfer`,
      async () => {
        const multi = form === 'multi';
        let exec: Promise<RespValue>;
        try {
          const begin = multi
            ? call('WATCH', from, to, counter)
            : call('TXN.BEGIN', 'ISOLATION', 'SERIALIZABLE');
          beforeExec(await begin);
          const got = beforeExec(await call('MGET', from, to, counter));
          if (!Array.isArray(got) || got.length !== 3) throw this.unexpected('MGET', got);
          const [a, b, n] = got.map((v) => Number(v === null ? 0 : String(v)));
          // Pipelined, as clients send them: one write, replies in order.
          const queued = [
            ...(multi ? [call('MULTI')] : []),
            call('SET', from, String((a ?? 0) - amount)),
            call('SET', to, String((b ?? 0) + amount)),
            call('SET', counter, String((n ?? 0) + 1)),
          ];
          exec = call(multi ? 'EXEC' : 'TXN.COMMIT');
          for (const q of queued) q.catch(() => {});
        } catch (err) {
          links.drop(who, addr); // its WATCH goes with the connection
          throw err instanceof RespError || err instanceof ClusterDownError
            ? err
            : new ClusterDownError(`not sent: ${(err as Error).message}`);
        }
        let reply: RespValue;
        try {
          reply = await exec;
        } catch (err) {
          throw new UncertainError(`no reply to ${multi ? 'EXEC' : 'TXN.COMMIT'}: ${(err as Error).message}`);
        }
        if (reply === null && multi) throw new TxnConflictError('a watched key changed (EXEC answered nil)');
        if (reply instanceof RespError) {
          links.drop(who, addr);
          if (reply.code === 'CLUSTERDOWN') throw new ClusterDownError(reply.message);
          if (reply.code === 'CONFLICT' || reply.code === 'EXECABORT')
            throw new TxnConflictError(reply.message);
          throw new UncertainError(reply.message);
        }
        // EXEC: the three SETs' OK; TXN.COMMIT: the commit timestamp.
        const committed = multi
          ? Array.isArray(reply) && reply.length === 3 && reply.every((r) => r === 'OK')
          : typeof reply === 'number' || typeof reply === 'bigint';
        if (!committed) throw this.unexpected(multi ? 'EXEC' : 'TXN.COMMIT', reply);
      },
      (outcome) => this.settled(client, outcome),
    );
  }

  /** respAudit: every account in one MGET on any member (the leader answers it, linearizable). */
  /**
   * respAudit reads every account with one MGET through member `m`: forwarded to the leader, or
   * with `local` (READONLY, as a client reading from a replica) from `m`'s own applied state,
   * which may be stale but must still be one point in time. READWRITE follows in the same
   * pipeline, so the connection's later commands are linearizable again.
   */
  private respAudit(client: number, m: SimMember, local: boolean, links: SimRespLinks): void {
    const run = m.running as Running;
    this.stats.resp++;
    const what = `${local ? 'a READONLY' : 'a'} RESP audit via ${run.proc.name}`;
    this.track(
      run.proc,
      `b${client} ${what}`,
      async () => {
        const who = `b${client}`;
        const at = respAddress(m.id);
        const mode = local ? links.call(who, at, ['READONLY']) : undefined;
        const mget = links.call(who, at, ['MGET', ...this.accounts]);
        const back = local ? links.call(who, at, ['READWRITE']) : undefined;
        const [set, got, reset] = await Promise.all([mode, mget, back]);
        for (const [command, reply] of [
          ['READONLY', set],
          ['READWRITE', reset],
        ] as const)
          if (reply !== undefined && reply !== 'OK') throw this.unexpected(command, reply);
        if (got instanceof RespError) throw new ClusterDownError(got.message); // read: no effect
        if (!Array.isArray(got) || got.length !== this.accounts.length) throw this.unexpected('MGET', got);
        if (local) this.stats.localAudits++;
        this.audited(
          what,
          got.map((v) => (v === null ? '0' : String(v))),
        );
      },
      () => this.next(client),
    );
  }

  /** audited: an audit read `values` (in account order): they must add up to 0. */
  private audited(what: string, values: readonly string[]): void {
    this.stats.audits++;
    const sum = values.reduce((s, v) => s + Number(v), 0);
    if (sum === 0) return;
    const seen = this.accounts.map((a, i) => `${a}=${values[i]}`).join(' ');
    this.sched.fail(new SafetyViolation(`bank: ${what} saw ${seen}: a sum of ${sum}, not 0`));
  }

  /** unexpected: a reply of the wrong shape is a server bug: the run fails. */
  private unexpected(command: string, reply: RespValue): Error {
    const err = new Error(`unexpected reply to ${command}: ${String(reply)}`);
    this.sched.fail(err);
    return err;
  }

  /** settled counts a transfer's outcome and starts the client's next operation. */
  private settled(client: number, outcome: 'ok' | 'definite' | 'uncertain'): void {
    if (outcome === 'ok') {
      this.stats.acknowledged++;
      this.acked[client] = (this.acked[client] ?? 0) + 1;
    } else if (outcome === 'uncertain') {
      this.stats.uncertain++;
      this.uncertain[client] = (this.uncertain[client] ?? 0) + 1;
    }
    this.next(client);
  }

  /** track runs `op`; a definite failure is an error that promises no effect. */
  private track(
    proc: SimProcess,
    what: string,
    op: () => Promise<void>,
    done: (outcome: 'ok' | 'definite' | 'uncertain') => void,
  ): void {
    this.inFlight.run(proc, what, op, (settled) => {
      let outcome: 'ok' | 'definite' | 'uncertain' = 'uncertain';
      if (settled.kind === 'ok') outcome = 'ok';
      else if (settled.kind === 'error' && settled.err instanceof TxnConflictError) {
        this.stats.conflicts++;
        outcome = 'definite';
      } else if (
        settled.kind === 'error' &&
        (settled.err instanceof ClusterDownError || settled.err instanceof RespError)
      ) {
        this.stats.refused++;
        outcome = 'definite';
      }
      this.trace(`${what} ${outcome}`);
      done(outcome);
    });
  }
}

function counterKey(client: number): string {
  return `t${client}`;
}

/** beforeExec: a command before EXEC answered with an error: nothing was written (definite). */
function beforeExec(reply: RespValue): RespValue {
  if (reply instanceof RespError) throw reply;
  return reply;
}
