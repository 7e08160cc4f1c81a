import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { type Db, open } from '../db/db.js';
import type { Clock } from '../io/clock.js';
import {
  COMMAND_ALIASES_MAX,
  COMMAND_DURATION_BUCKETS_SECONDS,
  createMetrics,
  UNKNOWN_COMMAND,
} from './metrics.js';

let db: Db;

beforeAll(async () => {
  db = await open(tmpDir('metrics'));
});

afterAll(async () => {
  await db.close();
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function fakeClock(): Clock & { advance(ms: number): void } {
  let now = 1000;
  return {
    nowMs: () => now,
    monotonicMs: () => now,
    every: () => ({ cancel() {} }),
    after: () => ({ cancel() {} }),
    advance(ms) {
      now += ms;
    },
  };
}

describe('Metrics', () => {
  it('counts commands case-insensitively, by protocol and result, in counters and snapshot alike', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    m.observe('GET', 'resp', 0.00002, true);
    m.observe('get', 'resp', 0.00003, true);
    m.observe('Get', 'resp', 0.5, false);
    m.observe('kv.get', 'http', 0.001, true);
    const text = await m.render();
    expect(sample(text, 'cairn_commands_total{command="get",protocol="resp",result="ok"}')).toBe(2);
    expect(sample(text, 'cairn_commands_total{command="get",protocol="resp",result="error"}')).toBe(1);
    expect(sample(text, 'cairn_commands_total{command="kv.get",protocol="http",result="ok"}')).toBe(1);
    expect(sample(text, 'cairn_command_duration_seconds_count{command="get",protocol="resp"}')).toBe(3);
    expect(
      sample(text, 'cairn_command_duration_seconds_bucket{le="0.00001",command="get",protocol="resp"}'),
    ).toBe(0);
    expect(
      sample(text, 'cairn_command_duration_seconds_bucket{le="0.000025",command="get",protocol="resp"}'),
    ).toBe(1);
    expect(sample(text, 'cairn_command_duration_seconds_bucket{le="1",command="get",protocol="resp"}')).toBe(
      3,
    );
    expect(COMMAND_DURATION_BUCKETS_SECONDS[0]).toBe(0.00001);

    const snap = m.snapshot();
    expect(snap.commandsProcessed).toBe(4);
    expect(snap.commandsByProtocol).toEqual({ resp: 3, http: 1 });
    expect(snap.commands).toEqual([
      { command: 'get', protocol: 'resp', calls: 3, failed: 1, usec: 500050 },
      { command: 'kv.get', protocol: 'http', calls: 1, failed: 0, usec: 1000 },
    ]);
    const sum = sample(text, 'cairn_command_duration_seconds_sum{command="get",protocol="resp"}');
    expect(Math.round((sum ?? 0) * 1e6)).toBe(snap.commands[0]?.usec);
  });

  it('exports durations as a Prometheus histogram, +Inf catching the slowest', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    m.observe('set', 'resp', 0.001, true); // exactly on a bound: le is inclusive
    m.observe('set', 'resp', 2, true);
    const text = await m.render();
    expect(text).toMatch(/^# TYPE cairn_command_duration_seconds histogram$/m);
    expect(
      sample(text, 'cairn_command_duration_seconds_bucket{le="0.0005",command="set",protocol="resp"}'),
    ).toBe(0);
    expect(
      sample(text, 'cairn_command_duration_seconds_bucket{le="0.001",command="set",protocol="resp"}'),
    ).toBe(1);
    expect(sample(text, 'cairn_command_duration_seconds_bucket{le="1",command="set",protocol="resp"}')).toBe(
      1,
    );
    expect(
      sample(text, 'cairn_command_duration_seconds_bucket{le="+Inf",command="set",protocol="resp"}'),
    ).toBe(2);
    expect(sample(text, 'cairn_command_duration_seconds_sum{command="set",protocol="resp"}')).toBe(2.001);
    expect(sample(text, 'cairn_command_duration_seconds_count{command="set",protocol="resp"}')).toBe(2);
    const json = await m.registry.getMetricsAsJSON();
    expect(json.map((metric) => metric.name)).toContain('cairn_command_duration_seconds');
  });

  it('keeps label values bounded: unknown commands count as "unknown"', async () => {
    const m = createMetrics(db, { defaultMetrics: false, commands: ['xadd'] });
    for (let i = 0; i < COMMAND_ALIASES_MAX + 10; i++) m.observe(`junk-${i}`, 'resp', 0.00001, false);
    m.observe('XADD', 'resp', 0.00001, true);
    const text = await m.render();
    expect(
      sample(text, `cairn_commands_total{command="${UNKNOWN_COMMAND}",protocol="resp",result="error"}`),
    ).toBe(COMMAND_ALIASES_MAX + 10);
    expect(sample(text, 'cairn_commands_total{command="xadd",protocol="resp",result="ok"}')).toBe(1);
    expect(text).not.toMatch(/junk/);
    expect(m.snapshot().commands.map((c) => c.command)).toEqual([UNKNOWN_COMMAND, 'xadd']);
    // Many spellings of a known command still land on one series.
    for (let i = 0; i < 64; i++) m.observe(i % 2 ? 'PING' : 'ping', 'resp', 0, true);
    expect(m.snapshot().commands.filter((c) => c.command === 'ping')).toHaveLength(1);
  });

  it('tracks connections, never going below zero', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    m.clientConnected('resp');
    m.clientConnected('resp');
    m.clientConnected('http');
    m.clientDisconnected('resp');
    m.clientDisconnected('http');
    m.clientDisconnected('http');
    m.connectionRejected();
    const text = await m.render();
    expect(sample(text, 'cairn_connected_clients{protocol="resp"}')).toBe(1);
    expect(sample(text, 'cairn_connected_clients{protocol="http"}')).toBe(0);
    expect(sample(text, 'cairn_connections_total{protocol="resp"}')).toBe(2);
    expect(sample(text, 'cairn_connections_total{protocol="http"}')).toBe(1);
    expect(sample(text, 'cairn_rejected_connections_total')).toBe(1);
    const snap = m.snapshot();
    expect(snap.connectedClients).toEqual({ resp: 1, http: 0 });
    expect(snap.totalConnections).toEqual({ resp: 2, http: 1 });
    expect(snap.rejectedConnections).toBe(1);
  });

  it('exports what open snapshots retain and how many transactions conflicted', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    await db.set('t', '0');
    const snap = await db.snapshot();
    const loser = await db.begin();
    await loser.get('t');
    loser.set('t', 'lost');
    await db.set('t', '1');
    await db.set('t', '2');
    await expect(loser.commit()).rejects.toThrow(/conflict/);
    let text = await m.render();
    expect(sample(text, 'cairn_txn_open_readers')).toBe(1);
    expect(sample(text, 'cairn_txn_versions_retained')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'cairn_txn_conflicts_total')).toBe(1);
    expect(sample(text, 'cairn_txn_oldest_reader_age_seconds')).toBeGreaterThan(0);
    snap.release();
    text = await m.render();
    expect(sample(text, 'cairn_txn_open_readers')).toBe(0);
    expect(sample(text, 'cairn_txn_versions_retained')).toBe(0);
    expect(sample(text, 'cairn_txn_oldest_reader_age_seconds')).toBe(0);
  });

  it('reads store gauges from db.stats() at scrape time', async () => {
    const m = createMetrics(db, { defaultMetrics: false });
    await db.batch([
      { type: 'set', key: 'a', value: 'x'.repeat(100) },
      { type: 'set', key: 'b', value: 'y' },
      { type: 'set', key: 'ttl', value: 'z', ttlMs: 60_000 },
      { type: 'set', key: 'gone', value: 'z', ttlMs: 1 },
    ]);
    await db.delete('b');
    // Wait for the expiry cycle to delete 'gone'.
    for (let i = 0; i < 100 && db.stats().expiredKeys === 0; i++) await new Promise((r) => setTimeout(r, 20));
    const stats = db.stats();
    expect(stats.expires).toBe(1);
    expect(stats.expiredKeys).toBe(1);
    const text = await m.render();
    expect(sample(text, 'cairn_keys')).toBe(stats.keys);
    expect(sample(text, 'cairn_disk_bytes')).toBe(stats.diskBytes);
    expect(sample(text, 'cairn_live_bytes')).toBe(stats.liveBytes);
    expect(sample(text, 'cairn_writes_total')).toBe(stats.writes);
    expect(sample(text, 'cairn_fsyncs_total')).toBe(stats.fsyncs);
    expect(sample(text, 'cairn_compactions_total')).toBe(stats.compactions);
    expect(sample(text, 'cairn_expiring_keys')).toBe(stats.expires);
    expect(sample(text, 'cairn_expired_keys_total')).toBe(stats.expiredKeys);
    expect(text).toMatch(/# TYPE cairn_fsyncs_total counter/);
    expect(text).toMatch(/# TYPE cairn_keys gauge/);
    const snap = m.snapshot();
    expect(snap).toMatchObject({
      engine: 'cask',
      keys: stats.keys,
      diskBytes: stats.diskBytes,
      fsyncs: stats.fsyncs,
      compactions: stats.compactions,
    });
  });

  it('reports uptime from its clock and process metrics under the cairn_ prefix', async () => {
    const clock = fakeClock();
    const m = createMetrics(db, { clock });
    clock.advance(2500);
    expect(m.snapshot().uptimeSeconds).toBe(2.5);
    const text = await m.render();
    expect(text).toMatch(/^cairn_process_resident_memory_bytes /m);
    expect(text).toMatch(/^cairn_nodejs_eventloop_lag_seconds /m);
    expect(m.contentType).toMatch(/^text\/plain/);
  });

  it('keeps separate registries per instance and serves the last store numbers after close', async () => {
    const other = await open(tmpDir('metrics-closed'));
    const a = createMetrics(other, { defaultMetrics: false });
    const b = createMetrics(other, { defaultMetrics: false });
    a.observe('get', 'resp', 0, true);
    await other.set('k', 'v');
    expect(a.snapshot().keys).toBe(1);
    await other.close();
    expect(a.snapshot().keys).toBe(1);
    expect(sample(await a.render(), 'cairn_keys')).toBe(1);
    expect(
      sample(await b.render(), 'cairn_commands_total{command="get",protocol="resp",result="ok"}'),
    ).toBeUndefined();
  });
});
