// The HTTP API on a cluster member (docs/cluster.md): every member answers every request. Data
// requests run on the leader, reads after a ReadIndex round (linearizable); a follower proxies
// them to the leader's HTTP address, unless a read asks for `?consistency=serializable`, which
// any member serves from its own, possibly stale, state. GET /v1/cluster describes the cluster.
//
// Membership administration (routes-members.ts): writes under /v1/cluster/members and
// /v1/cluster/leader run on the leader, proxied there like data writes; GET /v1/status describes
// the member that answers and is never proxied.
//
// `consistency` is taken off the URL before routing (rewriteUrl), so the routes' strict query
// schemas never see it; a single server accepts it too and ignores it (its reads are current).
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ClusterMember } from '../../replica/member.js';
import { ClusterDownError, UncertainError } from '../../storage/errors.js';
import { authorizationFor } from './auth.js';
import { invalidArgument } from './errors.js';

/** FORWARDED_HEADER: marks a request one member proxied to another (never proxied again). */
export const FORWARDED_HEADER = 'x-cairn-forwarded';

export type Consistency = 'linearizable' | 'serializable';

const consistencyOf = new WeakMap<IncomingMessage, Consistency | string>();

/** rewriteConsistency: fastify's rewriteUrl: remembers and removes the `consistency` parameter. */
export function rewriteConsistency(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  if (q === -1 || !url.includes('consistency', q)) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  const value = params.get('consistency');
  if (value === null) return url;
  consistencyOf.set(req, value);
  params.delete('consistency');
  const rest = params.toString();
  return rest === '' ? url.slice(0, q) : `${url.slice(0, q)}?${rest}`;
}

export function consistency(request: FastifyRequest): Consistency {
  const value = consistencyOf.get(request.raw) ?? 'linearizable';
  if (value !== 'linearizable' && value !== 'serializable') {
    throw invalidArgument(`consistency must be linearizable or serializable, got '${value}'`);
  }
  return value;
}

/**
 * isDataRoute: the request reads or writes the store (and runs on the leader). Not /v1/cluster
 * (this member's view) nor /v1/snapshot, which any member serves itself after a ReadIndex round
 * (routes-snapshot.ts): proxied, the whole archive would pass through this member's memory.
 */
function isDataRoute(request: FastifyRequest): boolean {
  const url = request.url;
  return (
    url.startsWith('/v1/') &&
    !url.startsWith('/v1/cluster') &&
    !url.startsWith('/v1/snapshot') &&
    !isStatusRoute(url)
  );
}

function isStatusRoute(url: string): boolean {
  return url === '/v1/status' || url.startsWith('/v1/status?');
}

/** isAdminWrite: the request changes the membership or the leadership, or asks for a check (run on the leader). */
function isAdminWrite(request: FastifyRequest): boolean {
  if (request.method !== 'POST' && request.method !== 'DELETE') return false;
  const url = request.url;
  return (
    url.startsWith('/v1/cluster/members') ||
    url.startsWith('/v1/cluster/leader') ||
    (request.method === 'POST' && url.startsWith('/v1/cluster/check'))
  );
}

const isRead = (request: FastifyRequest): boolean => request.method === 'GET' || request.method === 'HEAD';

/** clusterHooks routes data requests on a cluster member (or checks `consistency` on a single server). */
export function clusterHooks(
  app: FastifyInstance,
  member: ClusterMember | undefined,
  /** password: --requirepass, sent with this member's own requests to the leader (auth.ts). */
  password?: string,
): void {
  app.addHook('preHandler', async (request, reply) => {
    if (member !== undefined && isAdminWrite(request)) {
      if (member.replica.leaderReady) return;
      // A member that just took over (a handover for a removal) is elected but not ready yet:
      // leaderAddress waits for that rather than refusing the forwarded change.
      const addr = await member.leaderAddress('http');
      if (addr === undefined) return;
      if (request.headers[FORWARDED_HEADER] !== undefined) {
        throw new ClusterDownError('this member is no longer the leader; retry');
      }
      await proxy(request, reply, addr, member.requestTimeoutMs);
      return reply;
    }
    if (!isDataRoute(request)) return;
    const level = consistency(request);
    if (member === undefined) return;
    if (member.removed) throw new ClusterDownError('this member was removed from the cluster');
    const readLocally = isRead(request) && level === 'serializable';
    if (member.replica.leaderReady) {
      // Reads (and /v1/txn, whose reads run first) wait for a ReadIndex round; plain writes need
      // none: the pipeline refuses them unless this member is the ready leader.
      if (!readLocally && (isRead(request) || request.url.startsWith('/v1/txn')))
        await member.replica.linearizable();
      return;
    }
    if (readLocally) return;
    if (request.headers[FORWARDED_HEADER] !== undefined) {
      throw new ClusterDownError('this member is no longer the leader; retry');
    }
    const addr = await member.leaderAddress('http');
    if (addr === undefined) {
      await member.replica.linearizable();
      return;
    }
    await proxy(request, reply, addr, member.requestTimeoutMs);
    return reply;
  });

  app.get('/v1/cluster', { config: { command: 'cluster' } }, async (request) => {
    if (member === undefined) return { mode: 'single', members: [] };
    const view = describeCluster(member);
    // Replication progress is the leader's to know: a follower asks it for the members' match
    // index and lag (one hop, bounded), unless asked for its own view alone.
    if (consistency(request) === 'serializable') return view;
    if (member.replica.leaderReady || request.headers[FORWARDED_HEADER] !== undefined) return view;
    return withLeaderProgress(member, view, password);
  });
}

/** LEADER_VIEW_TIMEOUT_MS: how long a follower's GET /v1/cluster waits for the leader's view. */
export const LEADER_VIEW_TIMEOUT_MS = 1_000;

/**
 * withLeaderProgress fills the members' matchIndex and lag of a follower's view from the leader's
 * own GET /v1/cluster; without a known leader, or when it does not answer within
 * LEADER_VIEW_TIMEOUT_MS, the view keeps them null (a status page must not hang on a sick cluster).
 */
async function withLeaderProgress(
  member: ClusterMember,
  view: ClusterView,
  password: string | undefined,
): Promise<ClusterView> {
  const lead = member.replica.leader;
  const addr = lead === member.identity.id ? undefined : member.member(lead)?.http;
  if (addr === undefined || addr === '') return view;
  try {
    const res = await fetch(`http://${addr}/v1/cluster`, {
      headers: { [FORWARDED_HEADER]: '1', ...authorizationFor(password) },
      signal: AbortSignal.timeout(LEADER_VIEW_TIMEOUT_MS),
    });
    if (!res.ok) return view;
    const theirs = (await res.json()) as Partial<ClusterView>;
    const progress = new Map((theirs.members ?? []).map((m) => [m.name, m]));
    return {
      ...view,
      members: view.members.map((m) => {
        const p = progress.get(m.name);
        return p === undefined ? m : { ...m, matchIndex: p.matchIndex ?? null, lag: p.lag ?? null };
      }),
    };
  } catch {
    return view;
  }
}

/**
 * PROXY_MARGIN_MS: how much longer than its request timeout a member waits for the leader's
 * answer to a proxied request. The leader ends its own waits at the same request timeout, with
 * an error that says why ("has not been heard from recently", "no quorum", ...); without the
 * margin the proxy gave up first, and the client got "did not answer" instead of the reason.
 */
export const PROXY_MARGIN_MS = 1_000;

/**
 * proxy sends the request to the member at `addr` (one hop: marked forwarded) and relays its
 * answer, waiting at most `timeoutMs` + PROXY_MARGIN_MS.
 */
export async function proxy(
  request: FastifyRequest,
  reply: FastifyReply,
  addr: string,
  timeoutMs: number,
): Promise<void> {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1' };
  const type = request.headers['content-type'];
  if (type !== undefined) headers['content-type'] = type;
  const accept = request.headers.accept;
  if (accept !== undefined) headers.accept = accept;
  // The client's credentials, checked here already, are the leader's too (members share
  // --requirepass).
  const authorization = request.headers.authorization;
  if (authorization !== undefined) headers.authorization = authorization;
  let body: string | Buffer | undefined;
  const raw = request.body;
  if (raw !== undefined && raw !== null && request.method !== 'GET' && request.method !== 'HEAD') {
    body = Buffer.isBuffer(raw) || typeof raw === 'string' ? raw : JSON.stringify(raw);
  }
  let res: Response;
  try {
    res = await fetch(`http://${addr}${request.url}`, {
      // A HEAD goes up as a GET: Fastify's HEAD routes here compute the length from the body
      // sent (and send none), so the leader's body is what gives the answer its length.
      method: request.method === 'HEAD' ? 'GET' : request.method,
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs + PROXY_MARGIN_MS),
      redirect: 'manual',
    });
  } catch (err) {
    const why = `the leader at ${addr} did not answer: ${(err as Error).message}`;
    if (isRead(request)) throw new ClusterDownError(why);
    throw new UncertainError(`${why}; the request may or may not have been applied`);
  }
  const bytes = Buffer.from(await res.arrayBuffer());
  void reply.code(res.status);
  // Every header of the answer (Cairn-Expires-At, a snapshot's counts, ...), but not those that
  // describe the leader's connection or its encoding of the body (fetch has decoded it).
  res.headers.forEach((value, name) => {
    if (!NOT_RELAYED.has(name)) void reply.header(name, value);
  });
  await reply.send(bytes);
}

/**
 * NOT_RELAYED: response headers a proxied answer does not carry over: hop-by-hop ones (RFC 9110,
 * 7.6.1), and those of the leader's own encoding of the body (its length and framing, which this
 * member sets for the bytes it sends) and date.
 */
const NOT_RELAYED: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
  'content-encoding',
  'date',
]);

/** ClusterView: GET /v1/cluster's body on a cluster member. */
interface ClusterView {
  readonly mode: 'cluster';
  readonly members: readonly {
    readonly name: string;
    readonly matchIndex: number | null;
    readonly lag: number | null;
    readonly [field: string]: unknown;
  }[];
  readonly [field: string]: unknown;
}

/** describeCluster: GET /v1/cluster's body on a cluster member, as this member knows it. */
function describeCluster(member: ClusterMember): ClusterView {
  const st = member.replica.status();
  const leader = member.member(st.leader);
  return {
    mode: 'cluster',
    self: member.identity.name,
    clusterToken: member.identity.clusterToken,
    leader: leader?.name ?? null,
    term: st.term,
    commitIndex: st.commit,
    appliedIndex: st.applied,
    lastIndex: st.lastIndex,
    members: member.members().map((m) => {
      const progress = st.progress.get(m.id);
      return {
        name: m.name,
        id: m.id.toString(16),
        peerAddr: m.peerAddr,
        resp: m.resp,
        http: m.http,
        role: m.role,
        isLeader: m.id === st.leader,
        // Per-member replication, known on the leader (a follower asks it: withLeaderProgress).
        matchIndex: progress?.match ?? null,
        lag: progress === undefined ? null : Math.max(0, st.lastIndex - progress.match),
        // This member's last probe round trip to it (peer-probe.ts); null for itself.
        roundTripMs: member.lastRoundTripMs(m.name) ?? null,
      };
    }),
  };
}
