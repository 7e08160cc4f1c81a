// The pub/sub broker (docs/pubsub.md): which connection listens to which channel, pattern and
// shard channel, and the delivery of PUBLISH / SPUBLISH to them. One broker per RESP server; it
// holds no messages: delivering one writes it into each receiving connection's output at once
// (Redis's model: at most once, nothing kept for a subscriber that is not connected), and the
// connection's output-buffer limit (limits.ts, PUBSUB_OUTPUT_*) bounds what a slow subscriber
// costs.
//
// Names are kept as latin1 strings (exact bytes) for the maps, with the original bytes beside
// them for replies and pattern matching. Both are copies: commands' arguments are views into
// socket chunks.
import { globMatch } from './glob.js';

/** SubscriptionKind: SUBSCRIBE's channels, PSUBSCRIBE's patterns, SSUBSCRIBE's shard channels. */
export type SubscriptionKind = 'channel' | 'pattern' | 'shard';

/** Subscriber: the receiving side of a connection. */
export interface Subscriber {
  /**
   * deliver writes one message push: `message channel payload`, `pmessage pattern channel
   * payload` or `smessage channel payload` (pattern undefined for the other two).
   */
  deliver(
    kind: 'message' | 'pmessage' | 'smessage',
    pattern: Buffer | undefined,
    channel: Buffer,
    payload: Buffer,
  ): void;
}

interface Topic {
  readonly name: Buffer;
  readonly subscribers: Set<Subscriber>;
}

const key = (name: Buffer): string => name.toString('latin1');

/** TopicMap: name -> subscribers, dropping a name when its last subscriber leaves. */
class TopicMap {
  readonly byName = new Map<string, Topic>();

  add(name: Buffer, sub: Subscriber): void {
    const k = key(name);
    let topic = this.byName.get(k);
    if (topic === undefined) {
      topic = { name: Buffer.from(name), subscribers: new Set() };
      this.byName.set(k, topic);
    }
    topic.subscribers.add(sub);
  }

  remove(name: Buffer, sub: Subscriber): void {
    const k = key(name);
    const topic = this.byName.get(k);
    if (topic === undefined) return;
    topic.subscribers.delete(sub);
    if (topic.subscribers.size === 0) this.byName.delete(k);
  }

  count(name: Buffer): number {
    return this.byName.get(key(name))?.subscribers.size ?? 0;
  }

  /** names: the names with at least one subscriber, matching `pattern` when given. */
  names(pattern: Buffer | undefined): Buffer[] {
    const out: Buffer[] = [];
    for (const topic of this.byName.values()) {
      if (pattern === undefined || globMatch(pattern, topic.name)) out.push(topic.name);
    }
    return out;
  }
}

export class PubSubBroker {
  private readonly channels = new TopicMap();
  private readonly patterns = new TopicMap();
  private readonly shardChannels = new TopicMap();

  private map(kind: SubscriptionKind): TopicMap {
    return kind === 'channel' ? this.channels : kind === 'pattern' ? this.patterns : this.shardChannels;
  }

  subscribe(kind: SubscriptionKind, name: Buffer, sub: Subscriber): void {
    this.map(kind).add(name, sub);
  }

  unsubscribe(kind: SubscriptionKind, name: Buffer, sub: Subscriber): void {
    this.map(kind).remove(name, sub);
  }

  /**
   * publish delivers `payload` to the channel's subscribers, then to the subscribers of every
   * pattern matching it (Redis's order), and returns how many deliveries it made: a connection
   * subscribed to the channel and to a matching pattern counts (and receives) twice, as in Redis.
   */
  publish(channel: Buffer, payload: Buffer): number {
    let receivers = 0;
    const topic = this.channels.byName.get(key(channel));
    if (topic !== undefined) {
      // A copy: a delivery may disconnect a subscriber (output limit), which unsubscribes it.
      for (const sub of [...topic.subscribers]) {
        sub.deliver('message', undefined, channel, payload);
        receivers++;
      }
    }
    if (this.patterns.byName.size > 0) {
      for (const p of [...this.patterns.byName.values()]) {
        if (!globMatch(p.name, channel)) continue;
        for (const sub of [...p.subscribers]) {
          sub.deliver('pmessage', p.name, channel, payload);
          receivers++;
        }
      }
    }
    return receivers;
  }

  /** spublish delivers to a shard channel's subscribers (no patterns apply, as in Redis). */
  spublish(channel: Buffer, payload: Buffer): number {
    const topic = this.shardChannels.byName.get(key(channel));
    if (topic === undefined) return 0;
    const subs = [...topic.subscribers];
    for (const sub of subs) sub.deliver('smessage', undefined, channel, payload);
    return subs.length;
  }

  /** activeChannels: PUBSUB CHANNELS / SHARDCHANNELS: names with a subscriber, matching `pattern`. */
  activeChannels(shard: boolean, pattern: Buffer | undefined): Buffer[] {
    return (shard ? this.shardChannels : this.channels).names(pattern);
  }

  /** numsub: PUBSUB NUMSUB / SHARDNUMSUB: a channel's subscribers (patterns not counted). */
  numsub(shard: boolean, channel: Buffer): number {
    return (shard ? this.shardChannels : this.channels).count(channel);
  }

  /** numpat: PUBSUB NUMPAT: distinct patterns with a subscriber. */
  numpat(): number {
    return this.patterns.byName.size;
  }

  /** numchannels: INFO's pubsub_channels / pubsubshard_channels: channels with a subscriber. */
  numchannels(shard: boolean): number {
    return (shard ? this.shardChannels : this.channels).byName.size;
  }
}

/**
 * Subscriptions: one connection's channels, patterns and shard channels, kept in step with the
 * broker. Names in the order they were subscribed (UNSUBSCRIBE without arguments goes through
 * them in that order; Redis goes in its hash table's order).
 */
export class Subscriptions {
  private readonly names: Record<SubscriptionKind, Map<string, Buffer>> = {
    channel: new Map(),
    pattern: new Map(),
    shard: new Map(),
  };

  constructor(
    private readonly broker: PubSubBroker,
    private readonly subscriber: Subscriber,
    /** changed: called after the subscriptions changed (the connection updates CLIENT LIST's counts). */
    private readonly changed: () => void = () => {},
  ) {}

  /** add subscribes (nothing changes when already subscribed); true when it is new. */
  add(kind: SubscriptionKind, name: Buffer): boolean {
    const names = this.names[kind];
    const k = key(name);
    if (names.has(k)) return false;
    names.set(k, Buffer.from(name));
    this.broker.subscribe(kind, name, this.subscriber);
    this.changed();
    return true;
  }

  /** remove unsubscribes; true when it was subscribed. */
  remove(kind: SubscriptionKind, name: Buffer): boolean {
    if (!this.names[kind].delete(key(name))) return false;
    this.broker.unsubscribe(kind, name, this.subscriber);
    this.changed();
    return true;
  }

  /** list: the names of one kind, in subscription order. */
  list(kind: SubscriptionKind): Buffer[] {
    return [...this.names[kind].values()];
  }

  size(kind: SubscriptionKind): number {
    return this.names[kind].size;
  }

  /**
   * count: the number (P)SUBSCRIBE / (P)UNSUBSCRIBE replies report: channels plus patterns; for
   * shard channels, shard channels only (Redis 7).
   */
  count(kind: SubscriptionKind): number {
    if (kind === 'shard') return this.names.shard.size;
    return this.names.channel.size + this.names.pattern.size;
  }

  /** total: every subscription; above zero a RESP2 connection is in subscribed mode. */
  get total(): number {
    return this.names.channel.size + this.names.pattern.size + this.names.shard.size;
  }

  /** clear drops every subscription without replies (connection closed, RESET). */
  clear(): void {
    if (this.total === 0) return;
    for (const kind of ['channel', 'pattern', 'shard'] as const) {
      for (const name of this.names[kind].values()) this.broker.unsubscribe(kind, name, this.subscriber);
      this.names[kind].clear();
    }
    this.changed();
  }
}
