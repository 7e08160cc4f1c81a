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
import type { ClientState, CommandContext } from '../types.js';
import { is, lower, parseInt64 } from './args.js';
import { NO_KEYS, spec } from './spec.js';

/** REDIS_COMPAT_VERSION: the Redis version whose commands we follow (clients gate features on it). */
export const REDIS_COMPAT_VERSION = '7.2.0';

const connection = (since: string, summary: string) => ({ group: 'connection', since, summary });

/** checkPassword compares in constant time (for equal lengths), so timing reveals little. */
function passwordOk(ctx: CommandContext, user: string, password: Buffer): boolean {
  const expected = ctx.server.config.requirePass;
  if (expected === undefined || user !== 'default') return false;
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
  if (!passwordOk(ctx, user, password)) throw new CommandError(ERR_WRONGPASS);
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
    if (!passwordOk(ctx, authenticate.user, authenticate.password)) {
      // Without a configured password Redis's default user is "nopass": any password works.
      if (ctx.server.config.requirePass !== undefined || authenticate.user !== 'default')
        throw new CommandError(ERR_WRONGPASS);
    }
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

/**
 * ERR_TRACKING_UNSUPPORTED: CLIENT TRACKING ON's refusal. Tracking promises the client an
 * `invalidate` message whenever a key it read changes; Cairn sends none (writes reach a key
 * through transactions, scripts, the expiry cycle, FLUSHDB and, in a cluster, other members'
 * log entries, and no invalidation is wired to all of them), so a client-side cache enabled on
 * an OK would serve stale values forever. Refusing makes clients (node-redis's clientSideCache)
 * fail at connect instead.
 */
export const ERR_TRACKING_UNSUPPORTED =
  'ERR CLIENT TRACKING ON is not supported: Cairn sends no invalidation messages, so a client-side cache would serve stale values';

/** ERR_CACHING_NOT_TRACKING: Redis's CLIENT CACHING error outside OPTIN/OPTOUT tracking (always, here). */
const ERR_CACHING_NOT_TRACKING =
  'ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled';

/** TRACKING_FLAGS, TRACKING_OPTIONS_WITH_VALUE: CLIENT TRACKING's options (Redis 7). */
const TRACKING_FLAGS = new Set(['bcast', 'optin', 'optout', 'noloop']);
const TRACKING_OPTIONS_WITH_VALUE = new Set(['redirect', 'prefix']);

/** tracking: CLIENT TRACKING: OFF (with any well-formed options) is OK, tracking stays off; ON is refused. */
function tracking(ctx: CommandContext, args: Buffer[]): void {
  const mode = lower(args[2]!);
  if (mode !== 'on' && mode !== 'off') throw new CommandError(ERR_SYNTAX);
  for (let i = 3; i < args.length; i++) {
    const opt = lower(args[i]!);
    if (TRACKING_OPTIONS_WITH_VALUE.has(opt) && i + 1 < args.length) i++;
    else if (!TRACKING_FLAGS.has(opt)) throw new CommandError(ERR_SYNTAX);
  }
  if (mode === 'on') throw new CommandError(ERR_TRACKING_UNSUPPORTED);
  ctx.w.ok();
}

/** trackingInfo: CLIENT TRACKINGINFO of a connection that never tracks (Redis's reply shape). */
function trackingInfo(w: ReplyWriter): void {
  w.mapHeader(3);
  w.bulk('flags');
  w.setHeader(1);
  w.bulk('off');
  w.bulk('redirect');
  w.integer(-1);
  w.bulk('prefixes');
  w.arrayHeader(0);
}

/** clientLine is one line of CLIENT LIST / CLIENT INFO, in Redis's field order. */
export function clientLine(c: ClientState, now: number, current: string): string {
  const age = Math.floor((now - c.createdAt) / 1000);
  const idle = Math.floor((now - c.lastCommandAt) / 1000);
  return (
    `id=${c.id} addr=${c.addr} laddr=${c.laddr} fd=-1 name=${c.name} age=${age} idle=${idle} ` +
    `flags=${c.sub + c.psub + c.ssub > 0 ? 'P' : 'N'} db=0 sub=${c.sub} psub=${c.psub} ssub=${c.ssub} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 ` +
    `events=r cmd=${current} user=default redir=-1 resp=${c.protocol} lib-name=${c.libName} lib-ver=${c.libVer}\n`
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
  'LIST',
  '    Return information about client connections.',
  'SETINFO <option> <value>',
  '    Set client meta attr. Options are: LIB-NAME, LIB-VER.',
  'SETNAME <name>',
  '    Assign the name <name> to the current connection.',
  'TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]',
  '    [OPTIN] [OPTOUT] [NOLOOP]',
  '    Control server assisted client side caching (only OFF: see docs/resp-commands.md).',
  'TRACKINGINFO',
  '    Report tracking status for the current connection.',
  'GETREDIR',
  '    Return the client ID we are redirecting to when tracking is enabled.',
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
      let text = '';
      const now = ctx.server.clock.nowMs();
      for (const c of ctx.server.clients())
        text += clientLine(c, now, c === ctx.client ? 'client|list' : c.lastCommand);
      w.verbatim('txt', text);
      return;
    }
    case 'tracking':
      if (args.length < 3) throw wrongArity('client|tracking');
      tracking(ctx, args);
      return;
    case 'caching':
      arity(3);
      throw new CommandError(ERR_CACHING_NOT_TRACKING);
    case 'getredir':
      arity(2);
      // -1: tracking is off (Redis's reply without tracking).
      w.integer(-1);
      return;
    case 'trackinginfo':
      arity(2);
      trackingInfo(w);
      return;
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
  spec('echo', 2, ['fast'], NO_KEYS, connection('1.0.0', 'Returns the given string.'), (ctx, args) => {
    ctx.w.bulk(args[1]!);
  }),
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
    ['no_auth', 'fast', 'allow_busy'],
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
    ['no_auth', 'fast', 'loading', 'stale'],
    NO_KEYS,
    connection('1.0.0', 'Authenticates the connection.'),
    auth,
  ),
  spec(
    'hello',
    -1,
    ['no_auth', 'fast', 'loading', 'stale'],
    NO_KEYS,
    connection('6.0.0', 'Handshakes with the Redis server.'),
    hello,
  ),
  spec(
    'client',
    -2,
    ['loading', 'stale'],
    NO_KEYS,
    connection('2.4.0', 'A container for client connection commands.'),
    client,
  ),
];
