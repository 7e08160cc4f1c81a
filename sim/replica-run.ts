// The replica simulator's command line: `npm run sim:replica -- --seeds N [--seed S]`.
//   --seeds N      run N seeds from --from (default: a fresh random start); print failures with replay commands
//   --seed S       run exactly seed S (add --trace to print its events)
//   --from F       the first seed of a --seeds run
//   --nodes 3|5    cluster size; by default odd seeds run 3 members and even seeds 5
//   --chaos-ms M   length of the fault phase of each seed (default CHAOS_MS_DEFAULT)
//   --no-follower-deletes  clients send DELETEs only to the leader (once a finding: docs/replica-sim.md)
//   --lost-directory       start checks and started marks on; one member loses its directory
//   --remove-member        the leader removes one member (itself at times); it must stop for good
//   --transactions         compare-and-swaps beside the other operations, and bank transfers and audits
//   --engine cask          members run the cask engine (as cairn serve does) instead of the simulator's
//   --add-member           the leader adds a member as a learner and promotes it once caught up
//   --ttl                  a key written with times to live that run out (members' clocks agree)
//   --resp                 members run the RESP server; clients send part of their commands to any
//                          member, which forwards them to the leader
// (docs/replica-sim.md describes each scenario.)
// Exit status 1 if any seed failed.
import { randomInt } from 'node:crypto';
import {
  CHAOS_MS_DEFAULT,
  nodesForSeed,
  type ReplicaRunResult,
  replayCommand,
  runReplicaSeed,
  type ScenarioOptions,
} from './replica-sim.js';

/** MAX_SEEDS bounds one invocation so a typo cannot run forever. */
const MAX_SEEDS = 10_000_000;
/** DEFAULT_SEEDS: a bare `npm run sim:replica` (about a minute). */
const DEFAULT_SEEDS = 100;
/** PROGRESS_EVERY: seeds between progress lines. */
const PROGRESS_EVERY = 100;
/** SEED_SPACE: fresh start seeds are drawn below this (u32 seeds, room for the run). */
const SEED_SPACE = 2 ** 31;

interface Args {
  seeds: number;
  seed: number | undefined;
  from: number | undefined;
  nodes: number | undefined;
  trace: boolean;
  /** scenario: what every seed runs (and a replay repeats). */
  scenario: { -readonly [K in keyof ScenarioOptions]: ScenarioOptions[K] };
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    seeds: DEFAULT_SEEDS,
    seed: undefined,
    from: undefined,
    nodes: undefined,
    trace: false,
    scenario: { chaosMs: CHAOS_MS_DEFAULT },
  };
  const sc = args.scenario;
  const num = (i: number, name: string): number => {
    const v = Number(argv[i + 1]);
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${name} needs a non-negative integer`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seeds') args.seeds = num(i++, a);
    else if (a === '--seed') args.seed = num(i++, a);
    else if (a === '--from') args.from = num(i++, a);
    else if (a === '--nodes') args.nodes = num(i++, a);
    else if (a === '--chaos-ms') sc.chaosMs = num(i++, a);
    else if (a === '--trace') args.trace = true;
    else if (a === '--no-follower-deletes') sc.followerDeletes = false;
    else if (a === '--lost-directory') sc.lostDirectory = true;
    else if (a === '--remove-member') sc.removeMember = true;
    else if (a === '--transactions') sc.transactions = true;
    else if (a === '--resp') sc.resp = true;
    else if (a === '--add-member') sc.addMember = true;
    else if (a === '--ttl') sc.ttl = true;
    else if (a === '--engine') {
      const v = argv[++i];
      if (v !== 'sim' && v !== 'cask') throw new Error(`--engine takes sim or cask, got ${v}`);
      sc.engine = v;
    } else if (a === '--') continue;
    else throw new Error(`unknown argument ${a}`);
  }
  if (args.nodes !== undefined && args.nodes !== 3 && args.nodes !== 5)
    throw new Error('--nodes must be 3 or 5');
  if (args.seeds > MAX_SEEDS) throw new Error(`--seeds is limited to ${MAX_SEEDS}`);
  return args;
}

function summary(r: ReplicaRunResult): string {
  return (
    `${r.simMs} ms simulated, ${r.events} events, ${r.messages} messages, ops ${r.ops.issued} ` +
    `(${r.ops.ok} ok, ${r.ops.ambiguous} ambiguous, ${r.ops.dropped} refused), ${r.crashes} crashes ` +
    `(${r.powerLosses} power losses, ${r.crashesMidSave} with log saves in flight), ${r.ioFaults} I/O fault windows, ${r.leaders} leaders, ` +
    `applied ${r.applied}, digest ${r.digest}, start checks ${JSON.stringify(r.startChecks)}` +
    (r.removal === undefined ? '' : `, removal ${JSON.stringify(r.removal)}`) +
    (r.ops.casTaken + r.ops.casRefused === 0
      ? ''
      : `, CAS ${r.ops.casTaken} taken ${r.ops.casRefused} refused`) +
    (r.ops.resp === 0
      ? ''
      : `, RESP ${r.ops.resp} sent ${r.ops.respOk} ok ${r.ops.respRefused} CLUSTERDOWN, sockets ${JSON.stringify(r.sockets)}`) +
    (r.bank === undefined ? '' : `, bank ${JSON.stringify(r.bank)}`) +
    (r.addition === undefined ? '' : `, addition ${JSON.stringify(r.addition)}`) +
    (r.ops.ttlSets === 0 ? '' : `, TTL ${r.ops.ttlSets} sets, ${r.ops.ttlAbsent} reads absent`) +
    (Object.keys(r.engineEvents).length === 0 ? '' : `, engine events ${JSON.stringify(r.engineEvents)}`)
  );
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.seed !== undefined) {
    const trace = args.trace ? (line: string) => console.log(line) : undefined;
    const r = await runReplicaSeed({
      ...args.scenario,
      seed: args.seed,
      ...(args.nodes === undefined ? {} : { nodes: args.nodes }),
      ...(trace === undefined ? {} : { trace }),
    });
    console.log(
      `seed ${r.seed} (${r.nodes} members): ${r.ok ? 'ok' : `FAILED: ${r.error}`}\n  ${summary(r)}`,
    );
    return r.ok ? 0 : 1;
  }
  const from = args.from ?? randomInt(1, SEED_SPACE);
  console.log(`seeds ${from}..${from + args.seeds - 1}`);
  const t0 = performance.now();
  let failures = 0;
  let midSave = 0;
  for (let seed = from; seed < from + args.seeds; seed++) {
    const nodes = nodesForSeed(seed, args.nodes);
    const r = await runReplicaSeed({ ...args.scenario, seed, nodes });
    midSave += r.crashesMidSave;
    if (!r.ok) {
      failures++;
      console.log(`seed ${seed} FAILED: ${r.error}\n  replay: ${replayCommand(r, args.scenario)}`);
    }
    const done = seed - from + 1;
    if (done % PROGRESS_EVERY === 0) {
      const secs = (performance.now() - t0) / 1000;
      console.log(`${done} seeds, ${failures} failures, ${(done / secs).toFixed(2)} seeds/s`);
    }
  }
  const secs = (performance.now() - t0) / 1000;
  console.log(
    `${args.seeds} seeds from ${from}: ${failures} failures in ${secs.toFixed(1)} s ` +
      `(${(args.seeds / secs).toFixed(2)} seeds/s); ${midSave} crashes cut pipelined log saves short`,
  );
  return failures === 0 ? 0 : 1;
}

process.exitCode = await main();
