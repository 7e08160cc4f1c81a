// cairn get <key>: prints the value and a newline; a missing key is exit 1 with a message on
// stderr (so scripts can tell "absent" from an empty value).
import type { Command } from 'commander';
import { write } from '../output.js';
import { type Cli, EXIT_FAILURE } from '../program.js';
import { addStoreOptions, storeOptions, withDb } from '../store.js';

export function registerGet(program: Command, cli: Cli): void {
  addStoreOptions(
    program.command('get').description('print the value of a key').argument('<key>', 'the key (UTF-8)'),
  ).action(async (key: string, options: Record<string, unknown>) => {
    const value = await withDb(storeOptions(options), true, (db) => db.get(key), true);
    if (value === undefined) {
      process.stderr.write(`${cli.name}: key not found: ${key}\n`);
      cli.exitCode = EXIT_FAILURE;
      return;
    }
    await write(value, '\n');
  });
}
