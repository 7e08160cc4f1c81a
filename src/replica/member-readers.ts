// Open snapshots, transactions and watches of a cluster member's Db cannot outlive a change of
// its leadership or of its engine: another leader's writes, and a snapshot from the leader that
// replaces the engine, reach the engine without passing through the member's Mvcc, so nothing
// captured what they replaced, and a reader open across them would mix the two states. Both
// retire every open reader (Mvcc.retireReaders): its next read or commit fails with a retryable
// conflict. `cairn serve` (src/server/server.ts) and the replica simulator's members wire it the
// same way.
//
// Found through the replica simulator (seed 894460326 with --resp --engine cask --transactions
// --remove-member --ttl), whose members lacked this wiring: a bank audit's snapshot on a member
// that had led before read two accounts from versions its Mvcc had captured while it led and the
// third from the state a snapshot install had just brought, and saw balances that did not add up.
// `cairn serve` retired readers on a change of leadership already; the engine's replacement is
// retired too now, by the same reasoning (an install's writes bypass the Mvcc as well).
import type { Engine } from '../storage/engine.js';
import type { Mvcc } from '../txn/mvcc.js';

/** ReaderEvents: what retiring readers listens to on a member's Replica. */
export interface ReaderEvents {
  readonly leaderReady: boolean;
  onChange(listener: () => void): () => void;
  readonly onEngine: Set<(engine: Engine) => void>;
}

/**
 * retireReadersOnChange retires `mvcc`'s open readers whenever the member becomes or stops being
 * the ready leader (`onLeading` hears which) and whenever its engine is replaced. Returns a
 * function that stops it.
 */
export function retireReadersOnChange(
  replica: ReaderEvents,
  mvcc: Pick<Mvcc, 'retireReaders'>,
  onLeading?: (leaderReady: boolean) => void,
): () => void {
  let ready = replica.leaderReady;
  const offChange = replica.onChange(() => {
    if (replica.leaderReady === ready) return;
    ready = replica.leaderReady;
    mvcc.retireReaders();
    onLeading?.(ready);
  });
  const onEngine = (): void => mvcc.retireReaders();
  replica.onEngine.add(onEngine);
  return () => {
    offChange();
    replica.onEngine.delete(onEngine);
  };
}
