// The simulator's command line: `npm run sim -- --seeds N [--seed S] [--nodes 3|5]`.
//   --seeds N      run N seeds (default DEFAULT_SEEDS) from --from (default 1); print failures with replay commands
//   --seed S       run exactly seed S (add --trace to print its events)
//   --nodes 3|5    cluster size; by default odd seeds run 3 nodes and even seeds 5
//   --chaos-ms M   length of the fault phase of each seed (default CHAOS_MS_DEFAULT)
//   --measure      print the measurements recorded in docs/raft.md
// Exit status 1 if any seed failed.

import { measureElection, measureSeeds, measureThroughput } from './measure.js';
import type { RunResult } from './random-run.js';
import { CHAOS_MS_DEFAULT, runSeed } from './random-run.js';

/** MAX_SEEDS bounds one invocation so a typo cannot run forever. */
const MAX_SEEDS = 10_000_000;
/** DEFAULT_SEEDS is how many seeds a bare `npm run sim` runs (about 15 s). */
const DEFAULT_SEEDS = 5000;
/** PROGRESS_EVERY is how many seeds pass between progress lines. */
const PROGRESS_EVERY = 1000;

interface Args {
  seeds: number;
  seed: number | undefined;
  from: number;
  nodes: number | undefined;
  chaosMs: number;
  trace: boolean;
  measure: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    seeds: DEFAULT_SEEDS,
    seed: undefined,
    from: 1,
    nodes: undefined,
    chaosMs: CHAOS_MS_DEFAULT,
    trace: false,
    measure: false,
  };
  const num = (i: number, name: string): number => {
    const v = Number(argv[i + 1]);
    if (!Number.isInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seeds') args.seeds = num(i++, a);
    else if (a === '--seed') args.seed = num(i++, a);
    else if (a === '--from') args.from = num(i++, a);
    else if (a === '--nodes') args.nodes = num(i++, a);
    else if (a === '--chaos-ms') args.chaosMs = num(i++, a);
    else if (a === '--trace') args.trace = true;
    else if (a === '--measure') args.measure = true;
    else if (a === '--') continue;
    else throw new Error(`unknown argument ${a}`);
  }
  if (args.nodes !== undefined && args.nodes !== 3 && args.nodes !== 5)
    throw new Error('--nodes must be 3 or 5');
  if (args.seeds > MAX_SEEDS) throw new Error(`--seeds is limited to ${MAX_SEEDS}`);
  return args;
}

/** nodesFor is the cluster size of a seed when --nodes is not given. */
export function nodesFor(seed: number, nodes: number | undefined): number {
  return nodes ?? (seed % 2 === 1 ? 3 : 5);
}

function replay(r: RunResult, nodes: number): string {
  return `npm run sim -- --seed ${r.seed} --nodes ${nodes} --trace`;
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  if (args.measure) {
    for (const n of [3, 5]) {
      const s = measureSeeds(n, 500, args.chaosMs);
      console.log(
        `seeds/s (${n} nodes, ${s.seeds} seeds, ${s.failures} failures): ${s.seedsPerSecond.toFixed(1)}`,
      );
    }
    for (const n of [3, 5]) {
      const t = measureThroughput(n, 10_000);
      console.log(
        `committed entries/s (${n} nodes): ${Math.round(t.entriesPerWallSecond)} per wall second ` +
          `(${t.committed} entries, ${Math.round(t.entriesPerSimSecond)} per simulated second)`,
      );
    }
    for (const n of [3, 5]) {
      const e = measureElection(n, 200);
      console.log(
        `ticks to elect after leader crash (${n} nodes, ${e.trials} trials): mean ${e.meanTicks.toFixed(1)}, ` +
          `p50 ${e.p50Ticks}, max ${e.maxTicks}`,
      );
    }
    return 0;
  }
  if (args.seed !== undefined) {
    const nodes = nodesFor(args.seed, args.nodes);
    const trace = args.trace ? (line: string) => console.log(line) : undefined;
    const r = runSeed({ seed: args.seed, nodes, chaosMs: args.chaosMs, ...(trace ? { trace } : {}) });
    console.log(
      `seed ${r.seed} (${nodes} nodes): ${r.ok ? 'ok' : `FAILED: ${r.error}`}; ${r.simMs}ms simulated, ` +
        `${r.committed} entries committed, ${r.leaders} leaders, ${r.messages} messages, ${r.reads} reads, healed in ${r.healMs}ms`,
    );
    return r.ok ? 0 : 1;
  }
  const t0 = performance.now();
  let failures = 0;
  let committed = 0;
  let simMs = 0;
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    const nodes = nodesFor(seed, args.nodes);
    const r = runSeed({ seed, nodes, chaosMs: args.chaosMs });
    committed += r.committed;
    simMs += r.simMs;
    if (!r.ok) {
      failures++;
      console.log(`seed ${seed} FAILED: ${r.error}\n  replay: ${replay(r, nodes)}`);
    }
    const done = seed - args.from + 1;
    if (done % PROGRESS_EVERY === 0) {
      const secs = (performance.now() - t0) / 1000;
      console.log(`${done} seeds, ${failures} failures, ${(done / secs).toFixed(1)} seeds/s`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `${args.seeds} seeds from ${args.from}: ${failures} failures in ${secs.toFixed(1)}s ` +
      `(${(args.seeds / secs).toFixed(1)} seeds/s, ${(simMs / 1000 / secs).toFixed(0)}x real time, ` +
      `${committed} entries committed)`,
  );
  return failures === 0 ? 0 : 1;
}

process.exitCode = main();
