import { describe, expect, it } from 'vitest';
import type { NodeId } from '../raft/index.js';
import type { MemberRecord } from './identity.js';
import {
  checkAddLearner,
  checkAddVoter,
  checkPromote,
  checkRemove,
  MAX_LEARNERS,
  quorum,
  type ReconfigView,
} from './reconfig-check.js';

const rec = (id: NodeId, name = `n${id}`): MemberRecord => ({ id, name, peerAddr: `10.0.0.${id}:7001` });

function view(over: Partial<ReconfigView> = {}): ReconfigView {
  return {
    leader: 1,
    voters: [1, 2, 3],
    learners: [],
    lastIndex: 100,
    match: new Map([
      [1, 100],
      [2, 100],
      [3, 100],
    ]),
    active: new Set([1, 2, 3]),
    members: [rec(1), rec(2), rec(3)],
    removed: [],
    ...over,
  };
}

describe('quorum', () => {
  it('is a majority', () => {
    expect([1, 2, 3, 4, 5].map(quorum)).toEqual([1, 2, 2, 3, 3]);
  });
});

describe('checkAddLearner', () => {
  it('accepts a new name and address', () => {
    expect(checkAddLearner(view(), rec(4))).toBeUndefined();
  });
  it('refuses a name or an address in use, and a current id', () => {
    expect(checkAddLearner(view(), { id: 9, name: 'n2', peerAddr: 'x:1' })).toMatch(/named 'n2' already/);
    expect(checkAddLearner(view(), { id: 9, name: 'n9', peerAddr: rec(3).peerAddr })).toMatch(
      /'n3' already uses/,
    );
    expect(checkAddLearner(view({ learners: [9] }), { id: 9, name: 'n9', peerAddr: 'x:1' })).toMatch(
      /already in/,
    );
  });
  it('refuses the name of a removed member (its id would come back)', () => {
    expect(checkAddLearner(view({ removed: [rec(7, 'old')] }), rec(7, 'old'))).toMatch(/was removed/);
  });
  it(`refuses more than ${MAX_LEARNERS} learner(s)`, () => {
    expect(
      checkAddLearner(view({ learners: [4], members: [rec(1), rec(2), rec(3), rec(4)] }), rec(5)),
    ).toMatch(/learner/);
  });
  it('refuses adding a voter directly', () => {
    expect(checkAddVoter()).toMatch(/learner/);
  });
});

describe('checkPromote', () => {
  const withLearner = (match: number, active = [1, 2, 3, 4]): ReconfigView =>
    view({
      learners: [4],
      match: new Map([
        [1, 100],
        [2, 100],
        [3, 100],
        [4, match],
      ]),
      active: new Set(active),
    });
  it('promotes a learner within 90% of the leader', () => {
    expect(checkPromote(withLearner(90), 4)).toBeUndefined();
    expect(checkPromote(withLearner(100), 4)).toBeUndefined();
  });
  it('refuses a learner that has not caught up', () => {
    expect(checkPromote(withLearner(89), 4)).toMatch(/not caught up.*index 89.*100/);
    expect(checkPromote(withLearner(0), 4)).toMatch(/not caught up/);
  });
  it('refuses what is not a learner', () => {
    expect(checkPromote(withLearner(100), 2)).toMatch(/already a voter/);
    expect(checkPromote(withLearner(100), 8)).toMatch(/not a learner/);
  });
  it('refuses a promotion that leaves fewer active voters than a quorum', () => {
    // 4 voters after it, quorum 3; only the leader and the learner are active.
    expect(checkPromote(withLearner(100, [1, 4]), 4)).toMatch(/only 2 of the 4.*quorum of 3/);
  });
});

describe('checkRemove', () => {
  it('removes a follower while a quorum of the rest is active', () => {
    expect(checkRemove(view(), 3, false)).toBeUndefined();
  });
  it('removes a dead member: the remaining voters are active', () => {
    expect(checkRemove(view({ active: new Set([1, 2]) }), 3, false)).toBeUndefined();
  });
  it('refuses a removal that leaves fewer active voters than the new quorum, unless forced', () => {
    // n3 is down; removing n2 leaves {n1, n3}: quorum 2, one active.
    const v = view({ active: new Set([1, 2]) });
    expect(checkRemove(v, 2, false)).toMatch(
      /only 1 of the 2 remaining voters.*quorum of 2 is needed \(if the inactive members are gone for good: cairn member remove --force, or \?force=true over HTTP\)$/,
    );
    expect(checkRemove(v, 2, true)).toBeUndefined();
  });
  it('refuses removing the last voter, even forced', () => {
    const v = view({ voters: [1], members: [rec(1)], match: new Map([[1, 100]]), active: new Set([1]) });
    expect(checkRemove(v, 1, false)).toMatch(/last voter/);
    expect(checkRemove(v, 1, true)).toMatch(/last voter/);
  });
  it('removes a learner without quorum checks, and refuses an id outside the configuration', () => {
    expect(checkRemove(view({ learners: [4], active: new Set([1]) }), 4, false)).toBeUndefined();
    expect(checkRemove(view(), 9, false)).toMatch(/not in the cluster/);
  });
  it('counts the removed leader out: removing it from 2 voters leaves 1 (quorum 1)', () => {
    const v = view({ voters: [1, 2], members: [rec(1), rec(2)], active: new Set([1, 2]) });
    expect(checkRemove(v, 1, false)).toBeUndefined();
  });
});
