// SimOperations: the operations a simulated client group has in flight (sim/replica-clients.ts,
// sim/replica-bank.ts), each settled exactly once: by its promise, or by the crash of the process
// it ran on (a crashed process settles nothing more). Every operation has the same deadline: no
// request may wait longer on a live member (the Replica's request timeout is 5 s; a write that
// waits on an earlier pending write may take two of them); one that does fails the run.

import type { SimProcess, SimScheduler } from './replica-scheduler.js';

/**
 * OP_DEADLINE_MS: no request may wait longer on a live member (the Replica's request timeout is
 * 5 s; a write that waits on an earlier pending write may take two of them).
 */
export const OP_DEADLINE_MS = 15_000;

/** Settled: how an operation ended: its value, its error, or the crash of its process. */
export type Settled<T> =
  | { readonly kind: 'ok'; readonly value: T }
  | { readonly kind: 'error'; readonly err: unknown }
  | { readonly kind: 'crashed' };

interface Running {
  readonly proc: SimProcess;
  /** crash settles the operation as crashed (nothing, if it settled already). */
  readonly crash: () => void;
}

export class SimOperations {
  private readonly running = new Set<Running>();

  constructor(private readonly sched: SimScheduler) {}

  get size(): number {
    return this.running.size;
  }

  /** crashed settles every operation in flight on `proc`, which died, as crashed. */
  crashed(proc: SimProcess): void {
    for (const op of [...this.running]) if (op.proc === proc) op.crash();
  }

  /** run starts `op` on `proc`; `settle` hears how it ended, once. `label` names it in a deadline failure. */
  run<T>(proc: SimProcess, label: string, op: () => Promise<T>, settle: (s: Settled<T>) => void): void {
    let done = false;
    const finish = (s: Settled<T>): void => {
      if (done) return;
      done = true;
      this.running.delete(entry);
      deadline.cancel();
      settle(s);
    };
    const entry: Running = { proc, crash: () => finish({ kind: 'crashed' }) };
    const deadline = this.sched.at(OP_DEADLINE_MS, () => {
      if (!done && proc.alive)
        this.sched.fail(new Error(`${label} on ${proc.name} waited ${OP_DEADLINE_MS} ms`));
    });
    this.running.add(entry);
    op().then(
      (value) => finish({ kind: 'ok', value }),
      (err: unknown) => finish({ kind: 'error', err }),
    );
  }
}
