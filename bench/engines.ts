// The engines the benchmarks compare, loaded by name. Each loader imports its engine lazily, so
// that an engine that is missing or fails to load is skipped with a message instead of stopping
// the whole run.
import type { Engine } from '../src/storage/engine.js';
import type { EngineOptions } from '../src/storage/engine-options.js';
import { type PipelinedEngine, pipelined } from '../src/txn/pipelined-engine.js';

/**
 * OpenEngine opens an engine behind a write pipeline, as the Db runs every engine: each engine's
 * writes are stamped (timestamps, revisions) by the same code, so the comparison is of engines.
 */
export type OpenEngine = (dir: string, options?: EngineOptions) => Promise<PipelinedEngine>;

type OpenRaw = (dir: string, options?: EngineOptions) => Promise<Engine>;

function behindPipeline(open: OpenRaw): OpenEngine {
  return async (dir, options) => pipelined(await open(dir, options), options?.clock);
}

export const ENGINE_NAMES = ['cask', 'lmdb', 'lmdb-flushed', 'classic-level'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

export function isEngineName(name: string): name is EngineName {
  return (ENGINE_NAMES as readonly string[]).includes(name);
}

/** loadEngine returns the engine's open function, or the reason it could not be loaded. */
export async function loadEngine(name: EngineName): Promise<OpenEngine | Error> {
  try {
    switch (name) {
      case 'cask': {
        const { openCask } = await import('../src/storage/cask/cask-engine.js');
        return behindPipeline(openCask);
      }
      case 'lmdb': {
        const { openLmdb } = await import('../src/storage/lmdb/lmdb-engine.js');
        return behindPipeline(openLmdb);
      }
      case 'lmdb-flushed': {
        const { openLmdbFlushed } = await import('./lmdb-flushed-engine.js');
        return behindPipeline(openLmdbFlushed);
      }
      case 'classic-level': {
        const { openClassicLevel } = await import('./classic-level-engine.js');
        return behindPipeline(openClassicLevel);
      }
    }
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}
