// Checks shared by the snapshot end-to-end tests (test/cli/snapshot.test.ts,
// test/cluster/snapshot.test.ts): writers that record which writes were acknowledged when, and
// the check that a restored snapshot holds exactly a prefix of the writes in commit order and
// every write acknowledged before the snapshot was requested.
import { expect } from 'vitest';
import type { CairnClient } from '../../src/client/client.js';
import { open } from '../../src/db/db.js';

/** AckLog: writes of unique keys, each acknowledged or not. */
export class AckLog {
  readonly acked = new Set<string>();
  stopped = false;
  private next = 0;

  constructor(readonly keys: readonly string[]) {}

  /** run writes keys[i] = "v<i>" one after another on `client` until stopped or done. */
  async run(client: CairnClient): Promise<void> {
    while (!this.stopped && this.next < this.keys.length) {
      const key = this.keys[this.next++] as string;
      await client.set(key, `value-of-${key}`);
      this.acked.add(key);
    }
  }
}

/** keysInOrder: `n` unique keys in random order (so the key order is not the commit order). */
export function shuffledKeys(n: number, seed: number): string[] {
  const keys = Array.from({ length: n }, (_, i) => `key-${String(i).padStart(6, '0')}`);
  let s = seed;
  for (let i = keys.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [keys[i], keys[j]] = [keys[j] as string, keys[i] as string];
  }
  return keys;
}

/** modTimes: every key of a stopped store with the commit timestamp of its (only) write. */
export async function modTimes(dir: string): Promise<Map<string, number>> {
  const db = await open(dir, { readOnly: true });
  try {
    const out = new Map<string, number>();
    for await (const [k] of db.scan()) out.set(k.toString(), (await db.revision(k))?.mod ?? -1);
    return out;
  } finally {
    await db.close();
  }
}

/**
 * expectPrefix: the restored store holds every key acknowledged before the snapshot, values
 * intact, and exactly the writes with commit timestamps up to its newest one (a prefix in
 * commit order: no hole), judged against the source's final state `finalMods`.
 */
export async function expectPrefix(
  restoredDir: string,
  ackedBefore: ReadonlySet<string>,
  finalMods: ReadonlyMap<string, number>,
): Promise<number> {
  const restored = await modTimes(restoredDir);
  for (const key of ackedBefore)
    expect(restored.has(key), `${key}, acknowledged before the snapshot, is missing`).toBe(true);
  let newest = 0;
  for (const [key, mod] of restored) {
    expect(finalMods.get(key), `${key} in the snapshot is not the source's write`).toBe(mod);
    newest = Math.max(newest, mod);
  }
  for (const [key, mod] of finalMods) {
    if (mod <= newest)
      expect(restored.has(key), `${key} (ts ${mod} <= ${newest}) is a hole in the prefix`).toBe(true);
  }
  const db = await open(restoredDir, { readOnly: true });
  try {
    for (const key of [...restored.keys()].slice(0, 50))
      expect(await db.getString(key)).toBe(`value-of-${key}`);
  } finally {
    await db.close();
  }
  return restored.size;
}
