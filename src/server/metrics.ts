// Metrics: the server's counters and gauges, in one prom-client Registry (never the global one,
// so several servers in one process, and tests, do not share numbers).
//
// One source of truth: command counts, connection counts and durations live in ServerCounters
// (counters.ts), plain numbers that the hot paths bump; the Prometheus counters and gauges copy
// them at scrape time through collect() callbacks, and snapshot() (what RESP `INFO` prints) reads
// the same numbers. So INFO and /metrics agree by construction, and a RESP command costs a Map
// lookup and a few additions (~20 ns; prom-client's own Histogram child re-validates and
// re-hashes its labels on every observation, ~400 ns, so the duration histogram is ours too: see
// CommandHistogram).

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
import {
  COMMAND_DURATION_BUCKETS_SECONDS,
  type CountersSnapshot,
  PROTOCOLS,
  type Protocol,
  ServerCounters,
} from './counters.js';

export {
  COMMAND_ALIASES_MAX,
  COMMAND_DURATION_BUCKETS_SECONDS,
  type CommandSnapshot,
  HTTP_COMMANDS,
  type HttpCommand,
  PROTOCOLS,
  type Protocol,
  UNKNOWN_COMMAND,
} from './counters.js';

/** METRIC_PREFIX: every metric this module defines, and the default process metrics, start with it. */
export const METRIC_PREFIX = 'cairn_';
/** US_PER_SECOND: commit timestamps count microseconds. */
const US_PER_SECOND = 1_000_000;

export interface MetricsOptions {
  /** commands: further command names to count under their own label (lower-cased). */
  readonly commands?: Iterable<string>;
  /** defaultMetrics: also collect prom-client's process metrics (CPU, memory, event loop, GC). Default true. */
  readonly defaultMetrics?: boolean;
  /** clock: for uptime. Default: the system clock. */
  readonly clock?: Clock;
}

export interface MetricsSnapshot extends CountersSnapshot {
  readonly engine: string;
  readonly keys: number;
  readonly diskBytes: number;
  readonly liveBytes: number;
  readonly writes: number;
  readonly fsyncs: number;
  readonly compactions: number;
  readonly uptimeSeconds: number;
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

  /** counters: the command and connection numbers; Metrics adds the store's and exports them. */
  readonly counters: ServerCounters;
  private readonly clock: Clock;
  private readonly startedMs: number;
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
    const counters = new ServerCounters({ commands: options.commands });
    this.counters = counters;

    const registers = [this.registry];
    const self = this;

    new Counter({
      name: `${METRIC_PREFIX}commands_total`,
      help: 'Commands processed, by command, protocol and result (ok or error).',
      labelNames: ['command', 'protocol', 'result'] as const,
      registers,
      collect() {
        this.reset();
        for (const row of counters.rows()) {
          const labels = { command: row.command, protocol: row.protocol };
          this.inc({ ...labels, result: 'ok' }, row.calls - row.failed);
          this.inc({ ...labels, result: 'error' }, row.failed);
        }
      },
    });
    // The registry only calls get() on what it holds; it does not care about the class.
    this.registry.registerMetric(new CommandHistogram(counters) as unknown as Metric);

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
        for (const protocol of PROTOCOLS) this.set({ protocol }, counters.connectedClients[protocol]);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}connections_total`,
      help: 'Client connections accepted, by protocol.',
      labelNames: ['protocol'] as const,
      registers,
      collect() {
        this.reset();
        for (const protocol of PROTOCOLS) this.inc({ protocol }, counters.totalConnections[protocol]);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}evicted_clients_total`,
      help: 'Client connections closed because the server held too many reply bytes they had not read (the largest holders first).',
      labelNames: ['protocol'] as const,
      registers,
      collect() {
        this.reset();
        for (const protocol of PROTOCOLS) this.inc({ protocol }, counters.evictedClients[protocol]);
      },
    });
    new Counter({
      name: `${METRIC_PREFIX}rejected_connections_total`,
      help: 'Client connections refused (the client limit was reached).',
      registers,
      collect() {
        this.reset();
        this.inc(counters.rejectedConnections);
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

  /** observe records one command (see ServerCounters.observe). */
  observe(command: string, protocol: Protocol, seconds: number, ok: boolean): void {
    this.counters.observe(command, protocol, seconds, ok);
  }

  clientConnected(protocol: Protocol): void {
    this.counters.clientConnected(protocol);
  }

  clientDisconnected(protocol: Protocol): void {
    this.counters.clientDisconnected(protocol);
  }

  connectionRejected(): void {
    this.counters.connectionRejected();
  }

  clientEvicted(protocol: Protocol): void {
    this.counters.clientEvicted(protocol);
  }

  /** snapshot returns the numbers INFO prints; /metrics exports the same ones. */
  snapshot(): MetricsSnapshot {
    return {
      ...this.counters.snapshot(),
      ...this.storeNumbers(),
      uptimeSeconds: (this.clock.monotonicMs() - this.startedMs) / 1000,
    };
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
 * CommandHistogram exports the counters' durations as the Prometheus histogram
 * cairn_command_duration_seconds{command,protocol}, in the value format prom-client's own
 * Histogram produces (cumulative `_bucket` series with `le`, then `_sum` and `_count`).
 */
class CommandHistogram {
  readonly name = `${METRIC_PREFIX}command_duration_seconds`;
  readonly help =
    'Time to process a command: RESP from the read that brought it to the flush of its reply, HTTP from the request to its response.';
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;

  constructor(private readonly counters: ServerCounters) {}

  async get() {
    const values: MetricValueWithName<string>[] = [];
    for (const cell of this.counters.rows()) {
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
