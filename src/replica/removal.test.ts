// removal.ts: what a removed member says, and how long it waits before it reports itself
// stopped (a removed leader hands over first; everyone lingers for its last messages).
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../io/manual-clock.js';
import {
  describeRemoval,
  type Leadership,
  REMOVED_HANDOFF_MS,
  REMOVED_LINGER_MS,
  waitForHandoff,
} from './removal.js';

/** FakeLeadership: a replica's leadership as waitForHandoff sees it, moved by the test. */
class FakeLeadership implements Leadership {
  leading: boolean;
  savesPending = 0;
  private readonly listeners = new Set<() => void>();

  constructor(leading: boolean) {
    this.leading = leading;
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  change(to: Partial<Pick<Leadership, 'leading' | 'savesPending'>>): void {
    this.leading = to.leading ?? this.leading;
    this.savesPending = to.savesPending ?? this.savesPending;
    for (const f of [...this.listeners]) f();
  }
}

/** STEP_MS: how far the tests move the clock between two looks at the promise. */
const STEP_MS = 5;

/** run advances `clock` by `ms` in small steps, letting the awaits between timers run. */
async function run(clock: ManualClock, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += STEP_MS) {
    clock.advance(STEP_MS);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
}

/** watch tracks a promise's outcome without awaiting it. */
function watch<T>(p: Promise<T>): { value: T | undefined; done: boolean } {
  const seen: { value: T | undefined; done: boolean } = { value: undefined, done: false };
  void p.then((v) => {
    seen.value = v;
    seen.done = true;
  });
  return seen;
}

describe('describeRemoval', () => {
  it('names the member, who removed it and at which index', () => {
    expect(describeRemoval({ name: 'n2', how: 'applied', by: 'n1', index: 57, reason: undefined })).toBe(
      "member 'n2' was removed from the cluster by the configuration change at index 57 (committed by leader 'n1')",
    );
    // A log replay at start knows no leader.
    expect(describeRemoval({ name: 'n2', how: 'applied', by: '', index: 9, reason: undefined })).toMatch(
      /at index 9 \(committed by the leader\)/,
    );
    expect(
      describeRemoval({
        name: 'n3',
        how: 'told',
        by: 'n1',
        index: undefined,
        reason: 'removed from the cluster: x',
      }),
    ).toBe("member 'n3' was removed from the cluster (peer 'n1' refused it: removed from the cluster: x)");
  });
});

describe('waitForHandoff', () => {
  it('a follower reports after the linger, not before', async () => {
    const clock = new ManualClock();
    const seen = watch(waitForHandoff(new FakeLeadership(false), clock));
    await run(clock, REMOVED_LINGER_MS - STEP_MS);
    expect(seen.done).toBe(false);
    await run(clock, 2 * STEP_MS);
    expect(seen).toEqual({ done: true, value: true });
  });

  it('a removed leader reports once it stepped down and its saves are durable, then lingers', async () => {
    const clock = new ManualClock();
    const replica = new FakeLeadership(true);
    const seen = watch(waitForHandoff(replica, clock));
    await run(clock, REMOVED_HANDOFF_MS / 2);
    expect(seen.done).toBe(false);
    // Stepped down, but the Ready's save (whose messages wait for it) is still in flight.
    replica.change({ leading: false, savesPending: 1 });
    await run(clock, REMOVED_LINGER_MS * 2);
    expect(seen.done).toBe(false);
    replica.change({ savesPending: 0 });
    await run(clock, REMOVED_LINGER_MS - STEP_MS);
    expect(seen.done).toBe(false);
    await run(clock, 2 * STEP_MS);
    expect(seen).toEqual({ done: true, value: true });
  });

  it('a leader that cannot hand over reports after REMOVED_HANDOFF_MS, saying so', async () => {
    const clock = new ManualClock();
    const seen = watch(waitForHandoff(new FakeLeadership(true), clock));
    await run(clock, REMOVED_HANDOFF_MS - STEP_MS);
    expect(seen.done).toBe(false);
    await run(clock, REMOVED_LINGER_MS + 2 * STEP_MS);
    expect(seen).toEqual({ done: true, value: false });
  });
});
