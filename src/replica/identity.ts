// A member's identity: who it is, which cluster it belongs to and where its peers are, decided
// by the first start and recorded in DIR/raft/member.json (docs/cluster.md, "Identity"). As in
// etcd, the --initial-* flags matter only the first time; later starts read the record. A
// --name, --cluster-token or --listen-peer that contradicts it, or an --initial-cluster that does
// not list this member at its recorded address, is refused rather than silently ignored or
// obeyed (a wrong directory, a wrong script); the other members of --initial-cluster and
// --initial-cluster-state are ignored, as etcd ignores them (checkAgainstRecord;
// docs/cluster.md, "What a restart checks").
//
//   member.json = { "format": 1, "name", "id", "clusterToken", "clusterId",
//                   "members": [{ "id", "name", "peerAddr" }], "bootstrapped": "new"|"existing",
//                   "removed"?: [{ "id", "name", "peerAddr" }], "membershipIndex"?: number,
//                   "clientAddrs"?: { "resp": HOST:PORT, "http": HOST:PORT | "" },
//                   "started"?: [id], "startCheck"?: "pending",
//                   "voteFloor"?: { "index": n, "term": n } }
//
// `started` is the checkpoint of the started marks (membership.ts) as of `membershipIndex`;
// `startCheck: "pending"` is written by a first start and removed once the start check passed
// (start-check.ts): until then the member has taken no part in Raft, and a restart checks again.
// A check that passed on a peer's confirmed answer (a running cluster) records `voteFloor`, the
// entry that peer had applied, removed once this member applied it: until then it holds its votes
// (a restart too), since its log may still lack entries committed with an acknowledgement it
// forgot.
//
// Written atomically (temporary file, fdatasync, rename, fsync of the directory): once at the
// first start, and again after each applied membership change, when `members` becomes the
// current list as of the conf change at `membershipIndex` (membership.ts: a checkpoint; the
// Raft log is the source of truth), and when the member starts listening for clients on other
// addresses than `clientAddrs` records (a restart without --addr or --http listens there again).

import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic-file.js';
import { type FileSystem, mkdirDurable } from '../io/file-system.js';
import type { NodeId } from '../raft/index.js';
import { CorruptionError, InvalidArgumentError } from '../storage/errors.js';

export const IDENTITY_FORMAT = 1;
export const RAFT_DIR = 'raft';
export const IDENTITY_FILE = 'member.json';
/** DEFAULT_CLUSTER_TOKEN: etcd's default is "etcd-cluster"; ours names us. */
export const DEFAULT_CLUSTER_TOKEN = 'cairn-cluster';
/** MEMBER_NAME: names are short identifiers (they appear in flags, logs and ROLE). */
const MEMBER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** MAX_MEMBERS: a Raft group beyond 7 voters buys nothing; learners are few. */
export const MAX_MEMBERS = 15;

export interface MemberRecord {
  readonly id: NodeId;
  readonly name: string;
  readonly peerAddr: string;
}

export interface Identity {
  readonly format: number;
  readonly name: string;
  readonly id: NodeId;
  readonly clusterToken: string;
  readonly clusterId: string;
  readonly members: readonly MemberRecord[];
  readonly bootstrapped: 'new' | 'existing';
  /** listenPeer: the address this member listens on for peers (may differ from the advertised one). */
  readonly listenPeer: string;
  /** removed: members removed by applied conf changes up to membershipIndex (absent: none). */
  readonly removed?: readonly MemberRecord[];
  /** membershipIndex: the log index of the newest conf change `members` includes (absent: 0, the initial list). */
  readonly membershipIndex?: number;
  /**
   * seeded: the engine started with data restored from a snapshot (cairn snapshot restore), which
   * the Raft log does not hold: the engine can never be rebuilt from the log alone.
   */
  readonly seeded?: boolean;
  /**
   * clientAddrs: the RESP and HTTP addresses ("" for none) the member last listened on, as given
   * (absent: recorded by a build before them). A restart with only --dir listens there again, so
   * that members sharing a machine do not all fall back to the default ports.
   */
  readonly clientAddrs?: ClientAddrs;
  /** started: members recorded as started, as of membershipIndex (absent: none known). */
  readonly started?: readonly NodeId[];
  /**
   * startCheck: "pending" from a first start until its peers confirmed that this member id never
   * started before (start-check.ts); until then it neither votes nor acknowledges anything.
   */
  readonly startCheck?: 'pending';
  /**
   * voteFloor: after a start check a running cluster confirmed, the entry the confirming peer had
   * applied, until this member has applied it: until then it holds its votes (Replica.holdVotes).
   */
  readonly voteFloor?: { readonly index: number; readonly term: number };
}

/** ClientAddrs: where a member serves clients: RESP and HTTP ("" for none), HOST:PORT. */
export interface ClientAddrs {
  readonly resp: string;
  readonly http: string;
}

/** ClusterFlags: what the command line says about the cluster (all optional on restarts). */
export interface ClusterFlags {
  readonly name?: string | undefined;
  readonly listenPeer?: string | undefined;
  readonly initialCluster?: string | undefined;
  readonly initialClusterState?: 'new' | 'existing' | undefined;
  readonly clusterToken?: string | undefined;
}

/**
 * memberId derives a member's Raft id from its name and the cluster token (as etcd derives ids
 * from peer URLs and the token): every member computes the same ids from --initial-cluster, and
 * the same name in another cluster gets another id. 48 bits: a safe integer, never 0 (NONE).
 */
export function memberId(name: string, clusterToken: string): NodeId {
  const digest = createHash('sha256').update(`${clusterToken}\0${name}`).digest();
  const id = digest.readUIntBE(0, 6);
  return id === 0 ? 1 : id;
}

/** parseInitialCluster reads NAME=HOST:PORT,NAME=HOST:PORT,... */
export function parseInitialCluster(text: string, clusterToken: string): MemberRecord[] {
  const members: MemberRecord[] = [];
  const parts = text.split(',').map((p) => p.trim());
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`--initial-cluster: expected NAME=HOST:PORT, got '${part}'`);
    const name = part.slice(0, eq);
    const peerAddr = part.slice(eq + 1);
    checkName(name, '--initial-cluster');
    checkAddress(peerAddr, `--initial-cluster (member ${name})`);
    if (members.some((m) => m.name === name)) {
      throw new InvalidArgumentError(`--initial-cluster names member '${name}' twice`);
    }
    const same = members.find((m) => m.peerAddr === peerAddr);
    if (same !== undefined) {
      throw new InvalidArgumentError(
        `--initial-cluster gives members '${same.name}' and '${name}' the same peer address ${peerAddr}`,
      );
    }
    members.push({ id: memberId(name, clusterToken), name, peerAddr });
  }
  if (members.length > MAX_MEMBERS) {
    throw new InvalidArgumentError(
      `--initial-cluster lists ${members.length} members; at most ${MAX_MEMBERS}`,
    );
  }
  return members;
}

export function checkName(name: string, where: string): void {
  if (!MEMBER_NAME.test(name)) {
    throw new InvalidArgumentError(
      `${where}: member name '${name}' must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

/**
 * checkAddress: a peer address, HOST:PORT with a port in 1..65535. Port 0 (any free port) is no
 * address the other members can dial: `member add --peer-url HOST:0` used to be accepted,
 * leaving a learner nobody could reach in the cluster's one learner slot.
 */
export function checkAddress(addr: string, where: string): void {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(addr);
  if (m === null || Number(m[3]) > 65535)
    throw new InvalidArgumentError(`${where}: invalid address '${addr}', expected HOST:PORT`);
  if (Number(m[3]) === 0)
    throw new InvalidArgumentError(
      `${where}: invalid address '${addr}': port 0 is no address the other members can reach; give a port in 1-65535`,
    );
}

/** clusterIdOf: one cluster's fingerprint: its token and its initial members. */
function clusterIdOf(token: string, members: readonly MemberRecord[]): string {
  const text = [token, ...members.map((m) => `${m.name}=${m.peerAddr}`).sort()].join('\n');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** identityPath: where a data directory records its member identity. */
export function identityPath(dir: string): string {
  return path.join(dir, RAFT_DIR, IDENTITY_FILE);
}

/** readIdentity returns the recorded identity of `dir`, or undefined when it has none. */
export async function readIdentity(fs: FileSystem, dir: string): Promise<Identity | undefined> {
  const file = identityPath(dir);
  if (!(await fs.exists(file))) return undefined;
  const text = Buffer.from(await fs.readFile(file)).toString('utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new CorruptionError(`${file} is not valid JSON: the member identity is damaged`);
  }
  const id = parsed as Identity;
  if (
    typeof parsed !== 'object' ||
    parsed === null ||
    id.format !== IDENTITY_FORMAT ||
    typeof id.name !== 'string' ||
    typeof id.id !== 'number' ||
    typeof id.clusterToken !== 'string' ||
    typeof id.listenPeer !== 'string' ||
    !Array.isArray(id.members) ||
    (id.removed !== undefined && !Array.isArray(id.removed)) ||
    (id.membershipIndex !== undefined && !Number.isSafeInteger(id.membershipIndex)) ||
    (id.started !== undefined &&
      (!Array.isArray(id.started) || !id.started.every((n) => Number.isSafeInteger(n)))) ||
    (id.startCheck !== undefined && id.startCheck !== 'pending') ||
    (id.voteFloor !== undefined &&
      (typeof id.voteFloor !== 'object' ||
        id.voteFloor === null ||
        !Number.isSafeInteger(id.voteFloor.index) ||
        !Number.isSafeInteger(id.voteFloor.term))) ||
    (id.clientAddrs !== undefined &&
      (typeof id.clientAddrs !== 'object' ||
        id.clientAddrs === null ||
        typeof id.clientAddrs.resp !== 'string' ||
        typeof id.clientAddrs.http !== 'string'))
  ) {
    throw new CorruptionError(`${file} does not hold a member identity of format ${IDENTITY_FORMAT}`);
  }
  return id;
}

/**
 * resolveIdentity decides who this member is: the recorded identity (checked against any flags
 * given), or on a first start a new one from the flags (written durably before anything else).
 * `hasData` says whether DIR already holds a store: a single server's data cannot silently
 * become a cluster member's (the other members would not have it).
 */
export async function resolveIdentity(
  fs: FileSystem,
  dir: string,
  flags: ClusterFlags,
  hasData: boolean,
  /**
   * seeded: the one exception to "a new member starts empty": `cairn snapshot restore` with
   * cluster flags makes DIR the first member of a NEW cluster from a snapshot's data. Only a
   * one-member --initial-cluster may be seeded (other members would not have the data; they
   * join later by `member add`, catching up from this one), and only as a new cluster.
   */
  options: { readonly seeded?: boolean } = {},
): Promise<{ identity: Identity; created: boolean }> {
  const recorded = await readIdentity(fs, dir);
  if (recorded !== undefined) {
    checkAgainstRecord(recorded, flags, dir);
    return { identity: recorded, created: false };
  }
  if (flags.initialCluster === undefined || flags.name === undefined) {
    throw new InvalidArgumentError(
      `${dir} is not a cluster member's directory yet: a first start needs --name and --initial-cluster`,
    );
  }
  if (hasData && options.seeded !== true) {
    throw new InvalidArgumentError(
      `${dir} holds a single server's store; a new cluster member must start from an empty directory. To make this store the first member of a new cluster: cairn snapshot save FILE --dir ${dir}, then cairn snapshot restore FILE --dir NEWDIR --name NAME --initial-cluster NAME=HOST:PORT (docs/backup.md); or start the server without cluster flags`,
    );
  }
  const token = flags.clusterToken ?? DEFAULT_CLUSTER_TOKEN;
  checkName(flags.name, '--name');
  const members = parseInitialCluster(flags.initialCluster, token);
  const self = members.find((m) => m.name === flags.name);
  if (self === undefined) {
    throw new InvalidArgumentError(`--name ${flags.name} is not one of the members in --initial-cluster`);
  }
  if (options.seeded === true) checkSeedable(members, flags);
  if (flags.listenPeer !== undefined) checkAddress(flags.listenPeer, '--listen-peer');
  const identity: Identity = {
    format: IDENTITY_FORMAT,
    name: self.name,
    id: self.id,
    clusterToken: token,
    clusterId: clusterIdOf(token, members),
    members,
    bootstrapped: flags.initialClusterState ?? 'new',
    // Peers reach this member at its --initial-cluster address; it listens there unless told
    // otherwise (a proxy or NAT in between).
    listenPeer: flags.listenPeer ?? self.peerAddr,
    ...(options.seeded === true ? { seeded: true } : {}),
    // An empty directory says nothing about whether this id started before (its directory may
    // have been lost): its peers are asked before it takes part in Raft (start-check.ts).
    startCheck: 'pending',
  };
  await writeIdentity(fs, dir, identity);
  return { identity, created: true };
}

/**
 * checkSeedable refuses to seed (resolveIdentity's `seeded`) anything but the one member of a
 * new cluster: members listed beside it would start empty and never receive the seeded data.
 */
export function checkSeedable(members: readonly MemberRecord[], flags: ClusterFlags): void {
  if (members.length !== 1) {
    throw new InvalidArgumentError(
      `a restored snapshot seeds a new cluster of ONE member; --initial-cluster lists ${members.length} (start with this member alone, then add the others with \`cairn member add\`)`,
    );
  }
  if (flags.initialClusterState === 'existing') {
    throw new InvalidArgumentError(
      'a restored snapshot seeds a new cluster; --initial-cluster-state existing makes no sense here',
    );
  }
}

function checkAgainstRecord(recorded: Identity, flags: ClusterFlags, dir: string): void {
  const file = identityPath(dir);
  if (flags.name !== undefined && flags.name !== recorded.name) {
    throw new InvalidArgumentError(
      `--name ${flags.name} contradicts ${file}, which records member '${recorded.name}': this directory belongs to another member`,
    );
  }
  if (flags.clusterToken !== undefined && flags.clusterToken !== recorded.clusterToken) {
    throw new InvalidArgumentError(
      `--cluster-token contradicts ${file}: this directory belongs to cluster '${recorded.clusterToken}'`,
    );
  }
  const self = recorded.members.find((m) => m.id === recorded.id);
  if (flags.listenPeer !== undefined && flags.listenPeer !== recorded.listenPeer) {
    throw new InvalidArgumentError(
      `--listen-peer ${flags.listenPeer} contradicts ${file}, which records that '${recorded.name}' listens on ${recorded.listenPeer}`,
    );
  }
  if (flags.initialCluster !== undefined) {
    // As etcd: ignored after the first start, but a list that names this member elsewhere, or
    // does not name it, is a mistake worth stopping for (a wrong directory, a wrong script).
    const listed = parseInitialCluster(flags.initialCluster, recorded.clusterToken).find(
      (m) => m.name === recorded.name,
    );
    if (listed === undefined) {
      throw new InvalidArgumentError(
        `--initial-cluster does not list '${recorded.name}', the member ${file} records: this directory belongs to another cluster`,
      );
    }
    if (self !== undefined && listed.peerAddr !== self.peerAddr) {
      throw new InvalidArgumentError(
        `--initial-cluster gives '${recorded.name}' address ${listed.peerAddr}, but ${file} records ${self.peerAddr}`,
      );
    }
  }
}

/**
 * writeIdentity replaces DIR/raft/member.json atomically: a crash leaves the old record or the
 * new one, never a mix (temporary file, fdatasync, rename, fsync of raft/). A new raft/ (and DIR,
 * if new) is made durable in its parent first (mkdirDurable).
 */
export async function writeIdentity(fs: FileSystem, dir: string, identity: Identity): Promise<void> {
  await mkdirDurable(fs, path.join(dir, RAFT_DIR));
  await writeFileAtomic(fs, identityPath(dir), Buffer.from(`${JSON.stringify(identity, null, 2)}\n`));
}
