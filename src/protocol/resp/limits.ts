// Every limit and tuning constant of the RESP codec, in one place. Units are last in the names.
// Limits that belong to a connection or to the whole server (query buffer, output buffer, max
// clients) live in src/server/, not here: the codec only bounds what one frame may claim.
import { assert } from '../../stdx/assert.js';

// ---- Requests (client to server) -------------------------------------------------------------

/**
 * ARGS_MAX: the most arguments one command may have (`*N` with N above it is
 * `Protocol error: invalid multibulk length`). Redis used 1024*1024 until 6.x; the largest real
 * commands (MSET, DEL with many keys) fit easily, and it bounds the `Buffer[]` a header can
 * make us grow before any argument has arrived.
 */
export const ARGS_MAX = 1024 * 1024;

/**
 * BULK_BYTES_MAX: the longest bulk string in a request (`$N` above it is
 * `Protocol error: invalid bulk length`): 65 MiB, one MiB above the 64 MiB the storage layer
 * stores (its VALUE_BYTES_MAX), on purpose: a value a little too large must reach the command
 * handler, which answers with a normal error reply and keeps the connection, instead of being
 * cut off by the framing layer. Beyond that margin nothing useful can be sent, so we refuse to
 * buffer it. (Redis's proto-max-bulk-len is 512 MiB.) The codec knows no storage limit (it sits
 * below the storage layer's users, not on it): src/server/resp/limits.ts asserts that the two agree.
 */
export const BULK_BYTES_MAX = 65 * 1024 * 1024;

/**
 * INLINE_BYTES_MAX: the longest inline command line, without its line ending (Redis's
 * PROTO_INLINE_MAX_SIZE). Longer is `Protocol error: too big inline request`. Inline commands
 * are for humans with telnet; real clients send RESP arrays.
 */
export const INLINE_BYTES_MAX = 64 * 1024;

/**
 * UNAUTHENTICATED_ARGS_MAX, UNAUTHENTICATED_BULK_BYTES_MAX: the limits for a client that has not
 * authenticated on a server that requires it (Redis 6.2.6+, the fix for CVE-2021-32675): enough
 * for AUTH and HELLO ... AUTH, and nothing that would make the server buffer much for a client
 * it does not know. Above them: `Protocol error: unauthenticated multibulk length` (or `bulk
 * length`), and the connection is closed.
 */
export const UNAUTHENTICATED_ARGS_MAX = 10;
export const UNAUTHENTICATED_BULK_BYTES_MAX = 16 * 1024;

// ---- Replies (server to client) --------------------------------------------------------------

/**
 * NESTING_MAX: how deeply aggregates (arrays, maps, sets, pushes, attributes) may nest in a
 * reply. The deepest Redis reply (COMMAND DOCS) nests about 6 levels; a bound keeps a broken or
 * hostile server from growing the parser's stack without limit.
 */
export const NESTING_MAX = 64;

/**
 * REPLY_BULK_BYTES_MAX: the longest bulk string (or bulk error, or verbatim string) in a reply.
 * The client may also talk to a real Redis, so this is Redis's default proto-max-bulk-len
 * (512 MiB) rather than our own storage limit.
 */
export const REPLY_BULK_BYTES_MAX = 512 * 1024 * 1024;

/**
 * REPLY_AGGREGATE_LEN_MAX: the most elements (or map/attribute pairs) one reply aggregate may
 * announce, as hiredis's REDIS_READER_MAX_ARRAY_ELEMENTS; also the largest JS array length.
 * Nothing is preallocated from the announced count, so this only rejects absurd headers.
 */
export const REPLY_AGGREGATE_LEN_MAX = 2 ** 32 - 1;

/**
 * REPLY_LINE_BYTES_MAX: the longest line-typed reply (simple string, simple error, integer,
 * double, big number, lengths), without CRLF. Lines are buffered whole before they are parsed,
 * so they need their own bound; error messages with a Lua traceback are the longest in practice.
 */
export const REPLY_LINE_BYTES_MAX = 1024 * 1024;

// ---- Encoder tuning ---------------------------------------------------------------------------

/**
 * WRITER_SLAB_BYTES: the size of the slabs ReplyWriter encodes into, Redis's per-client reply
 * buffer (PROTO_REPLY_CHUNK_BYTES). One slab holds the replies of a typical pipeline
 * (redis-benchmark -P 16 of GET is ~ 16 * 10 bytes), so most turns of the event loop allocate
 * nothing; and it is small enough that 10k idle connections holding one cost 160 MiB at worst
 * (ReplyWriter.release() drops it).
 */
export const WRITER_SLAB_BYTES = 16 * 1024;

/**
 * WRITER_COPY_BYTES_MAX: bulk payloads longer than this are not copied into the slab but handed
 * to the socket by reference (one more chunk in the writev). A chunk costs the stream about a
 * microsecond, as much as copying several KiB, so small payloads are copied and large ones not.
 */
export const WRITER_COPY_BYTES_MAX = 8 * 1024;

/**
 * WRITER_SLAB_FREE_BYTES_MIN: after a flush, a slab with less free space than this is dropped
 * (the bytes already handed out stay valid; the GC frees the slab once the socket is done).
 */
export const WRITER_SLAB_FREE_BYTES_MIN = 1024;

assert(INLINE_BYTES_MAX < BULK_BYTES_MAX, 'inline commands are the small form');
assert(REPLY_BULK_BYTES_MAX >= BULK_BYTES_MAX, 'a client must read back any value it could write');
assert(REPLY_LINE_BYTES_MAX >= INLINE_BYTES_MAX, 'an error echoing an inline command must fit a reply line');
assert(WRITER_COPY_BYTES_MAX < WRITER_SLAB_BYTES, 'a copied payload must fit a fresh slab');
assert(WRITER_SLAB_FREE_BYTES_MIN < WRITER_SLAB_BYTES, 'a fresh slab must be kept after a flush');
