// Client tracking (docs/tracking.md): Redis 6's server-assisted client-side caching. A client
// that sent CLIENT TRACKING ON gets an `invalidate` message for a key when the key changes, so it
// may cache what it read until then.
//
// Default mode: the table remembers, per key, the ids of the tracking clients that read it with
// a read-only command; the first write to the key sends each of them one invalidation and forgets
// the key (a client that reads it again is remembered again). BCAST mode: the client names key
// prefixes and hears of every write to a key under one of them, whatever it read. OPTIN / OPTOUT:
// only reads after `CLIENT CACHING yes` (OPTIN) are remembered, or all but those after `CLIENT
// CACHING no` (OPTOUT). NOLOOP: no invalidation for the client's own writes. REDIRECT id: the
// messages go to another connection (RESP2 clients: as pub/sub messages on __redis__:invalidate).
//
// Where writes come from: every write of the newest state is queued by the write pipeline, which
// tells `invalidate` in the same synchronous step (plain commands, EXEC and TXN.COMMIT commits,
// scripts' batches, the expiry cycle, the HTTP API); a cluster member also hears of the log
// entries it applies that it did not queue itself (another member's writes). So the rule is
// "invalidate when the write is queued", before any reply can reveal it.
//
// Bound: the table holds at most `maxKeys` keys (Redis's tracking-table-max-keys); remembering
// one more evicts the oldest remembered key by sending its invalidation early, which costs its
// readers a cache miss and is never wrong.
import type { ReplyWriter, RespVersion } from '../../protocol/resp/index.js';

/** TRACKING_TABLE_MAX_KEYS: keys the default-mode table remembers (Redis's tracking-table-max-keys default). */
export const TRACKING_TABLE_MAX_KEYS = 1_000_000;

/** TRACKING_PREFIXES_MAX: BCAST prefixes one client may register (a bound Redis does not have). */
export const TRACKING_PREFIXES_MAX = 1024;

/** INVALIDATE_CHANNEL: the pub/sub channel RESP2 redirect targets receive invalidations on. */
export const INVALIDATE_CHANNEL = Buffer.from('__redis__:invalidate');

/** TrackingState: one connection's CLIENT TRACKING settings (undefined on ClientState: off). */
export interface TrackingState {
  readonly bcast: boolean;
  readonly optin: boolean;
  readonly optout: boolean;
  readonly noloop: boolean;
  /** redirect: the id of the connection that receives the messages; 0 for this one. */
  readonly redirect: number;
  /** prefixes: BCAST's prefixes (copies); [] with BCAST means every key. */
  readonly prefixes: readonly Buffer[];
  /** caching: CLIENT CACHING yes (OPTIN) or no (OPTOUT) applies to the next command. */
  caching: boolean;
  /** brokenRedirect: the redirect target is gone (told once, RESP3: tracking-redir-broken). */
  brokenRedirect: boolean;
}

/** TrackingPeer: the side of a connection the table writes to. */
export interface TrackingPeer {
  readonly id: number;
  readonly tracking: TrackingState | undefined;
  readonly protocol: RespVersion;
  /** subscribed: the connection has a pub/sub subscription (RESP2 redirect targets need one). */
  readonly subscribed: boolean;
  /** write writes a message into the connection's output, after every reply so far. */
  write(message: (w: ReplyWriter) => void): void;
  /**
   * afterHeldReplies runs `fn` once every reply written or held so far on this connection has
   * been released (at once when none is held). A redirected invalidation waits for it, so that
   * it cannot reach the client before the reply of a read it invalidates (see docs/tracking.md).
   */
  afterHeldReplies(fn: () => void): void;
  /**
   * defer runs `fn` after the reply of the command the connection is executing, at once when it
   * executes none (see TrackingTable.sendOrDefer).
   */
  defer(fn: () => void): void;
}

/** Invalidation: the keys of one message; null: every key (FLUSHDB, FLUSHALL, a snapshot install). */
type Invalidation = readonly Buffer[] | null;

/** writeInvalidation writes one message in the target's protocol (Redis's sendTrackingMessage). */
function writeInvalidation(w: ReplyWriter, keys: Invalidation): void {
  if (w.protocol === 3) {
    w.pushHeader(2);
    w.bulk('invalidate');
  } else {
    w.pushHeader(3); // an array in RESP2: a pub/sub message
    w.bulk('message');
    w.bulk(INVALIDATE_CHANNEL);
  }
  if (keys === null) w.null();
  else w.bulkArray(keys);
}

interface PrefixEntry {
  readonly prefix: Buffer;
  readonly clients: Set<number>;
}

const keyString = (key: Uint8Array): string =>
  Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');

export class TrackingTable {
  /** keys: key (latin1) -> ids of the clients that read it while tracking (default mode). */
  private readonly keys = new Map<string, Set<number>>();
  /** prefixes: BCAST prefix (latin1) -> the clients registered for it. */
  private readonly prefixes = new Map<string, PrefixEntry>();
  /** clients: the ids of every tracking connection (FLUSHDB tells them all). */
  private readonly clients = new Set<number>();
  /**
   * writer: the client whose command is queuing writes now (set by the connection around the
   * synchronous part of a command and around a commit), for NOLOOP; undefined for the expiry
   * cycle and replicated writes.
   */
  writer: number | undefined;
  /** pendingBroadcast: BCAST prefix -> keys written this turn -> their writer (see broadcast). */
  private pendingBroadcast = new Map<string, Map<string, number>>();
  private broadcastScheduled = false;
  /** evicted: keys invalidated early because the table was full (INFO tracking_... style counter). */
  evicted = 0;

  constructor(
    private readonly peer: (id: number) => TrackingPeer | undefined,
    readonly maxKeys: number = TRACKING_TABLE_MAX_KEYS,
  ) {}

  /** size: keys remembered in the default-mode table. */
  get size(): number {
    return this.keys.size;
  }

  /** prefixCount: distinct BCAST prefixes registered (INFO tracking_total_prefixes). */
  get prefixCount(): number {
    return this.prefixes.size;
  }

  /** trackingClients: connections with tracking on. */
  get trackingClients(): number {
    return this.clients.size;
  }

  /** asWriter runs a synchronous step (a commit) as `client`'s write (see `writer`). */
  asWriter<T>(client: number, step: () => T): T {
    const prev = this.writer;
    this.writer = client;
    try {
      return step();
    } finally {
      this.writer = prev;
    }
  }

  /** enable registers a client that turned tracking on (its state is already set). */
  enable(id: number, state: TrackingState): void {
    this.clients.add(id);
    if (!state.bcast) return;
    const prefixes = state.prefixes.length === 0 ? [Buffer.alloc(0)] : state.prefixes;
    for (const prefix of prefixes) {
      const k = prefix.toString('latin1');
      let entry = this.prefixes.get(k);
      if (entry === undefined) {
        entry = { prefix, clients: new Set() };
        this.prefixes.set(k, entry);
      }
      entry.clients.add(id);
    }
  }

  /**
   * disable forgets a client that turned tracking off or disconnected. The keys it read stay in
   * the table until written (as in Redis): a write then skips it.
   */
  disable(id: number, state: TrackingState | undefined): void {
    this.clients.delete(id);
    if (state === undefined || !state.bcast) return;
    const prefixes = state.prefixes.length === 0 ? [Buffer.alloc(0)] : state.prefixes;
    for (const prefix of prefixes) {
      const k = prefix.toString('latin1');
      const entry = this.prefixes.get(k);
      if (entry === undefined) continue;
      entry.clients.delete(id);
      if (entry.clients.size === 0) this.prefixes.delete(k);
    }
  }

  /**
   * remember records that client `id` read `keys` with a read-only command (Redis's
   * trackingRememberKeys): nothing in BCAST mode, nor in OPTIN mode without CLIENT CACHING yes,
   * nor in OPTOUT mode after CLIENT CACHING no.
   */
  remember(id: number, state: TrackingState | undefined, keys: readonly Uint8Array[]): void {
    if (state === undefined || state.bcast) return;
    if ((state.optin && !state.caching) || (state.optout && state.caching)) return;
    for (const key of keys) {
      const k = keyString(key);
      let ids = this.keys.get(k);
      if (ids === undefined) {
        ids = new Set();
        this.keys.set(k, ids);
      }
      ids.add(id);
    }
    this.evictOverLimit();
  }

  /**
   * invalidate: `keys` are being written. Every client that read one of them hears of it once
   * (and the key is forgotten); every BCAST client with a matching prefix hears of it too.
   */
  invalidate(keys: readonly Uint8Array[]): void {
    if (this.clients.size === 0 || keys.length === 0) return;
    if (this.keys.size > 0) {
      for (const key of keys) {
        const k = keyString(key);
        const ids = this.keys.get(k);
        if (ids === undefined) continue;
        this.keys.delete(k);
        this.tellReaders(ids, Buffer.from(k, 'latin1'));
      }
    }
    if (this.prefixes.size > 0) this.broadcast(keys);
  }

  /** flushed: every key is gone (FLUSHDB/FLUSHALL, a snapshot install): a null invalidation to all. */
  flushed(): void {
    this.keys.clear();
    for (const id of [...this.clients]) {
      const peer = this.peer(id);
      if (peer?.tracking === undefined) continue;
      this.sendOrDefer(peer, null);
    }
  }

  /**
   * tellOnly sends `keys` to one client's tracking destination without touching the table: reads
   * from an older snapshot (TXN.BEGIN) are invalidated right after their reply, since a write the
   * snapshot does not see may already have invalidated the key.
   */
  tellOnly(id: number, keys: readonly Uint8Array[]): void {
    const peer = this.peer(id);
    if (peer?.tracking === undefined || peer.tracking.bcast || keys.length === 0) return;
    const copies = keys.map((k) => Buffer.from(k));
    peer.defer(() => this.send(peer, copies));
  }

  private tellReaders(ids: ReadonlySet<number>, key: Buffer): void {
    for (const id of ids) {
      const peer = this.peer(id);
      const state = peer?.tracking;
      // Gone, tracking turned off, or switched to BCAST since it read the key (as Redis).
      if (peer === undefined || state === undefined || state.bcast) continue;
      if (state.noloop && id === this.writer) continue;
      this.sendOrDefer(peer, [key]);
    }
  }

  /**
   * broadcast: BCAST clients hear of written keys under their prefixes once per turn of the event
   * loop, one message per prefix with the keys written under it in byte order, as Redis does in
   * beforeSleep (so a pipeline's or an MSET's keys come together). Later is safe here: a BCAST
   * client's cache may only hold values read before the message is written to it.
   */
  private broadcast(keys: readonly Uint8Array[]): void {
    const writer = this.writer ?? 0;
    for (const [pk, entry] of this.prefixes) {
      for (const key of keys) {
        if (!startsWith(key, entry.prefix)) continue;
        let written = this.pendingBroadcast.get(pk);
        if (written === undefined) {
          written = new Map();
          this.pendingBroadcast.set(pk, written);
        }
        const k = keyString(key);
        const prev = written.get(k);
        // The writing client, for NOLOOP; MIXED_WRITERS once two clients wrote the key.
        written.set(k, prev === undefined || prev === writer ? writer : MIXED_WRITERS);
      }
    }
    if (this.pendingBroadcast.size > 0 && !this.broadcastScheduled) {
      this.broadcastScheduled = true;
      setImmediate(() => this.flushBroadcast());
    }
  }

  private flushBroadcast(): void {
    this.broadcastScheduled = false;
    const pending = this.pendingBroadcast;
    this.pendingBroadcast = new Map();
    for (const pk of [...pending.keys()].sort(byBytes)) {
      const entry = this.prefixes.get(pk);
      if (entry === undefined) continue;
      const written = pending.get(pk)!;
      const names = [...written.keys()].sort(byBytes);
      for (const id of entry.clients) {
        const peer = this.peer(id);
        const state = peer?.tracking;
        if (peer === undefined || state === undefined) continue;
        const mine = state.noloop ? names.filter((k) => written.get(k) !== id) : names;
        if (mine.length === 0) continue;
        const message = mine.map((k) => Buffer.from(k, 'latin1'));
        peer.defer(() => this.send(peer, message));
      }
    }
  }

  /**
   * sendOrDefer sends after the reply of the command the client is executing, if any: its own
   * write's invalidation comes after the write's reply (as Redis 7), and another client's write
   * during an asynchronous command (EXEC reading a snapshot taken before that write) must reach
   * the client after the reply carrying the older value, never before it.
   */
  private sendOrDefer(peer: TrackingPeer, keys: Invalidation): void {
    peer.defer(() => this.send(peer, keys));
  }

  /** send delivers one invalidation to a client's destination (Redis's sendTrackingMessage). */
  private send(owner: TrackingPeer, keys: Invalidation): void {
    const state = owner.tracking;
    if (state === undefined) return;
    if (state.redirect === 0) {
      // RESP2 without a redirect has nowhere to hear of it (Redis accepts and sends nothing).
      if (owner.protocol === 3) owner.write((w) => writeInvalidation(w, keys));
      return;
    }
    const redirect = state.redirect;
    if (this.peer(redirect) === undefined) {
      if (owner.protocol === 3 && !state.brokenRedirect) {
        owner.write((w) => {
          w.pushHeader(2);
          w.bulk('tracking-redir-broken');
          w.integer(redirect);
        });
      }
      state.brokenRedirect = true;
      return;
    }
    // After the owner's held replies: the owner's client must not get a read's value after the
    // invalidation of that value on another socket just because the read waited for durability.
    owner.afterHeldReplies(() => {
      const target = this.peer(redirect);
      if (target === undefined) return;
      if (target.protocol === 3) target.write((w) => writeInvalidation(w, keys));
      else if (target.subscribed) target.write((w) => writeInvalidation(w, keys));
    });
  }

  private evictOverLimit(): void {
    while (this.keys.size > this.maxKeys) {
      const oldest = this.keys.entries().next();
      if (oldest.done === true) return;
      const [k, ids] = oldest.value;
      this.keys.delete(k);
      this.evicted++;
      this.tellReaders(ids, Buffer.from(k, 'latin1'));
    }
  }
}

/** MIXED_WRITERS: a key several clients wrote in one turn (NOLOOP filters it for none). */
const MIXED_WRITERS = -1;

/** byBytes orders latin1 strings as their bytes (Redis's rax order). */
const byBytes = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function startsWith(key: Uint8Array, prefix: Buffer): boolean {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

/** ERR_* : Redis 7's CLIENT TRACKING / CACHING refusals (networking.c), word for word. */
export const ERR_PREFIX_NEEDS_BCAST = 'ERR PREFIX option requires BCAST mode to be enabled';
export const ERR_SWITCH_BCAST =
  "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.";
export const ERR_BCAST_OPTIN = 'ERR OPTIN and OPTOUT are not compatible with BCAST';
export const ERR_OPTIN_AND_OPTOUT = "ERR You can't specify both OPTIN mode and OPTOUT mode";
export const ERR_SWITCH_OPTIN =
  "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.";
export const ERR_NO_REDIRECT_CLIENT = 'ERR The client ID you want redirect to does not exist';
export const ERR_CACHING_NOT_TRACKING =
  'ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled';
export const ERR_CACHING_YES = 'ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.';
export const ERR_CACHING_NO = 'ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.';

/** prefixOverlap: Redis's checkPrefixCollisionsOrReply message, or undefined when none overlap. */
export function prefixOverlap(existing: readonly Buffer[], given: readonly Buffer[]): string | undefined {
  const overlaps = (a: Buffer, b: Buffer): boolean =>
    a.length <= b.length ? startsWith(b, a) : startsWith(a, b);
  for (let i = 0; i < given.length; i++) {
    const p = given[i]!;
    for (const e of existing) {
      if (overlaps(p, e))
        return `ERR Prefix '${p.toString('latin1')}' overlaps with an existing prefix '${e.toString('latin1')}'. Prefixes for a single client must not overlap.`;
    }
    for (let j = i + 1; j < given.length; j++) {
      const q = given[j]!;
      if (overlaps(p, q))
        return `ERR Prefix '${p.toString('latin1')}' overlaps with another provided prefix '${q.toString('latin1')}'. Prefixes for a single client must not overlap.`;
    }
  }
  return undefined;
}

/** KeyedCommand: the part of a command spec `readKeys` needs (command-table.ts, CommandSpec). */
interface KeyedCommand {
  readonly flags: readonly string[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
}

/**
 * readKeys: the keys a read-only command reads (its key positions), [] for any other command:
 * Redis remembers only the keys of read-only commands (a write that reads, like INCR, is not).
 */
export function readKeys(spec: KeyedCommand, args: readonly Buffer[]): Buffer[] {
  if (spec.firstKey <= 0 || !spec.flags.includes('readonly') || spec.flags.includes('movablekeys')) return [];
  const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey;
  const out: Buffer[] = [];
  for (let i = spec.firstKey; i <= last && i < args.length; i += Math.max(1, spec.step)) out.push(args[i]!);
  return out;
}

/**
 * trackRead: client `client` is about to run `spec`: remember the keys it reads (before the read,
 * so that no write between the read and the remembering can go unannounced). `snapshot`: the
 * read is from an interactive transaction's snapshot, which may predate a write already
 * announced: its keys are invalidated right after the reply instead.
 */
export function trackRead(
  table: TrackingTable,
  client: { readonly id: number; readonly tracking?: TrackingState | undefined },
  spec: KeyedCommand,
  args: readonly Buffer[],
  snapshot = false,
): void {
  const state = client.tracking;
  if (state === undefined || state.bcast) return;
  const keys = readKeys(spec, args);
  if (keys.length === 0) return;
  if (snapshot) table.tellOnly(client.id, keys);
  else table.remember(client.id, state, keys);
}
