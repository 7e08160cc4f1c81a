// Pub/sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, SSUBSCRIBE, SUNSUBSCRIBE,
// PUBLISH, SPUBLISH and PUBSUB, with Redis 7's reply shapes (pubsub.c): one push per channel,
// `[kind, name, count]`, and `[kind, nil, count]` for an UNSUBSCRIBE without arguments when
// nothing is subscribed. The broker and the per-connection state are in ../pubsub.ts, the
// RESP2 subscribed mode in ../connection.ts (docs/pubsub.md).
import type { ReplyWriter } from '../../../protocol/resp/index.js';
import { CommandError, ERR_NOT_INTEGER, unknownSubcommand, wrongArity } from '../errors.js';
import type { SubscriptionKind } from '../pubsub.js';
import type { CommandContext, Held } from '../types.js';
import { held, lower } from './args.js';
import { NO_KEYS, spec } from './spec.js';

const doc = (since: string, summary: string) => ({ group: 'pubsub', since, summary });

/** confirm writes one (un)subscribe confirmation: a push (RESP3) or array (RESP2) of three. */
function confirm(w: ReplyWriter, reply: string, name: Buffer | null, count: number): void {
  w.pushHeader(3);
  w.bulk(reply);
  w.bulk(name);
  w.integer(count);
}

function subscribe(kind: SubscriptionKind, reply: string) {
  return (ctx: CommandContext, args: Buffer[]): void => {
    const w = ctx.w;
    for (let i = 1; i < args.length; i++) {
      ctx.pubsub.add(kind, args[i]!);
      confirm(w, reply, args[i]!, ctx.pubsub.count(kind));
    }
  };
}

function unsubscribe(kind: SubscriptionKind, reply: string) {
  return (ctx: CommandContext, args: Buffer[]): void => {
    const w = ctx.w;
    const names = args.length > 1 ? args.slice(1) : ctx.pubsub.list(kind);
    if (names.length === 0) {
      confirm(w, reply, null, ctx.pubsub.count(kind));
      return;
    }
    for (const name of names) {
      ctx.pubsub.remove(kind, name);
      confirm(w, reply, name, ctx.pubsub.count(kind));
    }
  };
}

function publish(ctx: CommandContext, args: Buffer[]): Held | Promise<Held> {
  const receivers = ctx.server.publish(args[1]!, args[2]!);
  if (typeof receivers === 'number') return held(undefined, (w) => w.integer(receivers));
  return receivers.then((n) => held(undefined, (w) => w.integer(n)));
}

/**
 * cairnPublish: `CAIRN.PUBLISH channel message [origin seq]`, another member's fanned-out PUBLISH,
 * delivered to this member's subscribers only. With an origin, a message that is not newer than
 * the last one delivered from that origin is dropped (0 receivers): it arrived late, over a link
 * its publisher had given up (cluster-publish.ts, FanIn).
 */
function cairnPublish(ctx: CommandContext, args: Buffer[]): void {
  if (args.length !== 3 && args.length !== 5) throw wrongArity('cairn.publish');
  if (args.length === 5) {
    const seq = Number(args[4]!.toString('latin1'));
    if (!Number.isSafeInteger(seq) || seq < 1) throw new CommandError(ERR_NOT_INTEGER);
    if (!ctx.server.fanIn.accept(args[3]!.toString('latin1'), seq)) {
      ctx.w.integer(0);
      return;
    }
  }
  ctx.w.integer(ctx.server.pubsub.publish(args[1]!, args[2]!));
}

function spublish(ctx: CommandContext, args: Buffer[]): void {
  ctx.w.integer(ctx.server.pubsub.spublish(args[1]!, args[2]!));
}

const PUBSUB_HELP = [
  'PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'CHANNELS [<pattern>]',
  "    Return the currently active channels matching a <pattern> (default: '*').",
  'NUMPAT',
  '    Return number of subscriptions to patterns.',
  'NUMSUB [<channel> ...]',
  '    Return the number of subscribers for the specified channels, excluding',
  '    pattern subscriptions(default: no channels).',
  'SHARDCHANNELS [<pattern>]',
  "    Return the currently active shard level channels matching a <pattern> (default: '*').",
  'SHARDNUMSUB [<shardchannel> ...]',
  '    Return the number of subscribers for the specified shard level channel(s)',
  'HELP',
  '    Prints this help.',
];

function pubsub(ctx: CommandContext, args: Buffer[]): void {
  const sub = lower(args[1]!);
  const broker = ctx.server.pubsub;
  const w = ctx.w;
  switch (sub) {
    case 'channels':
    case 'shardchannels': {
      if (args.length > 3) {
        throw new CommandError(
          `ERR unknown subcommand or wrong number of arguments for '${args[1]!.toString('latin1')}'. Try PUBSUB HELP.`,
        );
      }
      w.bulkArray(broker.activeChannels(sub === 'shardchannels', args[2]));
      return;
    }
    case 'numsub':
    case 'shardnumsub': {
      // An array of pairs in both protocols, as Redis (not a map).
      w.arrayHeader((args.length - 2) * 2);
      for (let i = 2; i < args.length; i++) {
        w.bulk(args[i]!);
        w.integer(broker.numsub(sub === 'shardnumsub', args[i]!));
      }
      return;
    }
    case 'numpat':
      if (args.length !== 2) throw wrongArity('pubsub|numpat');
      w.integer(broker.numpat());
      return;
    case 'help':
      if (args.length !== 2) throw wrongArity('pubsub|help');
      w.array(PUBSUB_HELP);
      return;
    default:
      throw unknownSubcommand(args[1]!, 'pubsub');
  }
}

const SUBSCRIBE_FLAGS = ['pubsub', 'noscript', 'loading', 'stale'] as const;
const PUBLISH_FLAGS = ['pubsub', 'loading', 'stale', 'fast'] as const;

export const PUBSUB_COMMANDS = [
  spec(
    'subscribe',
    -2,
    SUBSCRIBE_FLAGS,
    NO_KEYS,
    doc('2.0.0', 'Listens for messages published to channels.'),
    subscribe('channel', 'subscribe'),
  ),
  spec(
    'unsubscribe',
    -1,
    SUBSCRIBE_FLAGS,
    NO_KEYS,
    doc('2.0.0', 'Stops listening to messages posted to channels.'),
    unsubscribe('channel', 'unsubscribe'),
  ),
  spec(
    'psubscribe',
    -2,
    SUBSCRIBE_FLAGS,
    NO_KEYS,
    doc('2.0.0', 'Listens for messages published to channels that match one or more patterns.'),
    subscribe('pattern', 'psubscribe'),
  ),
  spec(
    'punsubscribe',
    -1,
    SUBSCRIBE_FLAGS,
    NO_KEYS,
    doc('2.0.0', 'Stops listening to messages published to channels that match one or more patterns.'),
    unsubscribe('pattern', 'punsubscribe'),
  ),
  spec(
    'ssubscribe',
    -2,
    SUBSCRIBE_FLAGS,
    NO_KEYS,
    doc('7.0.0', 'Listens for messages published to shard channels.'),
    subscribe('shard', 'ssubscribe'),
  ),
  spec(
    'sunsubscribe',
    -1,
    SUBSCRIBE_FLAGS,
    NO_KEYS,
    doc('7.0.0', 'Stops listening to messages posted to shard channels.'),
    unsubscribe('shard', 'sunsubscribe'),
  ),
  spec('publish', 3, PUBLISH_FLAGS, NO_KEYS, doc('2.0.0', 'Posts a message to a channel.'), publish),
  spec('spublish', 3, PUBLISH_FLAGS, NO_KEYS, doc('7.0.0', 'Post a message to a shard channel'), spublish),
  spec(
    'cairn.publish',
    -3,
    PUBLISH_FLAGS,
    NO_KEYS,
    doc('0.1.0', "Delivers a message another cluster member published to this member's subscribers only."),
    cairnPublish,
  ),
  spec('pubsub', -2, [], NO_KEYS, doc('2.8.0', 'A container for Pub/Sub commands.'), pubsub),
];
