// CLUSTER: the Redis Cluster discovery commands, so that cluster-aware clients (ioredis's
// Cluster, node-redis's createCluster, redis-py's RedisCluster, go-redis's ClusterClient) find
// the Raft leader themselves and send it their commands directly, sparing the forwarding hop
// (docs/cluster.md, "Cluster-aware clients"). A Cairn cluster is one shard: the leader is the
// master of all 16384 slots and every other member with a known client address is its replica
// (READONLY on a replica connection serves possibly stale local reads, as in Redis Cluster).
// Clients that do not ask keep working through forwarding; no member answers -MOVED, so a client
// that still talks to a deposed leader is forwarded until its next slot refresh.
// On a single server the command fails as on a Redis server without cluster support.
import { createHash } from 'node:crypto';
import calculateSlot from 'cluster-key-slot';
import { NONE, type NodeId } from '../../../raft/index.js';
import type { MemberView } from '../../../replica/member.js';
import { parseHostPort } from '../../../replica/peer-address.js';
import { CommandError, unknownSubcommand, wrongArity } from '../errors.js';
import type { CommandContext } from '../types.js';
import { NO_KEYS, spec } from './spec.js';

/** SLOT_COUNT: Redis Cluster's hash slots (CRC16 of the key, or of its {hash tag}, mod 16384). */
export const SLOT_COUNT = 16384;

const ERR_NO_CLUSTER = 'ERR This instance has cluster support disabled';

const CLUSTER_HELP = [
  'CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'INFO',
  '    Return information about the cluster (one shard: the Raft leader holds every slot).',
  'KEYSLOT <key>',
  '    Return the hash slot for <key>.',
  'MYID',
  "    Return this member's node ID.",
  'MYSHARDID',
  "    Return this member's shard ID (the same on every member).",
  'NODES',
  '    Return the cluster configuration seen by this member, in CLUSTER NODES format.',
  'SHARDS',
  '    Return the shard (slots and nodes) in CLUSTER SHARDS format.',
  'SLOTS',
  '    Return the slot range and the members serving it, in CLUSTER SLOTS format.',
  'HELP',
  '    Print this help.',
];

/** Node: a member as cluster clients see it. */
interface Node {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** busPort: the member's peer port (Redis's cluster bus port). */
  readonly busPort: number;
  readonly master: boolean;
  readonly self: boolean;
}

/**
 * nodeId: a member's 40-hex-digit node ID, the same on every member (it hashes the cluster's
 * fingerprint and the member's Raft id), so a client can match the answers of several members.
 */
export function nodeId(clusterId: string, id: NodeId): string {
  return createHash('sha1')
    .update(`cairn-node\0${clusterId}\0${id.toString(16)}`)
    .digest('hex');
}

/** splitHostPort: the peer transport's "host:port" parser; undefined for an address not known yet. */
function splitHostPort(addr: string): { host: string; port: number } | undefined {
  if (addr === '') return undefined;
  try {
    return parseHostPort(addr);
  } catch {
    return undefined;
  }
}

interface Shard {
  readonly shardId: string;
  readonly term: number;
  readonly applied: number;
  readonly myId: string;
  /** nodes: the leader first, then the others with a known client address. */
  readonly nodes: readonly Node[];
}

/** shardOf: this member's view of the one shard; CLUSTERDOWN while it knows no leader's address. */
function shardOf(ctx: CommandContext): Shard {
  const member = ctx.server.cluster;
  if (member === undefined) throw new CommandError(ERR_NO_CLUSTER);
  const st = member.replica.status();
  const clusterId = member.identity.clusterId;
  const toNode = (m: MemberView): Node | undefined => {
    const client = splitHostPort(m.resp);
    if (client === undefined) return undefined;
    return {
      id: nodeId(clusterId, m.id),
      host: client.host,
      port: client.port,
      busPort: splitHostPort(m.peerAddr)?.port ?? 0,
      master: m.id === st.leader,
      self: m.id === st.id,
    };
  };
  const members = member.members();
  const leader = st.leader === NONE ? undefined : members.find((m) => m.id === st.leader);
  const master = leader === undefined ? undefined : toNode(leader);
  if (master === undefined) {
    throw new CommandError('CLUSTERDOWN no leader is known yet (an election may be under way); retry');
  }
  const replicas = members
    .filter((m) => m.id !== st.leader)
    .map(toNode)
    .filter((n): n is Node => n !== undefined);
  return {
    shardId: createHash('sha1').update(`cairn-shard\0${clusterId}`).digest('hex'),
    term: st.term,
    applied: st.applied,
    myId: nodeId(clusterId, st.id),
    nodes: [master, ...replicas],
  };
}

function slots(ctx: CommandContext): void {
  const { nodes } = shardOf(ctx);
  const w = ctx.w;
  w.arrayHeader(1);
  w.arrayHeader(2 + nodes.length);
  w.integer(0);
  w.integer(SLOT_COUNT - 1);
  for (const n of nodes) {
    w.arrayHeader(3);
    w.bulk(n.host);
    w.integer(n.port);
    w.bulk(n.id);
  }
}

function shards(ctx: CommandContext): void {
  const { nodes, applied } = shardOf(ctx);
  const w = ctx.w;
  w.arrayHeader(1);
  w.mapHeader(2);
  w.bulk('slots');
  w.arrayHeader(2);
  w.integer(0);
  w.integer(SLOT_COUNT - 1);
  w.bulk('nodes');
  w.arrayHeader(nodes.length);
  for (const n of nodes) {
    w.mapHeader(7);
    w.bulk('id');
    w.bulk(n.id);
    w.bulk('port');
    w.integer(n.port);
    w.bulk('ip');
    w.bulk(n.host);
    w.bulk('endpoint');
    w.bulk(n.host);
    w.bulk('role');
    w.bulk(n.master ? 'master' : 'replica');
    w.bulk('replication-offset');
    w.integer(applied);
    w.bulk('health');
    w.bulk('online');
  }
}

function nodesText(ctx: CommandContext): string {
  const { nodes, term } = shardOf(ctx);
  const masterId = (nodes[0] as Node).id;
  const lines = nodes.map((n) => {
    const flags = `${n.self ? 'myself,' : ''}${n.master ? 'master' : 'slave'}`;
    const slotsField = n.master ? ` 0-${SLOT_COUNT - 1}` : '';
    // <id> <ip:port@cport> <flags> <master> <ping-sent> <pong-recv> <config-epoch> <link-state> <slots>
    return `${n.id} ${n.host}:${n.port}@${n.busPort} ${flags} ${n.master ? '-' : masterId} 0 0 ${term} connected${slotsField}`;
  });
  return `${lines.join('\n')}\n`;
}

function infoText(ctx: CommandContext): string {
  const { nodes, term } = shardOf(ctx);
  return `${[
    'cluster_state:ok',
    `cluster_slots_assigned:${SLOT_COUNT}`,
    `cluster_slots_ok:${SLOT_COUNT}`,
    'cluster_slots_pfail:0',
    'cluster_slots_fail:0',
    `cluster_known_nodes:${nodes.length}`,
    'cluster_size:1',
    `cluster_current_epoch:${term}`,
    `cluster_my_epoch:${term}`,
  ].join('\r\n')}\r\n`;
}

function clusterCommand(ctx: CommandContext, args: Buffer[]): void {
  // As a Redis server without cluster support: every subcommand fails on a single server.
  if (ctx.server.cluster === undefined) throw new CommandError(ERR_NO_CLUSTER);
  const sub = (args[1] as Buffer).toString('latin1').toLowerCase();
  if (sub === 'help') {
    ctx.w.array(CLUSTER_HELP);
    return;
  }
  if (sub === 'keyslot') {
    if (args.length !== 3) throw wrongArity('cluster|keyslot');
    ctx.w.integer(calculateSlot(args[2] as Buffer));
    return;
  }
  if (!SUBCOMMANDS.has(sub)) throw unknownSubcommand(args[1] as Buffer, 'cluster');
  if (args.length !== 2) throw wrongArity(`cluster|${sub}`);
  if (sub === 'slots') slots(ctx);
  else if (sub === 'shards') shards(ctx);
  else if (sub === 'nodes') ctx.w.verbatim('txt', nodesText(ctx));
  else if (sub === 'info') ctx.w.verbatim('txt', infoText(ctx));
  else if (sub === 'myid') ctx.w.bulk(shardOf(ctx).myId);
  else ctx.w.bulk(shardOf(ctx).shardId);
}

/** SUBCOMMANDS: those without arguments besides HELP and KEYSLOT. */
const SUBCOMMANDS = new Set(['slots', 'shards', 'nodes', 'info', 'myid', 'myshardid']);

export const CLUSTER_PROTOCOL_COMMANDS = [
  spec(
    'cluster',
    -2,
    ['loading', 'stale'],
    NO_KEYS,
    { group: 'cluster', since: '3.0.0', summary: 'Cluster discovery: the leader serves every slot.' },
    clusterCommand,
  ),
];
