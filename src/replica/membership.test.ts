import { describe, expect, it } from 'vitest';
import type { ConfChange } from '../raft/index.js';
import type { MemberRecord } from './identity.js';
import {
  decodeMemberContext,
  decodeSnapshotData,
  encodeMemberContext,
  encodeSnapshotData,
  encodeStartedContext,
  isStartedContext,
  Membership,
  snapshotLogTs,
} from './membership.js';

const rec = (id: number): MemberRecord => ({ id, name: `n${id}`, peerAddr: `127.0.0.1:${7000 + id}` });
const add = (r: MemberRecord, type: 'addLearner' | 'addNode' = 'addLearner'): ConfChange => ({
  transition: 'auto',
  changes: [{ type, nodeId: r.id }],
  context: encodeMemberContext(r),
});
const remove = (id: number): ConfChange => ({
  transition: 'auto',
  changes: [{ type: 'removeNode', nodeId: id }],
  context: new Uint8Array(0),
});

describe('member context', () => {
  it('round-trips a record and ignores what is not one', () => {
    expect(decodeMemberContext(encodeMemberContext(rec(4)))).toEqual(rec(4));
    expect(decodeMemberContext(new Uint8Array(0))).toBeUndefined();
    expect(decodeMemberContext(Buffer.from('{"id":"x"}'))).toBeUndefined();
    expect(decodeMemberContext(Buffer.from('not json'))).toBeUndefined();
  });
});

describe('Membership', () => {
  it('follows additions and removals, and keeps removed records', () => {
    const m = new Membership({ members: [rec(1), rec(2), rec(3)], removed: [], index: 0 });
    expect(m.apply(add(rec(4)), 10)).toBe(true);
    expect(m.records().map((r) => r.name)).toEqual(['n1', 'n2', 'n3', 'n4']);
    m.apply(remove(3), 11);
    expect(m.records().map((r) => r.name)).toEqual(['n1', 'n2', 'n4']);
    expect(m.isRemoved(3)).toBe(true);
    expect(m.removed()).toEqual([rec(3)]);
    expect(m.state().index).toBe(11);
    // The removal's index, for the refusal that tells the removed member (handshake.ts).
    expect(m.removalIndex(3)).toBe(11);
    expect(m.removalIndex(2)).toBeUndefined();
  });

  it('skips changes the checkpoint already includes (log replay after a restart)', () => {
    const m = new Membership({ members: [rec(1), rec(2)], removed: [rec(3)], index: 11 });
    // The replay: bootstrap entries without context, then the checkpointed changes.
    expect(m.apply(add(rec(3), 'addNode'), 3)).toBe(false);
    expect(m.apply(remove(3), 11)).toBe(false);
    expect(m.records()).toEqual([rec(1), rec(2)]);
    expect(m.apply(add(rec(5)), 12)).toBe(true);
    expect(m.record(5)).toEqual(rec(5));
  });

  it('learns nothing from a bootstrap entry without context', () => {
    const m = new Membership({ members: [rec(1)], removed: [], index: 0 });
    m.apply({ transition: 'auto', changes: [{ type: 'addNode', nodeId: 2 }], context: new Uint8Array(0) }, 2);
    expect(m.records()).toEqual([rec(1)]);
  });

  it("a snapshot's data carries the member list; restore replaces an older list and ignores an older snapshot", () => {
    const state = { members: [rec(1), rec(2), rec(4)], removed: [rec(3)], index: 40 };
    expect(decodeSnapshotData(encodeSnapshotData(state, 77))).toEqual({ ...state, started: [] });
    // The newest write's timestamp at the index travels too; data from before it has none.
    expect(snapshotLogTs(encodeSnapshotData(state, 77))).toBe(77);
    expect(snapshotLogTs(Buffer.from(JSON.stringify({ v: 1, ...state })))).toBeUndefined();
    expect(snapshotLogTs(Buffer.from('not json'))).toBeUndefined();
    const m = new Membership({ members: [rec(1), rec(2), rec(3)], removed: [], index: 12 });
    expect(m.restore(state)).toBe(true);
    expect(m.state()).toEqual({ ...state, started: [] });
    expect(m.restore({ members: [rec(1)], removed: [], index: 30 })).toBe(false);
    expect(m.records()).toEqual(state.members);
    // Changes the snapshot included are skipped; later ones apply.
    expect(m.apply(remove(4), 40)).toBe(false);
    expect(m.apply(remove(4), 41)).toBe(true);
  });

  it('decodeSnapshotData refuses anything but its own format', () => {
    for (const bad of [
      '',
      '{}',
      'null',
      '{"v":2,"members":[],"removed":[],"index":1}',
      '{"v":1,"members":[{"id":"x"}],"removed":[],"index":1}',
      '{"v":1,"members":[],"removed":[],"index":-1}',
      '{"v":1,"members":{},"removed":[],"index":1}',
      '{"v":1,"members":[],"removed":[],"index":1,"started":{}}',
      '{"v":1,"members":[],"removed":[],"index":1,"started":["x"]}',
      '{"v":1,"members":[],"removed":[],"index":1,"started":[0]}',
    ]) {
      expect(decodeSnapshotData(Buffer.from(bad)), bad).toBeUndefined();
    }
  });
});

describe('started marks', () => {
  const mark = (r: MemberRecord, type: 'addLearner' | 'addNode' = 'addNode'): ConfChange => ({
    transition: 'auto',
    changes: [{ type, nodeId: r.id }],
    context: encodeStartedContext(r),
  });

  it('a mark is a member record with started: true (members built before marks read the record)', () => {
    expect(decodeMemberContext(encodeStartedContext(rec(2)))).toEqual(rec(2));
    expect(isStartedContext(encodeStartedContext(rec(2)))).toBe(true);
    expect(isStartedContext(encodeMemberContext(rec(2)))).toBe(false);
    expect(isStartedContext(new Uint8Array(0))).toBe(false);
    expect(isStartedContext(Buffer.from('{"started":true}'))).toBe(false);
    expect(JSON.parse(Buffer.from(encodeStartedContext(rec(2))).toString())).toEqual({
      ...rec(2),
      started: true,
    });
  });

  it('applying a mark records the member as started; an addition or a promotion does not', () => {
    const m = new Membership({ members: [rec(1), rec(2)], removed: [], index: 2 });
    expect(m.isStarted(1)).toBe(false);
    expect(m.apply(mark(rec(1)), 3)).toBe(true);
    expect(m.isStarted(1)).toBe(true);
    m.apply(add(rec(3)), 4);
    m.apply(add(rec(3), 'addNode'), 5);
    expect(m.isStarted(3)).toBe(false);
    m.apply(mark(rec(3), 'addLearner'), 6);
    expect(m.state().started).toEqual([1, 3]);
    // A removal forgets it (the removed list keeps the id from ever coming back).
    m.apply(remove(3), 7);
    expect(m.isStarted(3)).toBe(false);
    expect(m.state().started).toEqual([1]);
  });

  it("a mark changes no record: each member keeps its own view of the member's address", () => {
    const m = new Membership({ members: [rec(1), rec(2)], removed: [], index: 2 });
    m.apply(mark({ ...rec(2), peerAddr: '10.0.0.9:1' }), 3);
    expect(m.record(2)).toEqual(rec(2));
    expect(m.isStarted(2)).toBe(true);
    // A mark for an id that is no member records nothing.
    m.apply(mark(rec(7)), 4);
    expect(m.isStarted(7)).toBe(false);
    expect(m.record(7)).toBeUndefined();
  });

  it('a replayed mark at or below the checkpoint is skipped; the checkpoint keeps the set', () => {
    const m = new Membership({ members: [rec(1), rec(2)], removed: [], index: 9, started: [2] });
    expect(m.isStarted(2)).toBe(true);
    expect(m.apply(mark(rec(1)), 9)).toBe(false);
    expect(m.isStarted(1)).toBe(false);
    // A started id that is no member (a damaged checkpoint) is not kept.
    expect(new Membership({ members: [rec(1)], removed: [], index: 1, started: [5] }).isStarted(5)).toBe(
      false,
    );
  });

  it('the set travels in snapshot data and is restored with it; data from before marks has none', () => {
    const state = { members: [rec(1), rec(2)], removed: [], index: 20, started: [1, 2] };
    const data = encodeSnapshotData(state, 5);
    expect(decodeSnapshotData(data)).toEqual(state);
    const m = new Membership({ members: [rec(1), rec(2)], removed: [], index: 3 });
    expect(m.restore(decodeSnapshotData(data) as typeof state)).toBe(true);
    expect(m.isStarted(2)).toBe(true);
    const old = Buffer.from(JSON.stringify({ v: 1, members: [rec(1)], removed: [], index: 4 }));
    expect(decodeSnapshotData(old)?.started).toEqual([]);
  });
});
