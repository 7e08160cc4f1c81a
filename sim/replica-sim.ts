// runReplicaSeed: one seeded run of the whole replica layer (docs/replica-sim.md; CLUSTER.md §3.1
// items 38-39). N members (Replica + DiskLog + SimEngine + ReplicatedEngine + Db) on one
// SimScheduler; simulated clients; a chaos phase whose faults the seed picks (message loss,
// duplication, delay and reordering, partitions, crashes with and without power loss, injected
// I/O errors, leader transfers, clock skew); then a heal phase that must elect a leader and
// converge. Checkers: the Raft checkers (sim/checkers.ts) on every event, commit timestamps
// increasing in every log, no request waiting forever; at the end, linearizability of the client
// history (final reads of every key included, so a lost acknowledged write is caught) and equal
// engine digests on every member at equal applied index.
import { createHash } from 'node:crypto';
import type { NodeId, RawNode } from '../src/raft/index.js';
import type { Replica } from '../src/replica/replica.js';
import { Prng } from '../src/stdx/prng.js';
import { Checkers, SafetyViolation } from './checkers.js';
import { checkLinearizability } from './linearizability.js';
import type { NetworkOptions } from './network.js';
import { RELIABLE } from './network.js';
import { type AdditionStats, SimAddition } from './replica-addition.js';
import { BANK_CLIENTS_MAX, type BankStats, SimBank } from './replica-bank.js';
import { type ClientStats, SimClients, TTL_KEY } from './replica-clients.js';
import { type IoLatency, NO_FAULTS } from './replica-fs.js';
import {
  type EngineItem,
  engineItems,
  type MemberEnv,
  type SimEngineKind,
  SimMember,
} from './replica-member.js';
import { ReplicaNet } from './replica-net.js';
import { SimRespLinks } from './replica-resp.js';
import { SimScheduler } from './replica-scheduler.js';
import { SimSockets } from './replica-sockets.js';

/** CHAOS_MS_DEFAULT: simulated length of the fault phase (about 150 election timeouts' worth of ticks). */
export const CHAOS_MS_DEFAULT = 20_000;
/** LIVENESS_BOUND_MS: after healing, a ready leader and full convergence must come within this. */
export const LIVENESS_BOUND_MS = 30_000;
/** FINAL_READ_TRY_MS: how long the heal phase lets one final read try before another. */
const FINAL_READ_TRY_MS = 1000;
/** CHAOS_GAP_MS: the pause between two chaos actions, [min, max]. */
const CHAOS_GAP_MS: readonly [number, number] = [100, 1500];
/** RESTART_DELAY_MS: how long a crashed or failed member stays down, [min, max]. */
const RESTART_DELAY_MS: readonly [number, number] = [50, 3000];
/** FAULT_WINDOW_MS: how long injected I/O errors stay on, [min, max]. */
const FAULT_WINDOW_MS: readonly [number, number] = [20, 1000];
/** LIN_STEP_BUDGET: the linearizability search's budget (steps, so the answer is deterministic). */
const LIN_STEP_BUDGET = 20_000_000;
/** CLIENTS_MAX, KEYS_MAX: workload size: a few clients over few keys, for contention. */
const CLIENTS_MAX = 5;
const KEYS_MAX = 4;
/** SKEW_MS_MAX: how far a member's wall clock may be off. */
const SKEW_MS_MAX = 2000;
/** WIPE_PRNG_SALT: the lost-directory scenario's own stream (when and whom it wipes). */
const WIPE_PRNG_SALT = 0x1d1e;
/** REMOVE_PRNG_SALT: the removal scenario's own stream (when and whom it removes). */
const REMOVE_PRNG_SALT = 0x7e30;
/** CAS_PRNG_SALT, BANK_PRNG_SALT: the transactions scenario's streams (CAS choices; bank clients). */
const CAS_PRNG_SALT = 0xca5;
const BANK_PRNG_SALT = 0xba4c;
/** RESP_PRNG_SALT: the RESP scenario's stream (which operations are RESP commands, and to whom). */
const RESP_PRNG_SALT = 0x6379;
const BANK_RESP_PRNG_SALT = 0x6b79;
/** TTL_PRNG_SALT: the expiry scenario's stream (which operations are on its key). */
const TTL_PRNG_SALT = 0x771;
/** ADD_PRNG_SALT: the add-member scenario's stream (when it adds). */
const ADD_PRNG_SALT = 0xadd;

export interface ReplicaRunOptions {
  readonly seed: number;
  /** nodes: 3 or 5; by default odd seeds run 3 members and even seeds 5. */
  readonly nodes?: number;
  readonly chaosMs?: number;
  readonly trace?: (line: string) => void;
  /**
   * followerDeletes: clients also send DELETEs to members that are not the ready leader, which
   * must refuse them (once a finding: docs/replica-sim.md); on by default.
   */
  readonly followerDeletes?: boolean;
  /**
   * lostDirectory: members run the start check and the leader records started marks; once in the
   * chaos phase a member loses its directory and is restarted on the empty disk. Its start must be
   * refused when any member had applied its mark (else a SafetyViolation), and no acknowledged
   * write may be lost either way (docs/replica-sim.md, "Lost directories").
   */
  readonly lostDirectory?: boolean;
  /**
   * removeMember: once in the chaos phase the ready leader removes a member (itself, at times:
   * the Raft core's handover, without the operator's). The removed member must stop (removal.ts:
   * it applies its removal or a peer tells it; a removed leader hands over first), stay down, and
   * no acknowledged write may be lost (docs/replica-sim.md, "Removed members").
   */
  readonly removeMember?: boolean;
  /**
   * transactions: clients also run compare-and-swaps on their keys (checked for linearizability
   * with the rest), and bank clients run multi-key transfers and snapshot audits on other keys
   * (sim/replica-bank.ts: the balances always add up, no acknowledged transfer is lost and no
   * failed one applied; docs/replica-sim.md, "Transactions").
   */
  readonly transactions?: boolean;
  /**
   * engine: which engine members run: `sim` (the default: sim/replica-engine.ts) or `cask`, the
   * engine `cairn serve` runs (docs/replica-sim.md, "The engine").
   */
  readonly engine?: SimEngineKind;
  /**
   * resp: every member runs the RESP server on simulated sockets, and part of the clients'
   * operations are RESP commands sent to any member, which forwards them to the leader
   * (docs/replica-sim.md, "RESP and forwarding").
   */
  readonly resp?: boolean;
  /**
   * addMember: once in the chaos phase the ready leader adds a new member as a learner; it starts
   * on an empty disk, catches up and is promoted once caught up (docs/replica-sim.md, "Added
   * members").
   */
  readonly addMember?: boolean;
  /**
   * ttl: clients also write a key with times to live that run out during the run; members' clocks
   * agree (no skew), so its expiry must be linearizable (docs/replica-sim.md, "Expiry").
   */
  readonly ttl?: boolean;
}

/** ScenarioOptions: a run's options besides its seed (what a replay must repeat). */
export type ScenarioOptions = Omit<ReplicaRunOptions, 'seed' | 'nodes' | 'trace'>;

export interface ReplicaRunResult {
  readonly seed: number;
  readonly nodes: number;
  readonly ok: boolean;
  /** error is empty when ok. */
  readonly error: string;
  /** digest: a hash of the whole run's trace and final state (equal for two runs of a seed). */
  readonly digest: string;
  readonly simMs: number;
  readonly events: number;
  readonly ops: ClientStats;
  /** engineEvents: the cask engines' events by type (compactions done and failed, ...). */
  readonly engineEvents: Readonly<Record<string, number>>;
  /** bank: the transactions scenario's transfers and audits (undefined without it). */
  readonly bank: BankStats | undefined;
  readonly crashes: number;
  /** crashesMidSave: crashes of a member with pipelined log saves in flight (not yet durable). */
  readonly crashesMidSave: number;
  readonly powerLosses: number;
  readonly ioFaults: number;
  readonly leaders: number;
  readonly messages: number;
  /** applied: the final applied index (equal on every member). */
  readonly applied: number;
  /** startChecks: how start checks ended (lostDirectory runs; every member's first start is one). */
  readonly startChecks: {
    refused: number;
    confirmed: number;
    fresh: number;
    wipes: number;
    doubleFaults: number;
  };
  /** removal: the removeMember scenario's removal, once it stopped its member. */
  readonly removal: { member: number; how: string; handedOver: boolean; wasLeader: boolean } | undefined;
  /**
   * sockets: the RESP scenario's connections: opened (memberLinks of them by members, to forward
   * to the leader), reset by a death or a cut link, refused by a member that was down.
   */
  readonly sockets: { opened: number; memberLinks: number; reset: number; refused: number } | undefined;
  /** addition: the add-member scenario's new member: when it was added and promoted. */
  readonly addition: AdditionStats | undefined;
}

export function nodesForSeed(seed: number, nodes: number | undefined): number {
  return nodes ?? (seed % 2 === 1 ? 3 : 5);
}

/** replayCommand: how to run one seed again, with its trace. */
export function replayCommand(r: Pick<ReplicaRunResult, 'seed' | 'nodes'>, o: ScenarioOptions): string {
  const chaosMs = o.chaosMs ?? CHAOS_MS_DEFAULT;
  const chaos = chaosMs === CHAOS_MS_DEFAULT ? '' : ` --chaos-ms ${chaosMs}`;
  const deletes = o.followerDeletes === false ? ' --no-follower-deletes' : '';
  const lost = o.lostDirectory === true ? ' --lost-directory' : '';
  const remove = o.removeMember === true ? ' --remove-member' : '';
  const txn = o.transactions === true ? ' --transactions' : '';
  const eng = (o.engine ?? 'sim') === 'sim' ? '' : ` --engine ${o.engine}`;
  const resp = o.resp === true ? ' --resp' : '';
  const add = o.addMember === true ? ' --add-member' : '';
  const ttl = o.ttl === true ? ' --ttl' : '';
  return `npm run sim:replica -- --seed ${r.seed} --nodes ${r.nodes}${chaos}${deletes}${lost}${remove}${txn}${eng}${resp}${add}${ttl} --trace`;
}

function randomNetwork(p: Prng): NetworkOptions {
  const delayMsMax = p.range(1, 30);
  return {
    dropRate: p.pick([0, 0.01, 0.05, 0.1]),
    duplicateRate: p.pick([0, 0.01, 0.05]),
    delayMsMin: 1,
    delayMsMax,
    longDelayRate: p.pick([0, 0, 0.02, 0.1]),
    longDelayMsMax: delayMsMax + p.range(0, 500),
    longDelayResponsesOnly: false,
  };
}

/** SNAPSHOT_ENTRIES_CHOICES: entries between snapshots; small, so that runs compact logs and ship snapshots. */
const SNAPSHOT_ENTRIES_CHOICES = [15, 40, 100] as const;
const SNAPSHOT_PRNG_SALT = 0x5eed;
/** MID_SAVE_PRNG_SALT, MID_SAVE_CRASH_RATE: the stream and the share of crashes put off to a log save. */
const MID_SAVE_PRNG_SALT = 0x5a7e;
const MID_SAVE_CRASH_RATE = 0.5;
/** CHECK_RATE: the chance, per chaos step, that the leader is asked for a check entry. */
const CHECK_RATE = 0.1;

/** raftOf reads a Replica's core (private) for the Raft checkers: the simulator's one peek inside. */
function raftOf(r: Replica): RawNode['raft'] {
  return (r as unknown as { rn: RawNode }).rn.raft;
}

export async function runReplicaSeed(opts: ReplicaRunOptions): Promise<ReplicaRunResult> {
  const nodes = nodesForSeed(opts.seed, opts.nodes);
  const chaosMs = opts.chaosMs ?? CHAOS_MS_DEFAULT;
  const p = new Prng(opts.seed);
  const sched = new SimScheduler();
  const hash = createHash('sha256');
  const trace = (line: string): void => {
    hash.update(`${sched.now} ${line}\n`);
    opts.trace?.(`${sched.now}ms ${line}`);
  };
  const net = new ReplicaNet(p, randomNetwork(p));
  net.onDeliver = (m) =>
    hash.update(`${sched.now}>${m.from}>${m.to}:${m.type}:${m.term}:${m.index}:${m.commit}\n`);
  const checkers = new Checkers();
  const sockets = opts.resp === true ? new SimSockets(sched, net, trace) : undefined;
  const links = sockets === undefined ? undefined : new SimRespLinks(sockets);
  const ids: NodeId[] = Array.from({ length: nodes }, (_, i) => i + 1);
  const syncMax = p.range(1, 10);
  const latency: IoLatency = { writeMs: [0, p.range(0, 2)], syncMs: [Math.min(1, syncMax), syncMax] };
  let crashes = 0;
  let ioFaults = 0;
  const members: SimMember[] = [];
  const engineEvents: Record<string, number> = {};
  const restart = (m: SimMember, powerLoss: boolean, tornRate: number): void => {
    if (m.proc !== undefined) clients.crashed(m.proc);
    m.crash(powerLoss, tornRate);
    crashes++;
    sched.at(p.range(...RESTART_DELAY_MS), () => {
      if (m.proc === undefined && !m.gone) m.start();
    });
  };
  const lostDirectory = opts.lostDirectory === true;
  const startChecks = { refused: 0, confirmed: 0, fresh: 0, wipes: 0, doubleFaults: 0 };
  /** markedAtWipe: the wiped member, and whether some member had applied its mark then. */
  let wiped: { member: SimMember; marked: boolean } | undefined;
  // Snapshot spacing comes from its own stream, so the main stream's draws stay as they were.
  const snap = new Prng(opts.seed ^ SNAPSHOT_PRNG_SALT);
  const snapshotEntries = snap.pick(SNAPSHOT_ENTRIES_CHOICES);
  const midSave = new Prng(opts.seed ^ MID_SAVE_PRNG_SALT);
  // Every digest taken at a check entry, by index: members must agree (state machine safety,
  // and the digest is deterministic: the same bytes for the same state).
  const checkDigests = new Map<number, string>();
  const env: MemberEnv = {
    onDigest: (id, d) => {
      const seen = checkDigests.get(d.index);
      trace(`n${id} digest at ${d.index}: ${d.digest} (${d.keys} keys)`);
      if (seen === undefined) checkDigests.set(d.index, d.digest);
      else if (seen !== d.digest) {
        sched.fail(
          new SafetyViolation(`check at ${d.index}: n${id}'s digest ${d.digest} differs from ${seen}`),
        );
      }
    },
    snapshotEntries,
    snapshotCatchupEntries: snap.range(1, Math.max(1, Math.floor(snapshotEntries / 2))),
    sched,
    prng: p,
    net,
    ids,
    latency,
    segmentBytes: p.pick([4096, 16 * 1024, 64 * 1024 * 1024]),
    engine: opts.engine ?? 'sim',
    ...(sockets === undefined ? {} : { sockets }),
    onEngineEvent: (id, type, detail) => {
      engineEvents[type] = (engineEvents[type] ?? 0) + 1;
      trace(`n${id} engine ${type}${detail === '' ? '' : `: ${detail}`}`);
    },
    trace,
    onPersist: (id, entries, prevTerm) => checkers.onPersist(id, entries, prevTerm),
    startChecks: lostDirectory,
    removals: opts.removeMember === true,
    onRemoved: (m, how, handedOver) => {
      // The member closes: its clients' requests end as at a crash (ambiguous, never lost).
      if (m.proc !== undefined) clients.crashed(m.proc);
      removal = { member: m.id, how, handedOver, wasLeader: removedLeader === m.id };
      trace(`n${m.id} stopped: removed (${how}${handedOver ? '' : ', no handover within the bound'})`);
    },
    members: () => members,
    onStartChecked: (m, decision) => {
      // The refused process exits: its clients' requests fail as at a crash.
      if (decision === 'refuse' && m.proc !== undefined) clients.crashed(m.proc);
      if (decision === 'refuse') startChecks.refused++;
      else startChecks[decision]++;
      if (wiped?.member !== m || !wiped.marked || decision === 'refuse') return;
      if (decision === 'confirmed') {
        sched.fail(
          new SafetyViolation(
            `n${m.id} lost its directory after its started mark was applied, and a peer confirmed it never started`,
          ),
        );
        return;
      }
      // Passed on fresh answers: a majority with this member held no leader's entry, so a member
      // besides it lost acknowledged entries too (a power cut before its save) or never had any:
      // two faults, which the check does not promise to survive (docs/cluster.md, "Not covered").
      // The run takes the member out, as if refused, and goes on checking the rest.
      trace(`n${m.id} passed on fresh answers after its mark: a second fault; taken out`);
      startChecks.doubleFaults++;
      m.refused = true;
    },
    onFatal: (m, err) => {
      const proc = m.proc;
      trace(`fatal ${proc?.name ?? `n${m.id}`}: ${err instanceof Error ? err.message : String(err)}`);
      // The process exits; an operator (or systemd) restarts it a little later.
      sched.at(p.range(1, 50), () => {
        if (m.proc === proc && proc !== undefined) restart(m, p.chance(0.5), 0.5);
      });
    },
  };
  // Skews are drawn in every run (the stream stays as it was); the expiry scenario sets them to 0.
  const skew = (prng: Prng): number => {
    const drawn = prng.chance(0.5) ? prng.range(-SKEW_MS_MAX, SKEW_MS_MAX) : 0;
    return opts.ttl === true ? 0 : drawn;
  };
  for (const id of ids) members.push(new SimMember(id, env, skew(p)));
  const keys = Array.from({ length: p.range(1, KEYS_MAX) }, (_, i) => `k${i}`);
  const transactions = opts.transactions === true;
  const clients = new SimClients(
    sched,
    p,
    members,
    keys,
    trace,
    opts.followerDeletes !== false,
    transactions ? new Prng(opts.seed ^ CAS_PRNG_SALT) : undefined,
    links === undefined ? undefined : { prng: new Prng(opts.seed ^ RESP_PRNG_SALT), links },
    opts.ttl === true ? new Prng(opts.seed ^ TTL_PRNG_SALT) : undefined,
  );
  const bankPrng = new Prng(opts.seed ^ BANK_PRNG_SALT);
  const bank = transactions
    ? new SimBank(
        sched,
        bankPrng,
        members,
        () => clients.leader(),
        trace,
        links === undefined ? undefined : { prng: new Prng(opts.seed ^ BANK_RESP_PRNG_SALT), links },
      )
    : undefined;
  if (bank !== undefined) clients.attach(bank);

  // The lost directory, once per run (lostDirectory): only while every other member holds a
  // leader's entry (a wiped member whose peers know nothing is the case the check lets through by
  // design: docs/cluster.md). As soon as some member's mark is applied on one member and not yet on
  // another (looked for after every event), that member is the victim, and the network cuts it and
  // the members behind off from the rest: its only reachable peers are then behind (the gap the
  // first version of the check had). Else a random member, a quarter to three quarters through the
  // chaos phase.
  const wipes = new Prng(opts.seed ^ WIPE_PRNG_SALT);
  let wipeAt = Number.POSITIVE_INFINITY;
  let chaosOn = false;
  let wipePending = false;
  const wipeReady = (victim: SimMember): boolean =>
    members.every(
      (m) => m.running !== undefined && !m.running.checking && (m === victim || !m.running.replica.fresh),
    );
  const wipe = (victim: SimMember, split: readonly NodeId[] | undefined): void => {
    if (!wipeReady(victim)) return;
    const marked = members.some((m) => m.running?.membership.isStarted(victim.id) === true);
    wiped = { member: victim, marked };
    startChecks.wipes++;
    trace(`n${victim.id} loses its directory (${marked ? 'marked' : 'not marked yet'})`);
    if (split !== undefined) {
      const behind = [victim.id, ...split];
      net.partition([behind, ids.filter((id) => !behind.includes(id))]);
      trace(`partition ${behind.join(',')} (behind on n${victim.id}'s mark) | the rest`);
    }
    if (victim.proc !== undefined) clients.crashed(victim.proc);
    victim.wipe();
    sched.at(p.range(...RESTART_DELAY_MS), () => {
      if (victim.proc === undefined && !victim.gone) victim.start();
    });
  };

  // The removal, once per run (removeMember): a quarter to three quarters through the chaos, the
  // ready leader proposes removing a member its own stream picks (possibly itself), again at each
  // chaos step until one proposal was applied. A second removal never follows.
  const removes = new Prng(opts.seed ^ REMOVE_PRNG_SALT);
  let removal: ReplicaRunResult['removal'];
  let removeAt = Number.POSITIVE_INFINITY;
  let removedLeader: NodeId | undefined;
  let removeTarget: SimMember | undefined;
  let removeProposed = false;
  let removeInFlight = false;
  const removeOne = (): void => {
    if (removeProposed || removeInFlight || sched.now < removeAt) return;
    const leader = clients.leader();
    const run = leader?.running;
    if (leader === undefined || run === undefined) return;
    removeTarget ??= removes.pick(members);
    const target = removeTarget;
    if (run.membership.isRemoved(target.id)) {
      // An earlier proposal whose outcome was not known did commit.
      removeProposed = true;
      return;
    }
    removeInFlight = true;
    trace(`n${leader.id} proposes removing n${target.id}`);
    run.replica
      .proposeConfChange({
        transition: 'auto',
        changes: [{ type: 'removeNode', nodeId: target.id }],
        context: new Uint8Array(0),
      })
      .then(
        () => {
          removeProposed = true;
          if (target.id === leader.id) removedLeader = leader.id;
          trace(`n${target.id}'s removal applied on n${leader.id}`);
        },
        (err: unknown) => trace(`removal of n${target.id} not applied: ${(err as Error).message}`),
      )
      .finally(() => {
        removeInFlight = false;
      });
  };

  // The addition (addMember): a member beyond the initial ones, added and promoted while the
  // chaos runs (sim/replica-addition.ts). Its skew is drawn from the scenario's own stream.
  const adds = new Prng(opts.seed ^ ADD_PRNG_SALT);
  const addition =
    opts.addMember === true
      ? new SimAddition(
          sched,
          adds,
          members,
          new SimMember(nodes + 1, env, skew(adds), true),
          () => clients.leader(),
          net,
          trace,
          chaosMs,
        )
      : undefined;

  // Checked after every event: election safety, leader completeness, state machine safety.
  let maxTerm = 0;
  const observe = (): void => {
    for (const m of members) {
      const run = m.running;
      if (run === undefined) continue;
      const raft = raftOf(run.replica);
      maxTerm = Math.max(maxTerm, raft.term);
      if (raft.state === 'leader') {
        checkers.onLeader(m.id, raft.term);
        if (m.leaderTerm !== raft.term) {
          m.leaderTerm = raft.term;
          trace(`n${m.id} leads term ${raft.term}`);
          checkers.onBecomeLeader(m.id, raft);
        }
      }
      while (m.appliedSeen < run.replica.applied) {
        const first = run.log.firstIndex();
        if (m.appliedSeen + 1 < first) {
          // The entries below the log's start came in a snapshot (installed, or compacted
          // before this process started): go on from the digest the first applier recorded.
          m.appliedSeen = first - 1;
          m.applyHash = checkers.digestAt(m.id, m.appliedSeen);
          continue;
        }
        const i = ++m.appliedSeen;
        const e = run.log.entries(i, i + 1, Number.POSITIVE_INFINITY)[0];
        if (e === undefined) throw new Error(`n${m.id} applied ${i}, which its log does not hold`);
        m.applyHash = checkers.onApply(m.id, e, m.applyHash, maxTerm);
      }
    }
  };
  sched.afterEvent = () => {
    observe();
    if (!lostDirectory || !chaosOn || wiped !== undefined || wipePending) return;
    const split = splitMark(members);
    if (split !== undefined && wipeReady(split.victim)) {
      // Not from inside the checkers' hook: as the next event.
      wipePending = true;
      sched.at(0, () => {
        wipePending = false;
        if (wiped === undefined && chaosOn) wipe(split.victim, split.behind);
      });
    }
  };
  const run = (ms: number, stop?: () => boolean): Promise<void> => sched.runUntil(sched.now + ms, stop);

  let error = '';
  let applied = 0;
  try {
    for (const m of members) m.start();
    clients.start(p.range(1, CLIENTS_MAX));
    bank?.start(bankPrng.range(1, BANK_CLIENTS_MAX));
    // Chaos: one action per gap, then the clock runs on.
    const chaosEnd = sched.now + chaosMs;
    chaosOn = true;
    wipeAt = sched.now + wipes.range(Math.floor(chaosMs / 4), Math.floor((3 * chaosMs) / 4));
    if (opts.removeMember === true)
      removeAt = sched.now + removes.range(Math.floor(chaosMs / 4), Math.floor((3 * chaosMs) / 4));
    while (sched.now < chaosEnd) {
      chaos(p, midSave, members, net, clients, restart, trace, () => ioFaults++);
      if (lostDirectory && wiped === undefined && sched.now >= wipeAt) wipe(wipes.pick(members), undefined);
      removeOne();
      addition?.step();
      // A check (`cairn check hash`) now and then, from the second stream: every member that
      // applies it digests its engine there, and the digests must agree (onDigest below).
      if (snap.chance(CHECK_RATE)) {
        const leader = clients.leader();
        leader?.running?.replica.proposeCheck().then(
          (index) => trace(`check at ${index}`),
          () => {},
        );
      }
      await run(p.range(...CHAOS_GAP_MS));
    }
    chaosOn = false;
    // Heal: every member up, the network reliable, no more faults; the clients finish.
    clients.stop();
    net.heal();
    net.options = RELIABLE;
    for (const m of members) {
      if (m.running !== undefined) m.running.fs.faults = { ...NO_FAULTS };
      if (m.proc === undefined && !m.gone) m.start();
    }
    trace('healed');
    const healedAt = sched.now;
    const converged = (): boolean => {
      const leader = clients.leader();
      if (leader === undefined || clients.pending > 0) return false;
      const commit = leader.running?.replica.status().commit ?? 0;
      return members.every(
        (m) =>
          m.gone || (m.running !== undefined && !m.running.checking && m.running.replica.applied === commit),
      );
    };
    await run(LIVENESS_BOUND_MS, converged);
    if (!converged()) {
      // The leader's view of each member tells a stuck transfer from a stuck follower.
      trace(`progress: ${progressOf(members)}`);
      throw new Error(
        `liveness: no ready leader and convergence within ${LIVENESS_BOUND_MS} ms of healing (${states(members)})`,
      );
    }
    // Final reads: every key read linearizably on the leader, into the history.
    for (const key of opts.ttl === true ? [...keys, TTL_KEY] : keys) {
      let done = false;
      while (!done && sched.now - healedAt < 2 * LIVENESS_BOUND_MS) {
        const leader = clients.leader();
        if (leader === undefined) {
          // No ready leader for a moment (a new election): let time pass. (With a stop condition
          // that holds at once, no time passed and this loop spun forever: seed 90505.)
          await run(FINAL_READ_TRY_MS);
          continue;
        }
        clients.get(-1, key, leader, (ok) => (done = ok));
        await run(FINAL_READ_TRY_MS, () => clients.pending === 0);
      }
      if (!done) throw new Error(`liveness: the final read of ${key} never succeeded`);
    }
    await run(LIVENESS_BOUND_MS, converged);
    if (!converged()) throw new Error(`liveness: no convergence after the final reads (${states(members)})`);
    // Convergence: identical engines at one applied index.
    const live = members.filter((m) => !m.gone);
    const digests = await Promise.all(live.map((m) => engineDigest(m)));
    applied = live[0]?.running?.replica.applied ?? 0;
    for (const [i, d] of digests.entries()) {
      const id = live[i]?.id ?? 0;
      trace(`digest n${id} ${d}`);
      if (d !== digests[0])
        throw new Error(
          `convergence: member ${id}'s engine differs from member ${live[0]?.id}'s at applied ${applied}: ${await firstDifference(live[0] as SimMember, live[i] as SimMember)}`,
        );
    }
    await bank?.check(live);
    const lin = checkLinearizability(clients.history, { stepBudget: LIN_STEP_BUDGET });
    if (lin.ok === false) throw new Error(`linearizability: ${lin.explanation}`);
    if (lin.ok === 'unknown') throw new Error(`linearizability: undecided (${lin.reason}) on ${lin.key}`);
  } catch (err) {
    error = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    // A replay with --trace shows where it broke.
    if (err instanceof Error && err.stack !== undefined) opts.trace?.(err.stack);
  }
  if (error === '' && sched.failure !== undefined) error = `${sched.failure.name}: ${sched.failure.message}`;
  trace(`end ${error}`);
  return {
    seed: opts.seed,
    nodes,
    ok: error === '',
    error,
    digest: hash.digest('hex').slice(0, 16),
    simMs: sched.now,
    events: sched.events,
    ops: { ...clients.stats },
    bank: bank === undefined ? undefined : { ...bank.stats },
    engineEvents,
    crashes,
    crashesMidSave: members.reduce((n, m) => n + m.crashesMidSave, 0),
    powerLosses: members.reduce((n, m) => n + m.disk.powerLosses, 0),
    ioFaults,
    leaders: checkers.leaders.size,
    messages: net.sent,
    applied,
    startChecks,
    removal,
    addition: addition?.final(),
    sockets:
      sockets === undefined
        ? undefined
        : {
            opened: sockets.opened,
            memberLinks: sockets.memberLinks,
            reset: sockets.reset,
            refused: sockets.refused,
          },
  };
}

/** chaos takes one action the seed picks. */
function chaos(
  p: Prng,
  midSave: Prng,
  members: readonly SimMember[],
  net: ReplicaNet,
  clients: SimClients,
  restart: (m: SimMember, powerLoss: boolean, tornRate: number) => void,
  trace: (line: string) => void,
  countFault: () => void,
): void {
  const ids = members.map((m) => m.id);
  const up = members.filter((m) => m.running !== undefined);
  const leader = clients.leader();
  const roll = p.float();
  if (roll < 0.12 && up.length > 0) {
    const victim = p.pick(up);
    const powerLoss = p.chance(0.5);
    const tornRate = p.pick([0, 0.5, 1]);
    // Half of the crashes wait for the victim's next log save, so that runs often crash a
    // member whose pipelined save is in flight with its appends sent (docs/cluster.md, "The
    // driver"). Drawn from a stream of its own: the main stream's draws stay as they were.
    if (midSave.chance(MID_SAVE_CRASH_RATE)) {
      trace(`n${victim.id} crashes at its next log save`);
      victim.crashAtSave = () => restart(victim, powerLoss, tornRate);
    } else restart(victim, powerLoss, tornRate);
  } else if (roll < 0.22) {
    const victim = leader !== undefined && p.chance(0.5) ? leader.id : p.pick(ids);
    net.partition([[victim], ids.filter((id) => id !== victim)]);
    trace(`isolate n${victim}`);
  } else if (roll < 0.32) {
    const shuffled = p.shuffle(ids.slice());
    const k = p.range(1, Math.floor(ids.length / 2));
    net.partition([shuffled.slice(0, k), shuffled.slice(k)]);
    trace(`partition ${shuffled.slice(0, k).join(',')} | ${shuffled.slice(k).join(',')}`);
  } else if (roll < 0.36) {
    const a = p.pick(ids);
    const b = p.pick(ids.filter((x) => x !== a));
    net.cutLink(a, b);
    trace(`cut n${a}>n${b}`);
  } else if (roll < 0.5) {
    net.heal();
    trace('heal network');
  } else if (roll < 0.58 && up.length > 0) {
    const m = p.pick(up);
    const fs = m.running?.fs;
    if (fs === undefined) return;
    fs.faults = { failRate: p.pick([0.02, 0.1, 0.5]), tornRate: p.pick([0, 0.5]) };
    countFault();
    trace(`io faults on ${m.proc?.name ?? ''} ${fs.faults.failRate}`);
    fs.proc.after(p.range(...FAULT_WINDOW_MS), () => {
      fs.faults = { ...NO_FAULTS };
    });
  } else if (roll < 0.66 && leader !== undefined) {
    const to = p.pick(ids.filter((id) => id !== leader.id));
    trace(`transfer leader n${leader.id} -> n${to}`);
    leader.running?.replica.transferLeader(to);
  } else if (roll < 0.7) {
    net.options = randomNetwork(p);
    trace(`network ${JSON.stringify(net.options)}`);
  }
}

/**
 * splitMark: a member whose started mark some member has applied and some other running member
 * has not (it is behind), with those behind; undefined when there is none.
 */
function splitMark(
  members: readonly SimMember[],
): { readonly victim: SimMember; readonly behind: readonly NodeId[] } | undefined {
  for (const victim of members) {
    const others = members.filter((m) => m !== victim);
    const behind = others.filter(
      (m) => m.running !== undefined && !m.running.membership.isStarted(victim.id),
    );
    if (
      behind.length > 0 &&
      behind.length < others.length &&
      others.some((m) => m.running?.membership.isStarted(victim.id))
    )
      return { victim, behind: behind.map((m) => m.id) };
  }
  return undefined;
}

function states(members: readonly SimMember[]): string {
  return members
    .map((m) => {
      const r = m.running?.replica;
      if (r === undefined) return `n${m.id}:down`;
      const s = r.status();
      return `n${m.id}:${s.role}/t${s.term}/lead${s.leader}/c${s.commit}/a${s.applied}/last${s.lastIndex}${s.leaderReady ? '/ready' : ''}`;
    })
    .join(' ');
}

/** progressOf: the replication progress the leaders record for each member (for a trace). */
function progressOf(members: readonly SimMember[]): string {
  const out: string[] = [];
  for (const m of members) {
    const s = m.running?.replica.status();
    if (s?.role !== 'leader') continue;
    for (const [id, p] of s.progress)
      out.push(`n${m.id} sees n${id} ${p.state} match ${p.match} next ${p.next}`);
  }
  return out.join(', ') || 'no leader';
}

/** firstDifference: the first key whose item differs between two members' engines (for the error). */
async function firstDifference(a: SimMember, b: SimMember): Promise<string> {
  const show = (i: EngineItem | undefined): string =>
    i === undefined
      ? 'absent'
      : `${i.value.toString()} (expiry ${i.expiresAt ?? '-'}, revision ${i.revision.mod}/${i.revision.create}/${i.revision.version})`;
  const left = a.running === undefined ? [] : await engineItems(a.running.engine);
  const right = b.running === undefined ? [] : await engineItems(b.running.engine);
  const keys = [...new Set([...left, ...right].map((i) => i.key.toString()))].sort();
  for (const k of keys) {
    const x = left.find((i) => i.key.toString() === k);
    const y = right.find((i) => i.key.toString() === k);
    if (show(x) !== show(y)) return `key ${k}: n${a.id} ${show(x)}, n${b.id} ${show(y)}`;
  }
  return 'no key differs (the digests disagree on something else)';
}

/** engineDigest: every stored key, value, expiry and revision of a member's engine. */
async function engineDigest(m: SimMember): Promise<string> {
  const h = createHash('sha256');
  const engine = m.running?.engine;
  for (const i of engine === undefined ? [] : await engineItems(engine)) {
    h.update(`${i.key.toString('hex')}=${i.value.toString('hex')}@${i.expiresAt ?? '-'}`);
    h.update(`/${i.revision.mod}/${i.revision.create}/${i.revision.version}\n`);
  }
  return h.digest('hex').slice(0, 16);
}
