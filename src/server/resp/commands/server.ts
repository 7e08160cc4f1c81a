// Server commands: INFO, CONFIG, COMMAND, SHUTDOWN, TIME, MEMORY.
import * as os from 'node:os';
import { BULK_BYTES_MAX, type ReplyWriter } from '../../../protocol/resp/index.js';
import type { CommandSpec } from '../command-table.js';
import { CommandError, ERR_SYNTAX, unknownSubcommand, wrongArity } from '../errors.js';
import { globMatch } from '../glob.js';
import { ERR_NOTIFY_FLAGS, formatNotifyFlags, parseNotifyFlags } from '../notifications.js';
import type { CommandContext, Held } from '../types.js';
import { aclCategories } from './acl-categories.js';
import { andThen, held, int64Arg, lower, type MaybePromise, parseInt64 } from './args.js';
import { casKeys } from './cas.js';
import { replicationInfo } from './cluster.js';
import { REDIS_COMPAT_VERSION } from './connection.js';
import { NO_KEYS, spec } from './spec.js';

const server = (since: string, summary: string) => ({ group: 'server', since, summary });

const APPENDFSYNC = { always: 'always', interval: 'everysec', never: 'no' } as const;
/**
 * INFO's sections in Redis 7's order (server.c genRedisInfoString): a reply lists the sections
 * asked for in this order, each once, whatever the order and repetitions of the request. Redis's
 * errorstats and latencystats have no counterpart here.
 */
const SECTION_ORDER = [
  'server',
  'clients',
  'memory',
  'persistence',
  'stats',
  'replication',
  'cpu',
  'modules',
  'commandstats',
  'cluster',
  'keyspace',
];
const DEFAULT_SECTIONS = SECTION_ORDER.filter((s) => s !== 'commandstats');

/** US_PER_S: process.cpuUsage() counts microseconds; INFO cpu shows seconds. */
const US_PER_S = 1e6;

function infoSection(ctx: CommandContext, section: string): string[] | undefined {
  const s = ctx.server;
  const snap = s.metrics.snapshot();
  const uptime = Math.floor((s.clock.nowMs() - s.startedAt) / 1000);
  const stats = s.db.stats();
  switch (section) {
    case 'server':
      return [
        `redis_version:${REDIS_COMPAT_VERSION}`,
        `cairn_version:${s.version}`,
        'redis_mode:standalone',
        `os:${os.type()} ${os.release()} ${os.arch()}`,
        'arch_bits:64',
        'multiplexing_api:libuv',
        `process_id:${process.pid}`,
        `run_id:${s.stats.runId}`,
        `tcp_port:${s.port()}`,
        `server_time_usec:${Math.floor(s.clock.nowMs() * 1000)}`,
        `uptime_in_seconds:${uptime}`,
        `uptime_in_days:${Math.floor(uptime / 86400)}`,
        `executable:${process.execPath}`,
      ];
    case 'clients':
      return [
        `connected_clients:${snap.connectedClients.resp}`,
        `maxclients:${s.config.maxClients}`,
        'blocked_clients:0',
        `tracking_clients:${s.tracking.trackingClients}`,
      ];
    case 'memory': {
      const mem = process.memoryUsage();
      // used_memory: what the process allocated for data (V8's heap in use plus the Buffers
      // outside it, which hold most values), Redis's "allocated by the allocator".
      const used = mem.heapUsed + mem.external;
      return [
        `used_memory:${used}`,
        `used_memory_human:${bytesHuman(used)}`,
        `used_memory_rss:${mem.rss}`,
        `used_memory_rss_human:${bytesHuman(mem.rss)}`,
        // No memory limit: Cairn keeps values on disk and never evicts.
        'maxmemory:0',
        `maxmemory_human:${bytesHuman(0)}`,
        'maxmemory_policy:noeviction',
        'mem_allocator:v8',
      ];
    }
    case 'persistence':
      return [
        'loading:0',
        'async_loading:0',
        'rdb_changes_since_last_save:0',
        'rdb_bgsave_in_progress:0',
        'aof_enabled:1',
        'aof_rewrite_in_progress:0',
        `aof_fsync:${APPENDFSYNC[s.durability]}`,
        `cairn_engine:${stats.engine}`,
        `cairn_disk_bytes:${snap.diskBytes ?? stats.diskBytes}`,
        `cairn_fsyncs:${snap.fsyncs ?? stats.fsyncs}`,
        `cairn_compactions:${snap.compactions ?? stats.compactions}`,
      ];
    case 'stats':
      return [
        `total_connections_received:${snap.totalConnections.resp}`,
        `total_commands_processed:${snap.commandsProcessed}`,
        `instantaneous_ops_per_sec:${s.stats.opsPerSec()}`,
        `rejected_connections:${snap.rejectedConnections}`,
        `expired_keys:${stats.expiredKeys}`,
        'evicted_keys:0',
        `evicted_clients:${snap.evictedClients.resp}`,
        `keyspace_hits:${s.stats.keyspaceHits}`,
        `keyspace_misses:${s.stats.keyspaceMisses}`,
        `pubsub_channels:${s.pubsub.numchannels(false)}`,
        `pubsub_patterns:${s.pubsub.numpat()}`,
        `pubsubshard_channels:${s.pubsub.numchannels(true)}`,
        `tracking_total_keys:${s.tracking.size}`,
        `tracking_total_prefixes:${s.tracking.prefixCount}`,
      ];
    case 'replication':
      return replicationInfo(ctx);
    case 'cpu': {
      // The whole process's CPU time (Redis adds its main thread's alone; Node does not give it).
      const cpu = process.cpuUsage();
      return [
        `used_cpu_sys:${(cpu.system / US_PER_S).toFixed(6)}`,
        `used_cpu_user:${(cpu.user / US_PER_S).toFixed(6)}`,
        'used_cpu_sys_children:0.000000',
        'used_cpu_user_children:0.000000',
      ];
    }
    case 'modules':
      return [];
    case 'cluster':
      // 1 on a cluster member: it answers CLUSTER SLOTS and friends (cluster-protocol.ts).
      return [`cluster_enabled:${s.cluster === undefined ? 0 : 1}`];
    case 'keyspace': {
      const keys = snap.keys ?? stats.keys;
      // avg_ttl: Redis samples it; ours is the exact mean over the keys with an expiry.
      return keys === 0 ? [] : [`db0:keys=${keys},expires=${stats.expires},avg_ttl=${stats.avgTtlMs}`];
    }
    case 'commandstats':
      return snap.commands
        .filter((c) => c.protocol === 'resp' && c.calls > 0)
        .map(
          (c) =>
            `cmdstat_${c.command}:calls=${c.calls},usec=${c.usec},usec_per_call=${(c.usec / c.calls).toFixed(2)},rejected_calls=0,failed_calls=${c.failed}`,
        );
    default:
      return undefined;
  }
}

/** HUMAN_UNITS: Redis's bytesToHuman units, each 1024 times the one before. */
const HUMAN_UNITS = ['B', 'K', 'M', 'G', 'T', 'P'] as const;
const KIB = 1024;

/** bytesHuman: Redis's bytesToHuman: "0B", "1023B", then two decimals and K, M, G, T, P. */
export function bytesHuman(bytes: number): string {
  if (bytes < KIB) return `${bytes}B`;
  let value = bytes;
  let unit = 0;
  while (value >= KIB && unit < HUMAN_UNITS.length - 1) {
    value /= KIB;
    unit++;
  }
  return `${value.toFixed(2)}${HUMAN_UNITS[unit]}`;
}

const TITLES: Record<string, string> = { commandstats: 'Commandstats', cpu: 'CPU' };

function info(ctx: CommandContext, args: Buffer[]): void {
  // As Redis 7 (genInfoSectionDict): no argument or "default" is the default sections, "all"
  // and "everything" add commandstats, other names add themselves; unknown names add nothing.
  const asked = new Set(args.length > 1 ? args.slice(1).map(lower) : ['default']);
  const everything = asked.has('all') || asked.has('everything');
  const wanted = (section: string): boolean =>
    asked.has(section) || everything || (asked.has('default') && DEFAULT_SECTIONS.includes(section));
  let text = '';
  for (const section of SECTION_ORDER) {
    if (!wanted(section)) continue;
    const lines = infoSection(ctx, section);
    if (lines === undefined) continue;
    if (text !== '') text += '\r\n';
    const title = TITLES[section] ?? section[0]!.toUpperCase() + section.slice(1);
    text += `# ${title}\r\n`;
    for (const line of lines) text += `${line}\r\n`;
  }
  ctx.w.verbatim('txt', text);
}

/** configValues: every parameter CONFIG GET knows, with its current value. */
function configValues(ctx: CommandContext): [string, string][] {
  const s = ctx.server;
  return [
    ['save', ''],
    ['appendonly', 'yes'],
    ['appendfsync', APPENDFSYNC[s.durability]],
    ['requirepass', s.config.requirePass ?? ''],
    ['maxclients', String(s.config.maxClients)],
    ['databases', '1'],
    ['port', String(s.port())],
    ['timeout', '0'],
    ['maxmemory', '0'],
    // Cairn keeps values on disk and never evicts (INFO memory says the same).
    ['maxmemory-policy', 'noeviction'],
    // A cluster member answers CLUSTER SLOTS and friends (cluster-protocol.ts), as INFO cluster says.
    ['cluster-enabled', s.cluster === undefined ? 'no' : 'yes'],
    ['proto-max-bulk-len', String(BULK_BYTES_MAX)],
    ['client-query-buffer-limit', String(s.limits.queryBufferBytes)],
    ['notify-keyspace-events', formatNotifyFlags(s.notifier.flags)],
    [
      'client-output-buffer-limit',
      `normal 0 0 0 slave 0 0 0 pubsub ${s.limits.pubsubOutputHardBytes} ${s.limits.pubsubOutputSoftBytes} ${Math.floor(s.limits.pubsubOutputSoftMs / 1000)}`,
    ],
    ['dir', s.db.dir],
  ];
}

/** MAX_CLIENTS_MAX: the most clients CONFIG SET maxclients takes. */
const MAX_CLIENTS_MAX = 1_000_000;

/** CONFIG_HELP: CONFIG HELP's lines (Redis's, less what Cairn does not do). */
const CONFIG_HELP = [
  'CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GET <pattern>',
  '    Return parameters matching the glob-like <pattern> and their values.',
  'SET <directive> <value>',
  '    Set the configuration <directive> to <value> (requirepass, maxclients, notify-keyspace-events).',
  'RESETSTAT',
  '    Reset statistics reported by the INFO command.',
  'HELP',
  '    Print this help.',
];

/** configSetFailed: Redis's reply for a CONFIG SET parameter it refuses. */
function configSetFailed(name: string, why: string): CommandError {
  return new CommandError(`ERR CONFIG SET failed (possibly related to argument '${name}') - ${why}`);
}

function config(ctx: CommandContext, args: Buffer[]): void {
  const sub = lower(args[1]!);
  const w: ReplyWriter = ctx.w;
  if (sub === 'get') {
    if (args.length < 3) throw wrongArity('config|get');
    // As Redis 7 (config.c configGetCommand): a name without glob characters is looked up
    // without case and answered under the name as given; a pattern matches (without case) and
    // answers under the parameters' names; each parameter once, under its first match.
    const known = configValues(ctx);
    const matches = new Map<string, [string, string]>();
    for (const arg of args.slice(2)) {
      const pattern = lower(arg);
      if (!/[[*?]/.test(pattern)) {
        const found = known.find(([name]) => name === pattern);
        if (found !== undefined && !matches.has(pattern)) matches.set(pattern, [arg.toString(), found[1]]);
        continue;
      }
      for (const [name, value] of known) {
        if (!matches.has(name) && globMatch(Buffer.from(pattern), Buffer.from(name)))
          matches.set(name, [name, value]);
      }
    }
    w.mapHeader(matches.size);
    for (const [name, value] of matches.values()) {
      w.bulk(name);
      w.bulk(value);
    }
  } else if (sub === 'set') {
    if (args.length < 4 || args.length % 2 !== 0) throw wrongArity('config|set');
    const changes: (() => void)[] = [];
    const seen = new Set<string>();
    for (let i = 2; i < args.length; i += 2) {
      const name = lower(args[i]!);
      const value = args[i + 1]!;
      if (seen.has(name)) throw configSetFailed(name, 'duplicate parameter');
      seen.add(name);
      if (name === 'requirepass') {
        const pass = value.toString();
        changes.push(() => (ctx.server.config.requirePass = pass === '' ? undefined : pass));
      } else if (name === 'maxclients') {
        const n = parseInt64(value);
        if (n === undefined) throw configSetFailed(name, "argument couldn't be parsed into an integer");
        if (n < 1n || n > BigInt(MAX_CLIENTS_MAX)) {
          throw configSetFailed(name, `argument must be between 1 and ${MAX_CLIENTS_MAX} inclusive`);
        }
        changes.push(() => (ctx.server.config.maxClients = Number(n)));
      } else if (name === 'notify-keyspace-events') {
        const flags = parseNotifyFlags(value.toString('latin1'));
        if (flags === undefined) throw configSetFailed(name, ERR_NOTIFY_FLAGS);
        changes.push(() => (ctx.server.notifier.flags = flags));
      } else {
        throw new CommandError(
          `ERR Unknown option or number of arguments for CONFIG SET - '${args[i]!.toString('latin1').slice(0, 128)}'`,
        );
      }
    }
    // All or nothing, as Redis 7: apply only after every parameter was accepted.
    for (const change of changes) change();
    w.ok();
  } else if (sub === 'resetstat') {
    if (args.length !== 2) throw wrongArity('config|resetstat');
    w.ok();
  } else if (sub === 'rewrite') {
    if (args.length !== 2) throw wrongArity('config|rewrite');
    throw new CommandError('ERR The server is running without a config file');
  } else if (sub === 'help') {
    if (args.length !== 2) throw wrongArity('config|help');
    w.array(CONFIG_HELP);
  } else {
    throw unknownSubcommand(args[1]!, 'config');
  }
}

function writeInfo(w: ReplyWriter, c: CommandSpec): void {
  w.arrayHeader(10);
  w.bulk(c.name);
  w.integer(c.arity);
  w.setHeader(c.flags.length);
  for (const f of c.flags) w.simple(f);
  w.integer(c.firstKey);
  w.integer(c.lastKey);
  w.integer(c.step);
  const categories = aclCategories(c);
  w.setHeader(categories.length);
  for (const category of categories) w.simple(`@${category}`);
  w.arrayHeader(0);
  w.arrayHeader(0);
  w.arrayHeader(0);
}

function writeDocs(w: ReplyWriter, c: CommandSpec): void {
  w.mapHeader(3);
  w.bulk('summary');
  w.bulk(c.summary);
  w.bulk('since');
  w.bulk(c.since);
  w.bulk('group');
  w.bulk(c.group);
}

/**
 * commandListFilter: COMMAND LIST's [FILTERBY MODULE name | ACLCAT category | PATTERN pattern],
 * as Redis 7 (the pattern matches without case; ACL categories are Redis's, acl-categories.ts,
 * as COMMAND INFO shows; no modules). Anything else: a syntax error.
 */
function commandListFilter(args: Buffer[]): (c: CommandSpec) => boolean {
  if (args.length === 2) return () => true;
  if (args.length !== 5 || lower(args[2]!) !== 'filterby') throw new CommandError(ERR_SYNTAX);
  const by = lower(args[3]!);
  const value = lower(args[4]!);
  if (by === 'module') return () => false;
  if (by === 'aclcat') return (c) => aclCategories(c).includes(value);
  if (by === 'pattern') {
    const pattern = Buffer.from(value, 'latin1');
    return (c) => globMatch(pattern, Buffer.from(c.name, 'latin1'));
  }
  throw new CommandError(ERR_SYNTAX);
}

/** COMMAND_HELP: COMMAND HELP's lines (Redis's, less GETKEYSANDFLAGS: Cairn keeps no key specs). */
const COMMAND_HELP = [
  'COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  '(no subcommand)',
  '    Return details about all Redis commands.',
  'COUNT',
  '    Return the total number of commands in this Redis server.',
  'LIST',
  '    Return a list of all commands in this Redis server.',
  'INFO [<command-name> ...]',
  '    Return details about multiple Redis commands.',
  '    If no command names are given, documentation details for all',
  '    commands are returned.',
  'DOCS [<command-name> ...]',
  '    Return documentation details about multiple Redis commands.',
  '    If no command names are given, documentation details for all',
  '    commands are returned.',
  'GETKEYS <full-command>',
  '    Return the keys from a full Redis command.',
  'HELP',
  '    Prints this help.',
];

/** NUMKEYS_COMMANDS: commands whose third argument counts the keys that follow it. */
const NUMKEYS_COMMANDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro']);

/** KeyPositions: where a command's keys lie (CommandSpec's firstKey, lastKey, step). */
type KeyPositions = Pick<CommandSpec, 'name' | 'arity' | 'flags' | 'firstKey' | 'lastKey' | 'step'>;

/** MEMORY_USAGE: MEMORY USAGE's own positions (the table has no entries for subcommands). */
const MEMORY_USAGE: KeyPositions = {
  name: 'memory|usage',
  arity: -3,
  flags: [],
  firstKey: 2,
  lastKey: 2,
  step: 1,
};

/**
 * getKeys: COMMAND GETKEYS <command> <arg>..., Redis 7's getKeysSubcommandImpl: the keys of the
 * call by the command's key positions (EVAL's numkeys, TXN.CAS's grammar), with Redis's errors.
 * A bad EVAL numkeys gives no keys, as Redis (EVAL has no mandatory keys).
 */
function getKeys(ctx: CommandContext, call: Buffer[]): void {
  let spec: KeyPositions | undefined = ctx.server.commands.lookup(call[0]!);
  if (spec?.name === 'memory') {
    const sub = lower(call[1]!);
    spec = sub === 'usage' ? MEMORY_USAGE : sub === 'help' ? { ...spec, firstKey: 0 } : undefined;
  }
  if (spec === undefined) throw new CommandError('ERR Invalid command specified');
  if (spec.firstKey <= 0 && !spec.flags.includes('movablekeys'))
    throw new CommandError('ERR The command has no key arguments');
  if (spec.arity >= 0 ? call.length !== spec.arity : call.length < -spec.arity)
    throw new CommandError('ERR Invalid number of arguments specified for command');
  let keys: Buffer[] = [];
  if (NUMKEYS_COMMANDS.has(spec.name)) {
    const n = parseInt64(call[2]!);
    if (n !== undefined && n >= 0n && n <= BigInt(call.length - 3)) keys = call.slice(3, 3 + Number(n));
  } else if (spec.name === 'txn.cas') {
    const found = casKeys(call);
    if (found === undefined) throw new CommandError('ERR Invalid arguments specified for command');
    keys = found;
  } else {
    const last = spec.lastKey < 0 ? call.length + spec.lastKey : Math.min(spec.lastKey, call.length - 1);
    for (let i = spec.firstKey; i <= last; i += Math.max(1, spec.step)) keys.push(call[i]!);
  }
  ctx.w.bulkArray(keys);
}

function command(ctx: CommandContext, args: Buffer[]): void {
  const table = ctx.server.commands;
  const w = ctx.w;
  if (args.length === 1) {
    w.arrayHeader(table.size);
    for (const c of table.all()) writeInfo(w, c);
    return;
  }
  const sub = lower(args[1]!);
  const names = args.slice(2).map(lower);
  if (sub === 'count') {
    if (args.length !== 2) throw wrongArity('command|count');
    w.integer(table.size);
  } else if (sub === 'info') {
    const specs = names.length === 0 ? [...table.all()] : names.map((n) => table.get(n));
    w.arrayHeader(specs.length);
    for (const c of specs) {
      // An unknown name: a null (Redis's addReplyNull: `$-1` in RESP2), not a null array.
      if (c === undefined) w.null();
      else writeInfo(w, c);
    }
  } else if (sub === 'docs') {
    const specs = (names.length === 0 ? [...table.all()] : names.map((n) => table.get(n))).filter(
      (c): c is CommandSpec => c !== undefined,
    );
    w.mapHeader(specs.length);
    for (const c of specs) {
      w.bulk(c.name);
      writeDocs(w, c);
    }
  } else if (sub === 'list') {
    w.bulkArray([...table.all()].filter(commandListFilter(args)).map((c) => c.name));
  } else if (sub === 'getkeys') {
    if (args.length < 4) throw wrongArity('command|getkeys');
    getKeys(ctx, args.slice(2));
  } else if (sub === 'help') {
    if (args.length !== 2) throw wrongArity('command|help');
    w.array(COMMAND_HELP);
  } else {
    throw unknownSubcommand(args[1]!, 'command');
  }
}

function shutdown(ctx: CommandContext, args: Buffer[]): void {
  const options = new Set<string>();
  for (const a of args.slice(1)) {
    const option = lower(a);
    if (!['nosave', 'save', 'now', 'force', 'abort'].includes(option)) throw new CommandError(ERR_SYNTAX);
    options.add(option);
  }
  // As Redis: ABORT takes no other option, and SAVE and NOSAVE contradict each other.
  if ((options.has('abort') && options.size > 1) || (options.has('save') && options.has('nosave')))
    throw new CommandError(ERR_SYNTAX);
  if (options.has('abort')) throw new CommandError('ERR No shutdown in progress.');
  if (!ctx.server.shutdown()) throw new CommandError('ERR Errors trying to SHUTDOWN. Check logs.');
  // As Redis: no reply; the connection closes with the server.
  ctx.closeAfterReply();
}

/** US_PER_MS, MS_PER_S: TIME's unit conversions. */
const US_PER_MS = 1000;
const MS_PER_S = 1000;

/**
 * time: Redis's TIME (seconds and microseconds, as two bulk strings) from the server's clock.
 * The clock counts milliseconds (fractions kept when it has them), so the microseconds end in
 * 000 with the system clock.
 */
function time(ctx: CommandContext): void {
  const ms = ctx.server.clock.nowMs();
  const seconds = Math.floor(ms / MS_PER_S);
  const micros = Math.floor((ms - seconds * MS_PER_S) * US_PER_MS);
  ctx.w.bulkArray([String(seconds), String(micros)]);
}

/**
 * ENTRY_OVERHEAD_BYTES: what MEMORY USAGE adds to a key's and value's bytes for the entry around
 * them: the in-memory index entry and the on-disk record header. An estimate (as Redis's own
 * MEMORY USAGE is), so that a key of a few bytes does not report a few bytes.
 */
export const ENTRY_OVERHEAD_BYTES = 64;

/** MEMORY_HELP: MEMORY HELP's lines (Redis's, less what Cairn does not do). */
const MEMORY_HELP = [
  'MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'USAGE <key> [SAMPLES <count>]',
  '    Return memory in bytes used by <key> and its value. Nested values are',
  '    sampled up to <count> times (default: 5, 0 means sample all).',
  'HELP',
  '    Print this help.',
];

function memory(ctx: CommandContext, args: Buffer[]): MaybePromise<Held> | undefined {
  const sub = lower(args[1]!);
  if (sub === 'usage') {
    if (args.length < 3) throw wrongArity('memory|usage');
    // SAMPLES is parsed and checked as Redis does; strings have nothing nested to sample.
    for (let i = 3; i < args.length; i++) {
      if (lower(args[i]!) === 'samples' && i + 1 < args.length) {
        if (int64Arg(args[++i]!) < 0n) throw new CommandError(ERR_SYNTAX);
      } else throw new CommandError(ERR_SYNTAX);
    }
    const key = args[2]!;
    return andThen(ctx.store.readLatest(key), (latest) =>
      held(latest.durable, (w) =>
        latest.value === undefined
          ? w.bulk(null)
          : w.integer(key.length + latest.value.length + ENTRY_OVERHEAD_BYTES),
      ),
    );
  }
  if (sub === 'help') {
    if (args.length !== 2) throw wrongArity('memory|help');
    ctx.w.array(MEMORY_HELP);
    return undefined;
  }
  throw unknownSubcommand(args[1]!, 'memory');
}

export const SERVER_COMMANDS = [
  spec(
    'info',
    -1,
    ['loading', 'stale'],
    NO_KEYS,
    server('1.0.0', 'Returns information and statistics about the server.'),
    info,
  ),
  spec(
    'config',
    -2,
    ['admin', 'noscript', 'loading', 'stale'],
    NO_KEYS,
    server('2.0.0', 'A container for server configuration commands.'),
    config,
  ),
  spec(
    'command',
    -1,
    ['loading', 'stale'],
    NO_KEYS,
    server('2.8.13', 'Returns detailed information about all commands.'),
    command,
  ),
  spec(
    'shutdown',
    -1,
    ['admin', 'noscript', 'loading', 'stale', 'no_multi', 'allow_busy'],
    NO_KEYS,
    server('1.0.0', 'Synchronously saves the database(s) to disk and shuts down the Redis server.'),
    shutdown,
  ),
  spec('time', 1, ['loading', 'stale', 'fast'], NO_KEYS, server('2.6.0', 'Returns the server time.'), time),
  // readonly: MEMORY USAGE reads a key, so in a cluster it runs on the leader like other reads.
  spec(
    'memory',
    -2,
    ['readonly'],
    NO_KEYS,
    server('4.0.0', 'A container for memory diagnostics commands.'),
    memory,
  ),
];
