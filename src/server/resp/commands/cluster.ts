// Cluster commands: READONLY / READWRITE (a connection's choice between possibly stale local
// reads and linearizable ones), ROLE and INFO replication's lines, and CAIRN.FORWARDED, which
// another member sends on the connection it forwards its clients' commands over
// (docs/cluster.md). On a single server ROLE answers as a Redis master without replicas, and
// READONLY/READWRITE are accepted and change nothing (every read is already current).
import { NONE } from '../../../raft/index.js';
import type { CommandContext } from '../types.js';
import { NO_KEYS, spec } from './spec.js';

const cluster = (since: string, summary: string) => ({ group: 'cluster', since, summary });

/** splitAddress: "host:port" into its parts (an unknown address gives ["", 0]). */
function splitAddress(addr: string): [string, number] {
  const at = addr.lastIndexOf(':');
  if (at <= 0) return ['', 0];
  return [addr.slice(0, at).replace(/^\[|\]$/g, ''), Number(addr.slice(at + 1))];
}

/**
 * role: Redis's ROLE (replication.c roleCommand): the role, hosts and replica offsets as bulk
 * strings (not simple strings), the master's offset and a replica's master port as integers.
 */
function role(ctx: CommandContext): void {
  const w = ctx.w;
  const member = ctx.server.cluster;
  if (member === undefined) {
    w.arrayHeader(3);
    w.bulk('master');
    w.integer(0);
    w.arrayHeader(0);
    return;
  }
  const st = member.replica.status();
  if (st.role === 'leader') {
    const others = member.members().filter((m) => m.id !== st.id);
    w.arrayHeader(3);
    w.bulk('master');
    w.integer(st.applied);
    w.arrayHeader(others.length);
    for (const m of others) {
      const [host, port] = splitAddress(m.resp);
      w.bulkArray([host, String(port), String(st.progress.get(m.id)?.match ?? 0)]);
    }
    return;
  }
  const leader = st.leader === NONE ? undefined : member.member(st.leader);
  const [host, port] = splitAddress(leader?.resp ?? '');
  w.arrayHeader(5);
  w.bulk('slave');
  w.bulk(host);
  w.integer(port);
  w.bulk(leader === undefined ? 'connect' : 'connected');
  w.integer(st.applied);
}

/** replicationInfo: INFO replication's lines (Redis's fields first, then Raft's). */
export function replicationInfo(ctx: CommandContext): string[] {
  const member = ctx.server.cluster;
  if (member === undefined) return ['role:master', 'connected_slaves:0'];
  const st = member.replica.status();
  const leader = st.leader === NONE ? undefined : member.member(st.leader);
  const lines = [`role:${st.role === 'leader' ? 'master' : 'slave'}`];
  if (st.role === 'leader') {
    const others = member.members().filter((m) => m.id !== st.id);
    lines.push(`connected_slaves:${others.length}`);
    others.forEach((m, i) => {
      const [host, port] = splitAddress(m.resp);
      lines.push(
        `slave${i}:ip=${host},port=${port},state=online,offset=${st.progress.get(m.id)?.match ?? 0},lag=0`,
      );
    });
  } else {
    const [host, port] = splitAddress(leader?.resp ?? '');
    lines.push(
      `master_host:${host}`,
      `master_port:${port}`,
      `master_link_status:${leader === undefined ? 'down' : 'up'}`,
    );
  }
  lines.push(
    `cairn_member:${member.identity.name}`,
    `cairn_member_id:${st.id.toString(16)}`,
    `cairn_raft_state:${st.role}`,
    `cairn_leader:${leader?.name ?? ''}`,
    `cairn_leader_ready:${st.leaderReady ? 1 : 0}`,
    `cairn_repairing:${st.repairing ? 1 : 0}`,
    `cairn_term:${st.term}`,
    `cairn_commit_index:${st.commit}`,
    `cairn_applied_index:${st.applied}`,
    `cairn_last_index:${st.lastIndex}`,
    `cairn_members:${member
      .members()
      .map((m) => `${m.name}@${m.peerAddr}`)
      .join(',')}`,
  );
  return lines;
}

export const CLUSTER_COMMANDS = [
  spec(
    'readonly',
    1,
    ['fast', 'loading', 'stale'],
    NO_KEYS,
    cluster('3.0.0', 'Serves reads from this member, possibly stale.'),
    (ctx) => {
      ctx.client.readonlyReads = true;
      ctx.w.ok();
    },
  ),
  spec(
    'readwrite',
    1,
    ['fast', 'loading', 'stale'],
    NO_KEYS,
    cluster('3.0.0', 'Linearizable reads again (the default).'),
    (ctx) => {
      ctx.client.readonlyReads = false;
      ctx.w.ok();
    },
  ),
  spec(
    'role',
    1,
    ['fast', 'loading', 'stale', 'noscript'],
    NO_KEYS,
    { group: 'server', since: '2.8.12', summary: 'Returns the replication role.' },
    role,
  ),
  spec(
    'cairn.forwarded',
    1,
    ['fast', 'loading', 'stale'],
    NO_KEYS,
    cluster('0.1.0', "Marks a connection as another member's forwarding link (internal)."),
    (ctx) => {
      ctx.client.forwarded = true;
      ctx.w.ok();
    },
  ),
];
