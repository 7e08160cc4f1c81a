// CommitTrace: where a proposal's time goes on the leader, stage by stage (docs/benchmarks.md,
// "Cluster (issue 13)", the commit budget). A diagnostic, off unless the environment variable
// CAIRN_COMMIT_TRACE names a directory: then every member appends, every TRACE_REPORT_MS, one
// JSON line of per-stage percentiles to `<dir>/commit-trace-<pid>.jsonl`. Only the leader's own
// proposals are traced (it is the one that proposes).
//
// Stages, each the time since the previous one (ms):
//   queued    propose -> the entry is handed to the log in a Ready (waits for the driver)
//   selfSave  Ready taken -> the leader's own log save is durable
//   commit    Ready taken -> the core knows the entry committed (a quorum's acknowledgements)
//   handed    commit known -> the entry is handed to the engine (apply)
//   visible   handed -> the engine shows the write (the proposal resolves)
//   total     propose -> visible
import { appendFileSync, mkdirSync } from 'node:fs';
import * as path from 'node:path';

/** TRACE_REPORT_MS: how often a member writes its percentiles. */
const TRACE_REPORT_MS = 2_000;
/** TRACE_MAX_SAMPLES: samples kept per stage between reports (the rest are dropped). */
const TRACE_MAX_SAMPLES = 100_000;

type Stage = 'queued' | 'selfSave' | 'commit' | 'handed' | 'visible' | 'total';
const STAGES: readonly Stage[] = ['queued', 'selfSave', 'commit', 'handed', 'visible', 'total'];

interface Stamps {
  proposed: number;
  readied?: number;
  saved?: number;
  committed?: number;
  handed?: number;
}

export class CommitTrace {
  private readonly open = new Map<number, Stamps>();
  private samples: Record<Stage, number[]> = emptySamples();
  private readonly file: string;

  private constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, `commit-trace-${process.pid}.jsonl`);
    setInterval(() => this.report(), TRACE_REPORT_MS).unref();
  }

  /** fromEnv: a trace when CAIRN_COMMIT_TRACE is set, else undefined (no cost). */
  static fromEnv(): CommitTrace | undefined {
    const dir = process.env.CAIRN_COMMIT_TRACE;
    return dir === undefined || dir === '' ? undefined : new CommitTrace(dir);
  }

  proposed(index: number): void {
    this.open.set(index, { proposed: performance.now() });
  }

  readied(from: number, to: number): void {
    this.stampRange(from, to, 'readied');
  }

  saved(from: number, to: number): void {
    this.stampRange(from, to, 'saved');
  }

  committed(upTo: number): void {
    const now = performance.now();
    for (const [i, s] of this.open) if (i <= upTo && s.committed === undefined) s.committed = now;
  }

  handed(index: number): void {
    const s = this.open.get(index);
    if (s !== undefined) s.handed = performance.now();
  }

  visible(index: number): void {
    const s = this.open.get(index);
    if (s === undefined) return;
    this.open.delete(index);
    const now = performance.now();
    if (s.readied === undefined || s.committed === undefined || s.handed === undefined) return;
    this.add('queued', s.readied - s.proposed);
    if (s.saved !== undefined) this.add('selfSave', s.saved - s.readied);
    this.add('commit', s.committed - s.readied);
    this.add('handed', s.handed - s.committed);
    this.add('visible', now - s.handed);
    this.add('total', now - s.proposed);
  }

  private stampRange(from: number, to: number, key: 'readied' | 'saved'): void {
    const now = performance.now();
    for (let i = from; i <= to; i++) {
      const s = this.open.get(i);
      if (s !== undefined && s[key] === undefined) s[key] = now;
    }
  }

  private add(stage: Stage, ms: number): void {
    const list = this.samples[stage];
    if (list.length < TRACE_MAX_SAMPLES) list.push(ms);
  }

  private report(): void {
    const n = this.samples.total.length;
    if (n === 0) return;
    const line: Record<string, unknown> = { at: new Date().toISOString(), n };
    for (const stage of STAGES) {
      const sorted = this.samples[stage].sort((a, b) => a - b);
      line[stage] = {
        p50: round(quantile(sorted, 0.5)),
        p90: round(quantile(sorted, 0.9)),
        mean: round(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
      };
    }
    this.samples = emptySamples();
    // Stale entries (failed proposals) would grow the map forever.
    if (this.open.size > TRACE_MAX_SAMPLES) this.open.clear();
    try {
      appendFileSync(this.file, `${JSON.stringify(line)}\n`);
    } catch {
      // a diagnostic: never the member's failure
    }
  }
}

function emptySamples(): Record<Stage, number[]> {
  return { queued: [], selfSave: [], commit: [], handed: [], visible: [], total: [] };
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
