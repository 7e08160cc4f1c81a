// Every limit of the HTTP API, in one place. Units are last in the names. The storage limits
// (src/storage/limits.ts) still apply underneath and answer 413 LIMIT.
import { assert } from '../../stdx/assert.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX } from '../../storage/limits.js';
import { CLOSE_GRACE_MS, MAX_CLIENTS } from '../resp/limits.js';

/** base64Chars: the length of the padded base64 text for `bytes` bytes. */
function base64Chars(bytes: number): number {
  return 4 * Math.ceil(bytes / 3);
}

/**
 * BODY_OVERHEAD_BYTES: room beside the largest value in one request body: a JSON envelope, a
 * batch's keys and small values (a batch of many small operations is the common case).
 */
export const BODY_OVERHEAD_BYTES = 1024 * 1024;

/**
 * BODY_BYTES_MAX_DEFAULT: the default request body limit. The largest value must fit even when
 * sent base64 in JSON (`PUT ?base64`, `POST /v1/batch`); a raw body between the value limit and
 * this is read and then refused by the store with the same 413 LIMIT.
 */
export const BODY_BYTES_MAX_DEFAULT = base64Chars(VALUE_BYTES_MAX) + BODY_OVERHEAD_BYTES;

/**
 * KEY_PATH_CHARS_MAX: the longest key path segment the router accepts. The largest key
 * percent-encoded takes three characters per byte (base64url takes fewer).
 */
export const KEY_PATH_CHARS_MAX = 3 * KEY_BYTES_MAX;

/**
 * HEADER_BYTES_MAX: Node's limit on the request line plus headers (its default is 16 KiB), raised
 * so that a maximal key fits in the path. Applies once the app listens.
 */
export const HEADER_BYTES_MAX = KEY_PATH_CHARS_MAX + 16 * 1024;

/** LIST_LIMIT_DEFAULT: items per listing page when `limit` is not given. */
export const LIST_LIMIT_DEFAULT = 100;
/** LIST_LIMIT_MAX: the largest `limit` a listing accepts. */
export const LIST_LIMIT_MAX = 1000;

/**
 * LIST_PAGE_BYTES_MAX: a listing page stops early (with a `next` cursor) once its keys and values
 * reach this many bytes, so 1000 large values do not become one enormous response (nor, with
 * `values=false`, one enormous read). A page always holds at least one item.
 */
export const LIST_PAGE_BYTES_MAX = 8 * 1024 * 1024;

/**
 * TXN_OPS_MAX: operations (and comparisons) per list in one POST /v1/txn. The transaction's
 * writes are one batch, so the storage batch limit applies as well (413 LIMIT).
 */
export const TXN_OPS_MAX = 10_000;

/**
 * TXN_ANSWER_BYTES_MAX: the most key and value bytes one POST /v1/txn may read for its answer,
 * every get and scan together (a scan's entry that its page cap leaves out counts too: it was
 * read). Past it the request is 413 LIMIT and nothing is written. Each scan has its page cap,
 * but 10 000 of them (or 10 000 gets of one 64 MiB value) made one request hold gigabytes and
 * kill the server (found from outside). One maximal value still fits, and the JSON of this many
 * bytes stays below V8's string limit (512 MiB) even with every byte escaped as `\u00XX` (6x).
 */
export const TXN_ANSWER_BYTES_MAX = 80 * 1024 * 1024;

/**
 * REQUEST_TIMEOUT_MS: how long a client has to send one whole request (headers and body). Without
 * it a body that never completes (an endless chunked body, one short of its Content-Length) holds
 * its connection and up to the body limit of memory for ever. Five minutes still lets a maximal
 * upload (BODY_BYTES_MAX_DEFAULT, about 86 MiB) through a link of about 2.5 Mbit/s. Answered with
 * 408 REQUEST_TIMEOUT, and the connection is closed.
 */
export const REQUEST_TIMEOUT_MS = 5 * 60 * 1000;

/**
 * HEADERS_TIMEOUT_MS: how long a client has to send a request's headers (Node's default), or the
 * request timeout if that is shorter: Node does not enforce a request timeout shorter than the
 * headers timeout.
 */
export const HEADERS_TIMEOUT_MS = 60_000;

/**
 * REQUEST_TIMEOUT_CHECK_MS_MAX: how often, at most, Node looks for requests past their timeouts, so
 * a request is cut at most this much after HEADERS_TIMEOUT_MS or REQUEST_TIMEOUT_MS. Node's own
 * default (30 s) cut a client trickling headers at about 90 s against the documented 60 s (found
 * from outside); a check walks the open connections, which every 5 s costs nothing measurable.
 * A shorter request timeout (tests) is checked proportionally more often.
 */
export const REQUEST_TIMEOUT_CHECK_MS_MAX = 5_000;

/**
 * HTTP_CONNECTIONS_MAX: open HTTP connections beyond this are closed on arrival (and counted in
 * cairn_rejected_connections_total). Each one can hold a request body in memory, so their number
 * is bounded as RESP's clients are; the same number as RESP's MAX_CLIENTS.
 */
export const HTTP_CONNECTIONS_MAX = MAX_CLIENTS;

/**
 * HTTP_CLOSE_GRACE_MS: how long closing the app lets in-flight requests finish before it cuts
 * the connections left: a client that never finishes its request must not hold a graceful
 * shutdown for ever. The same grace as RESP's CLOSE_GRACE_MS.
 */
export const HTTP_CLOSE_GRACE_MS = CLOSE_GRACE_MS;

assert(TXN_ANSWER_BYTES_MAX >= VALUE_BYTES_MAX + KEY_BYTES_MAX, 'a transaction answer holds a maximal value');
assert(6 * TXN_ANSWER_BYTES_MAX < 512 * 1024 * 1024, 'a transaction answer fits one JSON string');
