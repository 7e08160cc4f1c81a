// Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP, with
// Redis 7's semantics and error texts (docs/lua.md).
//
// A script runs as ONE synchronous step: its redis.call runs the command's handler against a
// ScriptStore (lua/script-store.ts), an overlay of the script's writes over the newest state
// (or over the transaction it runs in, inside EXEC or TXN.BEGIN), and the handlers answer
// synchronously over it (commands/args.ts `andThen`). Nothing is awaited from the first read to
// the last write, so no other command runs in between, as in Redis; the writes then go to the
// write pipeline as one atomic batch, and the reply waits for their durability like any write's.
import {
  INCOMPLETE,
  ReplyParser,
  ReplyWriter,
  RespError,
  type RespValue,
} from '../../../protocol/resp/index.js';
import { arityOk } from '../command-table.js';
import { CommandError, errorReply, unknownSubcommand, wrongArity } from '../errors.js';
import { writeReply } from '../lua/convert.js';
import { ERR_NOT_IN_SCRIPT, pipelineBase, ScriptStore, txnBase } from '../lua/script-store.js';
import { trackRead } from '../tracking.js';
import { TxnKeyStore } from '../txn-key-store.js';
import type { CommandContext, Held } from '../types.js';
import { held, int64Arg, lower } from './args.js';
import { NO_KEYS, spec } from './spec.js';

export const ERR_NOSCRIPT = 'NOSCRIPT No matching script. Please use EVAL.';
export const ERR_NUMKEYS_NEGATIVE = "ERR Number of keys can't be negative";
export const ERR_NUMKEYS_TOO_MANY = "ERR Number of keys can't be greater than number of args";
export const ERR_UNKNOWN_FROM_SCRIPT = 'ERR Unknown Redis command called from script';
export const ERR_NOT_ALLOWED_FROM_SCRIPT = 'ERR This Redis command is not allowed from script';
export const ERR_ARITY_FROM_SCRIPT = 'ERR Wrong number of args calling Redis command from script';
export const ERR_WRITE_FROM_RO_SCRIPT = 'ERR Write commands are not allowed from read-only scripts.';
export const ERR_WRITE_FLAG_IN_RO = 'ERR Can not execute a script with write flag using *_ro command.';

/**
 * SCRIPT_GROUPS: the command groups redis.call may run: their handlers read and write only
 * through the KeyStore and answer synchronously over a ScriptStore. Commands that scan the
 * keyspace (KEYS, SCAN, DBSIZE, FLUSHDB) cannot (they read the engine asynchronously).
 */
const SCRIPT_GROUPS: ReadonlySet<string> = new Set(['string', 'bitmap', 'generic', 'hash']);
const SCRIPT_NAMES: ReadonlySet<string> = new Set(['ping', 'echo', 'publish', 'time']);
const noop = (): void => {};

/** callFromScript runs one redis.call against the script's store; errors are RespError replies. */
function callFromScript(
  ctx: CommandContext,
  store: ScriptStore,
  args: Buffer[],
  readonly: boolean,
): RespValue {
  const command = ctx.server.commands.lookup(args[0]!);
  if (command === undefined) return new RespError(ERR_UNKNOWN_FROM_SCRIPT);
  if (command.flags.includes('noscript')) return new RespError(ERR_NOT_ALLOWED_FROM_SCRIPT);
  if (!arityOk(command, args.length)) return new RespError(ERR_ARITY_FROM_SCRIPT);
  if (readonly && command.flags.includes('write')) return new RespError(ERR_WRITE_FROM_RO_SCRIPT);
  if (!SCRIPT_GROUPS.has(command.group) && !SCRIPT_NAMES.has(command.name)) {
    return new RespError(ERR_NOT_IN_SCRIPT);
  }
  const w = new ReplyWriter(2);
  const inner: CommandContext = {
    server: ctx.server,
    client: ctx.client,
    session: ctx.session,
    store,
    w,
    setProtocol: () => {
      throw new CommandError(ERR_NOT_ALLOWED_FROM_SCRIPT);
    },
    closeAfterReply: noop,
    // PUBLISH may run in a script (as in Redis); subscribing and RESET may not.
    pubsub: ctx.pubsub,
    resetConnection: () => {
      throw new CommandError(ERR_NOT_ALLOWED_FROM_SCRIPT);
    },
  };
  // CLIENT TRACKING: a script's reads are the calling client's (as in Redis).
  trackRead(ctx.server.tracking, ctx.client, command, args);
  const started = ctx.server.clock.monotonicMs();
  let ok = true;
  try {
    const outcome = command.handler(inner, args);
    if (outcome instanceof Promise) {
      // An asynchronous command cannot run inside a synchronous script.
      outcome.catch(noop);
      ok = false;
      return new RespError(ERR_NOT_IN_SCRIPT);
    }
    if (outcome !== undefined && outcome !== null) outcome.reply(w);
  } catch (err) {
    ok = false;
    return new RespError(errorReply(err));
  } finally {
    ctx.server.metrics.observe(command.name, 'resp', (ctx.server.clock.monotonicMs() - started) / 1000, ok);
  }
  const parser = new ReplyParser();
  parser.push(w.take());
  const reply = parser.next();
  return reply === INCOMPLETE ? new RespError('ERR internal error') : reply;
}

/** parseNumKeys applies Redis's checks to EVAL's numkeys (evalGenericCommand). */
function parseNumKeys(args: Buffer[]): number {
  const n = int64Arg(args[2]!);
  if (n > BigInt(args.length - 3)) throw new CommandError(ERR_NUMKEYS_TOO_MANY);
  if (n < 0n) throw new CommandError(ERR_NUMKEYS_NEGATIVE);
  return Number(n);
}

function evalCommand(bySha: boolean, readonly: boolean) {
  return (ctx: CommandContext, args: Buffer[]): Held => {
    const scripts = ctx.server.scripts;
    const numkeys = parseNumKeys(args);
    let sha: string;
    if (bySha) {
      sha = lower(args[1]!);
      if (!scripts.has(sha)) throw new CommandError(ERR_NOSCRIPT);
    } else {
      sha = scripts.load(args[1]!);
    }
    // A script with a shebang is a writer unless it says no-writes: EVAL_RO refuses it (Redis 7's
    // scriptPrepareForRun); one that says no-writes runs read-only under EVAL too.
    const flags = scripts.flagsOf(sha);
    if (readonly && flags.shebang && !flags.noWrites) throw new CommandError(ERR_WRITE_FLAG_IN_RO);
    const readOnlyRun = readonly || flags.noWrites;
    const keys = args.slice(3, 3 + numkeys);
    const argv = args.slice(3 + numkeys);
    const base =
      ctx.store instanceof TxnKeyStore ? txnBase(ctx.store.tx) : pipelineBase(ctx.server.db.pipeline);
    const store = new ScriptStore(base, () => ctx.server.db.clock.nowMs());
    const logger = ctx.server.logger;
    const { reply, stopped } = scripts.run(sha, keys, argv, {
      call: (callArgs) => callFromScript(ctx, store, callArgs, readOnlyRun),
      knows: (name) => ctx.server.commands.lookup(name) !== undefined,
      log: (level, message) => {
        const fields = { script: sha, client: ctx.client.id };
        if (level === 'warning') logger?.warn(fields, message);
        else if (level === 'notice') logger?.info(fields, message);
        else logger?.debug(fields, message);
      },
    });
    // A script stopped by a limit writes nothing; one that failed by itself keeps the writes it
    // made before the error, as in Redis (docs/lua.md).
    const durable = stopped ? undefined : store.commit();
    if (!stopped && store.events.length > 0) {
      // Inside a transaction the events wait for its commit; else for this script's batch.
      if (ctx.store instanceof TxnKeyStore) ctx.store.events.push(...store.events);
      else ctx.server.notifier.after(durable, store.events);
    }
    return held(durable, (w) => writeReply(w, reply));
  };
}

const SCRIPT_HELP = [
  'SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'EXISTS <sha1> [<sha1> ...]',
  '    Return information about the existence of the scripts in the script cache.',
  'FLUSH [ASYNC|SYNC]',
  '    Flush the Lua scripts cache. Very dangerous on replicas.',
  '    When called without the optional mode argument, the behavior is determined by the',
  '    lazyfree-lazy-user-flush configuration directive. Valid modes are:',
  '    * ASYNC: Asynchronously flush the scripts cache.',
  '    * SYNC: Synchronously flush the scripts cache.',
  'KILL',
  '    Kill the currently executing Lua script.',
  'LOAD <script>',
  '    Load a script into the scripts cache without executing it.',
  'HELP',
  '    Print this help.',
];

/** SCRIPT_ARITY: each SCRIPT subcommand's arity, as Redis's (negative: at least that many). */
const SCRIPT_ARITY: Readonly<Record<string, number>> = { load: 3, exists: -3, flush: -2, kill: 2, help: 2 };

function script(ctx: CommandContext, args: Buffer[]): void {
  const sub = lower(args[1]!);
  const scripts = ctx.server.scripts;
  const w = ctx.w;
  const arity = Object.hasOwn(SCRIPT_ARITY, sub) ? SCRIPT_ARITY[sub] : undefined;
  if (arity === undefined) throw unknownSubcommand(args[1]!, 'script');
  if (arity >= 0 ? args.length !== arity : args.length < -arity) throw wrongArity(`script|${sub}`);
  if (sub === 'load') w.bulk(scripts.load(args[2]!));
  else if (sub === 'exists') {
    w.array(args.slice(2).map((a) => (scripts.has(lower(a)) ? 1 : 0)));
  } else if (sub === 'flush') {
    if (args.length > 3 || (args.length === 3 && !['async', 'sync'].includes(lower(args[2]!)))) {
      throw new CommandError('ERR SCRIPT FLUSH only support SYNC|ASYNC option');
    }
    scripts.flush();
    w.ok();
  } else if (sub === 'kill') {
    // A script runs synchronously: when this command runs, none is running (docs/lua.md).
    throw new CommandError('NOTBUSY No scripts in execution right now.');
  } else {
    w.array(SCRIPT_HELP);
  }
}

const doc = (since: string, summary: string) => ({ group: 'scripting', since, summary });
const EVAL_FLAGS = ['noscript', 'stale', 'movablekeys', 'skip_monitor', 'no_mandatory_keys'] as const;
const EVAL_RO_FLAGS = [...EVAL_FLAGS, 'readonly'] as const;

export const SCRIPTING_COMMANDS = [
  spec(
    'eval',
    -3,
    EVAL_FLAGS,
    NO_KEYS,
    doc('2.6.0', 'Executes a server-side Lua script.'),
    evalCommand(false, false),
  ),
  spec(
    'evalsha',
    -3,
    EVAL_FLAGS,
    NO_KEYS,
    doc('2.6.0', 'Executes a server-side Lua script by SHA1 digest.'),
    evalCommand(true, false),
  ),
  spec(
    'eval_ro',
    -3,
    EVAL_RO_FLAGS,
    NO_KEYS,
    doc('7.0.0', 'Executes a read-only server-side Lua script.'),
    evalCommand(false, true),
  ),
  spec(
    'evalsha_ro',
    -3,
    EVAL_RO_FLAGS,
    NO_KEYS,
    doc('7.0.0', 'Executes a read-only server-side Lua script by SHA1 digest.'),
    evalCommand(true, true),
  ),
  spec(
    'script',
    -2,
    ['noscript'],
    NO_KEYS,
    doc('2.6.0', 'A container for Lua scripts management commands.'),
    script,
  ),
];
