// Keyspace notifications (docs/pubsub.md): Redis's `notify-keyspace-events`. A write command
// reports what it did (event name, key, class); once the write is durable the notifier
// publishes `__keyspace@0__:<key>` -> <event> (flag K) and `__keyevent@0__:<event>` -> <key>
// (flag E) through the broker, when the event's class is enabled.
//
// Order: events are published in the order the commands reported them (one server-wide queue),
// each batch only once its write is durable, and never for a write that failed. So a
// subscriber never hears of a write a crash could undo, and hears of writes in the order they
// were made even when a later one becomes durable first (a later group commit cannot overtake:
// the queue waits for the earlier batch).
import type { PubSubBroker } from './pubsub.js';

/** NOTIFY: Redis's notification classes (server.h NOTIFY_*), as bits of the flags. */
export const NOTIFY = Object.freeze({
  keyspace: 1 << 0, // K
  keyevent: 1 << 1, // E
  generic: 1 << 2, // g
  string: 1 << 3, // $
  list: 1 << 4, // l
  set: 1 << 5, // s
  hash: 1 << 6, // h
  zset: 1 << 7, // z
  expired: 1 << 8, // x
  evicted: 1 << 9, // e
  stream: 1 << 10, // t
  keyMiss: 1 << 11, // m (never emitted here)
  module: 1 << 12, // d
  new: 1 << 13, // n (never emitted here: documented)
});

/** NOTIFY_ALL: the classes `A` stands for (Redis's NOTIFY_ALL: not m, not n). */
export const NOTIFY_ALL =
  NOTIFY.generic |
  NOTIFY.string |
  NOTIFY.list |
  NOTIFY.set |
  NOTIFY.hash |
  NOTIFY.zset |
  NOTIFY.expired |
  NOTIFY.evicted |
  NOTIFY.stream |
  NOTIFY.module;

const LETTERS: Readonly<Record<string, number>> = {
  A: NOTIFY_ALL,
  g: NOTIFY.generic,
  $: NOTIFY.string,
  l: NOTIFY.list,
  s: NOTIFY.set,
  h: NOTIFY.hash,
  z: NOTIFY.zset,
  x: NOTIFY.expired,
  e: NOTIFY.evicted,
  K: NOTIFY.keyspace,
  E: NOTIFY.keyevent,
  t: NOTIFY.stream,
  m: NOTIFY.keyMiss,
  d: NOTIFY.module,
  n: NOTIFY.new,
};

/** ERR_NOTIFY_FLAGS: Redis 7's reason for refusing a flag letter (CONFIG SET wraps it). */
export const ERR_NOTIFY_FLAGS = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

/** parseNotifyFlags: Redis's keyspaceEventsStringToFlags; undefined on an unknown letter. */
export function parseNotifyFlags(text: string): number | undefined {
  let flags = 0;
  for (const ch of text) {
    const bit = LETTERS[ch];
    if (bit === undefined) return undefined;
    flags |= bit;
  }
  return flags;
}

/** formatNotifyFlags: Redis's keyspaceEventsFlagsToString (with `A` it drops `n`, as Redis 7.0). */
export function formatNotifyFlags(flags: number): string {
  let out = '';
  if ((flags & NOTIFY_ALL) === NOTIFY_ALL) out += 'A';
  else {
    const order: [string, number][] = [
      ['g', NOTIFY.generic],
      ['$', NOTIFY.string],
      ['l', NOTIFY.list],
      ['s', NOTIFY.set],
      ['h', NOTIFY.hash],
      ['z', NOTIFY.zset],
      ['x', NOTIFY.expired],
      ['e', NOTIFY.evicted],
      ['t', NOTIFY.stream],
      ['d', NOTIFY.module],
      ['n', NOTIFY.new],
    ];
    for (const [letter, bit] of order) if (flags & bit) out += letter;
  }
  if (flags & NOTIFY.keyspace) out += 'K';
  if (flags & NOTIFY.keyevent) out += 'E';
  if (flags & NOTIFY.keyMiss) out += 'm';
  return out;
}

/** KeyspaceEvent: one event of one key (the key is the notifier's own copy). */
export interface KeyspaceEvent {
  readonly cls: number;
  readonly event: string;
  readonly key: Buffer;
}

interface Batch {
  readonly events: readonly KeyspaceEvent[];
  /** state: waiting for durability, durable (publish), or failed (drop). */
  state: 'waiting' | 'durable' | 'failed';
}

/** QUEUE_COMPACT_AT: published batches kept at the head of the queue before it is compacted. */
const QUEUE_COMPACT_AT = 1024;

const KEYSPACE_PREFIX = Buffer.from('__keyspace@0__:');
const KEYEVENT_PREFIX = Buffer.from('__keyevent@0__:');

export class KeyspaceNotifier {
  /** flags: the `notify-keyspace-events` setting (0: off, Redis's default). */
  flags = 0;
  private queue: Batch[] = [];
  private head = 0;

  constructor(
    broker: PubSubBroker,
    /**
     * publishTo: how an event is published: to this server's subscribers by default; on a cluster
     * member through PUBLISH's fan-out, so that every member's subscribers hear of writes (which
     * run on the leader).
     */
    private readonly publishTo: (channel: Buffer, payload: Buffer) => unknown = (channel, payload) =>
      broker.publish(channel, payload),
  ) {}

  /** wants: whether an event of class `cls` would be published (callers skip the work if not). */
  wants(cls: number): boolean {
    return (this.flags & cls) !== 0 && (this.flags & (NOTIFY.keyspace | NOTIFY.keyevent)) !== 0;
  }

  /** event makes an event, copying the key (commands' arguments are borrowed). */
  static event(cls: number, event: string, key: Uint8Array): KeyspaceEvent {
    return { cls, event, key: Buffer.from(key) };
  }

  /**
   * after publishes `events` once `durable` resolves (at once, in queue order, when undefined);
   * drops them if it rejects (the write failed).
   */
  after(durable: Promise<void> | undefined, events: readonly KeyspaceEvent[]): void {
    if (events.length === 0) return;
    const batch: Batch = { events, state: durable === undefined ? 'durable' : 'waiting' };
    this.queue.push(batch);
    if (durable === undefined) {
      this.drain();
      return;
    }
    durable.then(
      () => {
        batch.state = 'durable';
        this.drain();
      },
      () => {
        batch.state = 'failed';
        this.drain();
      },
    );
  }

  private drain(): void {
    while (this.head < this.queue.length) {
      const batch = this.queue[this.head]!;
      if (batch.state === 'waiting') break;
      this.head++;
      if (batch.state === 'durable') for (const e of batch.events) this.publish(e);
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head >= QUEUE_COMPACT_AT && this.head * 2 >= this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private publish(e: KeyspaceEvent): void {
    // Checked again at publication: CONFIG SET may have changed the flags meanwhile (Redis
    // checks when it publishes, which is when it writes).
    if ((this.flags & e.cls) === 0) return;
    const event = Buffer.from(e.event, 'latin1');
    if (this.flags & NOTIFY.keyspace) this.publishTo(Buffer.concat([KEYSPACE_PREFIX, e.key]), event);
    if (this.flags & NOTIFY.keyevent) this.publishTo(Buffer.concat([KEYEVENT_PREFIX, event]), e.key);
  }
}
