// Repairing a damaged engine after the log was compacted (engine-repair.ts, Replica "Repair"):
// members of one process over a MemoryHub, each with a real cask directory and a Raft log kept
// across restarts, started the way member.ts starts them (openMemberEngine, the same hooks).
// The victim's engine is damaged by a bit flip while it is down; it must set the files aside,
// start empty, apply nothing, serve no read and never lead until the leader's snapshot is in,
// resume after a crash mid-fetch, and end with exactly the group's state.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { joinHub } from '../../test/support/replica-member.js';
import { tmpDir } from '../../test/support/tmp-dir.js';
import type { Db } from '../db/db.js';
import { systemClock } from '../io/clock.js';
import type { File, FileSystem } from '../io/file-system.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { message, type NodeId } from '../raft/index.js';
import { openCask } from '../storage/cask/cask-engine.js';
import type { Engine } from '../storage/engine.js';
import { ClusterDownError } from '../storage/errors.js';
import {
  endRepair,
  installRepairSnapshot,
  openMemberEngine,
  REPAIR_MARKER,
  readRepairMarker,
} from './engine-repair.js';
import { EngineRepairingError, RepairSnapshotDamagedError } from './errors.js';
import { RAFT_DIR } from './identity.js';
import { MemoryLog } from './memory-log.js';
import type { MemoryHub as Hub } from './memory-transport.js';
import { MemoryHub } from './memory-transport.js';
import { Replica, type ReplicaLogger, type SnapshotHooks } from './replica.js';
import type { ReplicatedEngine } from './replicated-engine.js';
import { finishInstall, INSTALL_MARKER, installEngineFiles, SET_ASIDE_PREFIX } from './snapshot-install.js';
import { removeStagedDir } from './snapshot-staging.js';

const CASK = { durability: 'never' as const };
/** TICK_MS: 20x faster than production (heartbeats every 5 ms). */
const TICK_MS = 5;
/**
 * ELECTION_TICKS: election timeouts of 60-120 ticks (300-600 ms) instead of production's 10-20,
 * which at TICK_MS would be only 50-100 ms. A member sends nothing, heartbeats included, while
 * it takes a snapshot of its own (replica.ts, `turn`: snapshotAndCompact runs alone), as every
 * member here does every SNAPSHOT_ENTRIES entries. On a loaded machine the leader's took up to
 * 90 ms (applies drained, the engine flushed, the log compacted): the followers' timers ran out
 * meanwhile, one of them was elected, and the test's next write on the old leader was refused
 * with ClusterDownError. The ticks are 20x faster than production but the disk is not.
 */
const ELECTION_TICKS = 60;
/** ELECTIONS_MS: long enough for several election timeouts (ELECTION_TICKS to twice that, each). */
const ELECTIONS_MS = 1_500;
/** SNAPSHOT_ENTRIES, CATCHUP_ENTRIES: small, so that 100 writes compact every log. */
const SNAPSHOT_ENTRIES = 20;
const CATCHUP_ENTRIES = 5;
const KEYS = 100;
const POLL_MS = 5;
const WAIT_MS = 10_000;

interface Node {
  readonly id: NodeId;
  readonly dir: string;
  readonly log: MemoryLog;
  readonly replica: Replica;
  readonly engine: ReplicatedEngine;
  readonly db: Db;
  /** said: every message this incarnation logged. */
  readonly said: string[];
}

const running: Node[] = [];

/** Faults: file systems that fail at a chosen step, for the crash tests. */
interface Faults {
  /** openFs: the file system openMemberEngine uses (the set-aside). */
  readonly openFs?: FileSystem;
  /** installFs: a file system for each repair install. */
  readonly installFs?: () => FileSystem;
  /** onFatal: instead of throwing (the member failed, as `cairn serve` would exit). */
  readonly onFatal?: (err: unknown) => void;
  /** damagedArrivals: this many fetched snapshots are found damaged (before anything changes). */
  damagedArrivals?: number;
}

afterEach(async () => {
  for (const n of running.splice(0)) await n.db.close().catch(() => {});
});

function recorder(said: string[]): ReplicaLogger {
  const put = (_obj: object, msg?: string): void => {
    if (msg !== undefined) said.push(msg);
  };
  return { debug: put, info: put, warn: put, error: put };
}

/** start opens member `id` as member.ts does: openMemberEngine, then a Replica with the same hooks. */
async function start(
  hub: Hub,
  id: NodeId,
  ids: readonly NodeId[],
  dir: string,
  log: MemoryLog,
  faults: Faults = {},
): Promise<Node> {
  const said: string[] = [];
  const logger = recorder(said);
  // As member.ts: an install a crash interrupted is finished before the engine opens.
  await finishInstall(nodeFileSystem, dir);
  const opened = await openMemberEngine({
    fs: faults.openFs ?? nodeFileSystem,
    dir,
    clock: systemClock,
    logger,
    open: () => openCask(dir, CASK),
    rebuildable: log.firstIndex() === 1,
    unrepairable: () => undefined,
  });
  let local: Engine = opened.engine;
  const hooks: SnapshotHooks = {
    data: () => Buffer.from('{}'),
    install: async (stage) => {
      await local.close();
      await installEngineFiles(nodeFileSystem, dir, stage);
      local = await openCask(dir, CASK);
      await endRepair(nodeFileSystem, dir);
      return local;
    },
    discard: (stage) => removeStagedDir(nodeFileSystem, stage),
    repair: async (stage, snap) => {
      if ((faults.damagedArrivals ?? 0) > 0) {
        faults.damagedArrivals = (faults.damagedArrivals ?? 0) - 1;
        throw new RepairSnapshotDamagedError(`injected: the snapshot at ${snap.metadata.index} is damaged`);
      }
      local = await installRepairSnapshot({
        fs: faults.installFs?.() ?? nodeFileSystem,
        dir,
        stage,
        index: snap.metadata.index,
        current: local,
        open: (d) => openCask(d, CASK),
      });
      return local;
    },
  };
  const replica = new Replica({
    id,
    log,
    engine: local,
    clock: systemClock,
    logger,
    bootstrap: log.lastIndex() === 0 ? ids : [],
    tickMs: TICK_MS,
    electionTicks: ELECTION_TICKS,
    requestTimeoutMs: 2_000,
    onFatal:
      faults.onFatal ??
      ((err) => {
        throw err;
      }),
    snapshots: hooks,
    snapshotEntries: SNAPSHOT_ENTRIES,
    snapshotCatchupEntries: CATCHUP_ENTRIES,
    repairing: opened.repairing,
  });
  const { engine, db } = joinHub(hub, id, dir, replica, local);
  const node: Node = { id, dir, log, replica, engine, db, said };
  running.push(node);
  return node;
}

/** stop closes a node as a crash would leave it: nothing is finished for it. */
async function stop(n: Node): Promise<void> {
  running.splice(running.indexOf(n), 1);
  await n.db.close();
}

async function until(check: () => boolean, ms = WAIT_MS): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function leaderOf(nodes: readonly Node[]): Promise<Node> {
  let leader: Node | undefined;
  await until(() => {
    leader = nodes.find((n) => n.replica.leaderReady);
    return leader !== undefined;
  });
  return leader as Node;
}

const value = (i: number): string => `value-${i}`.padEnd(60, '.');

/** group starts 3 members, writes KEYS keys and waits until every member applied them (logs compacted). */
async function group(hub: Hub): Promise<{ nodes: Node[]; leader: Node }> {
  const ids = [1, 2, 3];
  const nodes: Node[] = [];
  for (const id of ids) nodes.push(await start(hub, id, ids, tmpDir('repair'), new MemoryLog()));
  const leader = await leaderOf(nodes);
  for (let i = 0; i < KEYS; i++) await leader.db.set(`key${i}`, value(i));
  const target = leader.replica.applied;
  await until(() => nodes.every((n) => n.replica.applied >= target));
  return { nodes, leader };
}

/** damage flips a bit in the middle of the oldest data file (below the engine's newest record). */
function damage(dir: string): { file: string; bytes: Buffer } {
  const file = fs
    .readdirSync(dir)
    .filter((n) => n.endsWith('.data'))
    .sort()[0] as string;
  const bytes = fs.readFileSync(path.join(dir, file));
  let end = bytes.length; // the active file is preallocated: flip inside the written part
  while (end > 0 && bytes[end - 1] === 0) end--;
  bytes[Math.floor(end / 2)] = (bytes[Math.floor(end / 2)] as number) ^ 0x40;
  fs.writeFileSync(path.join(dir, file), bytes);
  return { file, bytes };
}

function setAsideDirs(dir: string): string[] {
  return fs.readdirSync(dir).filter((n) => n.startsWith(SET_ASIDE_PREFIX));
}

/** sameState: every key of `a`'s engine, with its value, and nothing else, is in `b`'s. */
async function expectSameState(a: Node, b: Node): Promise<void> {
  const want = new Map<string, string>();
  for await (const [key, v] of a.engine.scan())
    want.set(Buffer.from(key).toString(), Buffer.from(v).toString());
  const got = new Map<string, string>();
  for await (const [key, v] of b.engine.scan())
    got.set(Buffer.from(key).toString(), Buffer.from(v).toString());
  expect(got.size).toBeGreaterThanOrEqual(KEYS);
  expect(got).toEqual(want);
  // And the digests of `cairn check hash` agree at one index.
  const index = await a.replica.proposeCheck();
  const [da, db] = await Promise.all([
    a.replica.stateDigest(index, WAIT_MS),
    b.replica.stateDigest(index, WAIT_MS),
  ]);
  expect(db.digest).toBe(da.digest);
  expect(db.keys).toBe(da.keys);
}

describe('a member whose engine is damaged after its log was compacted', () => {
  it('sets the files aside, applies and serves nothing, never leads, then repairs itself from the leader', async () => {
    const hub = new MemoryHub();
    const { nodes, leader } = await group(hub);
    const victim0 = nodes.find((n) => n !== leader) as Node;
    const third = nodes.find((n) => n !== leader && n !== victim0) as Node;
    expect(victim0.log.firstIndex()).toBeGreaterThan(1);
    await stop(victim0);
    const damaged = damage(victim0.dir);
    // Hold every snapshot to the victim back, to look at it unrepaired.
    hub.drop = (m) => m.type === 'MsgSnap' && m.to === victim0.id;
    const victim = await start(hub, victim0.id, [], victim0.dir, victim0.log);
    expect(victim.replica.repairing).toBe(true);
    expect(victim.said.join('\n')).toMatch(
      /its files are set aside and the member starts with an empty engine/,
    );
    const aside = setAsideDirs(victim.dir);
    expect(aside).toHaveLength(1);
    expect(fs.existsSync(path.join(victim.dir, RAFT_DIR, REPAIR_MARKER))).toBe(true);
    let led = false;
    victim.replica.onChange(() => {
      if (victim.replica.status().role === 'leader') led = true;
    });
    const startApplied = victim.replica.applied;

    // The group goes on; the victim appends and acknowledges (its commit follows) but applies nothing.
    for (let i = 0; i < 30; i++) await leader.db.set(`more${i}`, value(i));
    await until(() => victim.replica.status().commit >= leader.replica.applied);
    await until(() => victim.said.some((s) => s.startsWith('asking the leader for a snapshot')));
    expect(victim.replica.applied).toBe(startApplied);
    expect(victim.engine.localEngine.stats().keys).toBe(0);

    // Reads are refused with a retryable error, not answered from the empty engine.
    await expect(victim.db.get('key1')).rejects.toBeInstanceOf(EngineRepairingError);
    await expect(victim.db.get('key1')).rejects.toBeInstanceOf(ClusterDownError);
    await expect(victim.replica.linearizable()).rejects.toBeInstanceOf(EngineRepairingError);

    // It never leads: not by asking it, not by a transfer, not when the leader is cut off.
    victim.replica.campaign();
    leader.replica.transferLeader(victim.id);
    await until(() =>
      victim.said.includes(
        'leadership was offered to this member, which refuses it until its engine is repaired',
      ),
    );
    await sleep(ELECTIONS_MS);
    expect(led).toBe(false);
    hub.isolate(leader.id);
    // The third member wins, with the victim's vote (votes depend on the log alone).
    await until(() => third.replica.leaderReady);
    await sleep(ELECTIONS_MS);
    expect(led).toBe(false);
    expect(victim.replica.applied).toBe(startApplied);
    hub.heal();

    // Let the snapshot through: the victim installs it and catches up.
    hub.drop = undefined;
    await until(() => !victim.replica.repairing);
    await third.db.set('after', 'repair');
    await until(() => victim.replica.applied >= third.replica.applied);
    expect(led).toBe(false);
    expect(victim.said).toContain('fetched a snapshot of the state to repair the engine; installing it');
    expect(String(await victim.db.get('after'))).toBe('repair');
    await expectSameState(third, victim);
    // The damaged files are where they were set aside, untouched; the marker is gone.
    expect(setAsideDirs(victim.dir)).toEqual(aside);
    expect(fs.readFileSync(path.join(victim.dir, aside[0] as string, damaged.file))).toEqual(damaged.bytes);
    expect(await readRepairMarker(nodeFileSystem, victim.dir)).toBeUndefined();

    // A restart now is an ordinary one: no repair, the same state.
    await stop(victim);
    const again = await start(hub, victim.id, [], victim.dir, victim.log);
    expect(again.replica.repairing).toBe(false);
    await until(() => again.replica.applied >= third.replica.applied);
    await expectSameState(third, again);
  }, 30_000);

  it('a crash while fetching the snapshot resumes the repair on restart', async () => {
    const hub = new MemoryHub();
    const { nodes, leader } = await group(hub);
    const victim0 = nodes.find((n) => n !== leader) as Node;
    await stop(victim0);
    damage(victim0.dir);
    hub.drop = (m) => m.type === 'MsgSnap' && m.to === victim0.id;
    const first = await start(hub, victim0.id, [], victim0.dir, victim0.log);
    await until(() => first.said.some((s) => s.startsWith('asking the leader for a snapshot')));
    const aside = setAsideDirs(first.dir);
    await stop(first); // the crash: the snapshot never arrived
    await leader.db.set('during', 'crash');

    const second = await start(hub, victim0.id, [], victim0.dir, victim0.log);
    expect(second.replica.repairing).toBe(true);
    expect(second.said.join('\n')).toMatch(/resuming the repair of the damaged engine/);
    expect(setAsideDirs(second.dir)).toEqual(aside); // nothing set aside twice
    expect(second.engine.localEngine.stats().keys).toBe(0);
    hub.drop = undefined;
    await until(() => !second.replica.repairing);
    await until(() => second.replica.applied >= leader.replica.applied);
    expect(String(await second.db.get('during'))).toBe('crash');
    await expectSameState(leader, second);
  }, 30_000);

  it('a crash while setting the files aside moves the rest into the same directory on restart', async () => {
    const hub = new MemoryHub();
    const { nodes, leader } = await group(hub);
    const victim0 = nodes.find((n) => n !== leader) as Node;
    await stop(victim0);
    damage(victim0.dir);
    const files = fs.readdirSync(victim0.dir).filter((n) => n !== RAFT_DIR && n !== 'LOCK');
    expect(files.length).toBeGreaterThan(1);
    // The second file move fails (rename 1 writes the marker), as if the process died there.
    await expect(
      start(hub, victim0.id, [], victim0.dir, victim0.log, { openFs: failingRename(3) }),
    ).rejects.toThrow(/injected/);
    expect((await readRepairMarker(nodeFileSystem, victim0.dir))?.phase).toBe('set-aside');
    const aside = setAsideDirs(victim0.dir);
    expect(aside).toHaveLength(1);

    const victim = await start(hub, victim0.id, [], victim0.dir, victim0.log);
    expect(victim.replica.repairing).toBe(true);
    expect(setAsideDirs(victim.dir)).toEqual(aside);
    // Every file of the damaged engine (and what its recovery added, a 'corrupt' directory) in one place.
    expect(fs.readdirSync(path.join(victim.dir, aside[0] as string))).toEqual(expect.arrayContaining(files));
    await until(() => !victim.replica.repairing);
    await until(() => victim.replica.applied >= leader.replica.applied);
    await expectSameState(leader, victim);
  }, 30_000);
});

describe('serving and checking repair snapshots', () => {
  it('a request past what the member applied is ignored; a damaged arrival is dropped and asked again', async () => {
    const hub = new MemoryHub();
    const { nodes, leader } = await group(hub);
    const sent = leader.replica.counters.snapshotsSent;
    const far = leader.replica.applied + 1_000;
    leader.replica.step([message({ type: 'MsgSnapRequest', to: leader.id, from: 2, index: far })]);
    expect(leader.said.some((m) => m.includes('asked for a snapshot past what this member applied'))).toBe(
      true,
    );
    await sleep(50);
    expect(leader.replica.counters.snapshotsSent).toBe(sent);

    const victim0 = nodes.find((n) => n !== leader) as Node;
    await stop(victim0);
    damage(victim0.dir);
    const victim = await start(hub, victim0.id, [], victim0.dir, victim0.log, { damagedArrivals: 1 });
    await until(() => !victim.replica.repairing);
    expect(victim.said).toContain('the snapshot fetched to repair the engine is discarded; asking again');
    expect(leader.replica.counters.snapshotsSent).toBeGreaterThanOrEqual(sent + 2);
    await until(() => victim.replica.applied >= leader.replica.applied);
    await expectSameState(leader, victim);
  }, 30_000);
});

describe('a crash while installing the fetched snapshot', () => {
  it('stops the member; the restart finishes the install, resumes the repair and fetches again', async () => {
    const hub = new MemoryHub();
    const { nodes, leader } = await group(hub);
    const victim0 = nodes.find((n) => n !== leader) as Node;
    await stop(victim0);
    damage(victim0.dir);
    const fatal: unknown[] = [];
    // Renames 1 and 2 write install.json (phases clear, move); the third moves the first file.
    const first = await start(hub, victim0.id, [], victim0.dir, victim0.log, {
      installFs: () => failingRename(3),
      onFatal: (err) => fatal.push(err),
    });
    await until(() => fatal.length > 0);
    expect(String(fatal[0])).toMatch(/injected/);
    expect(first.replica.repairing).toBe(true);
    expect(fs.existsSync(path.join(first.dir, RAFT_DIR, INSTALL_MARKER))).toBe(true);
    running.splice(running.indexOf(first), 1);
    await first.db.close().catch(() => {});

    const second = await start(hub, victim0.id, [], victim0.dir, victim0.log);
    expect(fs.existsSync(path.join(second.dir, RAFT_DIR, INSTALL_MARKER))).toBe(false);
    expect(second.said.join('\n')).toMatch(/resuming the repair of the damaged engine/);
    await until(() => !second.replica.repairing);
    await leader.db.set('after', 'crash');
    await until(() => second.replica.applied >= leader.replica.applied);
    await expectSameState(leader, second);
  }, 30_000);
});

/** failingRename: the real file system, but the n-th rename throws (a crash at that point). */
function failingRename(n: number): FileSystem {
  let renames = 0;
  const inner = nodeFileSystem;
  return {
    open: (p: string, mode: Parameters<FileSystem['open']>[1]): Promise<File> => inner.open(p, mode),
    readdir: (d) => inner.readdir(d),
    mkdir: (d) => inner.mkdir(d),
    rename: async (a, b) => {
      if (++renames === n) throw new Error('injected crash');
      await inner.rename(a, b);
    },
    link: (a, b) => inner.link(a, b),
    unlink: (p) => inner.unlink(p),
    syncDir: (d) => inner.syncDir(d),
    exists: (p) => inner.exists(p),
    kind: (p) => inner.kind(p),
    readFile: (p) => inner.readFile(p),
  };
}
