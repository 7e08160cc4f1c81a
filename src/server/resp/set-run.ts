// A run of plain SETs: consecutive `SET key value` commands (no options) of one connection's
// read, written as one write of the store (the write pipeline's batch) instead of one write each
// (issue 14; docs/resp-commands.md, "Runs of SETs"). A pipelining client (redis-benchmark -P 16, a
// client library's pipeline, a bulk load) sends them back to back; each write costs the pipeline
// and the engine a promise, pending state, a queued write and a publish of its own, about a
// quarter of a SET's cost below the RESP layer (`npx tsx bench/put-path.ts --batch 16`).
//
// What a client can tell: the SETs of a run commit together, at one commit timestamp, as MSET's
// keys do; each still gets its own reply, keyspace event, command statistics and latency, in
// order. A run never holds two SETs of one key (each write of a key counts in its revision), and
// only SETs that cannot be refused one by one join it (a key or value over a limit, which would
// fail the run's other SETs with it, is run on its own), so every SET's reply is what it would
// have been alone. A failed write (a full disk, a failed store) fails every SET of the run, as
// it fails every write of the group commit that held them.
import { bytesEqual } from '../../stdx/bytes.js';
import type { BatchOp } from '../../txn/write-pipeline.js';
import type { CommandSpec } from './command-table.js';

/** SET_RUN_MAX: SETs in one run at most (a read of redis-benchmark -P 16 brings 16 per client). */
export const SET_RUN_MAX = 64;
/**
 * SET_RUN_KEY_BYTES_MAX, SET_RUN_VALUE_BYTES_MAX: a SET joins a run only with a key and value up
 * to these, far under every engine's limits (lmdb's keys: 1977 bytes; values: VALUE_BYTES_MAX),
 * so that no SET of a run can be refused for its size and take the others down with it.
 */
export const SET_RUN_KEY_BYTES_MAX = 512;
export const SET_RUN_VALUE_BYTES_MAX = 64 * 1024;

/**
 * isRunnableSet: `args` (whose command the table found as `spec`) is `SET key value`, without
 * options, with a key and value a run takes.
 */
export function isRunnableSet(spec: CommandSpec | undefined, args: readonly Buffer[]): boolean {
  return (
    spec?.name === 'set' &&
    args.length === 3 &&
    (args[1] as Buffer).length <= SET_RUN_KEY_BYTES_MAX &&
    (args[2] as Buffer).length <= SET_RUN_VALUE_BYTES_MAX
  );
}

/** keyInRun: `key` is the key of one of run[0..n)'s SETs. */
export function keyInRun(run: readonly (readonly Buffer[])[], n: number, key: Buffer): boolean {
  for (let i = 0; i < n; i++) {
    const other = (run[i] as readonly Buffer[])[1] as Buffer;
    if (other.length === key.length && bytesEqual(other, key)) return true;
  }
  return false;
}

/** runOps: the store's batch of run[0..n)'s SETs (the pipeline copies what it keeps). */
export function runOps(run: readonly (readonly Buffer[])[], n: number): BatchOp[] {
  const ops: BatchOp[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const args = run[i] as readonly Buffer[];
    ops[i] = { type: 'put', key: args[1] as Buffer, value: args[2] as Buffer };
  }
  return ops;
}
