// cairn rm <key>: removes the key; a missing key is exit 1 with a message on stderr.
import type { Command } from 'commander';
import { type Cli, EXIT_FAILURE } from '../program.js';
import { addStoreOptions, storeOptions, withDb } from '../store.js';

export function registerRm(program: Command, cli: Cli): void {
  addStoreOptions(
    program.command('rm').description('remove a key').argument('<key>', 'the key (UTF-8)'),
  ).action(async (key: string, options: Record<string, unknown>) => {
    const existed = await withDb(storeOptions(options), true, (db) => db.delete(key));
    if (!existed) {
      process.stderr.write(`${cli.name}: key not found: ${key}\n`);
      cli.exitCode = EXIT_FAILURE;
    }
  });
}
