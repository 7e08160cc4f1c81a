// Connection commands: PING, ECHO, SELECT, QUIT, AUTH, HELLO, CLIENT.
import { timingSafeEqual } from 'node:crypto';
import type { ReplyWriter } from '../../../protocol/resp/index.js';
import {
  CommandError,
  ERR_NOT_INTEGER,
  ERR_SYNTAX,
  ERR_WRONGPASS,
  unknownSubcommand,
  wrongArity,
} from '../errors.js';
import { CLIENT_NAME_BYTES_MAX } from '../limits.js';
import {
  ERR_BCAST_OPTIN,
  ERR_CACHING_NO,
  ERR_CACHING_NOT_TRACKING,
  ERR_CACHING_YES,
  ERR_NO_REDIRECT_CLIENT,
  ERR_OPTIN_AND_OPTOUT,
  ERR_PREFIX_NEEDS_BCAST,
  ERR_SWITCH_BCAST,
  ERR_SWITCH_OPTIN,
  prefixOverlap,
  TRACKING_PREFIXES_MAX,
  type TrackingState,
} from '../tracking.js';
import type { ClientState, CommandContext } from '../types.js';
import { is, lower, parseInt64 } from './args.js';
import { NO_KEYS, spec } from './spec.js';

/** REDIS_COMPAT_VERSION: the Redis version whose commands we follow (clients gate features on it). */
export const REDIS_COMPAT_VERSION = '7.2.0';

const connection = (since: string, summary: string) => ({ group: 'connection', since, summary });

/**
 * credentialsOk: whether `user` may log in with `password`. There is one user, "default"; without
 * a configured password it is "nopass" as in Redis, so any password works for it. The comparison
 * is constant-time (for equal lengths), so timing reveals little.
 */
function credentialsOk(ctx: CommandContext, user: string, password: Buffer): boolean {
  if (user !== 'default') return false;
  const expected = ctx.server.config.requirePass;
  if (expected === undefined) return true;
  const want = Buffer.from(expected);
  return want.length === password.length && timingSafeEqual(want, password);
}

function auth(ctx: CommandContext, args: Buffer[]): void {
  if (args.length > 3) throw new CommandError(ERR_SYNTAX);
  const user = args.length === 3 ? args[1]!.toString() : 'default';
  const password = args[args.length - 1]!;
  if (ctx.server.config.requirePass === undefined && args.length === 2)
    throw new CommandError(
      'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
    );
  if (!credentialsOk(ctx, user, password)) throw new CommandError(ERR_WRONGPASS);
  ctx.client.authenticated = true;
  ctx.w.ok();
}

/** validName checks a client name as Redis does: printable ASCII without spaces. */
function setName(client: ClientState, name: Buffer): void {
  if (name.length > CLIENT_NAME_BYTES_MAX) throw new CommandError('ERR Client name is too long');
  for (const c of name)
    if (c < 0x21 || c > 0x7e)
      throw new CommandError('ERR Client names cannot contain spaces, newlines or special characters.');
  client.name = name.toString('latin1');
}

function hello(ctx: CommandContext, args: Buffer[]): void {
  let protocol = ctx.client.protocol;
  if (args.length >= 2) {
    const v = parseInt64(args[1]!);
    if (v === undefined) throw new CommandError('ERR Protocol version is not an integer or out of range');
    if (v < 2n || v > 3n) throw new CommandError('NOPROTO unsupported protocol version');
    protocol = Number(v) as 2 | 3;
  }
  let name: Buffer | undefined;
  let authenticate: { user: string; password: Buffer } | undefined;
  for (let i = 2; i < args.length; i++) {
    const more = args.length - i - 1;
    if (is(args[i]!, 'auth') && more >= 2) {
      authenticate = { user: args[i + 1]!.toString(), password: args[i + 2]! };
      i += 2;
    } else if (is(args[i]!, 'setname') && more >= 1) {
      name = args[++i]!;
    } else {
      throw new CommandError(
        `ERR Syntax error in HELLO option '${args[i]!.toString('latin1').slice(0, 128)}'`,
      );
    }
  }
  if (authenticate !== undefined) {
    if (!credentialsOk(ctx, authenticate.user, authenticate.password)) throw new CommandError(ERR_WRONGPASS);
    ctx.client.authenticated = true;
  }
  if (!ctx.client.authenticated)
    throw new CommandError(
      'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    );
  if (name !== undefined) setName(ctx.client, name);
  ctx.setProtocol(protocol);
  const w = ctx.w;
  w.mapHeader(7);
  w.bulk('server');
  w.bulk('redis');
  w.bulk('version');
  w.bulk(REDIS_COMPAT_VERSION);
  w.bulk('proto');
  w.integer(protocol);
  w.bulk('id');
  w.integer(ctx.client.id);
  w.bulk('mode');
  w.bulk('standalone');
  w.bulk('role');
  w.bulk('master');
  w.bulk('modules');
  w.arrayHeader(0);
}

/** TRACKING_FLAGS, TRACKING_OPTIONS_WITH_VALUE: CLIENT TRACKING's options (Redis 7). */
const TRACKING_FLAGS = new Set(['bcast', 'optin', 'optout', 'noloop']);

/**
 * tracking: CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p]... [OPTIN] [OPTOUT] [NOLOOP],
 * with Redis 7's checks in its order (networking.c, clientCommand) (docs/tracking.md).
 */
function tracking(ctx: CommandContext, args: Buffer[]): void {
  const mode = lower(args[2]!);
  if (mode !== 'on' && mode !== 'off') throw new CommandError(ERR_SYNTAX);
  const flags = new Set<string>();
  let redirect = 0;
  const prefixes: Buffer[] = [];
  for (let i = 3; i < args.length; i++) {
    const opt = lower(args[i]!);
    const more = args.length - i - 1;
    if (opt === 'redirect' && more >= 1) {
      if (redirect !== 0) throw new CommandError('ERR A client can only redirect to a single other client');
      const id = parseInt64(args[++i]!);
      if (id === undefined) throw new CommandError(ERR_NOT_INTEGER);
      const target = id > 0n && id <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(id) : -1;
      if (![...ctx.server.clients()].some((c) => c.id === target))
        throw new CommandError(ERR_NO_REDIRECT_CLIENT);
      redirect = target;
    } else if (opt === 'prefix' && more >= 1) {
      prefixes.push(Buffer.from(args[++i]!));
    } else if (TRACKING_FLAGS.has(opt)) {
      flags.add(opt);
    } else throw new CommandError(ERR_SYNTAX);
  }
  const table = ctx.server.tracking;
  const client = ctx.client;
  const old = client.tracking;
  if (mode === 'off') {
    table.disable(client.id, old);
    client.tracking = undefined;
    ctx.w.ok();
    return;
  }
  const bcast = flags.has('bcast');
  const optin = flags.has('optin');
  const optout = flags.has('optout');
  if (!bcast && prefixes.length > 0) throw new CommandError(ERR_PREFIX_NEEDS_BCAST);
  if (old !== undefined && old.bcast !== bcast) throw new CommandError(ERR_SWITCH_BCAST);
  if (bcast && (optin || optout)) throw new CommandError(ERR_BCAST_OPTIN);
  if (optin && optout) throw new CommandError(ERR_OPTIN_AND_OPTOUT);
  if (old !== undefined && ((optin && old.optout) || (optout && old.optin)))
    throw new CommandError(ERR_SWITCH_OPTIN);
  const kept = old?.bcast === true ? old.prefixes : [];
  if (bcast) {
    const overlap = prefixOverlap(kept, prefixes);
    if (overlap !== undefined) throw new CommandError(overlap);
    if (kept.length + prefixes.length > TRACKING_PREFIXES_MAX)
      throw new CommandError(`ERR at most ${TRACKING_PREFIXES_MAX} prefixes per client`);
  }
  table.disable(client.id, old);
  client.tracking = {
    bcast,
    optin,
    optout,
    noloop: flags.has('noloop'),
    redirect,
    prefixes: [...kept, ...prefixes],
    caching: false,
    brokenRedirect: false,
  };
  table.enable(client.id, client.tracking);
  ctx.w.ok();
}

/** caching: CLIENT CACHING yes|no, for the next command in OPTIN / OPTOUT mode. */
function caching(ctx: CommandContext, args: Buffer[]): void {
  const state = ctx.client.tracking;
  if (state === undefined || (!state.optin && !state.optout))
    throw new CommandError(ERR_CACHING_NOT_TRACKING);
  const value = lower(args[2]!);
  if (value === 'yes') {
    if (!state.optin) throw new CommandError(ERR_CACHING_YES);
  } else if (value === 'no') {
    if (!state.optout) throw new CommandError(ERR_CACHING_NO);
  } else throw new CommandError(ERR_SYNTAX);
  state.caching = true;
  ctx.w.ok();
}

/** trackingInfo: CLIENT TRACKINGINFO (Redis's reply shape and flag names). */
function trackingInfo(w: ReplyWriter, state: TrackingState | undefined): void {
  const flags: string[] = [];
  if (state === undefined) flags.push('off');
  else {
    flags.push('on');
    if (state.bcast) flags.push('bcast');
    if (state.optin) flags.push('optin');
    if (state.optout) flags.push('optout');
    if (state.caching) flags.push(state.optin ? 'caching-yes' : 'caching-no');
    if (state.noloop) flags.push('noloop');
    if (state.brokenRedirect) flags.push('broken_redirect');
  }
  w.mapHeader(3);
  w.bulk('flags');
  w.setHeader(flags.length);
  for (const f of flags) w.bulk(f);
  w.bulk('redirect');
  w.integer(state === undefined ? -1 : state.redirect);
  w.bulk('prefixes');
  // In byte order, as Redis lists its prefix tree.
  w.bulkArray(state?.bcast === true ? [...state.prefixes].sort(Buffer.compare) : []);
}

/** clientFlags: CLIENT LIST's flags: P subscribed, t tracking, B broadcast, R broken redirect, else N. */
function clientFlags(c: ClientState): string {
  let flags = c.sub + c.psub + c.ssub > 0 ? 'P' : '';
  const t = c.tracking;
  if (t !== undefined) {
    flags += 't';
    // Redis's order (networking.c catClientInfoString): R before B.
    if (t.brokenRedirect) flags += 'R';
    if (t.bcast) flags += 'B';
  }
  if (c.noEvict) flags += 'e';
  return flags === '' ? 'N' : flags;
}

/** clientLine is one line of CLIENT LIST / CLIENT INFO, in Redis's field order. */
/**
 * clientList picks the clients CLIENT LIST [TYPE normal|master|replica|slave|pubsub] [ID id ...]
 * names, as Redis 7.0 does: TYPE alone (exactly), or ID with at least one id (each an integer,
 * listed in the order given, repeats repeated, unknown ids skipped). Cairn has no master or
 * replica connections (a cluster's members talk over their own peer protocol), so those types
 * list nothing; a connection subscribed to anything is `pubsub`, any other `normal`.
 */
function clientList(ctx: CommandContext, args: readonly Buffer[]): ClientState[] {
  const all = [...ctx.server.clients()];
  if (args.length === 2) return all;
  if (args.length === 4 && is(args[2]!, 'type')) {
    const type = lower(args[3]!);
    if (type === 'normal') return all.filter((c) => !isPubsub(c));
    if (type === 'pubsub') return all.filter(isPubsub);
    if (type === 'master' || type === 'replica' || type === 'slave') return [];
    throw new CommandError(`ERR Unknown client type '${args[3]!.toString('latin1')}'`);
  }
  if (args.length > 3 && is(args[2]!, 'id')) {
    const byId = new Map(all.map((c) => [BigInt(c.id), c]));
    const out: ClientState[] = [];
    for (const arg of args.slice(3)) {
      const id = parseInt64(arg);
      if (id === undefined) throw new CommandError('ERR Invalid client ID');
      const c = byId.get(id);
      if (c !== undefined) out.push(c);
    }
    return out;
  }
  throw new CommandError(ERR_SYNTAX);
}

/** isPubsub: CLIENT LIST/KILL TYPE pubsub: a connection with subscriptions. */
function isPubsub(c: ClientState): boolean {
  return c.sub + c.psub + c.ssub > 0;
}

/**
 * clientKill: CLIENT KILL addr:port (the old form: OK, or ERR No such client; it may name the
 * caller) or CLIENT KILL [ID id] [TYPE type] [USER name] [ADDR addr] [LADDR addr] [SKIPME yes|no]
 * (the number killed; the caller is skipped unless SKIPME no), as Redis 7.0's clientKillCommand.
 * Other connections are cut at once; the caller gets its reply, then is closed.
 */
function clientKill(ctx: CommandContext, args: Buffer[]): void {
  let addr: string | undefined;
  let laddr: string | undefined;
  let type: string | undefined;
  let id: number | undefined;
  let skipMe = true;
  if (args.length === 3) {
    addr = args[2]!.toString('latin1');
    skipMe = false;
  } else {
    for (let i = 2; i < args.length; i += 2) {
      const opt = lower(args[i]!);
      const value = args[i + 1];
      if (value === undefined) throw new CommandError(ERR_SYNTAX);
      if (opt === 'id') {
        const n = parseInt64(value);
        if (n === undefined || n < 1n) throw new CommandError('ERR client-id should be greater than 0');
        id = n > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(n);
      } else if (opt === 'type') {
        type = lower(value);
        if (type === 'replica') type = 'slave';
        if (!['normal', 'slave', 'pubsub', 'master'].includes(type))
          throw new CommandError(`ERR Unknown client type '${value.toString('latin1')}'`);
      } else if (opt === 'addr') addr = value.toString('latin1');
      else if (opt === 'laddr') laddr = value.toString('latin1');
      else if (opt === 'user') {
        // Only the default user exists (AUTH).
        if (value.toString('latin1') !== 'default')
          throw new CommandError(`ERR No such user '${value.toString('latin1')}'`);
      } else if (opt === 'skipme') {
        const yes = lower(value);
        if (yes !== 'yes' && yes !== 'no') throw new CommandError(ERR_SYNTAX);
        skipMe = yes === 'yes';
      } else throw new CommandError(ERR_SYNTAX);
    }
  }
  let killed = 0;
  let closeSelf = false;
  for (const c of [...ctx.server.clients()]) {
    if (addr !== undefined && c.addr !== addr) continue;
    if (laddr !== undefined && c.laddr !== laddr) continue;
    if (type !== undefined && type !== (isPubsub(c) ? 'pubsub' : 'normal')) continue;
    if (id !== undefined && c.id !== id) continue;
    if (c === ctx.client) {
      if (skipMe) continue;
      closeSelf = true;
    } else ctx.server.killClient(c.id);
    killed++;
  }
  if (args.length === 3) {
    if (killed === 0) throw new CommandError('ERR No such client');
    ctx.w.ok();
  } else ctx.w.integer(killed);
  if (closeSelf) ctx.closeAfterReply();
}

export function clientLine(c: ClientState, now: number, current: string): string {
  const age = Math.floor((now - c.createdAt) / 1000);
  const idle = Math.floor((now - c.lastCommandAt) / 1000);
  return (
    `id=${c.id} addr=${c.addr} laddr=${c.laddr} fd=-1 name=${c.name} age=${age} idle=${idle} ` +
    `flags=${clientFlags(c)} db=0 sub=${c.sub} psub=${c.psub} ssub=${c.ssub} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 ` +
    `events=r cmd=${current} user=default redir=${c.tracking?.redirect ?? -1} resp=${c.protocol} lib-name=${c.libName} lib-ver=${c.libVer}\n`
  );
}

const CLIENT_HELP = [
  'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GETNAME',
  '    Return the name of the current connection.',
  'ID',
  '    Return the ID of the current connection.',
  'INFO',
  '    Return information about the current client connection.',
  'KILL <ip:port>',
  '    Kill connection made from <ip:port>.',
  'KILL <option> <value> [<option> <value> [...]]',
  '    Kill connections. Options are:',
  '    * ADDR (<ip:port>|<unixsocket>:0)',
  '      Kill connections made from the specified address',
  '    * LADDR (<ip:port>|<unixsocket>:0)',
  '      Kill connections made to specified local address',
  '    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
  '      Kill connections by type.',
  '    * USER <username>',
  '      Kill connections authenticated by <username>.',
  '    * SKIPME (YES|NO)',
  '      Skip killing current connection (default: yes).',
  'LIST',
  '    Return information about client connections.',
  'SETINFO <option> <value>',
  '    Set client meta attr. Options are: LIB-NAME, LIB-VER.',
  'SETNAME <name>',
  '    Assign the name <name> to the current connection.',
  'TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]',
  '    [OPTIN] [OPTOUT] [NOLOOP]',
  '    Control server assisted client side caching.',
  'CACHING (YES|NO)',
  '    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.',
  'TRACKINGINFO',
  '    Report tracking status for the current connection.',
  'GETREDIR',
  '    Return the client ID we are redirecting to when tracking is enabled.',
  'NO-EVICT (ON|OFF)',
  '    Protect current client connection from eviction.',
  'HELP',
  '    Print this help.',
];

function client(ctx: CommandContext, args: Buffer[]): void {
  const sub = lower(args[1]!);
  const w: ReplyWriter = ctx.w;
  const arity = (n: number) => {
    if (args.length !== n) throw wrongArity(`client|${sub}`);
  };
  switch (sub) {
    case 'id':
      arity(2);
      w.integer(ctx.client.id);
      return;
    case 'getname':
      arity(2);
      w.bulk(ctx.client.name === '' ? null : ctx.client.name);
      return;
    case 'setname':
      arity(3);
      setName(ctx.client, args[2]!);
      w.ok();
      return;
    case 'setinfo': {
      arity(4);
      const attr = lower(args[2]!);
      const value = args[3]!;
      for (const c of value)
        if (c < 0x21 || c > 0x7e)
          throw new CommandError(`ERR ${attr} cannot contain spaces, newlines or special characters.`);
      if (attr === 'lib-name') ctx.client.libName = value.toString('latin1');
      else if (attr === 'lib-ver') ctx.client.libVer = value.toString('latin1');
      else throw new CommandError(`ERR Unrecognized option '${args[2]!.toString('latin1')}'`);
      w.ok();
      return;
    }
    case 'info':
      arity(2);
      w.verbatim('txt', clientLine(ctx.client, ctx.server.clock.nowMs(), 'client|info'));
      return;
    case 'list': {
      const now = ctx.server.clock.nowMs();
      const line = (c: ClientState): string =>
        clientLine(c, now, c === ctx.client ? 'client|list' : c.lastCommand);
      w.verbatim('txt', clientList(ctx, args).map(line).join(''));
      return;
    }
    case 'tracking':
      if (args.length < 3) throw wrongArity('client|tracking');
      tracking(ctx, args);
      return;
    case 'caching':
      arity(3);
      caching(ctx, args);
      return;
    case 'getredir':
      arity(2);
      // -1: tracking is off; 0: on without a redirect (as Redis).
      w.integer(ctx.client.tracking?.redirect ?? -1);
      return;
    case 'trackinginfo':
      arity(2);
      trackingInfo(w, ctx.client.tracking);
      return;
    case 'kill':
      if (args.length < 3) throw wrongArity('client|kill');
      clientKill(ctx, args);
      return;
    case 'no-evict': {
      // As Redis 7: exempts the connection from the output budget's evictions (RESET keeps it,
      // as Redis 7.0).
      arity(3);
      const on = lower(args[2]!);
      if (on !== 'on' && on !== 'off') throw new CommandError(ERR_SYNTAX);
      ctx.client.noEvict = on === 'on';
      w.ok();
      return;
    }
    case 'help':
      w.array(CLIENT_HELP);
      return;
    default:
      throw unknownSubcommand(args[1]!, 'client');
  }
}

export const CONNECTION_COMMANDS = [
  spec(
    'ping',
    -1,
    ['fast'],
    NO_KEYS,
    connection('1.0.0', "Returns the server's liveliness response."),
    (ctx, args) => {
      if (args.length > 2) throw wrongArity('ping');
      if (ctx.client.protocol === 2 && ctx.pubsub.total > 0) {
        // Subscribed RESP2 mode: a reply shaped like a message, so clients can tell it apart
        // (Redis pingCommand).
        ctx.w.arrayHeader(2);
        ctx.w.bulk('pong');
        ctx.w.bulk(args.length === 2 ? args[1]! : '');
      } else if (args.length === 2) ctx.w.bulk(args[1]!);
      else ctx.w.pong();
    },
  ),
  spec(
    'echo',
    2,
    ['fast', 'loading', 'stale'],
    NO_KEYS,
    connection('1.0.0', 'Returns the given string.'),
    (ctx, args) => {
      ctx.w.bulk(args[1]!);
    },
  ),
  spec(
    'select',
    2,
    ['loading', 'stale', 'fast'],
    NO_KEYS,
    connection('1.0.0', 'Changes the selected database.'),
    (ctx, args) => {
      const index = parseInt64(args[1]!);
      if (index === undefined) throw new CommandError(ERR_NOT_INTEGER);
      if (index !== 0n) throw new CommandError('ERR DB index is out of range');
      ctx.w.ok();
    },
  ),
  spec(
    'quit',
    -1,
    ['no_auth', 'fast', 'allow_busy', 'noscript', 'loading', 'stale'],
    NO_KEYS,
    connection('1.0.0', 'Closes the connection.'),
    (ctx) => {
      ctx.w.ok();
      ctx.closeAfterReply();
    },
  ),
  spec(
    'reset',
    1,
    ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'allow_busy'],
    NO_KEYS,
    connection('6.2.0', 'Resets the connection.'),
    (ctx) => {
      ctx.resetConnection();
      ctx.w.simple('RESET');
    },
  ),
  spec(
    'auth',
    -2,
    ['no_auth', 'fast', 'loading', 'stale', 'noscript', 'allow_busy'],
    NO_KEYS,
    connection('1.0.0', 'Authenticates the connection.'),
    auth,
  ),
  spec(
    'hello',
    -1,
    ['no_auth', 'fast', 'loading', 'stale', 'noscript', 'allow_busy'],
    NO_KEYS,
    connection('6.0.0', 'Handshakes with the Redis server.'),
    hello,
  ),
  spec(
    'client',
    -2,
    // noscript: every CLIENT subcommand is noscript in Redis (its container has no flags).
    ['loading', 'stale', 'noscript'],
    NO_KEYS,
    connection('2.4.0', 'A container for client connection commands.'),
    client,
  ),
];
