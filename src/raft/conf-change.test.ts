import { describe, expect, it } from 'vitest';
import {
  applyConfChange,
  ConfChangeError,
  decodeConfChange,
  encodeConfChange,
  restoreConfState,
} from './conf-change.js';
import { confStateOf } from './tracker.js';
import type { ConfChange, ConfChangeSingle } from './types.js';

const ctx = { lastIndex: 10, maxInflight: 4, maxInflightBytes: 1 << 20 };
const cc = (changes: ConfChangeSingle[], transition: ConfChange['transition'] = 'auto'): ConfChange => ({
  transition,
  changes,
  context: new Uint8Array(),
});
const base = () =>
  restoreConfState(
    { voters: [1, 2, 3], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    ctx,
  );

describe('conf changes', () => {
  it('one-at-a-time changes touch at most one voter', () => {
    const { cfg, prs } = base();
    const r = applyConfChange(cfg, prs, ctx, cc([{ type: 'addNode', nodeId: 4 }]));
    expect(confStateOf(r.cfg).voters).toEqual([1, 2, 3, 4]);
    expect(r.prs.has(4)).toBe(true);
  });

  it('a change of two voters enters a joint config, and leaving it drops the outgoing voters', () => {
    const { cfg, prs } = base();
    const j = applyConfChange(
      cfg,
      prs,
      ctx,
      cc([
        { type: 'addNode', nodeId: 4 },
        { type: 'removeNode', nodeId: 1 },
      ]),
    );
    const cs = confStateOf(j.cfg);
    expect(cs.voters).toEqual([2, 3, 4]);
    expect(cs.votersOutgoing).toEqual([1, 2, 3]);
    expect(cs.autoLeave).toBe(true);
    expect(j.prs.has(1)).toBe(true); // Still an outgoing voter.
    const l = applyConfChange(j.cfg, j.prs, ctx, cc([]));
    expect(confStateOf(l.cfg)).toEqual({
      voters: [2, 3, 4],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    });
    expect(l.prs.has(1)).toBe(false);
  });

  it('demoting a voter in a joint config makes it a learner only when leaving', () => {
    const { cfg, prs } = base();
    const j = applyConfChange(cfg, prs, ctx, cc([{ type: 'addLearner', nodeId: 3 }], 'jointExplicit'));
    expect(confStateOf(j.cfg).learnersNext).toEqual([3]);
    const l = applyConfChange(j.cfg, j.prs, ctx, cc([]));
    expect(confStateOf(l.cfg).learners).toEqual([3]);
    expect(l.prs.get(3)?.isLearner).toBe(true);
  });

  it('refuses impossible changes', () => {
    const { cfg, prs } = base();
    expect(() => applyConfChange(cfg, prs, ctx, cc([]))).toThrow(ConfChangeError);
    const j = applyConfChange(cfg, prs, ctx, cc([{ type: 'addNode', nodeId: 4 }], 'jointExplicit'));
    expect(() => applyConfChange(j.cfg, j.prs, ctx, cc([{ type: 'addNode', nodeId: 5 }]))).toThrow(
      ConfChangeError,
    );
    const one = restoreConfState(
      { voters: [1], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
      ctx,
    );
    expect(() => applyConfChange(one.cfg, one.prs, ctx, cc([{ type: 'removeNode', nodeId: 1 }]))).toThrow(
      ConfChangeError,
    );
  });

  it('restores a joint ConfState from a snapshot', () => {
    const cs = {
      voters: [2, 3, 4],
      learners: [],
      votersOutgoing: [1, 2, 3],
      learnersNext: [],
      autoLeave: true,
    };
    expect(confStateOf(restoreConfState(cs, ctx).cfg)).toEqual(cs);
  });

  it('encodes and decodes', () => {
    const c = cc([{ type: 'addLearner', nodeId: 7 }], 'jointImplicit');
    expect(decodeConfChange(encodeConfChange(c))).toEqual(c);
  });
});
