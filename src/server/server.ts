// startServer wires one Cairn server process: the store, metrics, the RESP server and (when
// asked) the HTTP API; close() shuts it down gracefully: stop accepting, finish in-flight
// requests, flush and fsync (Db.close), release the directory lock.

import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { type Db, open } from '../db/db.js';
import { type Clock, systemClock } from '../io/clock.js';
import { CairnError } from '../storage/errors.js';
import type { ServerConfig } from './config.js';
import { createHttpApp } from './http/index.js';
import { createMetrics } from './metrics.js';
import { createRespServer } from './resp/index.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface RunningServer {
  readonly db: Db;
  readonly resp: Endpoint;
  readonly http: Endpoint | undefined;
  /** close shuts down gracefully; idempotent. */
  close(): Promise<void>;
  /** closed resolves once the server has shut down (after close(), SHUTDOWN, or a fatal error). */
  readonly closed: Promise<void>;
}

/** ServerStartError: the server could not start (bad address, port in use, ...). */
export class ServerStartError extends Error {
  override name = 'ServerStartError';
}

export function parseEndpoint(text: string): Endpoint {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m === null ? Number.NaN : Number(m[3]);
  if (m === null || port > 65535) throw new ServerStartError(`invalid address '${text}': expected HOST:PORT`);
  return { host: (m[1] ?? m[2]) as string, port };
}

export async function startServer(
  config: ServerConfig,
  logger: Logger,
  version: string,
  /** clock: the store's and the RESP server's time source (tests substitute their own). */
  clock: Clock = systemClock,
): Promise<RunningServer> {
  const respAt = parseEndpoint(config.addr);
  const httpAt = config.http === undefined ? undefined : parseEndpoint(config.http);
  const db = await open(config.dir, {
    ...(config.engine === undefined ? {} : { engine: config.engine }),
    durability: config.sync,
    cacheBytes: config.cacheBytes,
    clock,
    onEvent: (event) => {
      if (event.type === 'recovered') {
        const problems = (event.detail.problems as unknown[] | undefined)?.length ?? 0;
        (problems > 0 ? logger.warn.bind(logger) : logger.info.bind(logger))(
          { recovery: event.detail },
          'recovered',
        );
      } else if (event.type === 'compaction-failed' || event.type === 'write-failed') {
        logger.error({ event: event.detail }, event.type);
      } else {
        logger.debug({ event: event.detail }, event.type);
      }
    },
  });
  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  const metrics = createMetrics(db);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      logger.info('shutting down');
      try {
        await resp.close();
        await app?.close();
      } finally {
        await db.close();
        logger.info('stopped');
        resolveClosed();
      }
    })();
    return closing;
  };
  const resp = createRespServer({
    db,
    metrics,
    logger: logger.child({ component: 'resp' }),
    requirePass: config.requirepass,
    maxClients: config.maxclients,
    limits: { txnIdleMs: config.txnIdleMs },
    version,
    clock,
    onShutdown: () => {
      void close();
    },
  });
  let app: ReturnType<typeof createHttpApp> | undefined;
  try {
    await resp.listen(respAt.host, respAt.port);
    if (httpAt !== undefined) {
      app = createHttpApp({ db, metrics, version, logger: logger.child({ component: 'http' }) });
      await app.listen({ host: httpAt.host, port: httpAt.port });
    }
  } catch (err) {
    await resp.close().catch(() => {});
    await app?.close().catch(() => {});
    await db.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new ServerStartError(`address already in use: ${describe(err)}`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') {
      throw new ServerStartError(`cannot listen: ${describe(err)}`);
    }
    if (err instanceof CairnError) throw err;
    throw new ServerStartError(`cannot start: ${describe(err)}`);
  }
  const respAddress = resp.address();
  const httpAddress = app?.server.address() as AddressInfo | null | undefined;
  return {
    db,
    resp: { host: respAddress.host, port: respAddress.port },
    http: httpAddress ? { host: httpAddress.address, port: httpAddress.port } : undefined,
    close,
    closed,
  };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
