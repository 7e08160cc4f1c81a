// What `cairn serve` and `kvs-server` share: start the server, log where it listens, and shut
// down gracefully on SIGTERM/SIGINT (stop accepting, finish in-flight requests, fsync, unlock).
import { systemClock } from '../io/clock.js';
import { failpointFileSystem } from '../io/failpoints.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import type { ServerConfig } from '../server/config.js';
import { createLogger } from '../server/logger.js';
import { type RunningServer, startServer } from '../server/server.js';
import { packageVersion } from './version.js';

export async function runServer(
  name: string,
  config: ServerConfig,
  onListening?: (server: RunningServer) => void,
): Promise<void> {
  const logger = createLogger({ level: config.logLevel, name });
  const version = packageVersion();
  // CAIRN_FAILPOINTS: disk faults for the robustness tests (src/io/failpoints.ts); unset in use.
  const fs = failpointFileSystem(process.env.CAIRN_FAILPOINTS, nodeFileSystem);
  if (fs !== nodeFileSystem) logger.warn({ failpoints: process.env.CAIRN_FAILPOINTS }, 'failpoints armed');
  const server = await startServer(config, logger, version, systemClock, fs);
  logger.info(
    {
      version,
      // kvs-server speaks the course's vocabulary, where our own engine is called 'kvs'.
      engine: name === 'kvs-server' && server.db.engineName === 'cask' ? 'kvs' : server.db.engineName,
      addr: `${server.resp.host}:${server.resp.port}`,
      http: server.http === undefined ? undefined : `${server.http.host}:${server.http.port}`,
      dir: server.db.dir,
      sync: server.cluster === undefined ? config.sync : 'raft (a quorum fsyncs the log)',
      member: server.cluster?.identity.name,
      // startupMs: from process start to listening (the course asks for under a second).
      startupMs: Math.round(process.uptime() * 1000),
    },
    `${name} ${version} listening on ${server.resp.host}:${server.resp.port}`,
  );
  onListening?.(server);
  const stop = (signal: string) => {
    logger.info({ signal }, 'signal received');
    void server.close();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  await server.closed;
  process.off('SIGTERM', stop);
  process.off('SIGINT', stop);
  const failure = server.failure();
  if (failure !== undefined) {
    // A cluster member whose log or engine failed stops; a restart recovers and catches up.
    throw failure instanceof Error ? failure : new Error(String(failure));
  }
}
