// Bank transfers against a ProcCluster (the bank-transfer invariant): accounts that start
// with the same balance, and clients on every member that move money between two of them, each
// in a transaction of one of three kinds, until stopped. Whatever faults happen meanwhile, the
// total must be what it started as: a transfer is all or nothing.
// - careful: WATCH both, GET both, MULTI, SET both, EXEC; DISCARD and UNWATCH after an error reply.
// - stubborn: MULTI, DECRBY, INCRBY, EXEC one command at a time, going on after an error reply
//   (no DISCARD), as a client that queues regardless or sends the block in one write does: a
//   block whose transaction was lost on the way must run none of its commands.
// - interactive: TXN.BEGIN, GET both, SET both, TXN.COMMIT (serializable); TXN.ROLLBACK after an
//   error reply (a conflict, a change of leader, an uncertain commit: all or nothing either way).
import { expect } from 'vitest';
import type { CairnClient } from '../../src/client/client.js';
import { RespError } from '../../src/protocol/resp/index.js';
import type { ProcCluster } from './proc-cluster.js';
import { sleep } from './proc-cluster.js';
import { RECONNECT_PAUSE_MS } from './workload.js';

export interface BankOptions {
  readonly accounts: number;
  readonly start: number;
  /** members: whom the workers talk to (each member gets one worker of every kind). */
  readonly members: readonly string[];
  /** prefix: put before every account key (default `acct`). */
  readonly prefix?: string;
}

type Transfer = (c: CairnClient, a: string, b: string) => Promise<boolean>;

export class Bank {
  /** committed: transfers whose commit was answered as done, by kind. */
  readonly committed = { careful: 0, stubborn: 0, interactive: 0 };
  private running = false;
  private workers: Promise<void>[] = [];

  constructor(
    private readonly cluster: ProcCluster,
    private readonly options: BankOptions,
  ) {}

  account(i: number): string {
    return `${this.options.prefix ?? 'acct'}${i}`;
  }

  /** open sets every account to the starting balance through `member`. */
  async open(member: string): Promise<void> {
    for (let i = 0; i < this.options.accounts; i++)
      await this.cluster.call(member, 'SET', this.account(i), String(this.options.start));
  }

  start(): void {
    this.running = true;
    const kinds: [keyof Bank['committed'], Transfer][] = [
      ['careful', careful],
      ['stubborn', stubborn],
      ['interactive', interactive],
    ];
    this.workers = this.options.members.flatMap((m) => kinds.map(([kind, t]) => this.worker(m, kind, t)));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  /** expectTotal reads every account through `member` (linearizable) and checks the sum. */
  async expectTotal(member: string, context = ''): Promise<void> {
    let total = 0;
    for (let i = 0; i < this.options.accounts; i++)
      total += Number(await this.cluster.call(member, 'GET', this.account(i)));
    const done = `${JSON.stringify(this.committed)} transfers committed`;
    expect(total, `${context}bank total (${done})`).toBe(this.options.accounts * this.options.start);
    // Money moved, or the total says nothing.
    const { careful, stubborn, interactive } = this.committed;
    expect(careful + stubborn + interactive, `${context}${done}`).toBeGreaterThan(0);
  }

  /** worker runs transfers of one kind between two random accounts on a client of `member` (of any member after a connection error). */
  private async worker(member: string, kind: keyof Bank['committed'], transfer: Transfer): Promise<void> {
    const members = this.options.members;
    let c = await this.cluster.client(member).catch(() => undefined);
    while (this.running) {
      if (c === undefined) {
        await sleep(RECONNECT_PAUSE_MS);
        const any = members[Math.floor(Math.random() * members.length)] as string;
        c = await this.cluster.client(any).catch(() => undefined);
        continue;
      }
      const n = this.options.accounts;
      const a = Math.floor(Math.random() * n);
      const b = (a + 1 + Math.floor(Math.random() * (n - 1))) % n;
      try {
        if (await transfer(c, this.account(a), this.account(b))) this.committed[kind]++;
      } catch {
        await c.close().catch(() => {});
        c = undefined;
      }
    }
    await c?.close().catch(() => {});
  }
}

/** replyError: an error reply ends the attempt (the caller cleans up); anything else is a broken connection. */
function replyError(err: unknown): void {
  if (!(err instanceof RespError)) throw err;
}

const careful: Transfer = async (c, a, b) => {
  try {
    await c.call('WATCH', a, b);
    const va = Number(await c.call('GET', a));
    const vb = Number(await c.call('GET', b));
    await c.call('MULTI');
    await c.call('SET', a, String(va - 1));
    await c.call('SET', b, String(vb + 1));
    return Array.isArray(await c.call('EXEC'));
  } catch (err) {
    replyError(err);
    await c.call('DISCARD').catch(() => {});
    await c.call('UNWATCH').catch(() => {});
    return false;
  }
};

const stubborn: Transfer = async (c, a, b) => {
  const replies: unknown[] = [];
  for (const command of [['MULTI'], ['DECRBY', a, '7'], ['INCRBY', b, '7'], ['EXEC']]) {
    replies.push(
      await c.call(...command).catch((err: unknown) => {
        replyError(err);
        return err;
      }),
    );
  }
  return Array.isArray(replies[3]);
};

const interactive: Transfer = async (c, a, b) => {
  try {
    await c.call('TXN.BEGIN', 'ISOLATION', 'SERIALIZABLE');
    const va = Number(await c.call('GET', a));
    const vb = Number(await c.call('GET', b));
    await c.call('SET', a, String(va - 3));
    await c.call('SET', b, String(vb + 3));
    await c.call('TXN.COMMIT');
    return true;
  } catch (err) {
    replyError(err);
    await c.call('TXN.ROLLBACK').catch(() => {});
    return false;
  }
};
