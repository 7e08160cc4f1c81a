// memory-probe opens a filled store in a fresh process and reports, as one JSON line, how long the
// open took and how much memory the open store holds. A fresh process per engine keeps the
// numbers free of what the benchmark itself allocated.
//
//   node --expose-gc --import tsx bench/memory-probe.ts <engine> <dir>
//
// heapBytes is the growth of V8's heap plus memory outside it that JS objects own (`external`,
// which includes ArrayBuffers): a key directory kept in typed arrays shows up there, not in
// heapUsed. rssBytes is the growth of the resident set (for lmdb, only the pages the open
// touched: the rest of its memory map is page cache, shared and reclaimable). For cask the
// memory is taken once its point-lookup index is complete (it is built in the background after
// the open: docs/key-dir.md), and readyMs says when that was.
import { isEngineName, loadEngine } from './engines.js';

export interface ProbeResult {
  readonly engine: string;
  readonly openMs: number;
  /** readyMs: from the start of the open until the engine's background indexes were complete. */
  readonly readyMs: number;
  readonly heapBytes: number;
  readonly rssBytes: number;
  readonly gcExposed: boolean;
}

/** SETTLE_GCS: full collections before each reading, so that garbage is not counted. */
const SETTLE_GCS = 3;

function settle(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; gc !== undefined && i < SETTLE_GCS; i++) gc();
}

function used(): { heap: number; rss: number } {
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external, rss: m.rss };
}

async function main(): Promise<void> {
  const [name, dir] = process.argv.slice(2);
  if (name === undefined || dir === undefined || !isEngineName(name)) {
    throw new Error('usage: memory-probe.ts <cask|lmdb|classic-level> <dir>');
  }
  const open = await loadEngine(name);
  if (open instanceof Error) throw open;
  settle();
  const before = used();
  const started = performance.now();
  const engine = await open(dir, { durability: 'always' });
  const openMs = performance.now() - started;
  // cask builds its point index after the open; its memory counts once it is there.
  await (engine.engine as { pointIndexBuilt?: () => Promise<void> }).pointIndexBuilt?.();
  const readyMs = performance.now() - started;
  settle();
  const after = used();
  const result: ProbeResult = {
    engine: name,
    openMs,
    readyMs,
    heapBytes: after.heap - before.heap,
    rssBytes: after.rss - before.rss,
    gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
  };
  await engine.close();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
