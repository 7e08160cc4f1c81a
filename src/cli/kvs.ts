#!/usr/bin/env node
// kvs: the talent-plan course's command line, exactly (see docs/cli.md):
//   kvs set <KEY> <VALUE>   stores the value; no output
//   kvs get <KEY>           prints the value, or "Key not found" (exit 0 either way)
//   kvs rm <KEY>            removes the key; "Key not found" on stdout and exit 1 if absent
//   kvs -V, --version       prints "kvs <version>"
// The data lives in the current directory, in the same format `cairn` and open() use.
import { open } from '../db/db.js';
import { write } from './output.js';
import { createProgram, EXIT_FAILURE, type ProgramSpec, runProgram } from './program.js';

const KEY_NOT_FOUND = 'Key not found\n';

const spec: ProgramSpec = {
  name: 'kvs',
  description: 'A key-value store (the talent-plan kvs command line, backed by Cairn)',
  errorExitCode: EXIT_FAILURE,
};

const { program, cli } = createProgram(spec);

program
  .command('set')
  .description('Set the value of a string key to a string')
  .argument('<KEY>', 'A string key')
  .argument('<VALUE>', 'The string value of the key')
  .action(async (key: string, value: string) => {
    const db = await open(process.cwd());
    try {
      await db.set(key, value);
    } finally {
      await db.close();
    }
  });

program
  .command('get')
  .description('Get the string value of a given string key')
  .argument('<KEY>', 'A string key')
  .action(async (key: string) => {
    const db = await open(process.cwd());
    let value: Buffer | undefined;
    try {
      value = await db.get(key);
    } finally {
      await db.close();
    }
    if (value === undefined) await write(KEY_NOT_FOUND);
    else await write(value, '\n');
  });

program
  .command('rm')
  .description('Remove a given key')
  .argument('<KEY>', 'A string key')
  .action(async (key: string) => {
    const db = await open(process.cwd());
    let existed: boolean;
    try {
      existed = await db.delete(key);
    } finally {
      await db.close();
    }
    if (!existed) {
      await write(KEY_NOT_FOUND);
      cli.exitCode = EXIT_FAILURE;
    }
  });

process.exitCode = await runProgram(program, cli, spec, process.argv.slice(2));
