// openCaskPipelined: a cask engine behind a write pipeline (src/txn/pipelined-engine.ts), for the
// cask tests that write through the plain put/delete/batch surface. The engine stays reachable,
// typed, as `engine` (its recovery report, files and indexes are what those tests look at).
import type { CaskEngine, CaskStats } from '../../src/storage/cask/cask-engine.js';
import { openCask } from '../../src/storage/cask/cask-engine.js';
import type { CaskOptions } from '../../src/storage/cask/cask-options.js';
import { type PipelinedEngine, pipelined } from '../../src/txn/pipelined-engine.js';

export interface PipelinedCask extends Omit<PipelinedEngine, 'engine' | 'stats'> {
  readonly engine: CaskEngine;
  /** stats: the engine's, with the pipeline's expiry cycle count. */
  stats(): CaskStats & { readonly expiredKeys: number };
}

/** openCaskPipelined opens a cask store and puts a write pipeline on the same clock in front of it. */
export async function openCaskPipelined(dir: string, options: CaskOptions = {}): Promise<PipelinedCask> {
  const engine = await openCask(dir, options);
  return pipelined(engine, options.clock) as unknown as PipelinedCask;
}
