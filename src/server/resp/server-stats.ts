// ServerStats: the numbers INFO prints that the counters (src/server/counters.ts) do not keep:
// the run id, keyspace hits and misses, and the instantaneous command rate.
//
// instantaneous_ops_per_sec follows Redis (server.c trackInstantaneousMetric): every
// OPS_SAMPLE_MS the commands executed since the previous sample become one rate sample, and the
// rate is the mean of the last OPS_SAMPLES samples (so it reflects about the last 1.6 s).
import { randomBytes } from 'node:crypto';
import type { Clock, Timer } from '../../io/clock.js';
import type { RespMetrics } from './types.js';

/** OPS_SAMPLE_MS: how often the command count is sampled (Redis's serverCron period, 100 ms). */
export const OPS_SAMPLE_MS = 100;
/** OPS_SAMPLES: samples averaged into the rate (Redis's STATS_METRIC_SAMPLES). */
export const OPS_SAMPLES = 16;
/** RUN_ID_BYTES: 20 random bytes print as Redis's 40 hex characters. */
const RUN_ID_BYTES = 20;

export class ServerStats {
  /** runId: random per server, stable while it runs (INFO server run_id). */
  readonly runId = randomBytes(RUN_ID_BYTES).toString('hex');
  /** keyspaceHits, keyspaceMisses: GET-style reads that found / did not find their key (see countReads). */
  keyspaceHits = 0;
  keyspaceMisses = 0;
  /** commands: commands executed (every one the metrics observe). */
  commands = 0;

  private readonly samples = new Float64Array(OPS_SAMPLES);
  private sampleIndex = 0;
  private lastCount = 0;
  private lastAt: number;
  private readonly timer: Timer;

  constructor(private readonly clock: Clock) {
    this.lastAt = clock.monotonicMs();
    this.timer = clock.every(OPS_SAMPLE_MS, () => this.sample());
  }

  /**
   * countRead counts one key lookup of a read command: GET, MGET (each key), GETRANGE, STRLEN,
   * as Redis's lookupKeyRead does for its read commands. Writes (SET ... GET, GETDEL, GETSET,
   * INCR) and EXISTS/TYPE/TTL are not counted here.
   */
  countRead(found: boolean): void {
    if (found) this.keyspaceHits++;
    else this.keyspaceMisses++;
  }

  /** opsPerSec: the mean rate over the last OPS_SAMPLES samples, rounded as Redis does. */
  opsPerSec(): number {
    let sum = 0;
    for (const s of this.samples) sum += s;
    return Math.round(sum / OPS_SAMPLES);
  }

  /** stop cancels the sampling timer (the server closes). */
  stop(): void {
    this.timer.cancel();
  }

  private sample(): void {
    const now = this.clock.monotonicMs();
    const elapsed = now - this.lastAt;
    if (elapsed <= 0) return;
    this.samples[this.sampleIndex] = ((this.commands - this.lastCount) * 1000) / elapsed;
    this.sampleIndex = (this.sampleIndex + 1) % OPS_SAMPLES;
    this.lastCount = this.commands;
    this.lastAt = now;
  }
}

/** countingCommands wraps the metrics so that every observed command is also counted in `stats`. */
export function countingCommands(metrics: RespMetrics, stats: ServerStats): RespMetrics {
  return {
    observe(command, protocol, seconds, ok) {
      stats.commands++;
      metrics.observe(command, protocol, seconds, ok);
    },
    clientConnected: (p) => metrics.clientConnected(p),
    clientDisconnected: (p) => metrics.clientDisconnected(p),
    connectionRejected: () => metrics.connectionRejected(),
    clientEvicted: (p) => metrics.clientEvicted(p),
    snapshot: () => metrics.snapshot(),
  };
}
