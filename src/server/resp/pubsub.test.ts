import { describe, expect, it } from 'vitest';
import { formatNotifyFlags, NOTIFY, NOTIFY_ALL, parseNotifyFlags } from './notifications.js';
import { PubSubBroker, type Subscriber, Subscriptions } from './pubsub.js';

const b = (s: string) => Buffer.from(s);

/** recorder: a subscriber that records what it receives as strings. */
function recorder(): Subscriber & { got: string[] } {
  const got: string[] = [];
  return {
    got,
    deliver(kind, pattern, channel, payload) {
      got.push(
        [kind, pattern?.toString(), channel.toString(), payload.toString()]
          .filter((x) => x !== undefined)
          .join(' '),
      );
    },
  };
}

describe('PubSubBroker', () => {
  it('delivers to channel subscribers, then to matching patterns, and counts every delivery', () => {
    const broker = new PubSubBroker();
    const r1 = recorder();
    const r2 = recorder();
    const s1 = new Subscriptions(broker, r1);
    const s2 = new Subscriptions(broker, r2);
    s1.add('channel', b('news.tech'));
    s1.add('pattern', b('news.*'));
    s2.add('pattern', b('news.[st]*'));
    s2.add('pattern', b('sport.*'));
    expect(broker.publish(b('news.tech'), b('hi'))).toBe(3);
    expect(r1.got).toEqual(['message news.tech hi', 'pmessage news.* news.tech hi']);
    expect(r2.got).toEqual(['pmessage news.[st]* news.tech hi']);
    expect(broker.publish(b('weather'), b('x'))).toBe(0);
    expect(broker.numsub(false, b('news.tech'))).toBe(1);
    expect(broker.numsub(false, b('news.*'))).toBe(0); // patterns are not channels
    expect(broker.numpat()).toBe(3);
  });

  it('counts channels plus patterns, ignores repeats, and keeps shard channels apart', () => {
    const broker = new PubSubBroker();
    const s = new Subscriptions(broker, recorder());
    expect(s.add('channel', b('a'))).toBe(true);
    expect(s.add('channel', b('a'))).toBe(false);
    s.add('pattern', b('a*'));
    s.add('shard', b('a'));
    expect(s.count('channel')).toBe(2);
    expect(s.count('pattern')).toBe(2);
    expect(s.count('shard')).toBe(1);
    expect(s.total).toBe(3);
    expect(broker.publish(b('a'), b('m'))).toBe(2);
    expect(broker.spublish(b('a'), b('m'))).toBe(1);
    expect(broker.activeChannels(true, undefined).map(String)).toEqual(['a']);
  });

  it('unsubscribing everything leaves no trace in the broker', () => {
    const broker = new PubSubBroker();
    const r = recorder();
    const s = new Subscriptions(broker, r);
    for (const c of ['c1', 'c2', 'c3']) s.add('channel', b(c));
    s.add('pattern', b('c*'));
    expect(s.list('channel').map(String)).toEqual(['c1', 'c2', 'c3']);
    expect(s.remove('channel', b('nope'))).toBe(false);
    s.clear();
    expect(s.total).toBe(0);
    expect(broker.activeChannels(false, undefined)).toEqual([]);
    expect(broker.numpat()).toBe(0);
    expect(broker.publish(b('c1'), b('m'))).toBe(0);
    expect(r.got).toEqual([]);
  });

  it('lists active channels matching a glob, and forgets a channel when its last subscriber leaves', () => {
    const broker = new PubSubBroker();
    const s1 = new Subscriptions(broker, recorder());
    const s2 = new Subscriptions(broker, recorder());
    s1.add('channel', b('user:1'));
    s2.add('channel', b('user:1'));
    s2.add('channel', b('order:1'));
    expect(broker.activeChannels(false, b('user:*')).map(String)).toEqual(['user:1']);
    expect(broker.numsub(false, b('user:1'))).toBe(2);
    s1.remove('channel', b('user:1'));
    expect(broker.numsub(false, b('user:1'))).toBe(1);
    s2.clear();
    expect(broker.activeChannels(false, undefined)).toEqual([]);
  });

  it('a subscriber that unsubscribes others while receiving does not break the delivery', () => {
    const broker = new PubSubBroker();
    const victim = recorder();
    const victimSubs = new Subscriptions(broker, victim);
    const killer: Subscriber = { deliver: () => victimSubs.clear() };
    new Subscriptions(broker, killer).add('channel', b('c'));
    victimSubs.add('channel', b('c'));
    expect(broker.publish(b('c'), b('m'))).toBe(2);
  });
});

describe('notify-keyspace-events flags', () => {
  it('parses and prints as Redis does', () => {
    expect(parseNotifyFlags('')).toBe(0);
    expect(parseNotifyFlags('Q')).toBeUndefined();
    expect(formatNotifyFlags(parseNotifyFlags('AKEn')!)).toBe('AKE');
    expect(formatNotifyFlags(parseNotifyFlags('gx$K')!)).toBe('g$xK');
    expect(formatNotifyFlags(parseNotifyFlags('KEA')!)).toBe('AKE');
    expect(parseNotifyFlags('A')! & NOTIFY_ALL).toBe(NOTIFY_ALL);
    expect(parseNotifyFlags('A')! & NOTIFY.new).toBe(0);
    expect(formatNotifyFlags(parseNotifyFlags('Em')!)).toBe('Em');
  });
});
