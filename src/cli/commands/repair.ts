// cairn repair [dir]: rebuilds a cask store's metadata when both copies are lost, from the data
// files (storage/cask/rebuild-meta.ts), and prints everything it inferred. Every other repair is
// the open's own (recovery); this one is the operator's to run, because the metadata knew things
// the files cannot always tell (docs/hardening.md, "Lost metadata"). Exit 0 once rebuilt; a
// refusal (a valid copy exists, an lmdb store, files of a newer format, the store in use) is an
// operating error, exit 2, and changes nothing.
import * as path from 'node:path';
import type { Command } from 'commander';
import { dataFileName } from '../../storage/cask/file-names.js';
import { type RebuildReport, rebuildMeta } from '../../storage/cask/rebuild-meta.js';
import { write } from '../output.js';
import type { Cli } from '../program.js';
import { requireDirectory } from '../store.js';

export function registerRepair(program: Command, _cli: Cli): void {
  program
    .command('repair')
    .description(
      'rebuild the metadata of a cask store whose two metadata copies are both lost, from its data files',
    )
    .argument('[dir]', 'data directory (default: the current directory)')
    .option('--json', 'print the report as one JSON object')
    .action(async (dirArg: string | undefined, options: Record<string, unknown>) => {
      const dir = path.resolve(dirArg ?? process.cwd());
      requireDirectory(dir);
      const report = await rebuildMeta(dir);
      if (options.json === true) {
        await write(`${JSON.stringify(report)}\n`);
        return;
      }
      await write(`${formatRebuild(report).join('\n')}\n`);
    });
}

const fileList = (ids: readonly number[]): string => ids.map(dataFileName).join(', ') || 'none';

/** formatRebuild renders a rebuild report for people, one fact per line. */
export function formatRebuild(r: RebuildReport): string[] {
  const { meta } = r;
  const fields = meta.fields as { files?: number[]; retired?: number[]; seqFloor?: number };
  const lines = [
    `directory:       ${r.dir}`,
    `rebuilt from:    ${r.source}`,
    `metadata:        generation ${meta.generation}, engine ${meta.engine}, format ${meta.format}`,
  ];
  for (const reason of r.formatReasons) lines.push(`  ${reason}`);
  lines.push(
    `data files:      ${r.dataFiles} (listed: ${fileList(fields.files ?? [])})`,
    `retired:         ${fileList(fields.retired ?? [])}`,
    `hint files:      ${r.hintFiles}`,
    `records:         ${r.records}`,
    `keys:            ${r.keys}`,
    `seq floor:       ${fields.seqFloor ?? 0}`,
  );
  for (const saved of r.saved) lines.push(`saved copy:      ${saved} (the damaged metadata copy, as it was)`);
  for (const id of r.missing) {
    lines.push(
      `missing:         ${dataFileName(id)}: only its hint file is left (a retired file, or a lost one: ` +
        'listed, so every open reports it and keeps the hint)',
    );
  }
  for (const c of r.compactions) {
    lines.push(
      `compaction input still present: ${dataFileName(c.input)} (copied into ${fileList(c.outputs)}); kept`,
    );
  }
  if (r.suspects.count > 0) {
    lines.push(
      `possibly resurrected keys: ${r.suspects.count} (deleted before a compaction whose inputs were partly ` +
        'deleted, or live: this cannot be told; check them and delete those that should be gone)',
    );
    for (const key of r.suspects.named) lines.push(`  key ${key} (hex)`);
    if (r.suspects.count > r.suspects.named.length)
      lines.push(
        `  and ${r.suspects.count - r.suspects.named.length} more (--json lists the same first ones)`,
      );
  }
  lines.push(
    `next open:       ${r.problems.length === 0 ? 'nothing to repair' : `${r.problems.length} findings`}`,
  );
  for (const p of r.problems) {
    const range =
      p.from === undefined ? '' : p.to === undefined ? ` at byte ${p.from}` : ` bytes ${p.from}..${p.to}`;
    lines.push(`  ${p.kind} in ${p.file}${range}: ${p.detail}; ${p.action}`);
  }
  lines.push('status:          metadata rebuilt (META-1, META-2); nothing else was changed');
  return lines;
}
