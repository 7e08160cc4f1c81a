// cairn stats: the store's engine, live keys and bytes on disk.
import * as path from 'node:path';
import type { Command } from 'commander';
import { write } from '../output.js';
import type { Cli } from '../program.js';
import { addStoreOptions, storeOptions, withDb } from '../store.js';

export function registerStats(program: Command, _cli: Cli): void {
  addStoreOptions(
    program
      .command('stats')
      .description('print the engine, number of keys and bytes on disk')
      .option('--json', 'print one JSON object'),
  ).action(async (options: Record<string, unknown>) => {
    const store = storeOptions(options);
    const stats = await withDb(store, true, async (db) => db.stats(), true);
    const summary = {
      dir: path.resolve(store.dir),
      engine: stats.engine,
      keys: stats.keys,
      diskBytes: stats.diskBytes,
      liveBytes: stats.liveBytes,
    };
    if (options.json === true) {
      await write(`${JSON.stringify(summary)}\n`);
      return;
    }
    await write(
      [
        `directory:  ${summary.dir}`,
        `engine:     ${summary.engine}`,
        `keys:       ${summary.keys}`,
        `disk bytes: ${summary.diskBytes}`,
        `live bytes: ${summary.liveBytes}`,
        '',
      ].join('\n'),
    );
  });
}
