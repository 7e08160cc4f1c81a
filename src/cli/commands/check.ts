// cairn check [dir]: reports what a repairing open would do to a store, and the state of its
// metadata, without changing anything (no lock taken, nothing written, nothing truncated).
// Exit 0 when the store is intact, 1 when damage was found. (`cairn check hash` compares a
// cluster's members instead: check-hash.ts. A store directory named `hash` is `./hash`.)
import * as path from 'node:path';
import type { Command } from 'commander';
import { type CheckResult, checkStore } from '../../storage/cask/check.js';
import { CorruptionError } from '../../storage/errors.js';
import { write } from '../output.js';
import { type Cli, EXIT_FAILURE } from '../program.js';
import { requireDirectory } from '../store.js';
import { registerCheckHash } from './check-hash.js';

export function registerCheck(program: Command, cli: Cli): void {
  const check = program.command('check');
  registerCheckHash(check, cli);
  check
    .description('check a store for damage without modifying it (exit 1 if damaged)')
    .argument('[dir]', 'data directory (default: the current directory)')
    .option('--json', 'print the report as one JSON object')
    .option('--fast', 'trust hint files instead of verifying every record (quicker, misses damaged values)')
    .addHelpText(
      'after',
      '\n`cairn check hash` is the cluster subcommand: check a store directory named hash as `cairn check ./hash`.',
    )
    .action(async (dirArg: string | undefined, options: Record<string, unknown>) => {
      const dir = path.resolve(dirArg ?? process.cwd());
      requireDirectory(dir);
      let result: CheckResult | undefined;
      let fatal: string | undefined;
      try {
        result = await checkStore(dir, { fast: options.fast === true });
      } catch (err) {
        // Damage bad enough that the check cannot go on (e.g. a data file with another file's
        // header) is still a finding, not an operating error.
        if (!(err instanceof CorruptionError)) throw err;
        fatal = err.message;
      }
      const ok = result?.ok === true && fatal === undefined;
      if (!ok) cli.exitCode = EXIT_FAILURE;
      if (options.json === true) {
        await write(`${JSON.stringify({ dir, ok, ...result, ...(fatal === undefined ? {} : { fatal }) })}\n`);
        return;
      }
      await write(`${formatReport(dir, result, fatal).join('\n')}\n`);
    });
}

/** formatReport renders a check result for people, one fact per line. */
export function formatReport(
  dir: string,
  result: CheckResult | undefined,
  fatal: string | undefined,
): string[] {
  const lines = [`directory:       ${dir}`];
  if (result !== undefined) {
    const { meta, metaProblems, report } = result;
    lines.push(
      meta === undefined
        ? 'metadata:        no valid copy (not a Cairn store, or its metadata is lost)'
        : `metadata:        generation ${meta.generation}, engine ${meta.engine}, format ${meta.format}`,
    );
    for (const problem of metaProblems) lines.push(`  metadata problem: ${problem}`);
    if (meta === undefined)
      lines.push(`  a cask store's metadata is rebuilt from its data files by \`cairn repair ${dir}\``);
    if (report === undefined) {
      if (meta !== undefined) lines.push(`data:            not checked (cairn check reads cask stores only)`);
    } else {
      lines.push(
        `data files:      ${report.dataFiles}`,
        `hint files used: ${report.hintFilesUsed}`,
        `records:         ${report.records}`,
        `keys:            ${report.keys}`,
        `max seq:         ${report.maxSeq}`,
        `problems:        ${report.problems.length}`,
      );
      for (const p of report.problems) {
        const range =
          p.from === undefined ? '' : p.to === undefined ? ` at byte ${p.from}` : ` bytes ${p.from}..${p.to}`;
        lines.push(`  ${p.kind} in ${p.file}${range}: ${p.detail}; ${p.action}`);
      }
    }
  }
  if (fatal !== undefined) lines.push(`fatal damage:    ${fatal}`);
  const ok = result?.ok === true && fatal === undefined;
  lines.push(ok ? 'status:          ok' : 'status:          DAMAGED (nothing was changed)');
  return lines;
}
