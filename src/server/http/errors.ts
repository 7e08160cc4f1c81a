// The HTTP API's error model: every error is JSON `{ error: { code, message } }` with a stable
// `code`. Store errors keep their CairnError code; fastify's own errors (bad JSON, body too
// large, failed schema validation, unknown route) are mapped onto the same small vocabulary.
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyReply } from 'fastify';
import { CairnError, type ErrorCode } from '../../storage/errors.js';

/** HttpErrorCode: every `code` the API answers with. Clients may switch on these; they do not change. */
export type HttpErrorCode =
  | ErrorCode
  | 'NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'REQUEST_TIMEOUT'
  | 'UNAUTHORIZED'
  | 'INTERNAL';

export const HTTP_ERROR_CODES: readonly HttpErrorCode[] = [
  'KEY_NOT_FOUND',
  'INVALID_ARGUMENT',
  'LIMIT',
  'NOT_FOUND',
  'UNSUPPORTED_MEDIA_TYPE',
  'REQUEST_TIMEOUT',
  'UNAUTHORIZED',
  'CLOSED',
  'STORE_FAILED',
  'LOCKED',
  'INCOMPATIBLE',
  'CORRUPTION',
  'IO',
  'TXN_CONFLICT',
  'TXN_FINISHED',
  'SNAPSHOT_TOO_OLD',
  'READ_ONLY',
  'CLUSTER_DOWN',
  'UNCERTAIN',
  'WRONG_TYPE',
  'INTERNAL',
];

/** STATUS_BY_CODE: the HTTP status of each code. */
export const STATUS_BY_CODE: Readonly<Record<HttpErrorCode, number>> = {
  KEY_NOT_FOUND: 404,
  NOT_FOUND: 404,
  INVALID_ARGUMENT: 400,
  LIMIT: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  // The request was not received in full in time (REQUEST_TIMEOUT_MS); the connection is closed.
  REQUEST_TIMEOUT: 408,
  // --requirepass is set and the request did not carry that password (auth.ts).
  UNAUTHORIZED: 401,
  // The store is not serving writes (closed, or failed until reopened): retry elsewhere or later.
  CLOSED: 503,
  STORE_FAILED: 503,
  LOCKED: 503,
  INCOMPATIBLE: 500,
  CORRUPTION: 500,
  IO: 500,
  // A transaction conflict is retryable: the client runs the transaction again.
  TXN_CONFLICT: 409,
  TXN_FINISHED: 400,
  SNAPSHOT_TOO_OLD: 410,
  // The store refuses writes (opened read-only): the request cannot succeed as sent.
  READ_ONLY: 405,
  // No leader or no quorum: the request did not take effect; retry (Retry-After semantics).
  CLUSTER_DOWN: 503,
  // The outcome of a proposed write is unknown (leader change, timeout): 504, as a gateway timeout.
  UNCERTAIN: 504,
  // The key holds a hash (written over RESP): the string routes cannot serve it as a string.
  WRONG_TYPE: 409,
  INTERNAL: 500,
};

/** HttpError: an error raised by the HTTP layer itself (bad parameters, bad encodings). */
export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function invalidArgument(message: string): HttpError {
  return new HttpError('INVALID_ARGUMENT', message);
}

export interface ErrorBody {
  readonly error: { readonly code: HttpErrorCode; readonly message: string };
}

export interface MappedError {
  readonly status: number;
  readonly body: ErrorBody;
}

/** Fastify's error codes that mean "the request is malformed". */
const FASTIFY_BAD_REQUEST = new Set([
  'FST_ERR_CTP_INVALID_JSON_BODY',
  'FST_ERR_CTP_EMPTY_JSON_BODY',
  'FST_ERR_CTP_INVALID_CONTENT_LENGTH',
  'FST_ERR_VALIDATION',
  'FST_ERR_BAD_URL',
  'FST_ERR_ASYNC_CONSTRAINT',
]);

interface FastifyishError {
  readonly code?: unknown;
  readonly statusCode?: unknown;
  readonly validation?: unknown;
  readonly message?: unknown;
}

/** mapError turns anything thrown while serving a request into a status and an error body. */
export function mapError(err: unknown): MappedError {
  const make = (code: HttpErrorCode, message: string): MappedError => ({
    status: STATUS_BY_CODE[code],
    body: { error: { code, message } },
  });
  if (err instanceof HttpError || err instanceof CairnError) return make(err.code, err.message);
  if (typeof err !== 'object' || err === null) return make('INTERNAL', 'internal error');
  const e = err as FastifyishError;
  const message = typeof e.message === 'string' ? e.message : 'internal error';
  const code = typeof e.code === 'string' ? e.code : '';
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return make('LIMIT', message);
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return make('UNSUPPORTED_MEDIA_TYPE', message);
  if (FASTIFY_BAD_REQUEST.has(code) || e.validation !== undefined) return make('INVALID_ARGUMENT', message);
  // JSON.parse errors and other 4xx that fastify tags with a status but no code we know.
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status === 413) return make('LIMIT', message);
  if (status === 404) return make('NOT_FOUND', message);
  if (status >= 400 && status < 500) return make('INVALID_ARGUMENT', message);
  // Do not leak internals of unexpected failures; the log has the details.
  return make('INTERNAL', 'internal error');
}

/** sendError replies with the mapped error. */
export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body } = mapError(err);
  return reply.code(status).type('application/json; charset=utf-8').send(body);
}

/**
 * answerClientError answers an error of Node's HTTP parser (a malformed request line, bad
 * Content-Length or chunked framing, headers past the size limit) with the same JSON error body
 * as every other error, then closes the connection: fastify's default answers in a shape of its
 * own. (fastify's `clientErrorHandler`.)
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // A response already under way (a request cut off mid-body after its answer started) cannot
  // be followed by another status line: the connection just ends.
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable || answering?.headersSent === true) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const status = tooLarge ? 431 : timedOut ? 408 : 400;
  const code: HttpErrorCode = tooLarge ? 'LIMIT' : timedOut ? 'REQUEST_TIMEOUT' : 'INVALID_ARGUMENT';
  const message = tooLarge
    ? 'request headers too large'
    : timedOut
      ? 'the request was not received in full in time (REQUEST_TIMEOUT_MS)'
      : `malformed HTTP request (${err.code ?? err.message})`;
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
