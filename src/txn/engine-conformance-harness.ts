// The bookkeeping every engine conformance suite shares: temporary directories, and engines
// opened in them (each behind a write pipeline, which stamps its writes and runs the expiry
// cycle, as the Db does), all closed and removed after each test. Every engine a test opens is closed,
// also one opened by mistake where a test expects open to fail: a leaked engine keeps its
// directory lock, and the lock outlives the removed directory (it is keyed by inode, which a
// later temp directory may reuse). Call inside a `describe`: it registers an afterEach.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach } from 'vitest';
import type { Engine } from '../storage/engine.js';
import type { EngineOptions } from '../storage/engine-options.js';
import { type PipelinedEngine, pipelined } from './pipelined-engine.js';

export type OpenEngine = (dir: string, options?: EngineOptions) => Promise<Engine>;

export interface EngineHarness {
  /** tempDir: a fresh directory, removed after the test. */
  tempDir(): string;
  /**
   * openTracked: `open`, behind a write pipeline on the engine's clock (the engine is reached as
   * `.engine`), closed after the test.
   */
  openTracked(dir: string, options?: EngineOptions): Promise<PipelinedEngine>;
}

export function engineHarness(open: OpenEngine, dirPrefix: string): EngineHarness {
  const dirs: string[] = [];
  const engines: PipelinedEngine[] = [];
  afterEach(async () => {
    for (const engine of engines.splice(0)) await engine.close().catch(() => {});
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    tempDir() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
      dirs.push(dir);
      return dir;
    },
    async openTracked(dir, options) {
      const engine = pipelined(await open(dir, options), options?.clock);
      engines.push(engine);
      return engine;
    },
  };
}
