// Every limit of the RESP server (per connection and server-wide), in one place. The codec's
// frame limits (argument count, bulk length, inline length) are in src/protocol/resp/limits.ts.

import { BULK_BYTES_MAX, INLINE_BYTES_MAX } from '../../protocol/resp/index.js';
import { assert } from '../../stdx/assert.js';
import { BATCH_BYTES_MAX, BATCH_OPS_MAX, KEY_BYTES_MAX, VALUE_BYTES_MAX } from '../../storage/limits.js';
import { CLIENT_OUTPUT_BYTES_MAX } from '../output-budget.js';
import { SCRIPT_TIME_LIMIT_MS } from './lua/limits.js';
import { READ_BUFFER_BYTES } from './read-buffer.js';
import { TRACKING_TABLE_MAX_KEYS } from './tracking.js';

/** MAX_CLIENTS: connections beyond this get `-ERR max number of clients reached` (Redis's maxclients). */
export const MAX_CLIENTS = 10_000;

/**
 * QUERY_BUFFER_BYTES_MAX: the most bytes one incomplete command may occupy (Redis's
 * client-query-buffer-limit, 1 GiB there). The largest useful command is an MSET as big as the
 * largest batch the engine takes, so more than that can never succeed and is not buffered.
 */
export const QUERY_BUFFER_BYTES_MAX = BATCH_BYTES_MAX + 1024 * 1024;

/**
 * READ_AHEAD_BYTES_MAX: complete but not yet executed request bytes a connection may hold before
 * the server stops reading from its socket. Pipelining needs some read-ahead; unlimited
 * read-ahead would let one client park any amount of data in the server.
 */
export const READ_AHEAD_BYTES_MAX = 1024 * 1024;

/**
 * OUTPUT_BUFFER_BYTES_MAX: reply bytes waiting for a client (in the socket and in held replies)
 * above which the server stops reading that client's requests until the socket drains. A
 * client that never reads its replies therefore costs at most this plus one command's reply.
 */
export const OUTPUT_BUFFER_BYTES_MAX = 8 * 1024 * 1024;

/**
 * REPLY_BYTES_MAX: the most value and key bytes one command may gather into its reply (MGET,
 * KEYS, EXEC's replies together). A command past it answers an error instead, having built
 * nothing: the output limit above stops a client's next commands, not the one whose reply is
 * being built, and MGET of 150 keys of a 32 MiB value made the server hold 5 GB (found from
 * outside). Redis bounds its bulk arguments at 512 MiB (proto-max-bulk-len): the same here for
 * a reply.
 */
export const REPLY_BYTES_MAX = 512 * 1024 * 1024;

/**
 * INFLIGHT_COMMANDS_MAX: executed commands whose replies are held back waiting for durability,
 * per connection, before the server stops executing (and reading) more of its commands. Large
 * enough that a deep pipeline shares one group commit, small enough to bound the memory of a
 * pipeline of writes that all wait for fsync.
 */
export const INFLIGHT_COMMANDS_MAX = 4096;

/** SCAN_COUNT_DEFAULT: keys SCAN examines per call when COUNT is not given (as Redis). */
export const SCAN_COUNT_DEFAULT = 10;

/** SCAN_COUNT_MAX: COUNT above this is lowered to it, so one SCAN reply stays bounded. */
export const SCAN_COUNT_MAX = 100_000;

/**
 * SCAN_CURSORS_MAX: SCAN cursors remembered server-wide (each maps a number to the last key
 * returned). The oldest is forgotten first; using a forgotten cursor is `ERR invalid cursor`.
 */
export const SCAN_CURSORS_MAX = 10_000;

/** FLUSH_BATCH_KEYS: keys FLUSHDB deletes per atomic batch. */
export const FLUSH_BATCH_KEYS = 10_000;

/** CLOSE_GRACE_MS: how long close() lets connections finish in-flight commands before it cuts them. */
export const CLOSE_GRACE_MS = 10_000;

/** CLIENT_NAME_BYTES_MAX: the longest CLIENT SETNAME / HELLO SETNAME name. */
export const CLIENT_NAME_BYTES_MAX = 1024;

/** UNKNOWN_ARGS_ECHO_CHARS: how much of an unknown command's arguments the error repeats (Redis: 128). */
export const UNKNOWN_ARGS_ECHO_CHARS = 128;

/** MULTI_QUEUE_COMMANDS_MAX: commands one MULTI may queue; more abort the transaction (EXECABORT). */
export const MULTI_QUEUE_COMMANDS_MAX = 100_000;

/** MULTI_QUEUE_BYTES_MAX: argument bytes one MULTI may queue (the queue holds them until EXEC). */
export const MULTI_QUEUE_BYTES_MAX = 64 * 1024 * 1024;

/** WATCHED_KEYS_MAX: keys one connection may WATCH at a time (each is checked at EXEC). */
export const WATCHED_KEYS_MAX = 100_000;

/**
 * EXEC_ATTEMPTS_MAX: runs of one EXEC whose transaction keeps conflicting (a key it read changed
 * before its commit) before it gives up with a CONFLICT error. Clients cannot see the retries.
 */
export const EXEC_ATTEMPTS_MAX = 10;
/** EXEC_BACKOFF_MAX_MS: cap of the jittered backoff between EXEC retries (src/txn/retry.ts). */
export const EXEC_BACKOFF_MAX_MS = 50;

/**
 * TXN_IDLE_MS: how long a connection may sit idle holding an open TXN.BEGIN transaction or a
 * WATCH. Either pins old versions and the commit log in memory (docs/transactions.md), so an
 * abandoned one would grow the server without bound; after this long without a command the
 * transaction is rolled back (its later commands fail until TXN.ROLLBACK) and the watch is
 * dropped (its EXEC replies nil, as when a watched key changed). PostgreSQL's
 * idle_in_transaction_session_timeout plays the same part. 0 turns it off.
 */
export const TXN_IDLE_MS = 60_000;

/**
 * PUBSUB_OUTPUT_HARD_BYTES, PUBSUB_OUTPUT_SOFT_BYTES, PUBSUB_OUTPUT_SOFT_MS: the output-buffer
 * limits of a connection with subscriptions (Redis's `client-output-buffer-limit pubsub 32mb 8mb
 * 60`). Messages are pushed to a subscriber whether it reads or not, so, unlike replies, they
 * cannot be held back by pausing its requests: a subscriber whose unsent output passes the hard
 * limit, or stays above the soft limit for the soft period, is disconnected (as Redis does)
 * instead of growing the server's memory.
 */
export const PUBSUB_OUTPUT_HARD_BYTES = 32 * 1024 * 1024;
export const PUBSUB_OUTPUT_SOFT_BYTES = 8 * 1024 * 1024;
export const PUBSUB_OUTPUT_SOFT_MS = 60_000;

/** RespServerLimits: the limits a server instance uses (tests lower them). */
export interface RespServerLimits {
  readonly maxClients: number;
  readonly queryBufferBytes: number;
  readonly readAheadBytes: number;
  readonly outputBufferBytes: number;
  /**
   * clientOutputBytes: reply bytes held for all clients together before the largest holders are
   * evicted (src/server/output-budget.ts, CLIENT_OUTPUT_BYTES_MAX).
   */
  readonly clientOutputBytes: number;
  /** replyBytes: REPLY_BYTES_MAX. */
  readonly replyBytes: number;
  readonly inflightCommands: number;
  readonly closeGraceMs: number;
  readonly txnIdleMs: number;
  readonly pubsubOutputHardBytes: number;
  readonly pubsubOutputSoftBytes: number;
  readonly pubsubOutputSoftMs: number;
  /** scriptTimeMs: how long a Lua script may run (lua/limits.ts, SCRIPT_TIME_LIMIT_MS). */
  readonly scriptTimeMs: number;
  /** trackingTableMaxKeys: keys CLIENT TRACKING remembers (tracking.ts, TRACKING_TABLE_MAX_KEYS). */
  readonly trackingTableMaxKeys: number;
  /**
   * readBufferBytes: the size of the one buffer every connection's socket reads land in
   * (read-buffer.ts, READ_BUFFER_BYTES); 0 reads fresh 'data' chunks instead. Tests make it tiny
   * so that commands split across reads at every byte.
   */
  readonly readBufferBytes: number;
}

export const DEFAULT_LIMITS: RespServerLimits = Object.freeze({
  maxClients: MAX_CLIENTS,
  queryBufferBytes: QUERY_BUFFER_BYTES_MAX,
  readAheadBytes: READ_AHEAD_BYTES_MAX,
  outputBufferBytes: OUTPUT_BUFFER_BYTES_MAX,
  clientOutputBytes: CLIENT_OUTPUT_BYTES_MAX,
  replyBytes: REPLY_BYTES_MAX,
  inflightCommands: INFLIGHT_COMMANDS_MAX,
  closeGraceMs: CLOSE_GRACE_MS,
  txnIdleMs: TXN_IDLE_MS,
  pubsubOutputHardBytes: PUBSUB_OUTPUT_HARD_BYTES,
  pubsubOutputSoftBytes: PUBSUB_OUTPUT_SOFT_BYTES,
  pubsubOutputSoftMs: PUBSUB_OUTPUT_SOFT_MS,
  scriptTimeMs: SCRIPT_TIME_LIMIT_MS,
  trackingTableMaxKeys: TRACKING_TABLE_MAX_KEYS,
  readBufferBytes: READ_BUFFER_BYTES,
});

assert(BULK_BYTES_MAX >= VALUE_BYTES_MAX + KEY_BYTES_MAX, 'a maximal value and key must pass the framing');
assert(QUERY_BUFFER_BYTES_MAX >= BULK_BYTES_MAX, 'one maximal argument must fit the query buffer');
assert(READ_AHEAD_BYTES_MAX >= INLINE_BYTES_MAX, 'read-ahead must hold an inline command');
assert(PUBSUB_OUTPUT_SOFT_BYTES <= PUBSUB_OUTPUT_HARD_BYTES, 'the soft pub/sub limit is below the hard one');
assert(REPLY_BYTES_MAX >= VALUE_BYTES_MAX + KEY_BYTES_MAX, 'a reply holds at least one maximal value');
assert(FLUSH_BATCH_KEYS <= BATCH_OPS_MAX, 'a FLUSHDB batch must be a legal batch');
