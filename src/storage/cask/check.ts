// checkStore inspects a cask directory without changing anything: `cairn check` prints what a
// repairing open would do (recovery in report-only mode) plus the metadata's state.
import type { FileSystem } from '../../io/file-system.js';
import { nodeFileSystem } from '../../io/node-file-system.js';
import { type Meta, readMeta } from '../meta.js';
import { DEFAULT_DATA_FILE_BYTES } from './cask-options.js';
import { type RecoveryReport, recover } from './recovery.js';

export interface CheckResult {
  readonly meta: Meta | undefined;
  readonly metaProblems: readonly string[];
  /** report: undefined when the directory is not a cask store (see `meta.engine`). */
  readonly report: RecoveryReport | undefined;
  /** ok: nothing is damaged (problems that are routine clean-up do not count). */
  readonly ok: boolean;
}

const ROUTINE = new Set(['retired-file', 'leftover-temp', 'orphan-hint']);

export async function checkStore(dir: string, fs: FileSystem = nodeFileSystem): Promise<CheckResult> {
  const { meta, problems } = await readMeta(fs, dir);
  if (meta === undefined || meta.engine !== 'cask') {
    return {
      meta,
      metaProblems: problems,
      report: undefined,
      ok: meta !== undefined && problems.length === 0,
    };
  }
  const retired = Array.isArray(meta.fields.retired) ? (meta.fields.retired as number[]) : [];
  const seqFloor = typeof meta.fields.seqFloor === 'number' ? meta.fields.seqFloor : 0;
  const { report, files } = await recover({
    fs,
    dir,
    retired,
    seqFloor,
    repair: false,
    dataFileBytes: DEFAULT_DATA_FILE_BYTES,
  });
  for (const f of files.all()) await f.file.close();
  const damaged = report.problems.some((p) => !ROUTINE.has(p.kind));
  return { meta, metaProblems: problems, report, ok: !damaged && problems.length === 0 };
}
