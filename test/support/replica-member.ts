// In-process members for the replica tests: a Replica over
// an in-memory log, joined to a MemoryHub, with a cask engine (durability never: the log is the
// point of these tests, not the disk) under a ReplicatedEngine and a Db.

import * as path from 'node:path';
import { Db } from '../../src/db/db.js';
import { type Clock, systemClock } from '../../src/io/clock.js';
import { nodeFileSystem } from '../../src/io/node-file-system.js';
import type { NodeId } from '../../src/raft/index.js';
import { RAFT_DIR } from '../../src/replica/identity.js';
import { snapshotLogTs } from '../../src/replica/membership.js';
import { MemoryLog } from '../../src/replica/memory-log.js';
import type { MemoryHub } from '../../src/replica/memory-transport.js';
import {
  Replica,
  type ReplicaLog,
  type ReplicaLogger,
  type SnapshotHooks,
} from '../../src/replica/replica.js';
import { ReplicatedEngine } from '../../src/replica/replicated-engine.js';
import { installEngineFiles } from '../../src/replica/snapshot-install.js';
import { removeStagedDir } from '../../src/replica/snapshot-staging.js';
import { openCask } from '../../src/storage/cask/cask-engine.js';
import type { Engine } from '../../src/storage/engine.js';
import { tmpDir } from './tmp-dir.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
/** TEST_TICK_MS: ticks 20x faster than production, so elections take tens of milliseconds. */
const TEST_TICK_MS = 5;
const TEST_REQUEST_TIMEOUT_MS = 2_000;
const POLL_MS = 5;

export interface TestMember {
  readonly id: NodeId;
  readonly replica: Replica;
  readonly engine: ReplicatedEngine;
  readonly db: Db;
}

export interface TestMemberOptions {
  readonly requestTimeoutMs?: number;
  /** snapshotEntries: take snapshots (and compact the log) this often; snapshots are off without it. */
  readonly snapshotEntries?: number;
  readonly snapshotCatchupEntries?: number;
  /** log: the member's Raft log (default: a fresh MemoryLog). */
  readonly log?: ReplicaLog;
  /** clock: the replica's clock (default: the system clock); see tickPausingClock. */
  readonly clock?: Clock;
  /** logger: where the replica logs (default: nowhere). */
  readonly logger?: ReplicaLogger;
}

/** TickPausingClock: the system clock, whose periodic callbacks (Raft ticks) a test can stop. */
export interface TickPausingClock extends Clock {
  /** ticksPaused: while true, `every` callbacks are skipped; one-shot timers still fire. */
  ticksPaused: boolean;
}

/**
 * tickPausingClock: a member whose ticks are paused never notices it lost its quorum (no
 * check-quorum, no election timeout) while messages and request timeouts go on: the deposed
 * leader that has not heard of its successor, held as long as a test needs it.
 */
export function tickPausingClock(): TickPausingClock {
  const clock: TickPausingClock = {
    ticksPaused: false,
    nowMs: () => systemClock.nowMs(),
    monotonicMs: () => systemClock.monotonicMs(),
    every: (ms, fn) =>
      systemClock.every(ms, () => {
        if (!clock.ticksPaused) fn();
      }),
    after: (ms, fn) => systemClock.after(ms, fn),
  };
  return clock;
}

/** startTestMember starts member `id` of a group bootstrapped with `bootstrap` (empty: joining). */
export async function startTestMember(
  hub: MemoryHub,
  id: NodeId,
  bootstrap: readonly NodeId[],
  options: TestMemberOptions = {},
): Promise<TestMember> {
  const dir = tmpDir('replica');
  let local: Engine = await openCask(dir, { durability: 'never' });
  // As a member does (member.ts): a leader's snapshot is staged under DIR/raft and replaces the
  // engine's files with the engine closed.
  const snapshots: SnapshotHooks | undefined =
    options.snapshotEntries === undefined
      ? undefined
      : {
          data: (logTs) => Buffer.from(JSON.stringify({ logTs })),
          logTsOf: snapshotLogTs,
          install: async (stage) => {
            await local.close();
            await installEngineFiles(nodeFileSystem, dir, stage);
            local = await openCask(dir, { durability: 'never' });
            return local;
          },
          discard: (stage) => removeStagedDir(nodeFileSystem, stage),
        };
  const replica = new Replica({
    id,
    log: options.log ?? new MemoryLog(),
    engine: local,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? quiet,
    bootstrap,
    tickMs: TEST_TICK_MS,
    requestTimeoutMs: options.requestTimeoutMs ?? TEST_REQUEST_TIMEOUT_MS,
    onFatal: (err) => {
      throw err;
    },
    snapshots,
    snapshotEntries: options.snapshotEntries,
    snapshotCatchupEntries: options.snapshotCatchupEntries,
  });
  const { engine, db } = joinHub(hub, id, dir, replica, local);
  return { id, replica, engine, db };
}

/**
 * joinHub connects a member's replica to the in-memory hub (its snapshots staged under its
 * directory), wraps its engine as a cluster member's Db, and starts the replica.
 */
export function joinHub(
  hub: MemoryHub,
  id: NodeId,
  dir: string,
  replica: Replica,
  local: Engine,
): { engine: ReplicatedEngine; db: Db } {
  const transport = hub.join(
    { id, name: `n${id}`, resp: '', http: '' },
    {
      onMessages: (msgs) => replica.step(msgs),
      onUnreachable: (to) => replica.unreachable(to),
      onPeerInfo: () => {},
      onSnapshot: (m, staged) => replica.stepSnapshot(m, staged),
    },
    { snapshotDir: path.join(dir, RAFT_DIR, 'snap') },
  );
  const engine = new ReplicatedEngine(local, replica, () => transport.close());
  const db = new Db(tmpDir('replica-db'), engine);
  replica.start(transport);
  return { engine, db };
}

/** until polls `check` until it holds, or throws after `ms`. */
export async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
