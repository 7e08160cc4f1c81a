// A write larger than one peer frame can carry is refused before it is proposed: it used to be
// appended, dropped by the transport at every send and never committed, so every later write of
// the cluster waited behind it (a 20 MiB PUT); one over the log's entry limit failed the leader
// when saved (a 64 MiB PUT). Found from outside.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestMember, type TestMember, until } from '../../test/support/replica-member.js';
import type { Message } from '../raft/index.js';
import { LimitError } from '../storage/errors.js';
import { encodeWrite } from './entry-codec.js';
import { MemoryHub } from './memory-transport.js';
import { BATCH_HEADER_BYTES, encodedMessageSize } from './message-codec.js';
import { MAX_PEER_FRAME_PAYLOAD_BYTES } from './peer-frame.js';
import { PROPOSAL_BYTES_MAX } from './proposal-limit.js';
import { MAX_ENTRY_BYTES } from './wal-format.js';

const open: TestMember[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.db.close().catch(() => {});
});

describe('PROPOSAL_BYTES_MAX', () => {
  it('is what one MsgApp carrying one entry alone can hold in a peer frame, and within the log entry limit', () => {
    const message = (bytes: number): Message =>
      ({
        type: 'MsgApp',
        to: 2,
        from: 1,
        term: 1,
        logTerm: 1,
        index: 1,
        entries: [{ term: 1, index: 2, type: 'normal', data: new Uint8Array(bytes) }],
        commit: 1,
        snapshot: undefined,
        reject: false,
        rejectHint: 0,
        context: new Uint8Array(0),
      }) as Message;
    expect(BATCH_HEADER_BYTES + encodedMessageSize(message(PROPOSAL_BYTES_MAX))).toBeLessThanOrEqual(
      MAX_PEER_FRAME_PAYLOAD_BYTES,
    );
    expect(BATCH_HEADER_BYTES + encodedMessageSize(message(PROPOSAL_BYTES_MAX + 1))).toBeGreaterThan(
      MAX_PEER_FRAME_PAYLOAD_BYTES,
    );
    expect(PROPOSAL_BYTES_MAX).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
  });
});

describe('a member proposing a write over PROPOSAL_BYTES_MAX', () => {
  it('refuses it with LimitError, appends nothing, and goes on taking writes', async () => {
    const hub = new MemoryHub();
    const ids = [1, 2, 3];
    for (const id of ids) open.push(await startTestMember(hub, id, ids));
    let leader: TestMember | undefined;
    await until(() => {
      leader = open.find((m) => m.replica.leaderReady);
      return leader !== undefined;
    });
    const db = leader!.db;
    await db.set('before', 'x');
    const lastIndex = leader!.replica.status().lastIndex;
    // The encoded write of one put holds the key and value plus a few header bytes.
    const overhead = encodeWrite(1, [
      { type: 'put', key: Buffer.from('big'), value: Buffer.alloc(0), create: 1, version: 1 },
    ]).length;
    const tooBig = Buffer.alloc(PROPOSAL_BYTES_MAX - overhead + 1, 1);
    await expect(db.set('big', tooBig)).rejects.toBeInstanceOf(LimitError);
    await expect(db.set('big', tooBig)).rejects.toThrow(/PROPOSAL_BYTES_MAX/);
    expect(leader!.replica.status().lastIndex).toBe(lastIndex);
    expect(await db.get('big')).toBeUndefined();
    // The largest write that fits is taken, and the cluster goes on.
    await db.set('big', tooBig.subarray(1));
    await db.set('after', 'y');
    expect((await db.get('big'))?.length).toBe(tooBig.length - 1);
    expect(String(await db.get('after'))).toBe('y');
  });
});
