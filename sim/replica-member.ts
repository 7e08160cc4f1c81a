// SimMember: one cluster member of the replica simulator. Its disk (a SimDisk) outlives its
// processes; each process is what `cairn serve` would run: DiskLog (the WAL) and SimEngine over a
// SimFileSystem, a Replica driving them with the process's clock and defer, the ReplicatedEngine
// seam and a Db (the write pipeline) on top, joined to the simulated network.
//
// A crash kills the process (its timers, deferred steps and I/O completions never run) and drops
// every object; with power loss the disk also reverts to what was durable. A restart reopens the
// log and the engine from the disk, as a process restart would.
//
// A member removed from the cluster (env.removals) stops as `cairn serve` does (removal.ts): once
// it applied its removal, or a peer that applied it can reach it (the model of the handshake's
// refusal), it records the removal (`removed`, its member.json), hands over if it led
// (waitForHandoff, the same code) and its process ends; it is never started again.

import { Db } from '../src/db/db.js';
import { InjectedFault } from '../src/io/faulty-file-system.js';
import type { ConfState, Entry, HardState, Message, NodeId, Snapshot } from '../src/raft/index.js';
import { DiskLog } from '../src/replica/disk-log.js';
import { EngineFailureLatch } from '../src/replica/engine-failure.js';
import {
  installRepairSnapshot,
  installSnapshotEngine,
  openMemberEngine,
} from '../src/replica/engine-repair.js';
import { decodeWrite } from '../src/replica/entry-codec.js';
import { memberCaskOptions } from '../src/replica/member.js';
import { retireReadersOnChange } from '../src/replica/member-readers.js';
import {
  decodeSnapshotData,
  encodeSnapshotData,
  Membership,
  snapshotLogTs,
} from '../src/replica/membership.js';
import { type MemberRemoval, waitForHandoff } from '../src/replica/removal.js';
import { Replica, type ReplicaLog, type StateDigest } from '../src/replica/replica.js';
import { ReplicatedEngine } from '../src/replica/replicated-engine.js';
import { finishInstall, installEngineFiles } from '../src/replica/snapshot-install.js';
import { removeStagedDir } from '../src/replica/snapshot-staging.js';
import type { StartAnswer } from '../src/replica/start-check.js';
import { answerStartCheck, nextStartedMark, STARTED_MARK_INTERVAL_MS } from '../src/replica/started-marks.js';
import type { Transport } from '../src/replica/transport.js';
import { assert } from '../src/stdx/assert.js';
import type { Prng } from '../src/stdx/prng.js';
import { type CaskEngine, openCask } from '../src/storage/cask/cask-engine.js';
import type { Revision } from '../src/storage/engine.js';
import { SafetyViolation } from './checkers.js';
import { checkDurableAtOpen, checkWalDurableAtOpen } from './durable-at-open.js';
import { SimDisk } from './replica-disk.js';
import { ENGINE_FILE, SimEngine } from './replica-engine.js';
import { type IoLatency, SimFileSystem } from './replica-fs.js';
import type { ReplicaNet, SnapshotFile } from './replica-net.js';
import { serveResp } from './replica-resp.js';
import { SimClock, SimProcess, type SimScheduler, simEventLoop } from './replica-scheduler.js';
import type { SimSockets } from './replica-sockets.js';
import { type Answerer, readStartCheck, runSimStartCheck, writeStartCheck } from './replica-start-check.js';

/** DATA_DIR: the member's data directory, which exists (durably) before the first start. */
export const DATA_DIR = '/data';
export const WAL_DIR = `${DATA_DIR}/wal`;
export const ENGINE_DIR = `${DATA_DIR}/engine`;
/** SNAPSHOT_DIR: where snapshots from a leader are staged (inside the engine's raft/, as a member's are). */
export const SNAPSHOT_DIR = `${ENGINE_DIR}/raft/snap`;

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * SimEngineKind: the engine members run: `sim`, the simulator's own (sim/replica-engine.ts,
 * durability always), or `cask`, the engine `cairn serve` runs, opened as ClusterMember opens it
 * (durability interval with the log as the durable record, damage rebuilt or repaired:
 * engine-repair.ts) over the same simulated disk, with small data files so that runs seal files,
 * write hints and compact.
 */
export type SimEngineKind = 'sim' | 'cask';
/** MemberEngine: what a running member's engine is. */
export type MemberEngine = SimEngine | CaskEngine;
/** EngineItem: a stored key, its value, expiry and revision (what digests and the bank check read). */
export interface EngineItem {
  readonly key: Buffer;
  readonly value: Buffer;
  readonly expiresAt: number | undefined;
  readonly revision: Revision;
}

/** engineItems: every key of a member's engine with its value, expiry and revision, in key order. */
export async function engineItems(engine: MemberEngine): Promise<readonly EngineItem[]> {
  if (engine instanceof SimEngine) return engine.entries();
  const out: EngineItem[] = [];
  // The scan reads in synchronous chunks (no turn of the loop), so it needs no simulated event.
  for await (const [key, value] of engine.scan()) {
    const k = Buffer.from(key);
    const revision = engine.revisionSync(k);
    assert(revision !== undefined, 'a scanned key has a revision');
    out.push({
      key: k,
      value: Buffer.from(value),
      expiresAt: (await engine.expiry(k)) ?? undefined,
      revision,
    });
  }
  return out;
}

/** CASK_DATA_FILE_BYTES, CASK_COMPACTION_MIN_DEAD_BYTES: small, so that a run's few hundred writes seal and compact. */
const CASK_DATA_FILE_BYTES = 4096;
const CASK_COMPACTION_MIN_DEAD_BYTES = 2048;
/** CASK_CACHE_BYTES: a small value cache, so that reads also go to the simulated disk. */
const CASK_CACHE_BYTES = 4096;

/** MemberEnv: what every member shares: the scheduler, the seed's Prng, the network, hooks. */
export interface MemberEnv {
  readonly sched: SimScheduler;
  readonly prng: Prng;
  readonly net: ReplicaNet;
  readonly ids: readonly NodeId[];
  readonly latency: IoLatency;
  /** segmentBytes: the WAL's segment size (small, so that runs rotate segments). */
  readonly segmentBytes: number;
  /** engine: which engine the members run (default `sim`). */
  readonly engine?: SimEngineKind;
  /** onEngineEvent: a cask engine's event (compaction done or failed, a hint not written, ...). */
  readonly onEngineEvent?: (id: NodeId, type: string, detail: string) => void;
  readonly trace: (line: string) => void;
  /** onPersist: entries a member's log made durable, with the term before the first. */
  readonly onPersist: (id: NodeId, entries: readonly Entry[], prevTerm: number | undefined) => void;
  /** onDigest: a member digested its state at a check entry (the digests must agree). */
  readonly onDigest: (id: NodeId, digest: StateDigest) => void;
  /** snapshotEntries, snapshotCatchupEntries: small, so that runs take and ship snapshots. */
  readonly snapshotEntries: number;
  readonly snapshotCatchupEntries: number;
  /** onFatal: the member's Replica stopped (an I/O failure); the simulator restarts it. */
  readonly onFatal: (member: SimMember, err: unknown) => void;
  /**
   * startChecks: the lost-directory scenario: a start from an empty disk runs the start check,
   * and the ready leader records started marks, as `cairn serve` does (sim/replica-start-check.ts).
   */
  readonly startChecks?: boolean;
  /** members: every member, to ask in a start check. */
  readonly members?: () => readonly SimMember[];
  /**
   * onStartChecked: a start check of `member` ended (refused: it stays down for good); setting
   * `member.refused` takes a member that passed out as well.
   */
  readonly onStartChecked?: (member: SimMember, decision: 'refuse' | 'confirmed' | 'fresh') => void;
  /** removals: the run removes a member; a removed member stops (see the top of this file). */
  readonly removals?: boolean;
  /** onRemoved: `member` learned of its removal and its process is about to end. */
  readonly onRemoved?: (member: SimMember, how: MemberRemoval['how'], handedOver: boolean) => void;
  /**
   * sockets: each process also runs the RESP server on these simulated sockets, at
   * respAddress(id), forwarding to the leader what it does not run itself (sim/replica-resp.ts).
   */
  readonly sockets?: SimSockets;
}

/**
 * TOLD_CHECK_MS: how often a member of a removal run looks for a peer that would refuse it as
 * removed: the model of the transport's reconnections (RECONNECT_BACKOFF_MIN_MS and up).
 */
const TOLD_CHECK_MS = 100;

/** Running: the objects of a live process. */
export interface Running {
  readonly proc: SimProcess;
  readonly fs: SimFileSystem;
  readonly log: CheckedLog;
  /** engine: replaced when the member installs a snapshot. */
  engine: MemberEngine;
  readonly replica: Replica;
  readonly db: Db;
  readonly transport: Transport;
  /** membership: the member list with its started marks (kept only with env.startChecks). */
  readonly membership: Membership;
  /** checking: the process is running its start check (Raft messages are dropped). */
  checking: boolean;
}

export class SimMember {
  /** disk: replaced by an empty one when the member loses its directory (wipe). */
  disk = new SimDisk([DATA_DIR]);
  /** refused: its start check refused it (it lost its directory after it was marked): down for good. */
  refused = false;
  /** removed: it learned of its removal and recorded it (its member.json): down for good. */
  removed = false;
  incarnation = 0;
  proc: SimProcess | undefined;
  running: Running | undefined;
  /** appliedSeen, applyHash: the state machine checker's position in this process. */
  appliedSeen = 0;
  applyHash = 0;
  leaderTerm = 0;
  /** snapshotsInstalled: snapshots from a leader this member installed (all its processes). */
  snapshotsInstalled = 0;

  constructor(
    readonly id: NodeId,
    private readonly env: MemberEnv,
    /** skewMs: this member's wall clock minus the true time (timestamps come from it). */
    readonly skewMs: number,
    /**
     * joining: a member added to the running cluster (the add-member scenario): it starts with an
     * empty log and no configuration, as `cairn serve --initial-cluster-state existing` does, and
     * learns both from the leader.
     */
    readonly joining = false,
  ) {}

  get up(): boolean {
    return this.running !== undefined;
  }

  /** gone: out of the run for good (refused at a start check, or removed): never started again. */
  get gone(): boolean {
    return this.refused || this.removed;
  }

  /** start boots a process from the disk; it is up once the log and the engine are open. */
  start(): void {
    if (this.removed) {
      // `cairn serve` refuses a directory that records its removal (MemberRemovedError).
      this.env.trace(`n${this.id} records its removal: not started`);
      return;
    }
    const proc = new SimProcess(this.env.sched, `n${this.id}#${++this.incarnation}`);
    this.proc = proc;
    this.appliedSeen = 0;
    this.applyHash = 0;
    this.leaderTerm = 0;
    this.env.trace(`start ${proc.name}`);
    this.open(proc)
      .then(async (running) => {
        if (!proc.alive) return;
        this.running = running;
        if (this.env.startChecks === true && !(await this.checkStart(running))) return;
        running.replica.start(running.transport);
        if (this.env.sockets !== undefined)
          serveResp(this.env.sockets, {
            id: this.id,
            proc,
            clock: new SimClock(proc, this.skewMs),
            replica: running.replica,
            db: running.db,
            membership: running.membership,
            removed: () => this.removed,
          });
        this.env.trace(`up ${proc.name}`);
        if (this.env.startChecks === true) this.markEvery(running);
        if (this.env.removals === true) this.watchTold(running);
      })
      .then(
        () => {},
        (err: unknown) => {
          if (!proc.alive) return;
          // An injected fault while opening: the process exits and is started again later.
          if (err instanceof InjectedFault) this.env.onFatal(this, err);
          else this.env.sched.fail(err);
        },
      );
  }

  /** wipe: the member's directory is lost (a disk replaced): it crashes and its disk is empty. */
  wipe(): void {
    this.crash(false, 0);
    this.disk = new SimDisk([DATA_DIR]);
    this.env.trace(`n${this.id} lost its directory`);
  }

  /**
   * checkStart runs the start check when the disk says so (an empty disk: a first start, or a
   * wiped one) and holds votes after a pass on a confirmed answer; false when the process must
   * not go on (refused: it exits and stays down; or it died).
   */
  private async checkStart(run: Running): Promise<boolean> {
    const { env } = this;
    let state = await readStartCheck(run.fs, DATA_DIR);
    if (state === undefined) {
      await writeStartCheck(run.fs, DATA_DIR, 'pending');
      state = 'pending';
    }
    if (state === 'pending') {
      const peers: Answerer[] = (env.members?.() ?? [])
        .filter((m) => m.id !== this.id)
        .map((m) => ({ id: m.id, live: () => m.answerer() }));
      const decision = await runSimStartCheck({
        net: env.net,
        proc: run.proc,
        self: this.id,
        peers,
        trace: env.trace,
      });
      if (decision === undefined || !run.proc.alive) return false;
      if (decision.kind === 'refuse') {
        env.trace(`n${this.id} refused at its start (${decision.why}, says ${decision.peer}): down for good`);
        this.refused = true;
        env.onStartChecked?.(this, 'refuse');
        this.crash(false, 0);
        return false;
      }
      state = decision.floor === undefined ? 'passed' : { floor: decision.floor };
      await writeStartCheck(run.fs, DATA_DIR, state);
      if (!run.proc.alive) return false;
      env.onStartChecked?.(this, decision.via);
      if (this.refused) {
        // The run took it out (a second fault the check does not promise to survive).
        this.crash(false, 0);
        return false;
      }
    }
    run.checking = false;
    if (typeof state !== 'string') {
      const { floor } = state;
      run.replica.holdVotes(floor, () => {
        env.trace(`n${this.id} applied ${floor.index}: votes no longer held`);
        void writeStartCheck(run.fs, DATA_DIR, 'passed').catch(() => {});
      });
    }
    return run.proc.alive;
  }

  /** answerer: this member's answer to a start check, while it runs (answerStartCheck). */
  answerer(): { readonly proc: SimProcess; answer(asker: NodeId): Promise<StartAnswer> } | undefined {
    const run = this.running;
    if (run === undefined || !run.proc.alive) return undefined;
    return {
      proc: run.proc,
      answer: (asker) =>
        answerStartCheck(
          {
            isStarted: (id) => run.membership.isStarted(id),
            checking: run.checking,
            replica: run.replica,
            clock: new SimClock(run.proc, this.skewMs),
          },
          asker,
        ),
    };
  }

  /** markEvery: the ready leader records started marks (nextStartedMark), as ClusterMember does. */
  private markEvery(run: Running): void {
    let marking = false;
    new SimClock(run.proc, this.skewMs).every(STARTED_MARK_INTERVAL_MS, () => {
      if (marking || !run.replica.leaderReady) return;
      const next = nextStartedMark(run.replica.status(), this.id, run.membership);
      if (next === undefined) return;
      marking = true;
      run.replica.proposeConfChange(next.change).then(
        () => {
          marking = false;
          this.env.trace(`n${this.id} marked n${next.record.id} as started`);
        },
        () => {
          marking = false;
        },
      );
    });
  }

  /**
   * watchTold: a removed member that never applies its removal learns it from a peer that did,
   * as soon as that peer can reach it (the refusal of its reconnection, handshake.ts).
   */
  private watchTold(run: Running): void {
    new SimClock(run.proc, this.skewMs).every(TOLD_CHECK_MS, () => {
      const teller = (this.env.members?.() ?? []).find(
        (m) =>
          m !== this &&
          m.running?.membership.isRemoved(this.id) === true &&
          this.env.net.reachable(this.id, m.id) &&
          this.env.net.reachable(m.id, this.id),
      );
      if (teller !== undefined) this.removedNow(run, 'told', `n${teller.id}`);
    });
  }

  /**
   * removedNow: this member learned of its removal. As ClusterMember: recorded first, then a
   * removed leader hands over (waitForHandoff), then the process ends for good.
   */
  private removedNow(run: Running, how: MemberRemoval['how'], by: string): void {
    if (this.removed || this.proc !== run.proc) return;
    this.removed = true;
    this.env.trace(`n${this.id} removed (${how}, by ${by}): stops`);
    void waitForHandoff(run.replica, new SimClock(run.proc, this.skewMs)).then((handedOver) => {
      if (this.proc !== run.proc) return;
      this.env.onRemoved?.(this, how, handedOver);
      this.crash(false, 0);
    });
  }

  private async open(proc: SimProcess): Promise<Running> {
    const env = this.env;
    const fs = new SimFileSystem(this.disk, proc, env.prng, env.latency);
    const disk = await DiskLog.open(fs, WAL_DIR, { segmentBytes: env.segmentBytes });
    if (proc.alive) checkWalDurableAtOpen(this.disk, WAL_DIR, proc.name);
    const clock = new SimClock(proc, this.skewMs);
    const finished = await finishInstall(fs, ENGINE_DIR);
    if (finished !== undefined)
      env.trace(`n${this.id} finished an interrupted snapshot install (${finished.installed})`);
    // As ClusterMember: a store that fails in the background fails the member (engine-failure.ts).
    const engineFailure = new EngineFailureLatch();
    // As ClusterMember opens it, on this process's clock and loop, with small files.
    const caskOptions = memberCaskOptions(
      {
        clock,
        loop: simEventLoop(proc),
        dataFileBytes: CASK_DATA_FILE_BYTES,
        compactionMinDeadBytes: CASK_COMPACTION_MIN_DEAD_BYTES,
        cacheBytes: CASK_CACHE_BYTES,
        onEvent: (e) => {
          if (proc.alive && e.type !== 'recovered')
            env.onEngineEvent?.(
              this.id,
              e.type,
              e.type.endsWith('failed') ? String(e.detail.error ?? '') : '',
            );
        },
      },
      fs,
      engineFailure,
    );
    let engine: MemberEngine;
    let repairing = false;
    if (env.engine === 'cask') {
      const opened = await openMemberEngine({
        fs,
        dir: ENGINE_DIR,
        clock,
        logger: quiet,
        open: () => openCask(ENGINE_DIR, caskOptions),
        rebuildable: disk.firstIndex() === 1,
        unrepairable: () => undefined,
      });
      engine = opened.engine;
      repairing = opened.repairing;
      if (proc.alive && engine.recovery.problems.length > 0)
        env.trace(`n${this.id} engine recovery: ${engine.recovery.problems.map((p) => p.kind).join(', ')}`);
      env.trace(`n${this.id} engine open: lastTs ${engine.lastTs()}, ${engine.stats().keys} keys`);
      if (repairing) env.trace(`n${this.id} repairs its engine: waits for a snapshot`);
    } else {
      engine = await SimEngine.open(fs, ENGINE_DIR, clock);
      if (proc.alive)
        checkDurableAtOpen(this.disk, `${ENGINE_DIR}/${ENGINE_FILE}`, engine.stats().diskBytes, proc.name);
    }
    const log = new CheckedLog(
      disk,
      this.id,
      env.onPersist,
      (err) => env.sched.fail(err),
      (entries) => this.saving(proc, entries),
    );
    const fresh = disk.lastIndex() === 0 && disk.hardState().term === 0;
    let running: Running | undefined;
    const membership = new Membership(
      decodeSnapshotData(disk.snapshot().data) ?? {
        members: env.ids.map((id) => ({ id, name: `n${id}`, peerAddr: `sim:${id}` })),
        removed: [],
        index: 0,
        started: [],
      },
    );
    const replica = new Replica({
      id: this.id,
      log,
      engine,
      clock,
      logger: quiet,
      bootstrap: fresh && !this.joining ? env.ids : [],
      randomSeed: env.prng.u32(),
      defer: proc.defer,
      onFatal: (err) => {
        if (proc.alive) env.onFatal(this, err);
      },
      snapshotEntries: env.snapshotEntries,
      snapshotCatchupEntries: env.snapshotCatchupEntries,
      repairing,
      snapshots: {
        repair: async (stage, snap) => {
          assert(env.engine === 'cask', 'only a cask engine is repaired');
          engine = await installRepairSnapshot({
            fs,
            dir: ENGINE_DIR,
            stage,
            index: snap.metadata.index,
            current: engine as CaskEngine,
            open: (dir) => openCask(dir, caskOptions),
          });
          if (running !== undefined) running.engine = engine;
          env.trace(`n${this.id} repaired its engine from a snapshot (engine lastTs ${engine.lastTs()})`);
          return engine;
        },
        // The simulated members are fixed; the list travels with its started marks.
        data: (logTs) => encodeSnapshotData(membership.state(), logTs),
        logTsOf: snapshotLogTs,
        install: async (stage, snap) => {
          const state = decodeSnapshotData(snap.data);
          if (state !== undefined) membership.restore(state);
          if (engine instanceof SimEngine) {
            await engine.close();
            await installEngineFiles(fs, ENGINE_DIR, stage);
            engine = await SimEngine.open(fs, ENGINE_DIR, clock);
          } else {
            // As ClusterMember.installSnapshot.
            engine = await installSnapshotEngine(
              {
                fs,
                dir: ENGINE_DIR,
                stage,
                index: snap.metadata.index,
                current: engine,
                open: (d) => openCask(d, caskOptions),
              },
              (damage) => new Error(`the snapshot at ${snap.metadata.index} arrived damaged (${damage})`),
            );
          }
          try {
            if (proc.alive && engine instanceof SimEngine)
              checkDurableAtOpen(
                this.disk,
                `${ENGINE_DIR}/${ENGINE_FILE}`,
                engine.stats().diskBytes,
                proc.name,
              );
          } catch (err) {
            env.sched.fail(err); // the Replica would take a failed install for an I/O error
            throw err;
          }
          if (running !== undefined) running.engine = engine;
          this.snapshotsInstalled++;
          env.trace(`n${this.id} installed a snapshot (engine lastTs ${engine.lastTs()})`);
          return engine;
        },
        discard: (stage) => removeStagedDir(fs, stage),
      },
    });
    engineFailure.attach(replica);
    replica.onConfChange((cc, _cs, index) => {
      membership.apply(cc, index);
      const self = cc.changes.some((c) => c.type === 'removeNode' && c.nodeId === this.id);
      if (self && running !== undefined) this.removedNow(running, 'applied', `n${replica.leader}`);
    });
    replica.onDigest.add((d) => {
      if (proc.alive) env.onDigest(this.id, d);
    });
    let staged = 0;
    const stage = async (m: Message, files: readonly SnapshotFile[]): Promise<string> => {
      const dir = `${SNAPSHOT_DIR}/${m.snapshot?.metadata.index ?? 0}-${++staged}`;
      await fs.mkdir(dir);
      for (const f of files) {
        const file = await fs.open(`${dir}/${f.name}`, 'create');
        try {
          await file.write(f.bytes, 0);
          await file.datasync();
        } finally {
          await file.close();
        }
      }
      // Durable before Raft hears of it: the install removes the old engine's files first.
      for (const d of [dir, SNAPSHOT_DIR, `${ENGINE_DIR}/raft`, ENGINE_DIR]) await fs.syncDir(d);
      return dir;
    };
    const transport = env.net.join(
      this.id,
      proc,
      {
        // A member running its start check takes no part in Raft (ClusterMember drops the same).
        onMessages: (msgs) => {
          if (running?.checking !== true) replica.step(msgs);
        },
        onUnreachable: (to) => {
          if (running?.checking !== true) replica.unreachable(to);
        },
        onPeerInfo: () => {},
        onSnapshot: (m, dir) => {
          if (running?.checking === true) void removeStagedDir(fs, dir).catch(() => {});
          else replica.stepSnapshot(m, dir);
        },
      },
      stage,
    );
    const replicated = new ReplicatedEngine(engine, replica, () => transport.close());
    const db = new Db(DATA_DIR, replicated, { clock });
    // As `cairn serve`: open readers do not outlive a change of leadership or of the engine.
    retireReadersOnChange(replica, db.pipeline.mvcc);
    // With start checks, Raft messages are dropped until the marker says the check passed.
    running = {
      proc,
      fs,
      log,
      engine,
      replica,
      db,
      transport,
      membership,
      checking: env.startChecks === true,
    };
    return running;
  }

  /** crash kills the process; with powerLoss the disk reverts to its durable state. */
  /** crashesMidSave: crashes while this member had log saves in flight (pipelined, not yet durable). */
  crashesMidSave = 0;
  /**
   * crashAtSave: a crash the chaos put off until this member next saves entries to its log: it
   * then happens as soon as the scheduler runs again, with the save not yet durable and the
   * Ready's appends already sent (or its committed entries applied). Cleared by any crash.
   */
  crashAtSave: (() => void) | undefined;

  /** saving: the log of process `proc` was handed `entries` to save (see crashAtSave). */
  private saving(proc: SimProcess, entries: readonly Entry[]): void {
    const crash = this.crashAtSave;
    if (crash === undefined || entries.length === 0 || this.proc !== proc) return;
    this.crashAtSave = undefined;
    this.env.sched.at(0, () => {
      if (this.proc === proc) crash();
    });
  }

  crash(powerLoss: boolean, tornRate: number): void {
    this.crashAtSave = undefined;
    if ((this.running?.replica.savesPending ?? 0) > 0) this.crashesMidSave++;
    const proc = this.proc;
    if (proc !== undefined) {
      proc.kill();
      this.env.net.leave(this.id, proc);
    }
    this.proc = undefined;
    this.running = undefined;
    this.env.trace(`crash n${this.id}${powerLoss ? ' with power loss' : ''}`);
    if (powerLoss) {
      const prng = this.env.prng;
      this.disk.powerLoss((_file, unsynced) =>
        unsynced > 0 && prng.chance(tornRate) ? prng.range(1, unsynced) : 0,
      );
    }
  }
}

/**
 * CheckedLog: the member's ReplicaLog (a DiskLog) with two checkers on every save: log matching
 * (the Raft checkers' onPersist) and commit timestamps strictly increasing in log order.
 */
export class CheckedLog implements ReplicaLog {
  /** maxTs[i]: the highest commit timestamp of the entries up to index i. */
  private readonly maxTs: number[] = [0];

  constructor(
    readonly inner: DiskLog,
    private readonly id: NodeId,
    private readonly onPersist: MemberEnv['onPersist'],
    /** fail: reports a violation to the scheduler (a throw would only stop this member). */
    private readonly fail: (err: unknown) => void,
    /** onSave: told the entries of every save as it is handed over (before it is durable). */
    private readonly onSave: (entries: readonly Entry[]) => void = () => {},
  ) {
    const first = inner.firstIndex();
    const last = inner.lastIndex();
    this.checked(() =>
      this.track(first <= last ? inner.entries(first, last + 1, Number.POSITIVE_INFINITY) : []),
    );
  }

  private track(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    this.maxTs.length = first.index;
    for (const e of entries) {
      const prev = this.maxTs[e.index - 1] ?? 0;
      const w = e.type === 'normal' ? decodeWrite(e.data) : undefined;
      if (w !== undefined && w.ts <= prev) {
        throw new SafetyViolation(
          `commit timestamps: member ${this.id} has ts ${w.ts} at index ${e.index} after ts ${prev}`,
        );
      }
      this.maxTs[e.index] = Math.max(prev, w?.ts ?? 0);
    }
  }

  save(
    hardState: HardState | undefined,
    entries: readonly Entry[],
    snapshot: Snapshot | undefined,
    sync: boolean,
  ): Promise<void> {
    const first = entries[0];
    const prevTerm = first === undefined ? undefined : this.inner.term(first.index - 1);
    if (snapshot !== undefined && snapshot.metadata.index > this.inner.snapshot().metadata.index) {
      // A snapshot from the leader replaces the whole log: the timestamps tracked for the entries
      // it replaced (an overwritten tail of a deposed leader, maybe far ahead in ts) are no
      // longer in the log, and the ts of the snapshot's last entry is not known here. (Seed
      // 60271: the check compared the first entries after an install with a replaced tail.)
      this.maxTs.length = snapshot.metadata.index;
      this.maxTs[snapshot.metadata.index] = 0;
    }
    this.checked(() => this.track(entries));
    const done = this.inner.save(hardState, entries, snapshot, sync);
    this.onSave(entries);
    return done.then(() => this.checked(() => this.onPersist(this.id, entries, prevTerm)));
  }

  private checked(check: () => void): void {
    try {
      check();
    } catch (err) {
      this.fail(err);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  initialState(): ReturnType<DiskLog['initialState']> {
    return this.inner.initialState();
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    return this.inner.entries(lo, hi, maxSize);
  }

  term(i: number): number | undefined {
    return this.inner.term(i);
  }

  lastIndex(): number {
    return this.inner.lastIndex();
  }

  firstIndex(): number {
    return this.inner.firstIndex();
  }

  snapshot(): Snapshot {
    return this.inner.snapshot();
  }

  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    return this.inner.createSnapshot(i, confState, data);
  }

  compact(index: number): Promise<void> {
    return this.inner.compact(index);
  }
}
