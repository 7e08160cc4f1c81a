// Server configuration: every setting has a command-line flag, an environment variable
// (CAIRN_<NAME>) and a key in a JSON config file (--config FILE). Precedence: flag, then
// environment, then config file, then the default. docs/server.md lists them all.
import * as fs from 'node:fs';
import type { EngineName } from '../db/db.js';
import { DEFAULT_CACHE_BYTES } from '../storage/cask/cask-options.js';
import type { Durability } from '../storage/engine.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { LOG_LEVELS, type LogLevel } from './log-levels.js';

/** MAX_CLIENTS_DEFAULT: Redis's default maxclients. */
export const MAX_CLIENTS_DEFAULT = 10_000;
/**
 * SERVER_CACHE_BYTES_DEFAULT: servers keep the value cache on (the engine's default too):
 * measured with redis-benchmark (100k keys), GET -P 16 went from ~118k to ~206k requests/s.
 */
export const SERVER_CACHE_BYTES_DEFAULT = DEFAULT_CACHE_BYTES;

export interface ServerConfig {
  /** dir: the data directory. */
  readonly dir: string;
  /** addr: where the RESP server listens, HOST:PORT. */
  readonly addr: string;
  /** http: where the HTTP API listens, HOST:PORT; undefined for none. */
  readonly http: string | undefined;
  /** engine: undefined means the one recorded in `dir` (cask for a new directory). */
  readonly engine: EngineName | undefined;
  readonly sync: Durability;
  readonly requirepass: string | undefined;
  readonly maxclients: number;
  readonly logLevel: LogLevel;
  /** cacheBytes: the cask engine's value cache (see CaskOptions.cacheBytes); 0 turns it off. */
  readonly cacheBytes: number;
  /**
   * txnIdleMs: how long a RESP connection may hold an open TXN.BEGIN transaction or a WATCH
   * without sending a command (src/server/resp/limits.ts, TXN_IDLE_MS); 0 turns the limit off.
   */
  readonly txnIdleMs: number;
  /** name: this cluster member's name (cluster mode; docs/cluster.md). */
  readonly name?: string | undefined;
  /** listenPeer: where this member listens for its peers, HOST:PORT. */
  readonly listenPeer?: string | undefined;
  /** initialCluster: NAME=HOST:PORT,... the peer addresses of all members (first start). */
  readonly initialCluster?: string | undefined;
  readonly initialClusterState?: 'new' | 'existing' | undefined;
  readonly clusterToken?: string | undefined;
  /** requestTimeoutMs: how long a cluster request waits for a leader or an outcome. */
  readonly requestTimeoutMs?: number | undefined;
  /** snapshotCount: applied entries between a member's snapshots (then its log is compacted). */
  readonly snapshotCount?: number | undefined;
  /**
   * given: the settings a flag, the environment or the config file set (the rest are defaults).
   * A cluster member restarted without --addr or --http listens where it did before (member.json).
   */
  readonly given?: ReadonlySet<SettingName> | undefined;
}

/** SETTINGS: name (flag and config key), environment variable, and how to parse it. */
const SETTINGS = {
  dir: { env: 'CAIRN_DIR', parse: (v: string) => v },
  addr: { env: 'CAIRN_ADDR', parse: (v: string) => v },
  http: { env: 'CAIRN_HTTP', parse: (v: string) => (v === '' || v === 'off' ? undefined : v) },
  engine: { env: 'CAIRN_ENGINE', parse: parseEngine },
  sync: { env: 'CAIRN_SYNC', parse: parseSync },
  requirepass: { env: 'CAIRN_REQUIREPASS', parse: (v: string) => (v === '' ? undefined : v) },
  maxclients: { env: 'CAIRN_MAXCLIENTS', parse: parsePositiveInt },
  logLevel: { env: 'CAIRN_LOG_LEVEL', parse: parseLogLevel },
  cacheBytes: { env: 'CAIRN_CACHE_BYTES', parse: parseByteCount },
  txnIdleMs: { env: 'CAIRN_TXN_IDLE_MS', parse: parseMs },
  name: { env: 'CAIRN_NAME', parse: (v: string) => v },
  listenPeer: { env: 'CAIRN_LISTEN_PEER', parse: (v: string) => v },
  initialCluster: { env: 'CAIRN_INITIAL_CLUSTER', parse: (v: string) => v },
  initialClusterState: { env: 'CAIRN_INITIAL_CLUSTER_STATE', parse: parseClusterState },
  clusterToken: { env: 'CAIRN_CLUSTER_TOKEN', parse: parseToken },
  requestTimeoutMs: { env: 'CAIRN_REQUEST_TIMEOUT_MS', parse: parsePositiveInt },
  snapshotCount: { env: 'CAIRN_SNAPSHOT_COUNT', parse: parsePositiveInt },
} as const;

export type SettingName = keyof typeof SETTINGS;
export type RawSettings = Partial<Record<SettingName, string | undefined>>;

/**
 * resolveConfig merges flags, environment and the config file over `defaults`. `flags` holds
 * only flags the user gave; `configFile` comes from --config or CAIRN_CONFIG.
 */
export function resolveConfig(
  flags: RawSettings & { config?: string | undefined },
  env: NodeJS.ProcessEnv,
  defaults: ServerConfig,
): ServerConfig {
  const configPath = flags.config ?? env.CAIRN_CONFIG;
  const file = configPath === undefined ? {} : readConfigFile(configPath);
  const given = new Set<SettingName>();
  const out: Record<string, unknown> = { ...defaults, given };
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const setting = SETTINGS[name];
    const fromFile = stringOrUndefined(file[name], configPath, name);
    const raw = flags[name] ?? env[setting.env] ?? fromFile;
    if (raw === undefined) continue;
    given.add(name);
    try {
      out[name] = setting.parse(raw);
    } catch (err) {
      // Say which setting, and where its value came from: a flag, the environment or the file.
      const source =
        flags[name] !== undefined
          ? `--${flagName(name)}`
          : env[setting.env] !== undefined
            ? `environment variable ${setting.env}`
            : `'${name}' in config file ${configPath}`;
      throw new InvalidArgumentError(`${source}: ${(err as Error).message}`);
    }
  }
  return out as unknown as ServerConfig;
}

/** hasMemberFlags: the settings name a cluster member (--name, --listen-peer or --initial-cluster). */
export function hasMemberFlags(config: ServerConfig): boolean {
  return config.initialCluster !== undefined || config.listenPeer !== undefined || config.name !== undefined;
}

/** flagName: a setting's command-line flag (camelCase to kebab-case: logLevel, --log-level). */
export function flagName(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(`config file ${file} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError(`config file ${file} must hold a JSON object`);
  }
  const unknown = Object.keys(parsed).filter((k) => !(k in SETTINGS));
  if (unknown.length > 0) {
    throw new InvalidArgumentError(
      `config file ${file}: unknown setting(s) ${unknown.join(', ')} (known: ${Object.keys(SETTINGS).join(', ')})`,
    );
  }
  return parsed as Record<string, unknown>;
}

function stringOrUndefined(value: unknown, file: string | undefined, name: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new InvalidArgumentError(`config file ${file}: '${name}' must be a string or number`);
}

export function parseEngine(v: string): EngineName {
  // 'kvs' is the talent-plan course's name for our own engine.
  if (v === 'cask' || v === 'kvs') return 'cask';
  if (v === 'lmdb') return 'lmdb';
  throw new InvalidArgumentError(`unknown engine '${v}' (expected kvs, cask or lmdb)`);
}

function parseSync(v: string): Durability {
  if (v === 'always' || v === 'interval' || v === 'never') return v;
  throw new InvalidArgumentError(`unknown sync mode '${v}' (expected always, interval or never)`);
}

/** DECIMAL: digits only: `Number` would also take ' 12 ', '0x10', '1e3' and ''. */
const DECIMAL = /^\d+$/;

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isSafeInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got '${v}'`);
  return n;
}

function parseMs(v: string): number {
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError(`expected milliseconds (an integer >= 0), got '${v}'`);
  return n;
}

function parseByteCount(v: string): number {
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isSafeInteger(n))
    throw new InvalidArgumentError(`expected a byte count (an integer >= 0), got '${v}'`);
  return n;
}

function parseClusterState(v: string): 'new' | 'existing' {
  if (v === 'new' || v === 'existing') return v;
  throw new InvalidArgumentError(`expected new or existing, got '${v}'`);
}

function parseToken(v: string): string {
  if (v === '' || v.length > 256)
    throw new InvalidArgumentError('expected a non-empty token of at most 256 characters');
  return v;
}

function parseLogLevel(v: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(v)) return v as LogLevel;
  throw new InvalidArgumentError(`unknown log level '${v}' (expected ${LOG_LEVELS.join(', ')})`);
}
