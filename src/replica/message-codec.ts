// The binary encoding of Raft messages between cluster members (docs/peer-protocol.md,
// "Messages"). Fixed-width little-endian fields, like every other Cairn format: a message is a
// handful of integers and up to three byte strings, so a schema-less encoding (msgpack) would
// spend more bytes on field names and more time on dispatch than the data takes.
//
//   messages   := count u32 | message*count
//   message    := type u8 | to u64 | from u64 | term u64 | logTerm u64 | index u64 | commit u64
//                 | rejectHint u64 | reject bool | entryCount u32 | entry*entryCount
//                 | hasSnapshot bool | snapshot? | context bytes
//   entry      := term u64 | index u64 | entryType u8 | data bytes
//   snapshot   := index u64 | term u64 | voters ids | learners ids | votersOutgoing ids
//                 | learnersNext ids | autoLeave bool | data bytes
//   ids        := count u32 | u64*count
//   bytes      := length u32 | u8*length
//   bool       := u8, 0 or 1
//
// Decoding is strict and never trusts a count: every count and length is checked against the
// bytes left before anything is allocated, so a hostile frame cannot make us allocate more than
// it is long. Byte fields of decoded messages are copies (RawNode.step keeps them by reference).

import {
  type ConfState,
  EMPTY_BYTES,
  type Entry,
  type EntryType,
  LOCAL_MESSAGES,
  type Message,
  type MessageType,
  type NodeId,
  type Snapshot,
} from '../raft/types.js';
import { assert, unreachable } from '../stdx/assert.js';
import { readSafeU64LE, readU32LE, writeU64LE } from '../stdx/u64.js';
import { PeerProtocolError } from './errors.js';

/**
 * MESSAGE_TYPE_CODES: the wire code of each message type, etcd's raftpb numbers so traces read
 * alike. Local types have codes too (they are part of the numbering) but are never encoded and
 * are refused on decode.
 */
const MESSAGE_TYPE_CODES: Readonly<Record<MessageType, number>> = {
  MsgHup: 0,
  MsgBeat: 1,
  MsgProp: 2,
  MsgApp: 3,
  MsgAppResp: 4,
  MsgVote: 5,
  MsgVoteResp: 6,
  MsgSnap: 7,
  MsgHeartbeat: 8,
  MsgHeartbeatResp: 9,
  MsgUnreachable: 10,
  MsgSnapStatus: 11,
  MsgCheckQuorum: 12,
  MsgTransferLeader: 13,
  MsgTimeoutNow: 14,
  MsgReadIndex: 15,
  MsgReadIndexResp: 16,
  MsgPreVote: 17,
  MsgPreVoteResp: 18,
  // Beyond etcd's numbering (it ends at 23): Cairn's own request for a state-machine snapshot.
  MsgSnapRequest: 32,
};

/** MESSAGE_TYPES_BY_CODE: the network message types by wire code; local and unknown codes are absent. */
const MESSAGE_TYPES_BY_CODE: ReadonlyMap<number, MessageType> = new Map(
  (Object.entries(MESSAGE_TYPE_CODES) as [MessageType, number][])
    .filter(([type]) => !LOCAL_MESSAGES.has(type))
    .map(([type, code]) => [code, type]),
);

const ENTRY_TYPE_NORMAL = 0;
const ENTRY_TYPE_CONF_CHANGE = 1;

const U8 = 1;
const U32 = 4;
const U64 = 8;
/** MESSAGE_FIXED_BYTES: a message with no entries, no snapshot and an empty context. */
export const MESSAGE_FIXED_BYTES = U8 + 7 * U64 + U8 + U32 + U8 + U32;
/** ENTRY_FIXED_BYTES: an entry with empty data. */
export const ENTRY_FIXED_BYTES = 2 * U64 + U8 + U32;
/** SNAPSHOT_FIXED_BYTES: a snapshot with empty id lists and empty data. */
const SNAPSHOT_FIXED_BYTES = 2 * U64 + 4 * U32 + U8 + U32;
/** BATCH_HEADER_BYTES: the message count in front of a batch. */
export const BATCH_HEADER_BYTES = U32;

/** encodedMessageSize is the number of bytes `m` takes in a batch (without the batch header). */
export function encodedMessageSize(m: Message): number {
  let size = MESSAGE_FIXED_BYTES + m.context.length;
  for (const e of m.entries) size += ENTRY_FIXED_BYTES + e.data.length;
  const s = m.snapshot;
  if (s !== undefined) {
    const cs = s.metadata.confState;
    size += SNAPSHOT_FIXED_BYTES + s.data.length;
    size += U64 * (cs.voters.length + cs.learners.length + cs.votersOutgoing.length + cs.learnersNext.length);
  }
  return size;
}

/** encodedMessagesSize is the number of bytes encodeMessages(msgs) returns. */
export function encodedMessagesSize(msgs: readonly Message[]): number {
  let size = BATCH_HEADER_BYTES;
  for (const m of msgs) size += encodedMessageSize(m);
  return size;
}

/** encodeMessages encodes a batch into a fresh buffer. */
export function encodeMessages(msgs: readonly Message[]): Buffer {
  const out = Buffer.allocUnsafe(encodedMessagesSize(msgs));
  const end = encodeMessagesInto(msgs, out, 0);
  assert(end === out.length, 'message batch size was miscounted');
  return out;
}

/**
 * encodeMessagesInto writes a batch at out[at..] and returns the offset after it; out must have
 * encodedMessagesSize(msgs) bytes from `at`. Local message types and fields that are not safe
 * non-negative integers are programmer errors (assertions): the Raft core never makes them.
 */
export function encodeMessagesInto(msgs: readonly Message[], out: Buffer, at: number): number {
  const w = new Writer(out, at);
  w.u32(msgs.length);
  for (const m of msgs) writeMessage(w, m);
  return w.at;
}

function writeMessage(w: Writer, m: Message): void {
  assert(!LOCAL_MESSAGES.has(m.type), `local message ${m.type} cannot be sent to a peer`);
  w.u8(MESSAGE_TYPE_CODES[m.type]);
  w.u64(m.to);
  w.u64(m.from);
  w.u64(m.term);
  w.u64(m.logTerm);
  w.u64(m.index);
  w.u64(m.commit);
  w.u64(m.rejectHint);
  w.bool(m.reject);
  w.u32(m.entries.length);
  for (const e of m.entries) {
    w.u64(e.term);
    w.u64(e.index);
    w.u8(e.type === 'normal' ? ENTRY_TYPE_NORMAL : ENTRY_TYPE_CONF_CHANGE);
    w.bytes(e.data);
  }
  w.bool(m.snapshot !== undefined);
  if (m.snapshot !== undefined) {
    const { metadata, data } = m.snapshot;
    w.u64(metadata.index);
    w.u64(metadata.term);
    w.ids(metadata.confState.voters);
    w.ids(metadata.confState.learners);
    w.ids(metadata.confState.votersOutgoing);
    w.ids(metadata.confState.learnersNext);
    w.bool(metadata.confState.autoLeave);
    w.bytes(data);
  }
  w.bytes(m.context);
}

class Writer {
  constructor(
    private readonly out: Buffer,
    public at: number,
  ) {}

  u8(n: number): void {
    this.out[this.at++] = n;
  }

  bool(b: boolean): void {
    this.u8(b ? 1 : 0);
  }

  u32(n: number): void {
    assert(Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff, 'u32 out of range');
    this.out.writeUInt32LE(n, this.at);
    this.at += U32;
  }

  u64(n: number): void {
    writeU64LE(this.out, n, this.at); // asserts a safe non-negative integer
    this.at += U64;
  }

  ids(ids: readonly NodeId[]): void {
    this.u32(ids.length);
    for (const id of ids) this.u64(id);
  }

  bytes(b: Uint8Array): void {
    this.u32(b.length);
    this.out.set(b, this.at);
    this.at += b.length;
  }
}

/**
 * decodeMessages decodes a batch. It throws PeerProtocolError for anything that is not exactly
 * one valid batch: truncation, trailing bytes, unknown or local type codes, a count or length
 * beyond the bytes left, a flag other than 0 or 1, an integer of 2^53 or more, or a message the
 * Raft core would refuse with an assertion (an empty MsgProp, a MsgSnap without a snapshot,
 * entries or a snapshot on a type that carries none, MsgApp entries that do not follow `index`).
 * The input is borrowed: every byte field of the result is a copy.
 */
export function decodeMessages(bytes: Uint8Array): Message[] {
  const r = new Reader(bytes);
  const count = r.count(MESSAGE_FIXED_BYTES, 'message count');
  const msgs: Message[] = [];
  for (let i = 0; i < count; i++) msgs.push(readMessage(r));
  if (r.left() !== 0) throw new PeerProtocolError(`${r.left()} trailing bytes after ${count} messages`);
  return msgs;
}

function readMessage(r: Reader): Message {
  const code = r.u8();
  const type = MESSAGE_TYPES_BY_CODE.get(code);
  if (type === undefined) throw new PeerProtocolError(`unknown or local message type code ${code}`);
  const to = r.u64('to');
  const from = r.u64('from');
  const term = r.u64('term');
  const logTerm = r.u64('logTerm');
  const index = r.u64('index');
  const commit = r.u64('commit');
  const rejectHint = r.u64('rejectHint');
  const reject = r.bool('reject');
  const entryCount = r.count(ENTRY_FIXED_BYTES, 'entry count');
  const entries: Entry[] = [];
  for (let i = 0; i < entryCount; i++) {
    const eTerm = r.u64('entry term');
    const eIndex = r.u64('entry index');
    const typeCode = r.u8();
    let eType: EntryType;
    if (typeCode === ENTRY_TYPE_NORMAL) eType = 'normal';
    else if (typeCode === ENTRY_TYPE_CONF_CHANGE) eType = 'confChange';
    else throw new PeerProtocolError(`unknown entry type code ${typeCode}`);
    entries.push({ term: eTerm, index: eIndex, type: eType, data: r.bytes('entry data') });
  }
  let snapshot: Snapshot | undefined;
  if (r.bool('hasSnapshot')) {
    const sIndex = r.u64('snapshot index');
    const sTerm = r.u64('snapshot term');
    const confState: ConfState = {
      voters: r.ids('voters'),
      learners: r.ids('learners'),
      votersOutgoing: r.ids('votersOutgoing'),
      learnersNext: r.ids('learnersNext'),
      autoLeave: r.bool('autoLeave'),
    };
    snapshot = { metadata: { index: sIndex, term: sTerm, confState }, data: r.bytes('snapshot data') };
  }
  const context = r.bytes('context');
  const m: Message = {
    type,
    to,
    from,
    term,
    logTerm,
    index,
    entries,
    commit,
    snapshot,
    reject,
    rejectHint,
    context,
  };
  checkShape(m);
  return m;
}

/** checkShape refuses messages that decode but that the Raft core would assert on. */
function checkShape(m: Message): void {
  switch (m.type) {
    case 'MsgProp':
      if (m.entries.length === 0) throw new PeerProtocolError('MsgProp without entries');
      break;
    case 'MsgApp':
      for (let i = 0; i < m.entries.length; i++) {
        if ((m.entries[i] as Entry).index !== m.index + 1 + i) {
          throw new PeerProtocolError(
            `MsgApp entry ${i} has index ${(m.entries[i] as Entry).index}, not ${m.index + 1 + i}`,
          );
        }
      }
      break;
    case 'MsgSnap':
      break;
    case 'MsgAppResp':
    case 'MsgVote':
    case 'MsgVoteResp':
    case 'MsgPreVote':
    case 'MsgPreVoteResp':
    case 'MsgHeartbeat':
    case 'MsgHeartbeatResp':
    case 'MsgTransferLeader':
    case 'MsgTimeoutNow':
    case 'MsgReadIndex':
    case 'MsgReadIndexResp':
    case 'MsgSnapRequest':
      if (m.entries.length !== 0) throw new PeerProtocolError(`${m.type} with entries`);
      break;
    case 'MsgHup':
    case 'MsgBeat':
    case 'MsgUnreachable':
    case 'MsgSnapStatus':
    case 'MsgCheckQuorum':
      // MESSAGE_TYPES_BY_CODE has no local types, so readMessage never gets here.
      throw new PeerProtocolError(`local message ${m.type}`);
    default:
      unreachable(m.type);
  }
  if (m.type === 'MsgSnap') {
    if (m.snapshot === undefined) throw new PeerProtocolError('MsgSnap without a snapshot');
    if (m.entries.length !== 0) throw new PeerProtocolError('MsgSnap with entries');
  } else if (m.snapshot !== undefined) {
    throw new PeerProtocolError(`${m.type} with a snapshot`);
  }
}

class Reader {
  private at = 0;

  constructor(private readonly buf: Uint8Array) {}

  left(): number {
    return this.buf.length - this.at;
  }

  private need(n: number, what: string): void {
    if (this.left() < n) throw new PeerProtocolError(`truncated at ${what} (offset ${this.at})`);
  }

  u8(): number {
    this.need(U8, 'u8');
    return this.buf[this.at++] as number;
  }

  bool(what: string): boolean {
    this.need(U8, what);
    const b = this.buf[this.at++] as number;
    if (b > 1) throw new PeerProtocolError(`${what} flag is ${b}, not 0 or 1`);
    return b === 1;
  }

  u32(what: string): number {
    this.need(U32, what);
    const n = readU32LE(this.buf, this.at);
    this.at += U32;
    return n;
  }

  u64(what: string): number {
    this.need(U64, what);
    const n = readSafeU64LE(this.buf, this.at);
    if (n === undefined) throw new PeerProtocolError(`${what} is not a safe integer`);
    this.at += U64;
    return n;
  }

  /**
   * count reads an element count and refuses it when that many elements of at least `minBytes`
   * each cannot fit in the bytes left: this bounds every array we build by the input's length.
   */
  count(minBytes: number, what: string): number {
    const n = this.u32(what);
    if (n * minBytes > this.left())
      throw new PeerProtocolError(`${what} ${n} exceeds the ${this.left()} bytes left`);
    return n;
  }

  ids(what: string): NodeId[] {
    const n = this.count(U64, what);
    const ids: NodeId[] = [];
    for (let i = 0; i < n; i++) ids.push(this.u64(what));
    return ids;
  }

  /**
   * bytes reads a length-prefixed byte string as a copy with its own ArrayBuffer: the input is
   * borrowed, and Buffer#slice would be a view (so would Buffer.from's pool for short ones).
   */
  bytes(what: string): Uint8Array {
    const n = this.count(1, `${what} length`);
    if (n === 0) return EMPTY_BYTES;
    const b = new Uint8Array(this.buf.subarray(this.at, this.at + n)); // copies
    this.at += n;
    return b;
  }
}
