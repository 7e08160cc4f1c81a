import { describe, expect, it } from 'vitest';
import { ReadOnly } from './read-only.js';
import { message } from './types.js';

const ctx = (s: string) => new TextEncoder().encode(s);

describe('ReadOnly', () => {
  it('an acknowledged later request also releases the earlier ones, in order', () => {
    const ro = new ReadOnly();
    ro.addRequest(5, message({ type: 'MsgReadIndex', context: ctx('a') }));
    ro.addRequest(6, message({ type: 'MsgReadIndex', context: ctx('b') }));
    expect(ro.recvAck(2, ctx('b'))?.has(2)).toBe(true);
    const done = ro.advance(ctx('b'));
    expect(done.map((d) => d.index)).toEqual([5, 6]);
    expect(ro.lastPendingRequestCtx()).toBeUndefined();
  });

  it('ignores acks for unknown contexts and duplicate requests', () => {
    const ro = new ReadOnly();
    ro.addRequest(5, message({ type: 'MsgReadIndex', context: ctx('a') }));
    ro.addRequest(9, message({ type: 'MsgReadIndex', context: ctx('a') }));
    expect(ro.recvAck(2, ctx('zz'))).toBeUndefined();
    expect(ro.advance(ctx('a')).map((d) => d.index)).toEqual([5]);
  });
});
