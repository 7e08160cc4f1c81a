// In-process members for the replica tests: a Replica over
// an in-memory log, joined to a MemoryHub, with a cask engine (durability never: the log is the
// point of these tests, not the disk) under a ReplicatedEngine and a Db.
import { Db } from '../../src/db/db.js';
import { systemClock } from '../../src/io/clock.js';
import type { NodeId } from '../../src/raft/index.js';
import { MemoryLog } from '../../src/replica/memory-log.js';
import type { MemoryHub } from '../../src/replica/memory-transport.js';
import { Replica } from '../../src/replica/replica.js';
import { ReplicatedEngine } from '../../src/replica/replicated-engine.js';
import { openCask } from '../../src/storage/cask/cask-engine.js';
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

/** startTestMember starts member `id` of a group bootstrapped with `bootstrap` (empty: joining). */
export async function startTestMember(
  hub: MemoryHub,
  id: NodeId,
  bootstrap: readonly NodeId[],
  requestTimeoutMs = TEST_REQUEST_TIMEOUT_MS,
): Promise<TestMember> {
  const local = await openCask(tmpDir('replica'), { durability: 'never' });
  const replica = new Replica({
    id,
    log: new MemoryLog(),
    engine: local,
    clock: systemClock,
    logger: quiet,
    bootstrap,
    tickMs: TEST_TICK_MS,
    requestTimeoutMs,
    onFatal: (err) => {
      throw err;
    },
  });
  const transport = hub.join(
    { id, name: `n${id}`, resp: '', http: '' },
    {
      onMessages: (msgs) => replica.step(msgs),
      onUnreachable: (to) => replica.unreachable(to),
      onPeerInfo: () => {},
    },
  );
  const engine = new ReplicatedEngine(local, replica, () => transport.close());
  const db = new Db(tmpDir('replica-db'), engine);
  replica.start(transport);
  return { id, replica, engine, db };
}

/** until polls `check` until it holds, or throws after `ms`. */
export async function until(check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
