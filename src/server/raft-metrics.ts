// Raft metrics of a cluster member in /metrics, named after etcd's (etcd_server_has_leader,
// etcd_server_leader_changes_seen_total, etcd_server_proposals_*, etcd_disk_wal_fsync_duration_seconds)
// under the cairn_raft_ prefix. The event-loop delay, which decides whether heartbeats leave on
// time, is prom-client's nodejs_eventloop_lag_* among the default metrics.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { NONE } from '../raft/index.js';
import type { ClusterMember } from '../replica/member.js';
import { METRIC_PREFIX } from './metrics.js';

/** FSYNC_BUCKETS_SECONDS: etcd's WAL fsync buckets (1 ms doubling to about 8 s). */
const FSYNC_BUCKETS_SECONDS = Array.from({ length: 14 }, (_, i) => 0.001 * 2 ** i);
/**
 * READ_INDEX_BUCKETS_SECONDS: a ReadIndex round is a heartbeat round trip: 0.1 ms to about 3 s;
 * the peer round trips use them too (etcd's buckets for its peer round-trip time).
 */
const READ_INDEX_BUCKETS_SECONDS = Array.from({ length: 16 }, (_, i) => 0.0001 * 2 ** i);

export function registerRaftMetrics(registry: Registry, member: ClusterMember): void {
  const registers = [registry];
  const replica = member.replica;
  const name = (n: string) => `${METRIC_PREFIX}raft_${n}`;
  const gauge = (n: string, help: string, read: () => number): void => {
    new Gauge({
      name: name(n),
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  const counter = (n: string, help: string, read: () => number): void => {
    new Counter({
      name: name(n),
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  };
  gauge('has_leader', '1 when this member knows a leader.', () => (replica.leader === NONE ? 0 : 1));
  gauge('is_leader', '1 when this member is the leader and has applied an entry of its term.', () =>
    replica.leaderReady ? 1 : 0,
  );
  gauge(
    'repairing',
    '1 while this member repairs a damaged engine from the leader (it serves no read).',
    () => (replica.repairing ? 1 : 0),
  );
  gauge('term', 'The current Raft term.', () => replica.status().term);
  gauge('commit_index', 'The highest log index known committed.', () => replica.status().commit);
  gauge('applied_index', 'The highest log index applied to the engine and visible.', () => replica.applied);
  counter(
    'leader_changes_seen_total',
    'Leader changes seen by this member.',
    () => replica.counters.leaderChanges,
  );
  counter(
    'proposals_committed_total',
    'Replicated writes committed and applied by this member (any leader).',
    () => replica.counters.proposalsCommitted,
  );
  counter(
    'proposals_applied_total',
    "This member's own proposals applied (acknowledged).",
    () => replica.counters.proposalsApplied,
  );
  counter(
    'proposals_failed_total',
    "This member's proposals that failed or timed out.",
    () => replica.counters.proposalsFailed,
  );
  counter(
    'read_index_rounds_total',
    'ReadIndex rounds started (each serves a batch of reads).',
    () => replica.counters.readIndexRounds,
  );
  counter(
    'snapshots_sent_total',
    'Snapshots this member streamed to a follower and saw installed.',
    () => replica.counters.snapshotsSent,
  );
  counter(
    'snapshots_failed_total',
    'Snapshots this member tried to send that failed.',
    () => replica.counters.snapshotsFailed,
  );
  counter(
    'snapshots_installed_total',
    "Snapshots from a leader that replaced this member's engine.",
    () => replica.counters.snapshotsInstalled,
  );
  counter(
    'peer_dials_total',
    'Connections to peers this member attempted (reconnects included): steady when every link is up.',
    () => member.peerDials,
  );
  gauge('log_first_index', 'The first index the Raft log holds (the log is compacted below it).', () =>
    replica.logStart(),
  );
  const fsync = new Histogram({
    name: name('wal_fsync_duration_seconds'),
    help: 'Latency of the Raft log saves that fsynced (one per Ready).',
    buckets: FSYNC_BUCKETS_SECONDS,
    registers,
  });
  replica.onFsync.add((seconds) => fsync.observe(seconds));
  const readIndex = new Histogram({
    name: name('read_index_duration_seconds'),
    help: 'From a ReadIndex request to the read being servable (quorum confirmed and applied).',
    buckets: READ_INDEX_BUCKETS_SECONDS,
    registers,
  });
  replica.onReadIndex.add((seconds) => readIndex.observe(seconds));
  const roundTrip = new Histogram({
    name: name('peer_round_trip_time_seconds'),
    help: 'Round trip of a probe to each peer on a connection of its own (etcd_network_peer_round_trip_time_seconds).',
    labelNames: ['to'],
    buckets: READ_INDEX_BUCKETS_SECONDS,
    registers,
  });
  member.onPeerRoundTrip.add((peer, seconds) => roundTrip.observe({ to: peer }, seconds));
}
