#!/usr/bin/env node
// kvs-server: the talent-plan course's server, exactly (see docs/cli.md):
//   kvs-server [--addr IP:PORT] [--engine kvs|lmdb]   default 127.0.0.1:4000; data in the cwd
//   kvs-server -V
// Logs go to stderr; the startup log names the version, the engine and the address. The engine
// is recorded in the data directory; a later start with another --engine fails.
import { recordedEngine } from '../db/db.js';
import { MAX_CLIENTS_DEFAULT, parseEngine, SERVER_CACHE_BYTES_DEFAULT } from '../server/config.js';
import { TXN_IDLE_MS } from '../server/resp/limits.js';
import { DEFAULT_KVS_ADDR, parseAddress } from './address.js';
import { CliError, createProgram, EXIT_FAILURE, type ProgramSpec, runProgram } from './program.js';

const spec: ProgramSpec = {
  name: 'kvs-server',
  description: 'A key-value server (the talent-plan kvs-server, speaking RESP, backed by Cairn)',
  errorExitCode: EXIT_FAILURE,
};

const { program, cli } = createProgram(spec);

program
  .option('--addr <IP:PORT>', 'the address to listen on', DEFAULT_KVS_ADDR)
  .option('--engine <ENGINE-NAME>', 'kvs or lmdb (default: the one recorded in the directory, else kvs)')
  .action(async (opts: { addr: string; engine?: string }) => {
    parseAddress(opts.addr, { ipOnly: true, allowZero: true });
    const dir = process.cwd();
    const wanted = opts.engine === undefined ? undefined : parseEngine(opts.engine);
    const recorded = await recordedEngine(dir);
    const show = (e: string) => (e === 'cask' ? 'kvs' : e);
    if (wanted !== undefined && recorded !== undefined && wanted !== recorded) {
      throw new CliError(`engine mismatch: ${dir} holds '${show(recorded)}' data, not '${show(wanted)}'`);
    }
    const { runServer } = await import('./run-server.js');
    await runServer('kvs-server', {
      dir,
      addr: opts.addr,
      http: undefined,
      engine: wanted ?? recorded ?? 'cask',
      sync: 'always',
      requirepass: undefined,
      maxclients: MAX_CLIENTS_DEFAULT,
      logLevel: 'info',
      cacheBytes: SERVER_CACHE_BYTES_DEFAULT,
      txnIdleMs: TXN_IDLE_MS,
    });
  });

process.exitCode = await runProgram(program, cli, spec, process.argv.slice(2));
