// Commit latency of the replica layer in the simulator, with no faults and no CPU cost:
// `--clients N` closed loops write through the leader of a 3-member group whose every fdatasync
// takes `--sync-ms` and every message `--net-ms`, each client pausing up to `--think-ms` (uniform)
// between writes; prints p50/p90/mean of the write round trip in
// simulated milliseconds. What it shows is how the driver orders fsyncs and messages (one Ready
// at a time against pipelined saves: docs/benchmarks.md, "Cluster (issue 13)"), free of the
// machine's noise. `npm run sim:replica-latency -- --clients 16 --sync-ms 2 --net-ms 0.1`.
import type { NodeId } from '../src/raft/index.js';
import { Prng } from '../src/stdx/prng.js';
import { RELIABLE } from './network.js';
import { type MemberEnv, SimMember } from './replica-member.js';
import { ReplicaNet } from './replica-net.js';
import { SimScheduler } from './replica-scheduler.js';

/** Defaults: 16 clients (the transaction target), a 2 ms fdatasync, 0.1 ms per message. */
const DEFAULTS = { clients: 16, syncMs: 2, netMs: 0.1, durationMs: 5_000, thinkMs: 2 };
/** ELECTION_WAIT_MS: simulated time allowed for the first leader. */
const ELECTION_WAIT_MS = 10_000;
/** WARMUP_MS: simulated time before latencies count. */
const WARMUP_MS = 500;
const NEVER = Number.MAX_SAFE_INTEGER;
/** STEP_MS: simulated time per step while waiting for the first leader. */
const STEP_MS = 10;

function parse(argv: readonly string[]): typeof DEFAULTS {
  const out = { ...DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    const a = argv[i];
    if (a === '--') continue;
    if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number`);
    if (a === '--clients') out.clients = v;
    else if (a === '--sync-ms') out.syncMs = v;
    else if (a === '--net-ms') out.netMs = v;
    else if (a === '--duration-ms') out.durationMs = v;
    else if (a === '--think-ms') out.thinkMs = v;
    else throw new Error(`unknown argument ${a}`);
    i++;
  }
  return out;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const sched = new SimScheduler();
  const p = new Prng(1);
  const net = new ReplicaNet(p, { ...RELIABLE, delayMsMin: args.netMs, delayMsMax: args.netMs });
  const ids: NodeId[] = [1, 2, 3];
  const env: MemberEnv = {
    sched,
    prng: p,
    net,
    ids,
    latency: { writeMs: [0, 0], syncMs: [args.syncMs, args.syncMs] },
    segmentBytes: 64 * 1024 * 1024,
    trace: (l) => {
      if (process.env.LAT_TRACE) console.log(sched.now, l);
    },
    onPersist: () => {},
    onDigest: () => {},
    snapshotEntries: NEVER,
    snapshotCatchupEntries: 0,
    onFatal: (_m, err) => sched.fail(err),
  };
  const members = ids.map((id) => new SimMember(id, env, 0));
  for (const m of members) m.start();
  const leader = (): SimMember | undefined => members.find((m) => m.running?.replica.leaderReady === true);
  // Small steps: the members' start-up chains schedule their first events on later turns.
  while (leader() === undefined && sched.now < ELECTION_WAIT_MS) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    await sched.runUntil(sched.now + STEP_MS, () => leader() !== undefined);
  }
  const lead = leader();
  if (lead?.running === undefined) {
    const st = members.map((m) => JSON.stringify(m.running?.replica.status() ?? 'down'));
    throw new Error(`no leader at ${sched.now} ms: ${st.join(' ')} ${String(sched.failure)}`);
  }
  const db = lead.running.db;
  const latencies: number[] = [];
  const start = sched.now;
  const end = start + WARMUP_MS + args.durationMs;
  let stopped = false;
  const loop = async (c: number): Promise<void> => {
    const think = new Prng(c + 1);
    for (let i = 0; !stopped; i++) {
      // A random pause between writes, so that arrivals spread over the fsyncs in flight (a
      // closed loop without one runs in lockstep: every write of a round arrives together).
      const pause = think.float() * args.thinkMs;
      if (pause > 0) await new Promise<void>((resolve) => sched.at(pause, resolve));
      const t0 = sched.now;
      await db.set(`k${c}`, `v${i}`);
      if (t0 >= start + WARMUP_MS && sched.now <= end) latencies.push(sched.now - t0);
    }
  };
  const loops = Array.from({ length: args.clients }, (_, c) =>
    loop(c).catch((err: unknown) => sched.fail(err)),
  );
  await sched.runUntil(end);
  stopped = true;
  await sched.runUntil(sched.now + ELECTION_WAIT_MS, () => false);
  void loops;
  latencies.sort((a, b) => a - b);
  const q = (x: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(x * latencies.length))] ?? NaN;
  const mean = latencies.reduce((a, b) => a + b, 0) / latencies.length;
  console.log(
    `${args.clients} clients, fdatasync ${args.syncMs} ms, message ${args.netMs} ms: ` +
      `${latencies.length} writes in ${args.durationMs} ms (${Math.round((latencies.length / args.durationMs) * 1000)}/s), ` +
      `p50 ${q(0.5).toFixed(2)} ms, p90 ${q(0.9).toFixed(2)} ms, mean ${mean.toFixed(2)} ms`,
  );
  if (sched.failure !== undefined) throw sched.failure;
}

await main();
