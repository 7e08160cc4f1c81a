// createHttpApp: the HTTP API as a fastify instance, ready for `app.listen` (done by the server
// wiring) or `app.inject` (tests). It owns no store: the caller opens and closes `db`.

import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Db } from '../../db/db.js';
import type { ClusterMember } from '../../replica/member.js';
import { KEY_BYTES_MAX } from '../../storage/limits.js';
import { type Metrics, UNKNOWN_COMMAND } from '../metrics.js';
import { CLIENT_OUTPUT_BYTES_MAX, OutputBudget } from '../output-budget.js';
import { requirePassword } from './auth.js';
import { clusterHooks, rewriteConsistency } from './cluster.js';
import { answerClientError, HttpError, invalidArgument, mapError, sendError } from './errors.js';
import {
  BODY_BYTES_MAX_DEFAULT,
  HEADER_BYTES_MAX,
  HEADERS_TIMEOUT_MS,
  HTTP_CLOSE_GRACE_MS,
  HTTP_CONNECTIONS_MAX,
  KEY_PATH_CHARS_MAX,
  REQUEST_TIMEOUT_CHECK_MS_MAX,
  REQUEST_TIMEOUT_MS,
} from './limits.js';
import { openApiRoutes } from './openapi.js';
import { commandOf } from './route-config.js';
import { batchRoutes } from './routes-batch.js';
import { checkRoutes } from './routes-check.js';
import { healthRoutes } from './routes-health.js';
import { kvRoutes } from './routes-kv.js';
import { listRoutes } from './routes-list.js';
import { memberRoutes } from './routes-members.js';
import { metricsRoutes } from './routes-metrics.js';
import { snapshotRoutes } from './routes-snapshot.js';
import { txnRoutes } from './routes-txn.js';
import { NO_QUERY_SCHEMA } from './schemas.js';

export interface HttpAppOptions {
  readonly db: Db;
  readonly metrics: Metrics;
  /** version: the server's version, shown in /openapi.json. */
  readonly version: string;
  /** logger: a pino logger (fastify logs route errors through it). Default: silent. */
  readonly logger?: FastifyBaseLogger;
  /** bodyLimitBytes: the largest request body. Default BODY_BYTES_MAX_DEFAULT. */
  readonly bodyLimitBytes?: number;
  /** cluster: the member this server fronts (routes data requests to the leader); undefined for a single server. */
  readonly cluster?: ClusterMember | undefined;
  /** password: --requirepass; every route but /healthz and /openapi.json then asks for it (auth.ts). */
  readonly password?: string | undefined;
  /** requestTimeoutMs: time to receive one whole request, else 408. Default REQUEST_TIMEOUT_MS. */
  readonly requestTimeoutMs?: number;
  /** maxConnections: open connections beyond this are closed on arrival. Default HTTP_CONNECTIONS_MAX. */
  readonly maxConnections?: number;
  /** closeGraceMs: how long close() waits for in-flight requests before it cuts the connections. Default HTTP_CLOSE_GRACE_MS. */
  readonly closeGraceMs?: number;
  /**
   * clientOutputBytes: response bytes held for all connections together before the largest
   * holders are closed (src/server/output-budget.ts). Default CLIENT_OUTPUT_BYTES_MAX.
   */
  readonly clientOutputBytes?: number;
}

/** ERROR_URL_CHARS_MAX: how much of a request URL an error message quotes (keys can be 64 KiB). */
const ERROR_URL_CHARS_MAX = 200;

const JSON_TYPE = 'application/json; charset=utf-8';

/** SchemaError: what schemaMessage reads of a validation error (ajv's ErrorObject). */
interface SchemaError {
  readonly keyword: string;
  readonly instancePath: string;
  readonly message?: string | undefined;
  readonly params?:
    | {
        readonly allowedValues?: readonly unknown[];
        readonly additionalProperty?: unknown;
        readonly pattern?: unknown;
      }
    | Record<string, unknown>;
}

/**
 * schemaMessage words a failed body or query validation in the caller's terms: a field that its
 * operation does not take (a `false` schema in schemas.ts) is named, and the conditional that
 * led there ("must match then schema") is left out when something more specific was said.
 */
export function schemaMessage(errors: readonly SchemaError[], dataVar: string): string {
  const specific = errors.filter((e) => e.keyword !== 'if');
  const shown = specific.length > 0 ? specific : errors;
  return shown
    .map((e) => {
      const at = `${dataVar}${e.instancePath}`;
      // A comparison has a target, not an op (`{"target":"exists","op":"="}`).
      if (e.keyword === 'false schema')
        return `${at} is not allowed with this ${/^\/compare\/\d+\//.test(e.instancePath) ? 'target' : 'op'}`;
      // A query value is a string, or an array when the parameter is repeated (`?limit=1&limit=2`).
      if (dataVar === 'querystring' && e.keyword === 'type')
        return `query parameter ${JSON.stringify(e.instancePath.slice(1))} is given more than once`;
      const unknown = e.keyword === 'additionalProperties' ? e.params?.additionalProperty : undefined;
      if (typeof unknown === 'string')
        return dataVar === 'querystring'
          ? `unknown query parameter ${JSON.stringify(unknown)} (querystring must NOT have additional properties)`
          : `${at} must NOT have additional properties: unknown field ${JSON.stringify(unknown)}`;
      // The digit patterns of ttlMs and limit (schemas.ts) are for the validator, not for people.
      const pattern = e.keyword === 'pattern' ? e.params?.pattern : undefined;
      if (typeof pattern === 'string' && pattern.startsWith('^[1-9][0-9]{0,'))
        return `${at} must be a positive integer (decimal digits, no sign, no leading zero)`;
      const allowed = e.keyword === 'enum' ? e.params?.allowedValues : undefined;
      if (Array.isArray(allowed))
        return `${at} must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}`;
      return `${at} ${e.message ?? 'is invalid'}`;
    })
    .join(', ');
}

/** quoteUrl: a URL as an error message quotes it, cut to ERROR_URL_CHARS_MAX characters. */
function quoteUrl(url: string): string {
  return url.length > ERROR_URL_CHARS_MAX ? `${url.slice(0, ERROR_URL_CHARS_MAX)}...` : url;
}

/**
 * frameworkError words the router's own refusals, which quote the whole URL (a key path can be
 * 196 KB): a path segment over the router's limit is a key over the key limit, 413 LIMIT as the
 * store answers a long key that fits the router; a bad escape is 400.
 */
function frameworkError(err: Error, url: string): unknown {
  const code = (err as { code?: unknown }).code;
  if (code === 'FST_ERR_MAX_PARAM_LENGTH')
    return new HttpError(
      'LIMIT',
      `a path segment over ${KEY_PATH_CHARS_MAX} characters (KEY_PATH_CHARS_MAX; keys are at most ${KEY_BYTES_MAX} bytes): ${quoteUrl(url)}`,
    );
  if (code === 'FST_ERR_BAD_URL')
    return invalidArgument(
      `'${quoteUrl(url)}' is not a valid url component (its percent-encoding is not UTF-8; use ?base64 for such keys)`,
    );
  return err;
}

/** validQueryEncoding: every `%XX` escape of a query string is well formed and the bytes are UTF-8. */
export function validQueryEncoding(query: string): boolean {
  if (!query.includes('%')) return true;
  for (const part of query.split(/[&=]/)) {
    try {
      decodeURIComponent(part.replaceAll('+', ' '));
    } catch {
      return false;
    }
  }
  return true;
}

export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const { db, metrics } = options;
  const requestTimeoutMs = options.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
  const app: FastifyInstance = fastify({
    ...(options.logger === undefined ? { logger: false } : { loggerInstance: options.logger }),
    // Per-request info lines would dwarf a key-value workload's logs; errors are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.bodyLimitBytes ?? BODY_BYTES_MAX_DEFAULT,
    routerOptions: { maxParamLength: KEY_PATH_CHARS_MAX },
    // Refuse unknown body fields instead of silently dropping them: a misspelt `base64` flag
    // would otherwise store base64 text as the key. And no type coercion: `"value": null` or
    // `"key": 123` is a client bug to answer with 400, not a value to store as "" or "123"
    // (query strings are strings, and the schemas say so).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    schemaErrorFormatter: (errors, dataVar) => new Error(schemaMessage(errors, dataVar)),
    // Errors from Node's HTTP parser (bad framing, oversized headers) in our error shape too.
    clientErrorHandler: answerClientError,
    // A request must arrive whole in time (answered 408 by answerClientError), checked often
    // enough for the timeout to mean what it says.
    requestTimeout: requestTimeoutMs,
    http: {
      maxHeaderSize: HEADER_BYTES_MAX,
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs),
      connectionsCheckingInterval: Math.min(
        REQUEST_TIMEOUT_CHECK_MS_MAX,
        Math.max(1, Math.floor(requestTimeoutMs / 4)),
      ),
    },
    // `?consistency=` is the cluster's, not a route's: taken off before the strict query schemas.
    rewriteUrl: rewriteConsistency,
    // Malformed URLs (e.g. percent-encoding that is not UTF-8) get our error body, not fastify's.
    frameworkErrors: (err, request, reply) => {
      // These requests never reach the hooks, so onResponse below does not count them: counted
      // here, under `unknown` like every request that matches no route (docs/http.md).
      const started = performance.now();
      reply.raw.once('finish', () => {
        metrics.observe(UNKNOWN_COMMAND, 'http', (performance.now() - started) / 1000, false);
      });
      void sendError(reply as FastifyReply, frameworkError(err, request.raw.url ?? ''));
    },
  });

  // Our own JSON parser: a syntax error says where it is, and a `__proto__` key is parsed as the
  // plain property JSON.parse makes of it (never touching a prototype) and then refused by the
  // closed schemas like any unknown field, instead of "Body is not valid JSON".
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(invalidArgument('the body is empty; send a JSON object'), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(invalidArgument(`the body is not valid JSON: ${(err as Error).message}`), undefined);
    }
  });

  // Requests answered "no such key": counted as successful commands, like a Redis GET of nothing.
  const absent = new WeakSet<FastifyRequest>();

  app.setErrorHandler((err, request, reply) => {
    const { status, body } = mapError(err);
    if (status >= 500) request.log.error({ err }, 'request failed');
    if (body.error.code === 'KEY_NOT_FOUND') absent.add(request);
    return reply.code(status).type(JSON_TYPE).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, new HttpError('NOT_FOUND', `no route ${request.method} ${quoteUrl(request.url)}`)),
  );

  // One connection's requests run one after another. Node's server hands every pipelined request
  // of a connection to us at once (and only orders the responses), so a GET pipelined behind a
  // PUT read the value from before the PUT, which then answered 204 first. RFC 9112 §9.3.2 allows
  // processing pipelined requests in parallel only when all of them are safe. Each request waits
  // for the previous response of its socket to be finished (or the connection closed); the common
  // case, a request after the previous answer went out, costs one map lookup.
  const answering = new WeakMap<object, ServerResponse>();
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket;
    const previous = answering.get(socket);
    answering.set(socket, reply.raw);
    if (previous === undefined || previous.writableFinished || previous.destroyed) {
      done();
      return;
    }
    let waiting = true;
    const proceed = (): void => {
      if (!waiting) return;
      waiting = false;
      previous.off('finish', proceed);
      previous.off('close', proceed);
      done();
    };
    previous.once('finish', proceed);
    previous.once('close', proceed);
  });

  // A query string's percent-encoding must be valid UTF-8, as a path's must (frameworkErrors
  // above): the query parser keeps a bad escape as literal text, so `?prefix=%ff` listed the
  // keys starting with the three characters "%ff" instead of being refused.
  // The URL as sent: rewriteConsistency rebuilds a URL carrying `consistency`, which re-encodes
  // a bad escape into a good one (`%zz` into `%25zz`).
  app.addHook('onRequest', async (request, reply) => {
    const url = request.originalUrl;
    const at = url.indexOf('?');
    if (at >= 0 && !validQueryEncoding(url.slice(at + 1))) {
      await sendError(
        reply,
        invalidArgument('the query string is not valid percent-encoded UTF-8 (a bad escape like %ff or %zz)'),
      );
    }
  });

  if (options.password !== undefined) requirePassword(app, options.password);

  app.addHook('onResponse', (request, reply, done) => {
    const ok = reply.statusCode < 400 || absent.has(request);
    metrics.observe(commandOf(request), 'http', reply.elapsedTime / 1000, ok);
    done();
  });

  // Responses a client has not read stay in its socket's buffer: the connections together may
  // hold at most the output budget, past which the largest holders are closed (a client that
  // asks for large values and never reads cannot make the server hold gigabytes).
  const clientOutputBytes = options.clientOutputBytes ?? CLIENT_OUTPUT_BYTES_MAX;
  const outputBudget = new OutputBudget<SocketHolder>(clientOutputBytes, (holder, bytes) => {
    metrics.clientEvicted('http');
    app.log.warn(
      {
        addr: `${holder.socket.remoteAddress ?? '?'}:${holder.socket.remotePort ?? 0}`,
        outputBytes: bytes,
        budgetBytes: clientOutputBytes,
      },
      'closing the HTTP connection holding the most unread response bytes: the connections together hold more than the output budget',
    );
  });
  app.addHook('onClose', (_app, done) => {
    outputBudget.close();
    done();
  });

  // Count HTTP connections (the server exists before listen; inject() opens none).
  app.server.on('connection', (socket) => {
    metrics.clientConnected('http');
    const holder = new SocketHolder(socket);
    outputBudget.add(holder);
    socket.once('close', () => {
      metrics.clientDisconnected('http');
      outputBudget.delete(holder);
    });
  });
  // Each connection can hold a request body in memory: their number is bounded, as RESP's are.
  app.server.maxConnections = options.maxConnections ?? HTTP_CONNECTIONS_MAX;
  app.server.on('drop', () => metrics.connectionRejected());

  // A graceful close waits for in-flight requests, but not for ever: a client that never finishes
  // its request (or never reads its answer) would hold the shutdown. After the grace, the
  // connections left are cut. (fastify closes the idle ones itself, at once.)
  const closeGraceMs = options.closeGraceMs ?? HTTP_CLOSE_GRACE_MS;
  app.addHook('preClose', (done) => {
    const server = app.server;
    if (server.listening) {
      const cut = setTimeout(() => server.closeAllConnections(), closeGraceMs);
      cut.unref();
      server.once('close', () => clearTimeout(cut));
    }
    done();
  });

  // Query strings are closed on every route, as docs/http.md promises: a route that declares no
  // query schema takes no parameter, and one given anyway is refused by name.
  app.addHook('onRoute', (route) => {
    if (route.schema?.querystring === undefined)
      route.schema = { ...route.schema, querystring: NO_QUERY_SCHEMA };
  });

  clusterHooks(app, options.cluster, options.password);
  void app.register(kvRoutes(db));
  void app.register(listRoutes(db));
  void app.register(batchRoutes(db));
  void app.register(txnRoutes(db));
  void app.register(snapshotRoutes(db, options.cluster));
  void app.register(healthRoutes(db, options.cluster));
  void app.register(memberRoutes(db, options.cluster, options.version));
  void app.register(checkRoutes(options.cluster));
  void app.register(metricsRoutes(metrics));
  void app.register(openApiRoutes(options.version));
  return app;
}

/** SocketHolder: an HTTP connection as the output budget sees it (its socket's unsent bytes). */
class SocketHolder {
  constructor(readonly socket: Socket) {}

  get outputBytes(): number {
    return this.socket.writableLength;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
