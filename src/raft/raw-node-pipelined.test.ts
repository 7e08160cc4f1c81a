// RawNode.readyPipelined / appended (docs/raft.md, "Pipelined Readys"): Readys taken before the
// previous one's save is durable hand out each entry once, a leader counts its own entries only
// once appended, and entries replaced while handed out are handed out again.
import { describe, expect, it } from 'vitest';
import { Unstable } from './log.js';
import { MemoryStorage } from './log-storage.js';
import { defaultConfig } from './raft.js';
import { RawNode } from './raw-node.js';
import type { Entry, Ready } from './types.js';

const e = (term: number, index: number): Entry => ({
  term,
  index,
  type: 'normal',
  data: new Uint8Array([index]),
});
const data = (s: string): Uint8Array => new TextEncoder().encode(s);

/** save: what a driver does with a pipelined Ready's persistence part (storage is memory here). */
function save(storage: MemoryStorage, rd: Ready): void {
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  storage.append(rd.entries);
}

/** singleLeader: a one-member group, elected, with its first Readys saved and appended. */
function singleLeader(): { rn: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  const rn = new RawNode(defaultConfig(1, storage, { peers: [1] }));
  const drain = (): void => {
    while (rn.hasReady()) {
      const rd = rn.readyPipelined();
      save(storage, rd);
      rn.appended(rd);
    }
  };
  // The bootstrap entries are applied (they count as applied once handed out) before it may campaign.
  drain();
  rn.campaign();
  drain();
  expect(rn.status().softState.raftState).toBe('leader');
  return { rn, storage };
}

describe('Unstable in-progress tracking', () => {
  it('hands each entry out once; a truncation hands replacements out again; stableTo moves it on', () => {
    const u = new Unstable(5);
    u.truncateAndAppend([e(1, 5), e(1, 6), e(1, 7)]);
    expect(u.entriesToHand().map((x) => x.index)).toEqual([5, 6, 7]);
    u.acceptInProgress();
    expect(u.entriesToHand()).toEqual([]);
    u.truncateAndAppend([e(1, 8)]);
    expect(u.entriesToHand().map((x) => x.index)).toEqual([8]);
    u.acceptInProgress();
    // A newer leader replaces 6.. while 5..8 are being saved: 6 and 7 go out again, as term 2.
    u.truncateAndAppend([e(2, 6), e(2, 7)]);
    expect(u.offsetInProgress).toBe(6);
    expect(u.entriesToHand().map((x) => [x.index, x.term])).toEqual([
      [6, 2],
      [7, 2],
    ]);
    u.acceptInProgress();
    // The first save (5..7 of term 1) completes: 7 is of term 2 now, so nothing becomes stable.
    u.stableTo(7, 1);
    expect(u.offset).toBe(5);
    u.stableTo(7, 2);
    expect(u.offset).toBe(8);
    expect(u.offsetInProgress).toBe(8);
    expect(u.entries).toEqual([]);
  });

  it('a replacement at or below the offset hands everything out again', () => {
    const u = new Unstable(5);
    u.truncateAndAppend([e(1, 5), e(1, 6)]);
    u.acceptInProgress();
    u.truncateAndAppend([e(2, 4)]);
    expect(u.offset).toBe(4);
    expect(u.offsetInProgress).toBe(4);
    expect(u.entriesToHand().map((x) => x.index)).toEqual([4]);
  });
});

describe('RawNode.readyPipelined', () => {
  it('takes the next Ready before the first is appended; commit waits for appended', () => {
    const { rn, storage } = singleLeader();
    rn.propose(data('a'));
    const rd1 = rn.readyPipelined();
    expect(rd1.entries.map((x) => x.data)).toEqual([data('a')]);
    save(storage, rd1);
    rn.propose(data('b'));
    // Before rd1 is durable: the next Ready carries only the new entry.
    const rd2 = rn.readyPipelined();
    expect(rd2.entries.map((x) => x.data)).toEqual([data('b')]);
    save(storage, rd2);
    // Nothing is committed: a single member counts itself only once its save is durable.
    expect(rn.hasReady()).toBe(false);
    const a = rd1.entries[0] as Entry;
    rn.appended(rd1);
    const rd3 = rn.readyPipelined();
    expect(rd3.committedEntries.map((x) => x.index)).toEqual([a.index]);
    expect(rd3.entries).toEqual([]);
    save(storage, rd3);
    rn.appended(rd2);
    const rd4 = rn.readyPipelined();
    expect(rd4.committedEntries.map((x) => x.data)).toEqual([data('b')]);
    // Committed entries are handed out once: they count as applied at readyPipelined.
    rn.appended(rd3);
    rn.appended(rd4);
    expect(rn.hasReady()).toBe(false);
    expect(rn.raft.raftLog.applied).toBe(rn.raft.raftLog.committed);
  });
});
