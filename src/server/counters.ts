// ServerCounters: the server's own counts (commands by name, protocol and result, with their
// durations; connections), in plain numbers the hot paths bump. They are the one set: RESP `INFO`
// reads them through snapshot(), and Metrics (metrics.ts) copies the same numbers into its
// Prometheus registry at scrape time, so INFO and /metrics agree by construction.
//
// The command names are the RESP command table's (src/server/resp/commands/index.ts), the HTTP
// routes', and UNKNOWN_COMMAND for anything else, so that label values stay bounded. Each name
// has an id (its position in `names`); a command's numbers live in typed arrays at row
// protocol * names.length + id, and a per-protocol Map takes a spelling straight to its row, so a
// command costs one Map lookup of its (interned) name and a few additions: no allocation, no
// label hashing.
import { COMMAND_TABLE } from './resp/commands/index.js';

export type Protocol = 'resp' | 'http';
export const PROTOCOLS: readonly Protocol[] = ['resp', 'http'];
/** PROTOCOL_ROW: each protocol's block of rows in the per-command arrays. */
const PROTOCOL_ROW: Readonly<Record<Protocol, number>> = { resp: 0, http: 1 };

/** UNKNOWN_COMMAND: the label for any command name outside the known set (label values stay bounded). */
export const UNKNOWN_COMMAND = 'unknown';

/**
 * COMMAND_ALIASES_MAX: how many distinct spellings ('GET', 'get', 'Get', ...) the lookup cache
 * remembers per protocol. A client can send endless spellings; past this, lookups lower-case
 * every time instead of growing the cache.
 */
export const COMMAND_ALIASES_MAX = 4096;

/**
 * COMMAND_DURATION_BUCKETS_SECONDS: a cached GET answers in ~10 µs, an fsynced SET in ~0.1-10 ms,
 * a large batch or scan page in up to a second; roughly 1-2.5-5 steps over that range.
 */
export const COMMAND_DURATION_BUCKETS_SECONDS: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
];
const BUCKETS = COMMAND_DURATION_BUCKETS_SECONDS.length;

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
  'cluster',
  'snapshot',
  'status',
  'member.list',
  'member.add',
  'member.promote',
  'member.remove',
  'move-leader',
  'check.hash',
] as const;
export type HttpCommand = (typeof HTTP_COMMANDS)[number];

export interface CountersOptions {
  /** commands: further command names to count under their own label (lower-cased). */
  readonly commands?: Iterable<string> | undefined;
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

export interface CountersSnapshot {
  /** commandsProcessed: commands over every protocol. */
  readonly commandsProcessed: number;
  readonly commandsByProtocol: Readonly<Record<Protocol, number>>;
  /** commands: one entry per (command, protocol) seen at least once, in first-seen order. */
  readonly commands: readonly CommandSnapshot[];
  readonly connectedClients: Readonly<Record<Protocol, number>>;
  readonly totalConnections: Readonly<Record<Protocol, number>>;
  readonly rejectedConnections: number;
  /** evictedClients: connections closed for holding too many unread reply bytes (output-budget.ts). */
  readonly evictedClients: Readonly<Record<Protocol, number>>;
}

/** CommandRow: one (command, protocol)'s numbers, for the Prometheus export. */
export interface CommandRow {
  readonly command: string;
  readonly protocol: Protocol;
  readonly calls: number;
  readonly failed: number;
  readonly seconds: number;
  /** buckets[i]: calls that took at most COMMAND_DURATION_BUCKETS_SECONDS[i] and more than the bound before. */
  readonly buckets: Float64Array;
}

export class ServerCounters {
  /** names[id]: the label of command `id`. */
  readonly names: readonly string[];
  /** canonical: lower-case name to id. */
  private readonly canonical = new Map<string, number>();
  /** rowOf: per protocol, the spellings seen so far (and every canonical name) mapped to their row. */
  private readonly rowOf: Record<Protocol, Map<string, number>>;
  private readonly unknownId: number;
  private readonly calls: Float64Array;
  private readonly failed: Float64Array;
  private readonly seconds: Float64Array;
  /** buckets: BUCKETS counts per row. */
  private readonly buckets: Float64Array;
  /** seen: the rows called at least once, in first-seen order. */
  private readonly seen: number[] = [];
  private readonly connected: Record<Protocol, number> = { resp: 0, http: 0 };
  private readonly connections: Record<Protocol, number> = { resp: 0, http: 0 };
  private rejected = 0;
  private readonly evicted: Record<Protocol, number> = { resp: 0, http: 0 };

  constructor(options: CountersOptions = {}) {
    const names: string[] = [];
    const add = (name: string): void => {
      const lower = name.toLowerCase();
      if (this.canonical.has(lower)) return;
      this.canonical.set(lower, names.length);
      names.push(lower);
    };
    for (const spec of COMMAND_TABLE.all()) add(spec.name);
    for (const name of HTTP_COMMANDS) add(name);
    for (const name of options.commands ?? []) add(name);
    add(UNKNOWN_COMMAND);
    this.names = names;
    this.unknownId = this.canonical.get(UNKNOWN_COMMAND) as number;
    const rowsOf = (protocol: Protocol): Map<string, number> => {
      const offset = PROTOCOL_ROW[protocol] * names.length;
      return new Map([...this.canonical].map(([name, id]) => [name, offset + id]));
    };
    this.rowOf = { resp: rowsOf('resp'), http: rowsOf('http') };
    const rows = names.length * PROTOCOLS.length;
    this.calls = new Float64Array(rows);
    this.failed = new Float64Array(rows);
    this.seconds = new Float64Array(rows);
    this.buckets = new Float64Array(rows * BUCKETS);
  }

  /**
   * observe records one command. `command` may be any spelling from the wire: known names are
   * matched case-insensitively, anything else counts as command="unknown".
   */
  observe(command: string, protocol: Protocol, seconds: number, ok: boolean): void {
    const row = this.rowOf[protocol].get(command) ?? this.resolve(command, protocol);
    if (this.calls[row] === 0) this.seen.push(row);
    (this.calls[row] as number)++;
    if (!ok) (this.failed[row] as number)++;
    (this.seconds[row] as number) += seconds;
    // Linear: almost every command lands in the first few buckets.
    const bounds = COMMAND_DURATION_BUCKETS_SECONDS;
    let i = 0;
    while (i < BUCKETS && seconds > (bounds[i] as number)) i++;
    // Slower than the last bound: only +Inf (the count) has it.
    if (i < BUCKETS) (this.buckets[row * BUCKETS + i] as number)++;
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

  clientEvicted(protocol: Protocol): void {
    this.evicted[protocol]++;
  }

  get evictedClients(): Readonly<Record<Protocol, number>> {
    return this.evicted;
  }

  get connectedClients(): Readonly<Record<Protocol, number>> {
    return this.connected;
  }

  get totalConnections(): Readonly<Record<Protocol, number>> {
    return this.connections;
  }

  get rejectedConnections(): number {
    return this.rejected;
  }

  /** rows returns the numbers of every (command, protocol) called so far, in first-seen order. */
  rows(): CommandRow[] {
    return this.seen.map((row) => {
      const protocol = PROTOCOLS[Math.floor(row / this.names.length)] as Protocol;
      return {
        command: this.names[row % this.names.length] as string,
        protocol,
        calls: this.calls[row] as number,
        failed: this.failed[row] as number,
        seconds: this.seconds[row] as number,
        // A copy (TypedArray slice copies; subarray would hand out a view of live counters).
        buckets: this.buckets.slice(row * BUCKETS, (row + 1) * BUCKETS),
      };
    });
  }

  /** snapshot returns the numbers INFO prints; Metrics exports the same ones. */
  snapshot(): CountersSnapshot {
    const byProtocol: Record<Protocol, number> = { resp: 0, http: 0 };
    const commands: CommandSnapshot[] = [];
    for (const row of this.rows()) {
      byProtocol[row.protocol] += row.calls;
      commands.push({
        command: row.command,
        protocol: row.protocol,
        calls: row.calls,
        failed: row.failed,
        usec: Math.round(row.seconds * 1e6),
      });
    }
    return {
      commandsProcessed: byProtocol.resp + byProtocol.http,
      commandsByProtocol: byProtocol,
      commands,
      connectedClients: { ...this.connected },
      totalConnections: { ...this.connections },
      rejectedConnections: this.rejected,
      evictedClients: { ...this.evicted },
    };
  }

  /** resolve is the slow path of observe: first sight of a spelling; it returns the row. */
  private resolve(command: string, protocol: Protocol): number {
    const id = this.canonical.get(command.toLowerCase()) ?? this.unknownId;
    const row = PROTOCOL_ROW[protocol] * this.names.length + id;
    const aliases = this.rowOf[protocol];
    // Remember known spellings only: unknown ones are arbitrary client bytes.
    if (id !== this.unknownId && aliases.size < COMMAND_ALIASES_MAX) aliases.set(command, row);
    return row;
  }
}
