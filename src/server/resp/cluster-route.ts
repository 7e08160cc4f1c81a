// Which commands a cluster member routes (docs/cluster.md, "Every member accepts every
// command"): data commands (reads, writes, transactions) run on the leader; connection and
// server commands (PING, HELLO, AUTH, CLIENT, INFO, ROLE, CONFIG, ...) run on the member the
// client is connected to.
import type { CommandSpec } from './command-table.js';

/** isDataCommand: the command reads or writes the store, or belongs to a transaction. */
export function isDataCommand(spec: CommandSpec): boolean {
  // Scripts run on the leader (their writes are one batch of its log); SCRIPT LOAD goes there
  // too, so that the EVALSHA that follows finds the script.
  return (
    spec.group === 'transactions' ||
    spec.group === 'scripting' ||
    spec.flags.includes('write') ||
    spec.flags.includes('readonly')
  );
}

/** MAY_WRITE: commands without the write flag that may write (a script), as Redis's may_replicate. */
const MAY_WRITE = new Set(['eval', 'evalsha']);

/**
 * mayWrite: the command may change the store, so a forwarded one that got no reply may have
 * taken effect (UNCERTAIN, not CLUSTERDOWN).
 */
export function mayWrite(spec: CommandSpec): boolean {
  return spec.flags.includes('write') || MAY_WRITE.has(spec.name);
}

/**
 * READ_INDEX_TRANSACTIONS: transaction commands that read the store when they run on the leader:
 * EXEC runs its queued reads, TXN.BEGIN takes its snapshot. They wait for a ReadIndex round as
 * plain reads do, so a deposed leader cannot serve them from a stale state.
 */
const READ_INDEX_TRANSACTIONS = new Set(['exec', 'txn.begin']);

/** needsReadIndex: on the leader, the command must see everything committed before it started. */
export function needsReadIndex(spec: CommandSpec): boolean {
  return spec.flags.includes('readonly') || READ_INDEX_TRANSACTIONS.has(spec.name);
}
