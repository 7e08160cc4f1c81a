import { describe, expect, it } from 'vitest';
import { ReplyOrder } from './reply-order.js';

const text = (chunks: readonly Buffer[]): string => Buffer.concat(chunks).toString('latin1');

describe('ReplyOrder', () => {
  it('sends a pipeline of held replies released together as one chunk', async () => {
    let released = 0;
    const order = new ReplyOrder(
      2,
      () => released++,
      () => {},
    );
    let resolve!: () => void;
    const durable = new Promise<void>((r) => {
      resolve = r;
    });
    for (let i = 0; i < 16; i++) order.hold(durable, (w) => w.ok(), 2, 'set', 0);
    expect(order.takeReady()).toEqual([]);
    resolve();
    await durable;
    await Promise.resolve();
    const chunks = order.takeReady();
    expect(released).toBe(16);
    expect(chunks).toHaveLength(1);
    expect(text(chunks)).toBe('+OK\r\n'.repeat(16));
  });

  it('keeps request order across held replies, their tails and later immediate replies', async () => {
    const order = new ReplyOrder(
      2,
      () => {},
      () => {},
    );
    order.w.integer(0);
    const first = Promise.resolve();
    order.hold(first, (w) => w.integer(1), 2, 'set', 0);
    order.hold(first, (w) => w.integer(2), 2, 'set', 0);
    order.w.integer(3); // the tail of the second held reply
    let resolve!: () => void;
    const second = new Promise<void>((r) => {
      resolve = r;
    });
    order.hold(second, (w) => w.integer(4), 2, 'set', 0);
    order.w.integer(5);
    await first;
    await Promise.resolve();
    expect(text(order.takeReady())).toBe(':0\r\n:1\r\n:2\r\n:3\r\n');
    resolve();
    await second;
    await Promise.resolve();
    order.w.integer(6);
    expect(text(order.takeReady())).toBe(':4\r\n:5\r\n:6\r\n');
  });
});
