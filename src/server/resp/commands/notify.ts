// notify: how a write command reports a keyspace event (src/server/resp/notifications.ts).
// Outside a transaction the event is published once `durable` (the write's durability) resolves;
// inside one (EXEC, TXN.BEGIN) it waits in the transaction's store and is published after the
// commit is durable (and never if the transaction does not commit).
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
  if (store instanceof TxnKeyStore) store.events.push(e);
  else notifier.after(durable, [e]);
}
