// Transactions over RESP: Redis's MULTI / EXEC / DISCARD / WATCH / UNWATCH, and Cairn's
// interactive TXN.BEGIN / TXN.COMMIT / TXN.ROLLBACK / TXN.STATUS and TXN.CAS (docs/resp-commands.md).
//
// EXEC runs the queued commands inside a serializable Db transaction (src/txn/): they read its
// snapshot plus their own writes, and their writes reach the store as one atomic batch at commit,
// so other clients see all of an EXEC or none of it. The WATCH check and the commit's validation
// and enqueue happen in one synchronous step: nothing is awaited between them, so no write can
// slip in between. A conflict of the transaction's own reads (a key it read changed before the
// commit) re-runs the queued commands on a fresh snapshot; clients cannot tell.
import { ReplyWriter } from '../../../protocol/resp/index.js';
import { assert } from '../../../stdx/assert.js';
import { ISOLATION_LEVELS, type Isolation } from '../../../txn/mvcc.js';
import { retryAfterConflict } from '../../../txn/retry.js';
import { CommandError, ERR_SYNTAX, errorReply, replyTooLarge } from '../errors.js';
import { EXEC_ATTEMPTS_MAX, EXEC_BACKOFF_MAX_MS } from '../limits.js';
import { ERR_EXECABORT, type QueuedCommand } from '../multi-queue.js';
import { trackRead } from '../tracking.js';
import { TxnKeyStore } from '../txn-key-store.js';
import type { CommandContext, Held } from '../types.js';
import type { Watch } from '../watch.js';
import { held, lower } from './args.js';
import { casCommand, revisionCommand } from './cas.js';
import { ALL_KEYS, NO_KEYS, spec } from './spec.js';

const doc = (since: string, summary: string) => ({ group: 'transactions', since, summary });
const noop = (): void => {};

function multi(ctx: CommandContext): void {
  ctx.session.multi();
  ctx.w.ok();
}

function discard(ctx: CommandContext): void {
  ctx.session.discard();
  ctx.w.ok();
}

function watch(ctx: CommandContext, args: Buffer[]): void {
  ctx.session.watch(args.slice(1));
  ctx.w.ok();
}

function unwatch(ctx: CommandContext): void {
  ctx.session.unwatch();
  ctx.w.ok();
}

/** Ran: one queued command's outcome, counted in the metrics once its EXEC commits. */
interface Ran {
  readonly command: string;
  readonly seconds: number;
  readonly ok: boolean;
}

/** ERR_SSUBSCRIBE_IN_EXEC: Redis 7.0's refusal of SSUBSCRIBE inside MULTI/EXEC. */
const ERR_SSUBSCRIBE_IN_EXEC = "ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client";

/**
 * runQueued runs the queued commands against `tx` and returns the EXEC reply body. A command's
 * error becomes its element of the reply; the others still run (as Redis).
 */
async function runQueued(
  ctx: CommandContext,
  store: TxnKeyStore,
  commands: readonly QueuedCommand[],
  ran: Ran[],
): Promise<Buffer> {
  const w = new ReplyWriter(ctx.client.protocol);
  const inner: CommandContext = {
    server: ctx.server,
    client: ctx.client,
    session: ctx.session,
    pubsub: ctx.pubsub,
    store,
    w,
    setProtocol: (version) => {
      ctx.setProtocol(version);
      w.protocol = version;
    },
    closeAfterReply: () => ctx.closeAfterReply(),
    resetConnection: () => ctx.resetConnection(),
  };
  for (const { spec: command, args } of commands) {
    const started = ctx.server.clock.monotonicMs();
    let ok = true;
    try {
      // Redis 7.0 runs EXEC's commands as a "deny blocking" client, which SSUBSCRIBE refuses.
      if (command.name === 'ssubscribe') throw new CommandError(ERR_SSUBSCRIBE_IN_EXEC);
      const outcome = await command.handler(inner, args);
      if (outcome !== undefined && outcome !== null) {
        // Commands reading through the transaction never wait; others (none today) might.
        if (outcome.durable !== undefined) await outcome.durable;
        outcome.reply(w);
      }
    } catch (err) {
      ok = false;
      w.error(errorReply(err));
    }
    ran.push({ command: command.name, seconds: (ctx.server.clock.monotonicMs() - started) / 1000, ok });
    // Checked before the commit: a transaction whose reply cannot be built is not run at all.
    const limit = ctx.server.limits.replyBytes;
    if (w.pendingBytes > limit)
      throw replyTooLarge('the replies of the queued commands', limit, 'the transaction was not run');
  }
  return w.take();
}

async function exec(ctx: CommandContext): Promise<Held> {
  const session = ctx.session;
  const { commands, aborted } = session.takeQueue();
  // The watch belongs to this EXEC now: a queued UNWATCH cannot cancel its check.
  const watching: Watch | undefined = session.takeWatch();
  try {
    if (aborted) throw new CommandError(ERR_EXECABORT);
    const db = ctx.server.db;
    for (let attempt = 1; ; attempt++) {
      // CLIENT TRACKING: the queued reads are remembered before the snapshot is taken, so a
      // write the snapshot misses cannot have gone unannounced (again per attempt: an
      // invalidation during a conflicting attempt made the table forget them).
      for (const q of commands) trackRead(ctx.server.tracking, ctx.client, q.spec, q.args);
      const tx = await db.begin({ isolation: 'serializable' });
      // A fresh store per attempt: the keyspace events of an attempt that conflicts are dropped.
      const store = new TxnKeyStore(tx);
      const ran: Ran[] = [];
      let body: Buffer;
      try {
        body = await runQueued(ctx, store, commands, ran);
      } catch (err) {
        tx.rollback();
        throw err;
      }
      // From the watch check to tx.commit()'s enqueue nothing is awaited (commit validates and
      // enqueues synchronously before its first await): no write can come in between.
      if (watching?.changed() === true) {
        tx.rollback();
        return held(undefined, (w) => w.nullArray());
      }
      const committing = ctx.server.tracking.asWriter(ctx.client.id, () => tx.commit());
      const reply = (w: ReplyWriter): void => {
        // The queued commands count as executed (metrics, INFO commandstats) once EXEC replies.
        for (const r of ran) ctx.server.metrics.observe(r.command, 'resp', r.seconds, r.ok);
        w.arrayHeader(commands.length);
        w.raw(body);
      };
      // Enqueued (it took a commit timestamp): the reply waits for durability, later commands
      // of this connection already see the writes.
      if (tx.committedTs !== undefined) {
        const durable = committing.then(noop);
        ctx.server.notifier.after(durable, store.events);
        return held(durable, reply);
      }
      // Not enqueued: validation failed or the store refused the batch; find out which.
      try {
        await committing;
      } catch (err) {
        await retryAfterConflict(err, attempt, EXEC_ATTEMPTS_MAX, EXEC_BACKOFF_MAX_MS);
      }
    }
  } finally {
    watching?.release();
  }
}

function parseIsolation(args: Buffer[]): Isolation {
  if (args.length === 1) return 'serializable';
  if (args.length !== 3 || lower(args[1]!) !== 'isolation') throw new CommandError(ERR_SYNTAX);
  const level = lower(args[2]!) as Isolation;
  if (!ISOLATION_LEVELS.includes(level)) {
    throw new CommandError(`ERR unknown isolation level (expected ${ISOLATION_LEVELS.join(' or ')})`);
  }
  return level;
}

async function txnBegin(ctx: CommandContext, args: Buffer[]): Promise<void> {
  const isolation = parseIsolation(args);
  if (ctx.session.txn !== undefined) {
    throw new CommandError('ERR a transaction is already open on this connection');
  }
  const tx = await ctx.server.db.begin({ isolation });
  // The connection runs one command at a time, so nothing opened another meanwhile; begin()
  // checks again all the same (and rolls `tx` back).
  ctx.session.begin(new TxnKeyStore(tx));
  ctx.w.ok();
}

async function txnCommit(ctx: CommandContext): Promise<void> {
  const store = ctx.session.endTxn('TXN.COMMIT');
  assert(store !== undefined, 'endTxn returns the transaction to commit, or throws');
  // commit() enqueues before its first await: the events queue in commit order.
  const committing = store.tx.commit();
  // Only with events to publish: a derived promise nobody else awaits would be an unhandled
  // rejection when the commit conflicts.
  if (store.events.length > 0) ctx.server.notifier.after(committing.then(noop), store.events);
  const { ts } = await committing;
  ctx.w.integer(ts);
}

function txnRollback(ctx: CommandContext): void {
  ctx.session.endTxn('TXN.ROLLBACK')?.tx.rollback();
  ctx.w.ok();
}

function txnStatus(ctx: CommandContext): void {
  const store = ctx.session.txn;
  const w = ctx.w;
  if (store === undefined) {
    w.null();
    return;
  }
  w.map([
    ['isolation', store.tx.isolation],
    ['snapshot', store.tx.ts],
    ['writes', store.tx.writeCount],
  ]);
}

const TXN_FLAGS = ['no_multi', 'fast'] as const;
/** QUEUE_FLAGS: Redis 7's flags of MULTI, DISCARD, WATCH and UNWATCH (COMMAND INFO). */
const QUEUE_FLAGS = ['noscript', 'loading', 'stale', 'fast', 'allow_busy'] as const;

export const TRANSACTION_COMMANDS = [
  spec('multi', 1, QUEUE_FLAGS, NO_KEYS, doc('1.2.0', 'Starts a transaction.'), multi),
  spec(
    'exec',
    1,
    ['noscript', 'loading', 'stale', 'skip_slowlog'],
    NO_KEYS,
    doc('1.2.0', 'Executes all commands in a transaction.'),
    exec,
  ),
  spec('discard', 1, QUEUE_FLAGS, NO_KEYS, doc('2.0.0', 'Discards a transaction.'), discard),
  spec(
    'watch',
    -2,
    QUEUE_FLAGS,
    ALL_KEYS,
    doc('2.2.0', 'Monitors changes to keys to determine the execution of a transaction.'),
    watch,
  ),
  spec(
    'unwatch',
    1,
    QUEUE_FLAGS,
    NO_KEYS,
    doc('2.2.0', 'Forgets about watched keys of a transaction.'),
    unwatch,
  ),
  spec(
    'txn.begin',
    -1,
    TXN_FLAGS,
    NO_KEYS,
    doc('cairn', 'Opens an interactive transaction: later data commands run inside it.'),
    txnBegin,
  ),
  spec(
    'txn.commit',
    1,
    TXN_FLAGS,
    NO_KEYS,
    doc('cairn', "Commits the connection's transaction; replies with its commit timestamp."),
    txnCommit,
  ),
  spec(
    'txn.rollback',
    1,
    TXN_FLAGS,
    NO_KEYS,
    doc('cairn', "Rolls back the connection's transaction."),
    txnRollback,
  ),
  spec(
    'txn.status',
    1,
    TXN_FLAGS,
    NO_KEYS,
    doc('cairn', "Describes the connection's open transaction (null when none)."),
    txnStatus,
  ),
  casCommand(doc),
  revisionCommand(doc),
];
