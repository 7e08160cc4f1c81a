// Member ids in log lines: hex, as the CLI, the HTTP API (`/v1/cluster/members`, `/v1/status`)
// and etcd print them, so that an id in a log can be searched for in `cairn member list`. A
// NodeId is a 48-bit number; pino would write it in decimal.
import type { NodeId } from '../raft/index.js';
import type { MemberRecord } from './identity.js';

/** hexId: a member id as the operator sees it everywhere else. */
export function hexId(id: NodeId): string {
  return id.toString(16);
}

/** hexRecords: member records for a log line, their ids in hex. */
export function hexRecords(
  records: readonly MemberRecord[],
): { id: string; name: string; peerAddr: string }[] {
  return records.map((r) => ({ id: hexId(r.id), name: r.name, peerAddr: r.peerAddr }));
}
