import { describe, expect, it } from 'vitest';
import { ReplyWriter, type RespVersion } from '../../protocol/resp/index.js';
import {
  prefixOverlap,
  readKeys,
  type TrackingPeer,
  type TrackingState,
  TrackingTable,
  trackRead,
} from './tracking.js';

/** FakePeer: a connection that records what it is sent, with held replies simulated. */
class FakePeer implements TrackingPeer {
  readonly out: string[] = [];
  tracking: TrackingState | undefined;
  subscribed = false;
  executing = false;
  held = 0;
  private readonly deferred: (() => void)[] = [];
  private readonly afterHeld: (() => void)[] = [];

  constructor(
    readonly id: number,
    readonly protocol: RespVersion,
  ) {}

  write(message: (w: ReplyWriter) => void): void {
    const w = new ReplyWriter(this.protocol);
    message(w);
    this.out.push(w.take().toString('latin1').replaceAll('\r\n', ' ').trim());
  }

  afterHeldReplies(fn: () => void): void {
    if (this.held === 0) fn();
    else this.afterHeld.push(fn);
  }

  release(): void {
    this.held = 0;
    for (const fn of this.afterHeld.splice(0)) fn();
  }

  defer(fn: () => void): void {
    if (this.executing) this.deferred.push(fn);
    else fn();
  }

  finish(): void {
    this.executing = false;
    for (const fn of this.deferred.splice(0)) fn();
  }
}

function state(over: Partial<TrackingState> = {}): TrackingState {
  return {
    bcast: false,
    optin: false,
    optout: false,
    noloop: false,
    redirect: 0,
    prefixes: [],
    caching: false,
    brokenRedirect: false,
    ...over,
  };
}

function setup(maxKeys?: number) {
  const peers = new Map<number, FakePeer>();
  const table = new TrackingTable((id) => peers.get(id), maxKeys);
  const add = (id: number, protocol: RespVersion, s: Partial<TrackingState> | undefined = {}): FakePeer => {
    const p = new FakePeer(id, protocol);
    peers.set(id, p);
    if (s !== undefined) {
      p.tracking = state(s);
      table.enable(id, p.tracking);
    }
    return p;
  };
  return { peers, table, add };
}

const k = (s: string) => Buffer.from(s);
const INV = (key: string) => `>2 $10 invalidate *1 $${key.length} ${key}`;

describe('TrackingTable', () => {
  it('sends one invalidation per key to each reader, then forgets the key', () => {
    const { table, add } = setup();
    const a = add(1, 3);
    const b = add(2, 3);
    table.remember(1, a.tracking, [k('x'), k('y')]);
    table.remember(2, b.tracking, [k('x')]);
    table.invalidate([k('x')]);
    expect(a.out).toEqual([INV('x')]);
    expect(b.out).toEqual([INV('x')]);
    table.invalidate([k('x')]);
    expect(a.out).toHaveLength(1);
    expect(table.size).toBe(1); // y
  });

  it('NOLOOP skips the client’s own writes; without it they come after its reply', () => {
    const { table, add } = setup();
    const loop = add(1, 3);
    const noloop = add(2, 3, { noloop: true });
    table.remember(1, loop.tracking, [k('x')]);
    table.remember(2, noloop.tracking, [k('x')]);
    loop.executing = true;
    table.asWriter(1, () => table.invalidate([k('x')]));
    expect(loop.out).toEqual([]); // deferred until its reply
    loop.finish();
    expect(loop.out).toEqual([INV('x')]);
    table.remember(2, noloop.tracking, [k('y')]);
    table.asWriter(2, () => table.invalidate([k('y')]));
    expect(noloop.out).toEqual([INV('x')]);
  });

  it('holds invalidations for a client executing an asynchronous command until its reply', () => {
    const { table, add } = setup();
    const a = add(1, 3);
    table.remember(1, a.tracking, [k('x')]);
    a.executing = true; // an EXEC reading a snapshot taken before the write below
    table.asWriter(2, () => table.invalidate([k('x')]));
    expect(a.out).toEqual([]);
    a.finish();
    expect(a.out).toEqual([INV('x')]);
  });

  it('OPTIN remembers only after CLIENT CACHING yes, OPTOUT all but after CLIENT CACHING no', () => {
    const { table, add } = setup();
    const optin = add(1, 3, { optin: true });
    const optout = add(2, 3, { optout: true });
    trackRead(table, optin, { flags: ['readonly'], firstKey: 1, lastKey: 1, step: 1 }, [k('get'), k('a')]);
    optin.tracking!.caching = true;
    trackRead(table, optin, { flags: ['readonly'], firstKey: 1, lastKey: 1, step: 1 }, [k('get'), k('b')]);
    trackRead(table, optout, { flags: ['readonly'], firstKey: 1, lastKey: 1, step: 1 }, [k('get'), k('a')]);
    optout.tracking!.caching = true;
    trackRead(table, optout, { flags: ['readonly'], firstKey: 1, lastKey: 1, step: 1 }, [k('get'), k('b')]);
    table.invalidate([k('a'), k('b')]);
    expect(optin.out).toEqual([INV('b')]);
    expect(optout.out).toEqual([INV('a')]);
  });

  it('BCAST sends the keys under each prefix once per turn, sorted', async () => {
    const { table, add } = setup();
    const b = add(1, 3, { bcast: true, prefixes: [k('u:')] });
    table.invalidate([k('u:2'), k('v')]);
    table.invalidate([k('u:1'), k('u:2')]);
    expect(b.out).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(b.out).toEqual(['>2 $10 invalidate *2 $3 u:1 $3 u:2']);
  });

  it('redirects RESP2 invalidations as pub/sub messages, after the owner’s held replies', () => {
    const { table, add } = setup();
    const target = add(7, 2, undefined);
    target.subscribed = true;
    const owner = add(1, 2, { redirect: 7 });
    table.remember(1, owner.tracking, [k('x')]);
    owner.held = 1;
    table.invalidate([k('x')]);
    expect(target.out).toEqual([]);
    owner.release();
    expect(target.out).toEqual(['*3 $7 message $20 __redis__:invalidate *1 $1 x']);
    expect(owner.out).toEqual([]);
  });

  it('a missing redirect target is reported once to RESP3 clients and flagged', () => {
    const { table, add } = setup();
    const owner = add(1, 3, { redirect: 99 });
    table.remember(1, owner.tracking, [k('x'), k('y')]);
    table.invalidate([k('x')]);
    table.invalidate([k('y')]);
    expect(owner.out).toEqual(['>2 $21 tracking-redir-broken :99']);
    expect(owner.tracking!.brokenRedirect).toBe(true);
  });

  it('flushed sends a null invalidation to every tracking client and empties the table', () => {
    const { table, add } = setup();
    const a = add(1, 3);
    const b = add(2, 3, { bcast: true });
    table.remember(1, a.tracking, [k('x')]);
    table.flushed();
    expect(a.out).toEqual(['>2 $10 invalidate _']);
    expect(b.out).toEqual(['>2 $10 invalidate _']);
    expect(table.size).toBe(0);
  });

  it('evicts the oldest key past maxKeys by invalidating it early', () => {
    const { table, add } = setup(2);
    const a = add(1, 3);
    table.remember(1, a.tracking, [k('a'), k('b'), k('c')]);
    expect(a.out).toEqual([INV('a')]);
    expect(table.size).toBe(2);
    expect(table.evicted).toBe(1);
  });

  it('skips clients that turned tracking off or left', () => {
    const { table, add, peers } = setup();
    const a = add(1, 3);
    add(2, 3);
    table.remember(1, a.tracking, [k('x')]);
    table.remember(2, peers.get(2)!.tracking, [k('x')]);
    table.disable(1, a.tracking);
    a.tracking = undefined;
    peers.delete(2);
    table.invalidate([k('x')]);
    expect(a.out).toEqual([]);
  });
});

describe('readKeys and prefixOverlap', () => {
  it('reads the key positions of read-only commands only', () => {
    const args = [k('mget'), k('a'), k('b')];
    expect(readKeys({ flags: ['readonly'], firstKey: 1, lastKey: -1, step: 1 }, args).map(String)).toEqual([
      'a',
      'b',
    ]);
    expect(readKeys({ flags: ['write'], firstKey: 1, lastKey: 1, step: 1 }, args)).toEqual([]);
    expect(readKeys({ flags: ['readonly'], firstKey: 0, lastKey: 0, step: 0 }, args)).toEqual([]);
  });

  it('finds overlapping prefixes as Redis words it', () => {
    expect(prefixOverlap([], [k('a'), k('b')])).toBeUndefined();
    expect(prefixOverlap([k('ab')], [k('a')])).toContain("Prefix 'a' overlaps with an existing prefix 'ab'");
    expect(prefixOverlap([], [k('a'), k('ab')])).toContain("overlaps with another provided prefix 'ab'");
  });
});

describe('ReplyOrder.afterReleased (the redirect waits for held replies)', () => {
  it('runs at once without held replies, else once the replies held so far are released', async () => {
    const { ReplyOrder } = await import('./reply-order.js');
    const order = new ReplyOrder(
      2,
      () => {},
      () => {},
    );
    const ran: string[] = [];
    order.afterReleased(() => ran.push('now'));
    expect(ran).toEqual(['now']);
    let resolve!: () => void;
    const durable = new Promise<void>((r) => {
      resolve = r;
    });
    order.hold(durable, (w) => w.bulk('value'), 2, 'get', 0);
    order.afterReleased(() => ran.push(`after: ${Buffer.concat(order.takeReady()).toString().trim()}`));
    await Promise.resolve();
    expect(ran).toEqual(['now']);
    resolve();
    await durable;
    await Promise.resolve();
    expect(ran).toEqual(['now', 'after: $5\r\nvalue']);
  });
});
