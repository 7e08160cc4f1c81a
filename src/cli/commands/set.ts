// cairn set <key> <value>: stores the value (durably: it returns after fdatasync); no output.
import type { Command } from 'commander';
import type { Cli } from '../program.js';
import { addStoreOptions, storeOptions, withDb } from '../store.js';

export function registerSet(program: Command, _cli: Cli): void {
  addStoreOptions(
    program
      .command('set')
      .description('set the value of a key (creates the store if needed)')
      .argument('<key>', 'the key (UTF-8)')
      .argument('<value>', 'the value (UTF-8)'),
  ).action(async (key: string, value: string, options: Record<string, unknown>) => {
    await withDb(storeOptions(options), false, (db) => db.set(key, value));
  });
}
