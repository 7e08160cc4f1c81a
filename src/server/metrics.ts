// Metrics: the server's counters and gauges, in one prom-client Registry (never the global one,
// so several servers in one process, and tests, do not share numbers).
//
// One source of truth: command counts, connection counts and durations live in plain numbers
// that the hot paths bump; the Prometheus counters and gauges copy them at scrape time through
// collect() callbacks, and snapshot() (what RESP `INFO` prints) reads the same numbers. So INFO
// and /metrics agree by construction, and a RESP command costs a Map lookup and a few additions
// (~20 ns; prom-client's own Histogram child re-validates and re-hashes its labels on every
// observation, ~400 ns, so the duration histogram is ours too: see CommandHistogram).

import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  type Metric,
  type MetricValueWithName,
  Registry,
} from 'prom-client';
import type { Db } from '../db/db.js';
import { type Clock, systemClock } from '../io/clock.js';
import type { MvccStats } from '../txn/mvcc.js';

export type Protocol = 'resp' | 'http';
export const PROTOCOLS: readonly Protocol[] = ['resp', 'http'];

/** METRIC_PREFIX: every metric this module defines, and the default process metrics, start with it. */
export const METRIC_PREFIX = 'cairn_';
/** US_PER_SECOND: commit timestamps count microseconds. */
const US_PER_SECOND = 1_000_000;

/**
 * COMMAND_DURATION_BUCKETS_SECONDS: a cached GET answers in ~10 µs, an fsynced SET in ~0.1-10 ms,
 * a large batch or scan page in up to a second; roughly 1-2.5-5 steps over that range.
 */
export const COMMAND_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
];

/** UNKNOWN_COMMAND: the label for any command name outside the known set (label values stay bounded). */
export const UNKNOWN_COMMAND = 'unknown';

/**
 * COMMAND_ALIASES_MAX: how many distinct spellings ('GET', 'get', 'Get', ...) the lookup cache
 * remembers per protocol. A client can send endless spellings; past this, lookups lower-case
 * every time instead of growing the cache.
 */
export const COMMAND_ALIASES_MAX = 4096;

/** HTTP_COMMANDS: the command names the HTTP API reports (one per route). */
export const HTTP_COMMANDS = [
  'kv.get',
  'kv.put',
  'kv.delete',
  'kv.list',
  'batch',
  'txn',
  'healthz',
  'metrics',
  'openapi',
] as const;
export type HttpCommand = (typeof HTTP_COMMANDS)[number];

/** RESP_COMMANDS: the RESP commands the server implements (lower case, as Redis's INFO prints them). */
export const RESP_COMMANDS = [
  'ping',
  'echo',
  'hello',
  'auth',
  'client',
  'command',
  'info',
  'config',
  'select',
  'dbsize',
  'flushdb',
  'flushall',
  'get',
  'set',
  'getset',
  'setnx',
  'setex',
  'psetex',
  'del',
  'unlink',
  'exists',
  'mget',
  'mset',
  'msetnx',
  'incr',
  'decr',
  'incrby',
  'decrby',
  'append',
  'strlen',
  'getrange',
  'scan',
  'keys',
  'type',
  'quit',
  'shutdown',
  'multi',
  'exec',
  'discard',
  'watch',
  'unwatch',
  'txn.begin',
  'txn.commit',
  'txn.rollback',
  'txn.status',
  'txn.cas',
  'ttl',
  'pttl',
  'expire',
  'pexpire',
  'persist',
] as const;

export interface MetricsOptions {
  /** commands: further command names to count under their own label (lower-cased). */
  readonly commands?: Iterable<string>;
  /** defaultMetrics: also collect prom-client's process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
  /** clock: for uptime. Default: the system clock. */
  readonly clock?: Clock;
}

export interface CommandSnapshot {
  readonly command: string;
  readonly protocol: Protocol;
  readonly calls: number;
  /** failed: calls that ended in an error reply. */
  readonly failed: number;
  /** usec: total time spent, in microseconds (rounded). */
  readonly usec: number;
}

export interface MetricsSnapshot {
  /** commandsProcessed: commands over every protocol. */
  readonly commandsProcessed: number;
  readonly commandsByProtocol: Readonly<Record<Protocol, number>>;
  /** commands: one entry per (command, protocol) seen at least once, in first-seen order. */
  readonly commands: readonly CommandSnapshot[];
  readonly connectedClients: Readonly<Record<Protocol, number>>;
  readonly totalConnections: Readonly<Record<Protocol, number>>;
  readonly rejectedConnections: number;
  readonly engine: string;
  readonly keys: number;
  readonly diskBytes: number;
  readonly liveBytes: number;
  readonly writes: number;
  readonly fsyncs: number;
  readonly compactions: number;
  readonly uptimeSeconds: number;
}

/** The per-(command, protocol) numbers; `observe` bumps them, scrapes and snapshots read them. */
interface CommandCell {
  readonly command: string;
  readonly protocol: Protocol;
  calls: number;
  failed: number;
  seconds: number;
  /** buckets[i]: calls that took at most COMMAND_DURATION_BUCKETS_SECONDS[i] and more than the bound before. */
  readonly buckets: Float64Array;
}

interface StoreNumbers {
  engine: string;
  keys: number;
  expires: number;
  expiredKeys: number;
  diskBytes: number;
  liveBytes: number;
  writes: number;
  fsyncs: number;
  compactions: number;
}

export class Metrics {
  /** registry: everything this server exports; /metrics renders it. */
  readonly registry = new Registry();

  private readonly known: ReadonlySet<string>;
  private readonly clock: Clock;
  private readonly startedMs: number;
  /** cells: canonical (command, protocol) cells, in first-seen order. */
  private readonly cells: CommandCell[] = [];
  /** lookup: per protocol, the spellings seen so far mapped to their cell. */
  private readonly lookup: Record<Protocol, Map<string, CommandCell>> = {
    resp: new Map(),
    http: new Map(),
  };
  private readonly connected: Record<Protocol, number> = { resp: 0, http: 0 };
  private readonly connections: Record<Protocol, number> = { resp: 0, http: 0 };
  private rejected = 0;
  /** lastStore: the last numbers db.stats() gave, served while the store is closed or failing. */
  private lastStore: StoreNumbers = {
    engine: 'unknown',
    keys: 0,
    expires: 0,
    expiredKeys: 0,
    diskBytes: 0,
    liveBytes: 0,
    writes: 0,
    fsyncs: 0,
    compactions: 0,
  };

  constructor(
    private readonly db: Db,
    options: MetricsOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.startedMs = this.clock.monotonicMs();
    const known = new Set<string>([...RESP_COMMANDS, ...HTTP_COMMANDS, UNKNOWN_COMMAND]);
    for (const name of options.commands ?? []) known.add(name.toLowerCase());
    this.known = known;

    const registers = [this.registry];
    const self = this;

    new Counter({
      name: `${METRIC_PREFIX}commands_total`,
      help: 'Commands processed, by command, protocol and result (ok or error).',
      labelNames: ['command', 'protocol', 'result'] as const,
      registers,
      collect() {
        this.reset();
        for (const cell of self.cells) {
          const labels = { command: cell.command, protocol: cell.protocol };
          this.inc({ ...labels, result: 'ok' }, cell.calls - cell.failed);
          this.inc({ ...labels, result: 'error' }, cell.failed);
        }
      },
    });
    // The registry only calls get() on what it holds; it does not care about the class.
    this.registry.registerMetric(new CommandHistogram(this.cells) as unknown as Metric);

    const storeGauge = (name: string, help: string, pick: (s: StoreNumbers) => number): void => {
      new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.set(pick(self.storeNumbers()));
        },
      });
    };
    // Counted by the engine since it opened: counters, copied on scrape.
    const storeCounter = (name: string, help: string, pick: (s: StoreNumbers) => number): void => {
      new Counter({
        name: `${METRIC_PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(pick(self.storeNumbers()));
        },
      });
    };
    storeGauge('keys', 'Live keys in the store.', (s) => s.keys);
    storeGauge('expiring_keys', 'Live keys that carry an expiry (TTL).', (s) => s.expires);
    storeCounter(
      'expired_keys_total',
      'Keys the expiry cycle deleted since the store opened (INFO expired_keys).',
      (s) => s.expiredKeys,
    );
    storeGauge('disk_bytes', 'Bytes of every file the storage engine owns.', (s) => s.diskBytes);
    storeGauge('live_bytes', 'Bytes on disk still referenced by live keys.', (s) => s.liveBytes);
    storeCounter('writes_total', 'Writes (sets, deletes, batches) since the store opened.', (s) => s.writes);
    storeCounter('fsyncs_total', 'fsync/fdatasync calls since the store opened.', (s) => s.fsyncs);
    storeCounter('compactions_total', 'Compaction runs since the store opened.', (s) => s.compactions);

    // Transactions (src/txn/mvcc.ts): what open snapshots cost, and how often commits conflict.
    const txnGauge = (name: string, help: string, pick: (s: MvccStats) => number): void => {
      new Gauge({
        name: `${METRIC_PREFIX}${name}`,
        help,
        registers,
        collect() {
          this.set(pick(self.db.txnStats()));
        },
      });
    };
    txnGauge('txn_open_readers', 'Open snapshots, transactions and WATCHes.', (s) => s.readers);
    txnGauge(
      'txn_versions_retained',
      'Overwritten versions kept in memory for open snapshots and the retention window.',
      (s) => s.versionsRetained,
    );
    txnGauge(
      'txn_oldest_reader_age_seconds',
      'Age of the oldest open snapshot or transaction, by commit timestamps (0 when none).',
      (s) => (s.oldestReaderTs === undefined ? 0 : (s.lastTs - s.oldestReaderTs) / US_PER_SECOND),
    );
    new Counter({
      name: `${METRIC_PREFIX}txn_conflicts_total`,
      help: 'Transactions aborted by a conflict since the store opened (each attempt counts).',
      registers,
      collect() {
        this.reset();
        this.inc(self.db.txnStats().conflicts);
      },
    });

    new Gauge({
      name: `${METRIC_PREFIX}connected_clients`,
      help: 'Client connections open now, by protocol.',
      labelNames: ['protocol'] as const,
      registers,
      collect() {
        for (const protocol of PROTOCOLS) this.set({ protocol }, self.connected[protocol]);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}connections_total`,
      help: 'Client connections accepted, by protocol.',
      labelNames: ['protocol'] as const,
      registers,
      collect() {
        this.reset();
        for (const protocol of PROTOCOLS) this.inc({ protocol }, self.connections[protocol]);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}rejected_connections_total`,
      help: 'Client connections refused (the client limit was reached).',
      registers,
      collect() {
        this.reset();
        this.inc(self.rejected);
      },
    });

    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** contentType: the Content-Type of render()'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** render returns the Prometheus text exposition of every metric. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * observe records one command. `command` may be any spelling from the wire: known names are
   * matched case-insensitively, anything else counts as command="unknown".
   */
  observe(command: string, protocol: Protocol, seconds: number, ok: boolean): void {
    const cell = this.lookup[protocol].get(command) ?? this.resolve(command, protocol);
    cell.calls++;
    if (!ok) cell.failed++;
    cell.seconds += seconds;
    // Linear: almost every command lands in the first few buckets.
    const bounds = COMMAND_DURATION_BUCKETS_SECONDS;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    // Slower than the last bound: only +Inf (the count) has it.
    if (i < bounds.length) (cell.buckets[i] as number)++;
  }

  clientConnected(protocol: Protocol): void {
    this.connected[protocol]++;
    this.connections[protocol]++;
  }

  clientDisconnected(protocol: Protocol): void {
    // A mismatched call must not drive the gauge negative.
    if (this.connected[protocol] > 0) this.connected[protocol]--;
  }

  connectionRejected(): void {
    this.rejected++;
  }

  /** snapshot returns the numbers INFO prints; /metrics exports the same ones. */
  snapshot(): MetricsSnapshot {
    const store = this.storeNumbers();
    const byProtocol: Record<Protocol, number> = { resp: 0, http: 0 };
    const commands: CommandSnapshot[] = [];
    for (const cell of this.cells) {
      byProtocol[cell.protocol] += cell.calls;
      commands.push({
        command: cell.command,
        protocol: cell.protocol,
        calls: cell.calls,
        failed: cell.failed,
        usec: Math.round(cell.seconds * 1e6),
      });
    }
    return {
      commandsProcessed: byProtocol.resp + byProtocol.http,
      commandsByProtocol: byProtocol,
      commands,
      connectedClients: { ...this.connected },
      totalConnections: { ...this.connections },
      rejectedConnections: this.rejected,
      ...store,
      uptimeSeconds: (this.clock.monotonicMs() - this.startedMs) / 1000,
    };
  }

  /** resolve is the slow path of observe: first sight of a spelling. */
  private resolve(command: string, protocol: Protocol): CommandCell {
    const lower = command.toLowerCase();
    const name = this.known.has(lower) ? lower : UNKNOWN_COMMAND;
    const aliases = this.lookup[protocol];
    let cell = aliases.get(name);
    if (cell === undefined) {
      cell = {
        command: name,
        protocol,
        calls: 0,
        failed: 0,
        seconds: 0,
        buckets: new Float64Array(COMMAND_DURATION_BUCKETS_SECONDS.length),
      };
      this.cells.push(cell);
      aliases.set(name, cell);
    }
    // Remember known spellings only: unknown ones are arbitrary client bytes.
    if (name !== UNKNOWN_COMMAND && aliases.size < COMMAND_ALIASES_MAX) aliases.set(command, cell);
    return cell;
  }

  /** storeNumbers reads db.stats(), falling back to the last good reading once the store is closed. */
  private storeNumbers(): StoreNumbers {
    try {
      const s = this.db.stats();
      this.lastStore = {
        engine: s.engine,
        keys: s.keys,
        expires: s.expires,
        expiredKeys: s.expiredKeys,
        diskBytes: s.diskBytes,
        liveBytes: s.liveBytes,
        writes: s.writes,
        fsyncs: s.fsyncs,
        compactions: s.compactions,
      };
    } catch {
      // Closed (or closing) store: keep reporting the last numbers rather than failing the scrape.
    }
    return this.lastStore;
  }
}

/**
 * CommandHistogram exports the cells' durations as the Prometheus histogram
 * cairn_command_duration_seconds{command,protocol}, in the value format prom-client's own
 * Histogram produces (cumulative `_bucket` series with `le`, then `_sum` and `_count`).
 */
class CommandHistogram {
  readonly name = `${METRIC_PREFIX}command_duration_seconds`;
  readonly help = 'Time to process a command, from parsed request to queued reply.';
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;

  constructor(private readonly cells: readonly CommandCell[]) {}

  async get() {
    const values: MetricValueWithName<string>[] = [];
    for (const cell of this.cells) {
      const labels = { command: cell.command, protocol: cell.protocol };
      let cumulative = 0;
      COMMAND_DURATION_BUCKETS_SECONDS.forEach((le, i) => {
        cumulative += cell.buckets[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative });
      });
      values.push({
        metricName: `${this.name}_bucket`,
        labels: { le: '+Inf', ...labels },
        value: cell.calls,
      });
      values.push({ metricName: `${this.name}_sum`, labels, value: cell.seconds });
      values.push({ metricName: `${this.name}_count`, labels, value: cell.calls });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** createMetrics returns a fresh Metrics (own Registry) reading store numbers from `db`. */
export function createMetrics(db: Db, options: MetricsOptions = {}): Metrics {
  return new Metrics(db, options);
}
