// Repairing a member's damaged engine (docs/cluster.md, "Repairing a damaged engine").
//
// Recovery of the engine can report damage below its newest record (a hole a power cut left in
// the unsynced tail, bit rot): replaying the log from the engine's lastTs would not refill it.
// Such an engine is never used. Its files are set aside in DIR/engine-set-aside-<time>/ (never
// deleted: they may be all that is left of something), and then:
//
// - if the Raft log still holds every entry (it starts at index 1 and the member was not seeded
//   from a backup), the engine is rebuilt by replaying the log into an empty one;
// - otherwise the member repairs itself from another member: it starts with an empty engine and
//   the Replica fetches a snapshot of the state (replica.ts, "Repair"), keeping its Raft log and
//   hard state exactly as they are (they may hold acknowledged entries a quorum counted on, and
//   they decide its votes).
//
// A marker, DIR/raft/repair.json, says a repair from another member is under way, so that a
// crash at any step resumes it:
//
//   marker := { "phase": "set-aside" | "fetch", "setAside": directory name, "since": ISO time,
//               "damage": what recovery reported }
//
//   set-aside: written before the first file moves; a start that finds it moves the remaining
//              engine files into the same directory, then rewrites the marker as "fetch";
//   fetch:     every damaged file is set aside; the engine in DIR holds nothing the member needs
//              (it is empty, or holds a fetched snapshot whose install a crash interrupted
//              before the marker was removed) and will be replaced by the next snapshot fetched.
//
// The marker is removed only once a fetched snapshot's files are installed in DIR and durable
// (installRepairSnapshot, or a snapshot install the Raft core asked for: member.ts). Without the
// marker, a restart would open the empty engine as if it were whole and replay the log from its
// compaction point, losing every write below it.
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-file.js';
import type { Clock } from '../io/clock.js';
import { type FileSystem, mkdirDurable } from '../io/file-system.js';
import { assert } from '../stdx/assert.js';
import type { Engine } from '../storage/engine.js';
import { CorruptionError } from '../storage/errors.js';
import { RepairSnapshotDamagedError } from './errors.js';
import { RAFT_DIR } from './identity.js';
import type { ReplicaLogger } from './replica.js';
import { installEngineFiles, isEngineEntry, SET_ASIDE_PREFIX } from './snapshot-install.js';

/** REPAIR_MARKER: in DIR/raft while the member repairs its engine from another member. */
export const REPAIR_MARKER = 'repair.json';

/**
 * DAMAGE: recovery problems that may hide lost records below the engine's newest one (a torn
 * tail, by contrast, only loses a suffix, which replay from lastTs refills).
 */
export const DAMAGE: ReadonlySet<string> = new Set([
  'corrupt-range',
  'bad-header',
  'damaged-batch',
  'short-file',
  'damaged-index',
]);

/** Problem: one problem an engine's recovery reported (cask's recovery report). */
export interface Problem {
  readonly kind: string;
  readonly file: string;
}

/** RecoveredEngine: an engine that says what its recovery found (CaskEngine). */
export interface RecoveredEngine extends Engine {
  readonly recovery: { readonly problems: readonly Problem[] };
}

type Phase = 'set-aside' | 'fetch';

/** RepairMarker: the content of DIR/raft/repair.json. */
export interface RepairMarker {
  readonly phase: Phase;
  /** setAside: the directory in DIR where the damaged files are (or go). */
  readonly setAside: string;
  /** since: when the damage was found (ISO time). */
  readonly since: string;
  /** damage: recovery's findings, for the operator. */
  readonly damage: string;
}

/** damageOf: the problems that make an engine unusable (DAMAGE). */
export function damageOf(problems: readonly Problem[]): Problem[] {
  return problems.filter((p) => DAMAGE.has(p.kind));
}

/** describeDamage: the damage in one line ("corrupt-range in 0000000001.data, ..."). */
export function describeDamage(damage: readonly Problem[]): string {
  return damage.map((p) => `${p.kind} in ${p.file}`).join(', ');
}

/** setEngineAside moves every engine file of `dir` into a new subdirectory; returns its name. */
export async function setEngineAside(fs: FileSystem, dir: string, clock: Clock): Promise<string> {
  const name = await freshSetAsideName(fs, dir, clock);
  await moveEngineFiles(fs, dir, name);
  return name;
}

/**
 * freshSetAsideName: engine-set-aside-<time>, with a counter when that name is taken (a repair
 * resumed within the same millisecond as an earlier set-aside, or a clock that went back).
 */
async function freshSetAsideName(fs: FileSystem, dir: string, clock: Clock): Promise<string> {
  const base = `${SET_ASIDE_PREFIX}${new Date(clock.nowMs()).toISOString().replace(/[:.]/g, '-')}`;
  for (let n = 0; ; n++) {
    const name = n === 0 ? base : `${base}-${n}`;
    if (!(await fs.exists(path.join(dir, name)))) return name;
  }
}

/**
 * moveEngineFiles moves every engine file of `dir` into `dir/name` (created if missing); it is
 * idempotent, so a move a crash cut short is finished by calling it again.
 */
async function moveEngineFiles(fs: FileSystem, dir: string, name: string): Promise<void> {
  assert(name.startsWith(SET_ASIDE_PREFIX), `a set-aside directory must be named ${SET_ASIDE_PREFIX}*`);
  const target = path.join(dir, name);
  await mkdirDurable(fs, target);
  for (const entry of await fs.readdir(dir)) {
    if (!isEngineEntry(entry)) continue;
    await fs.rename(path.join(dir, entry), path.join(target, entry));
  }
  await fs.syncDir(target);
  await fs.syncDir(dir);
}

export interface OpenMemberEngineOptions<E extends RecoveredEngine> {
  readonly fs: FileSystem;
  readonly dir: string;
  readonly clock: Clock;
  readonly logger: ReplicaLogger;
  /** open opens the engine in `dir` (again after files were set aside). */
  open(): Promise<E>;
  /** rebuildable: the Raft log holds every entry (it starts at 1, and no data was seeded). */
  readonly rebuildable: boolean;
  /**
   * unrepairable: why this member cannot fetch a snapshot from another member either (it is the
   * only member), as the error to refuse the start with; undefined when it can.
   */
  unrepairable(damage: string): Error | undefined;
}

/** OpenedEngine: the engine a member starts with, and whether it must fetch its state first. */
export interface OpenedEngine<E> {
  readonly engine: E;
  /** repairing: the engine is empty (or stale) and the Replica must fetch a snapshot first. */
  readonly repairing: boolean;
}

/**
 * openMemberEngine opens a member's engine: as it is; rebuilt from the log after its damaged
 * files are set aside; or empty and waiting for a snapshot from another member (a repair, begun
 * now or resumed after a crash).
 */
export async function openMemberEngine<E extends RecoveredEngine>(
  o: OpenMemberEngineOptions<E>,
): Promise<OpenedEngine<E>> {
  const { fs, dir, logger } = o;
  let marker = await readRepairMarker(fs, dir);
  if (marker?.phase === 'set-aside') {
    // A crash interrupted the set-aside: move the rest into the same directory.
    await moveEngineFiles(fs, dir, marker.setAside);
    marker = { ...marker, phase: 'fetch' };
    await writeRepairMarker(fs, dir, marker);
  }
  let engine = await o.open();
  const damage = damageOf(engine.recovery.problems);
  if (marker !== undefined) {
    if (damage.length > 0) {
      // The engine opened during the repair is damaged too (a power cut before it was synced):
      // it holds nothing the member needs, but it is set aside all the same, never deleted.
      await engine.close();
      const aside = await setEngineAside(fs, dir, o.clock);
      logger.warn(
        { damage, setAside: aside },
        'the engine opened while repairing is damaged too: its files are set aside as well',
      );
      engine = await o.open();
    }
    logger.warn(
      { since: marker.since, damage: marker.damage, setAside: marker.setAside },
      'resuming the repair of the damaged engine: no entry is applied and no read is served until a snapshot of the state arrives from the leader',
    );
    return { engine, repairing: true };
  }
  if (damage.length === 0) return { engine, repairing: false };
  await engine.close();
  const described = describeDamage(damage);
  if (o.rebuildable) {
    const aside = await setEngineAside(fs, dir, o.clock);
    logger.error(
      { damage, setAside: aside },
      'the engine was damaged; its files are set aside and it is rebuilt from the Raft log',
    );
    return { engine: await o.open(), repairing: false };
  }
  const refusal = o.unrepairable(described);
  if (refusal !== undefined) throw refusal;
  marker = {
    phase: 'set-aside',
    setAside: await freshSetAsideName(fs, dir, o.clock),
    since: new Date(o.clock.nowMs()).toISOString(),
    damage: described,
  };
  // The marker first: a crash from here on resumes the repair instead of trusting what is left.
  await writeRepairMarker(fs, dir, marker);
  await moveEngineFiles(fs, dir, marker.setAside);
  await writeRepairMarker(fs, dir, { ...marker, phase: 'fetch' });
  logger.error(
    { damage, setAside: marker.setAside },
    'the engine was damaged and the Raft log no longer holds every entry: its files are set aside and the member starts with an empty engine, which it replaces with a snapshot of the state fetched from the leader (no entry is applied and no read is served until then)',
  );
  return { engine: await o.open(), repairing: true };
}

export interface InstallRepairOptions<E extends RecoveredEngine> {
  readonly fs: FileSystem;
  readonly dir: string;
  /** stage: the fetched snapshot's engine files, restored and verified inside DIR/raft. */
  readonly stage: string;
  /** index: the snapshot's Raft index (messages). */
  readonly index: number;
  /** current: the engine to replace (the empty one the member started with); closed here. */
  readonly current: Engine;
  open(dir: string): Promise<E>;
}

/**
 * installRepairSnapshot replaces the (empty) engine with a fetched snapshot and ends the repair
 * (installSnapshotEngine; RepairSnapshotDamagedError when the staged store is damaged).
 */
export function installRepairSnapshot<E extends RecoveredEngine>(o: InstallRepairOptions<E>): Promise<E> {
  return installSnapshotEngine(
    o,
    (damage) =>
      new RepairSnapshotDamagedError(
        `the snapshot at index ${o.index} fetched to repair the engine arrived damaged (${damage})`,
      ),
  );
}

/**
 * installSnapshotEngine replaces a member's engine with a staged snapshot's store (a snapshot
 * from the leader, or one fetched for a repair): the staged store must open cleanly (else the
 * error `damaged` makes of its damage, with nothing changed); then the engine closes, its files
 * are replaced with the crash-safe install of snapshot-install.ts, it opens again, and only then
 * is a repair's marker removed (the snapshot holds the whole state: an engine under repair is
 * whole again).
 */
export async function installSnapshotEngine<E extends RecoveredEngine>(
  o: InstallRepairOptions<E>,
  damaged: (damage: string) => Error,
): Promise<E> {
  const probe = await o.open(o.stage);
  const damage = damageOf(probe.recovery.problems);
  await probe.close();
  if (damage.length > 0) throw damaged(describeDamage(damage));
  await o.current.close();
  await installEngineFiles(o.fs, o.dir, o.stage);
  const engine = await o.open(o.dir);
  await endRepair(o.fs, o.dir);
  return engine;
}

/** readRepairMarker: the marker of a repair under way, or undefined. */
export async function readRepairMarker(fs: FileSystem, dir: string): Promise<RepairMarker | undefined> {
  const file = markerPath(dir);
  if (!(await fs.exists(file))) return undefined;
  return parseMarker(await fs.readFile(file), file);
}

/** endRepair removes the marker (durably); nothing happens when there is none. */
export async function endRepair(fs: FileSystem, dir: string): Promise<void> {
  const file = markerPath(dir);
  if (!(await fs.exists(file))) return;
  await fs.unlink(file);
  await fs.syncDir(path.join(dir, RAFT_DIR));
}

function markerPath(dir: string): string {
  return path.join(dir, RAFT_DIR, REPAIR_MARKER);
}

async function writeRepairMarker(fs: FileSystem, dir: string, marker: RepairMarker): Promise<void> {
  await mkdirDurable(fs, path.join(dir, RAFT_DIR));
  await writeFileAtomic(fs, markerPath(dir), Buffer.from(`${JSON.stringify(marker)}\n`));
}

function parseMarker(bytes: Uint8Array, file: string): RepairMarker {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new CorruptionError(`${file} is not valid JSON: the engine repair it records cannot be resumed`);
  }
  const m = v as Partial<RepairMarker> | null;
  if (
    m === null ||
    typeof m !== 'object' ||
    (m.phase !== 'set-aside' && m.phase !== 'fetch') ||
    typeof m.setAside !== 'string' ||
    !m.setAside.startsWith(SET_ASIDE_PREFIX) ||
    m.setAside.includes('/') ||
    m.setAside.includes(path.sep) ||
    typeof m.since !== 'string' ||
    typeof m.damage !== 'string'
  ) {
    throw new CorruptionError(`${file} is malformed: the engine repair it records cannot be resumed`);
  }
  return { phase: m.phase, setAside: m.setAside, since: m.since, damage: m.damage };
}
