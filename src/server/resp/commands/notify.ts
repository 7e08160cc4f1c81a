// notify: how a write command reports a keyspace event (src/server/resp/notifications.ts).
// Outside a transaction the event is published once `durable` (the write's durability) resolves;
// inside one (EXEC, TXN.BEGIN) or a script it waits in the transaction's or script's store and
// is published after the commit is durable (and never if nothing commits).

import { ScriptStore } from '../lua/script-store.js';
import { KeyspaceNotifier } from '../notifications.js';
import { TxnKeyStore } from '../txn-key-store.js';
import type { CommandContext } from '../types.js';

export function notify(
  ctx: CommandContext,
  durable: Promise<void> | undefined,
  cls: number,
  event: string,
  key: Uint8Array,
): void {
  const notifier = ctx.server.notifier;
  if (!notifier.wants(cls)) return;
  const e = KeyspaceNotifier.event(cls, event, key);
  const store = ctx.store;
  // A transaction's and a script's events wait for their commit (and are dropped without one).
  if (store instanceof TxnKeyStore || store instanceof ScriptStore) store.events.push(e);
  else notifier.after(durable, [e]);
}
