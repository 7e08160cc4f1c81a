// cairn serve: a Cairn server on one machine: RESP (redis-cli and every Redis client), the
// HTTP/JSON API with Prometheus metrics, over an embedded data directory.
import type { Command } from 'commander';
import { MemberStartRefusedError, RemovedMemberStoppedError } from '../../replica/errors.js';
import {
  MAX_CLIENTS_DEFAULT,
  type RawSettings,
  resolveConfig,
  SERVER_CACHE_BYTES_DEFAULT,
  type ServerConfig,
} from '../../server/config.js';
import { TXN_IDLE_MS } from '../../server/resp/limits.js';
import { type Cli, describeError, EXIT_MEMBER_STARTED_BEFORE } from '../program.js';

export const SERVE_DEFAULTS: ServerConfig = {
  dir: 'data',
  addr: '127.0.0.1:6379',
  http: '127.0.0.1:8379',
  engine: undefined,
  sync: 'always',
  requirepass: undefined,
  maxclients: MAX_CLIENTS_DEFAULT,
  logLevel: 'info',
  cacheBytes: SERVER_CACHE_BYTES_DEFAULT,
  txnIdleMs: TXN_IDLE_MS,
};

export function registerServe(program: Command, cli: Cli): void {
  program
    .command('serve')
    .description('Run a server (RESP and HTTP) over a data directory')
    .option('--dir <DIR>', `data directory (env CAIRN_DIR; default ${SERVE_DEFAULTS.dir})`)
    .option('--addr <HOST:PORT>', `RESP address (env CAIRN_ADDR; default ${SERVE_DEFAULTS.addr})`)
    .option('--http <HOST:PORT>', `HTTP address, or "off" (env CAIRN_HTTP; default ${SERVE_DEFAULTS.http})`)
    .option(
      '--engine <kvs|cask|lmdb>',
      'storage engine (env CAIRN_ENGINE; default: the recorded one, else kvs)',
    )
    .option('--sync <always|interval|never>', 'durability (env CAIRN_SYNC; default always)')
    .option('--requirepass <PASSWORD>', 'require AUTH (env CAIRN_REQUIREPASS)')
    .option(
      '--maxclients <N>',
      `most concurrent RESP clients (env CAIRN_MAXCLIENTS; default ${MAX_CLIENTS_DEFAULT})`,
    )
    .option(
      '--log-level <LEVEL>',
      'fatal|error|warn|info|debug|trace|silent (env CAIRN_LOG_LEVEL; default info)',
    )
    .option(
      '--cache-bytes <N>',
      `value cache size, 0 for none (env CAIRN_CACHE_BYTES; default ${SERVER_CACHE_BYTES_DEFAULT})`,
    )
    .option(
      '--txn-idle-ms <MS>',
      `roll back a TXN.BEGIN transaction or drop a WATCH idle this long, 0 never (env CAIRN_TXN_IDLE_MS; default ${TXN_IDLE_MS})`,
    )
    .option('--name <NAME>', 'cluster member name (env CAIRN_NAME; cluster mode, docs/cluster.md)')
    .option('--listen-peer <HOST:PORT>', 'where this member listens for its peers (env CAIRN_LISTEN_PEER)')
    .option(
      '--initial-cluster <NAME=HOST:PORT,...>',
      'peer addresses of all members, first start only (env CAIRN_INITIAL_CLUSTER)',
    )
    .option('--initial-cluster-state <new|existing>', 'new cluster or joining one (default new)')
    .option('--cluster-token <TOKEN>', 'members refuse peers with another token (env CAIRN_CLUSTER_TOKEN)')
    .option(
      '--request-timeout-ms <MS>',
      'cluster: longest wait for a leader or an outcome (env CAIRN_REQUEST_TIMEOUT_MS; default 5000)',
    )
    .option(
      '--snapshot-count <N>',
      'cluster: applied entries between snapshots; the log is compacted after each (env CAIRN_SNAPSHOT_COUNT; default 10000)',
    )
    .option('--config <FILE>', 'JSON file with any of these settings (env CAIRN_CONFIG)')
    .action(async (opts: RawSettings & { config?: string }) => {
      const config = resolveConfig(opts, process.env, SERVE_DEFAULTS);
      // The server's modules load only here: every other command starts without them.
      const { runServer } = await import('../run-server.js');
      try {
        await runServe(runServer, config);
      } catch (err) {
        // A lost directory, or a removed member's (MemberRemovedError), or a running member
        // that was removed and stopped (RemovedMemberStoppedError): a code of its own, so that a
        // supervisor stops restarting it.
        if (!(err instanceof MemberStartRefusedError || err instanceof RemovedMemberStoppedError)) throw err;
        process.stderr.write(`${cli.name}: ${describeError(err, cli.name)}\n`);
        cli.exitCode = EXIT_MEMBER_STARTED_BEFORE;
      }
    });
}

/** runServe runs the server and prints how to reach it once it listens. */
function runServe(
  runServer: typeof import('../run-server.js').runServer,
  config: ServerConfig,
): Promise<void> {
  return runServer('cairn', config, (server) => {
    const resp = `${server.resp.host}:${server.resp.port}`;
    const lines = [
      `Cairn is serving ${server.db.dir}`,
      `  redis-cli -h ${server.resp.host} -p ${server.resp.port}         (RESP at ${resp})`,
    ];
    if (server.http !== undefined) {
      lines.push(
        `  curl http://${server.http.host}:${server.http.port}/v1/kv/hello   (HTTP; metrics at /metrics)`,
      );
    }
    lines.push(
      `  import { CairnClient } from 'cairn-db/client'; CairnClient.connect('${server.resp.host}', ${server.resp.port})`,
    );
    lines.push('Stop with Ctrl-C (SIGINT) or SIGTERM.');
    process.stderr.write(`${lines.join('\n')}\n`);
  });
}
