#!/usr/bin/env node
// kvs-client: the talent-plan course's client, exactly (see docs/cli.md):
//   kvs-client set <KEY> <VALUE> [--addr IP:PORT]   no output
//   kvs-client get <KEY> [--addr IP:PORT]           the value, or "Key not found" (exit 0)
//   kvs-client rm <KEY> [--addr IP:PORT]            no output; "Key not found" on stderr, exit 1
//   kvs-client -V
// It speaks RESP (SET, GET, DEL), so it works against kvs-server, cairn serve or any Redis.
import { CairnClient } from '../client/client.js';
import { type Address, DEFAULT_KVS_ADDR, parseAddress } from './address.js';
import { write } from './output.js';
import { createProgram, EXIT_FAILURE, type ProgramSpec, runProgram } from './program.js';

const spec: ProgramSpec = {
  name: 'kvs-client',
  description: 'A client for kvs-server (any RESP server works)',
  errorExitCode: EXIT_FAILURE,
};

const { program, cli } = createProgram(spec);

async function withClient<T>(addr: Address, fn: (client: CairnClient) => Promise<T>): Promise<T> {
  const client = await CairnClient.connect(addr.host, addr.port);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

const addrOption = ['--addr <IP:PORT>', 'the server address', DEFAULT_KVS_ADDR] as const;

program
  .command('set')
  .description('Set the value of a string key to a string')
  .argument('<KEY>', 'A string key')
  .argument('<VALUE>', 'The string value of the key')
  .option(...addrOption)
  .action(async (key: string, value: string, opts: { addr: string }) => {
    const addr = parseAddress(opts.addr, { ipOnly: true });
    await withClient(addr, (c) => c.set(key, value));
  });

program
  .command('get')
  .description('Get the string value of a given string key')
  .argument('<KEY>', 'A string key')
  .option(...addrOption)
  .action(async (key: string, opts: { addr: string }) => {
    const addr = parseAddress(opts.addr, { ipOnly: true });
    const value = await withClient(addr, (c) => c.get(key));
    if (value === null) await write('Key not found\n');
    else await write(value, '\n');
  });

program
  .command('rm')
  .description('Remove a given key')
  .argument('<KEY>', 'A string key')
  .option(...addrOption)
  .action(async (key: string, opts: { addr: string }) => {
    const addr = parseAddress(opts.addr, { ipOnly: true });
    const removed = await withClient(addr, (c) => c.del(key));
    if (removed === 0) {
      process.stderr.write('Key not found\n');
      cli.exitCode = EXIT_FAILURE;
    }
  });

process.exitCode = await runProgram(program, cli, spec, process.argv.slice(2));
