// The payload of a Raft entry: a stamped write, decided by the leader (docs/cluster.md,
// "Entry payload"). Cairn replicates effects, not commands: the leader's write pipeline decides
// every value, commit timestamp and revision, and followers store exactly those bytes, so applying
// an entry needs no clock, no randomness and no earlier state (INCR, TTLs and transactions are
// resolved before the entry exists).
//
//   entry-data = write / check / ""                   ; "" is the leader's empty entry of a new term
//   write      = %x01 ts:u64 count:u32 op{count}
//   check      = %x02 at:u64                          ; `cairn check hash`: digest the state here;
//                                                     ; at = the leader's clock (ms) when asked
//   op         = %x01 key-len:u32 key value-len:u32 value expires-at:u64 create:u64 version:u64
//              / %x02 key-len:u32 key
//              / %x03 key-len:u32 key value-len:u32 value expires-at:u64 create:u64 version:u64
//                value-type:u8                        ; a put of a typed value (a hash)
//   expires-at = 0 for "never", else ms since the Unix epoch
//   value-type = 1..VALUE_TYPE_MAX (storage/value-type.ts); a string is always a %x01 put, so
//                string writes are byte for byte what they were. A build that predates types
//                reads %x03 as damage: upgrade every member before writing a hash.
//
// Integers are little-endian. Decoding checks every length against the bytes left, so a damaged
// entry is a CorruptionError, never a huge allocation or an out-of-range read.
import { readSafeU64LE, readU32LE, writeU64LE } from '../stdx/u64.js';
import type { WriteOp } from '../storage/engine.js';
import { CorruptionError } from '../storage/errors.js';
import { BATCH_OPS_MAX } from '../storage/limits.js';
import { VALUE_TYPE_MAX } from '../storage/value-type.js';

const KIND_WRITE = 0x01;
const KIND_CHECK = 0x02;
const CHECK_BYTES = 1 + 8;
const OP_PUT = 0x01;
const OP_DELETE = 0x02;
const OP_PUT_TYPED = 0x03;
/** Fixed bytes of a write before its ops: kind, ts, count. */
const WRITE_HEADER_BYTES = 1 + 8 + 4;
const PUT_FIXED_BYTES = 1 + 4 + 4 + 8 + 8 + 8;
const DELETE_FIXED_BYTES = 1 + 4;

/** StampedWrite: one atomic write at commit timestamp ts, as the engine takes it. */
export interface StampedWrite {
  readonly ts: number;
  readonly ops: readonly WriteOp[];
}

/** encodeWrite turns a stamped write into an entry's data (a fresh buffer; inputs are borrowed). */
export function encodeWrite(ts: number, ops: readonly WriteOp[]): Buffer {
  let size = WRITE_HEADER_BYTES;
  for (const op of ops) {
    size +=
      op.type === 'put'
        ? PUT_FIXED_BYTES + op.key.length + op.value.length + (op.valueType ? 1 : 0)
        : DELETE_FIXED_BYTES + op.key.length;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = KIND_WRITE;
  writeU64LE(out, ts, 1);
  out.writeUInt32LE(ops.length, 9);
  let at = WRITE_HEADER_BYTES;
  for (const op of ops) {
    if (op.type === 'put') {
      const valueType = op.valueType ?? 0;
      out[at] = valueType === 0 ? OP_PUT : OP_PUT_TYPED;
      out.writeUInt32LE(op.key.length, at + 1);
      out.set(op.key, at + 5);
      at += 5 + op.key.length;
      out.writeUInt32LE(op.value.length, at);
      out.set(op.value, at + 4);
      at += 4 + op.value.length;
      writeU64LE(out, op.expiresAt ?? 0, at);
      writeU64LE(out, op.create, at + 8);
      writeU64LE(out, op.version, at + 16);
      at += 24;
      if (valueType !== 0) out[at++] = valueType;
    } else {
      out[at] = OP_DELETE;
      out.writeUInt32LE(op.key.length, at + 1);
      out.set(op.key, at + 5);
      at += 5 + op.key.length;
    }
  }
  return out;
}

/** encodeCheck: the data of a check entry (`cairn check hash`), asked at the leader's `atMs`. */
export function encodeCheck(atMs: number): Buffer {
  const out = Buffer.alloc(CHECK_BYTES);
  out[0] = KIND_CHECK;
  writeU64LE(out, atMs, 1);
  return out;
}

/** decodeCheck: a check entry's leader clock, or undefined when the data is not a check entry. */
export function decodeCheck(data: Uint8Array): { readonly atMs: number } | undefined {
  if (data.length !== CHECK_BYTES || data[0] !== KIND_CHECK) return undefined;
  const atMs = readSafeU64LE(data, 1);
  if (atMs === undefined) throw new CorruptionError('a check entry with a clock beyond 2^53');
  return { atMs };
}

/**
 * decodeWrite reads an entry's data: undefined for the empty entry and a check entry, else the
 * write. Keys and values are views into `data` (the engine copies what it keeps).
 */
export function decodeWrite(data: Uint8Array): StampedWrite | undefined {
  if (data.length === 0) return undefined;
  const bad = (why: string): never => {
    throw new CorruptionError(`replicated entry (${data.length} bytes) is damaged: ${why}`);
  };
  if (data[0] === KIND_CHECK) {
    if (data.length !== CHECK_BYTES) bad(`a check entry of ${data.length} bytes`);
    return undefined;
  }
  if (data[0] !== KIND_WRITE) bad(`unknown kind ${data[0]}`);
  if (data.length < WRITE_HEADER_BYTES) bad('shorter than its header');
  const ts = readSafeU64LE(data, 1) ?? bad('timestamp beyond 2^53');
  const count = readU32LE(data, 9);
  if (count === 0 || count > BATCH_OPS_MAX) bad(`op count ${count}`);
  const ops: WriteOp[] = [];
  let at = WRITE_HEADER_BYTES;
  const take = (n: number): Uint8Array => {
    if (n > data.length - at) bad('a length runs past the end');
    const view = data.subarray(at, at + n);
    at += n;
    return view;
  };
  const u32 = (): number => readU32LE(take(4), 0);
  const u64 = (): number => readSafeU64LE(take(8), 0) ?? bad('an integer beyond 2^53');
  for (let i = 0; i < count; i++) {
    const type = take(1)[0];
    if (type === OP_PUT || type === OP_PUT_TYPED) {
      const key = take(u32());
      const value = take(u32());
      const expiresAt = u64();
      const create = u64();
      const version = u64();
      let valueType: number | undefined;
      if (type === OP_PUT_TYPED) {
        valueType = take(1)[0] as number;
        if (valueType === 0 || valueType > VALUE_TYPE_MAX) bad(`value type ${valueType}`);
      }
      ops.push({
        type: 'put',
        key,
        value,
        expiresAt: expiresAt === 0 ? undefined : expiresAt,
        create,
        version,
        ...(valueType === undefined ? {} : { valueType }),
      });
    } else if (type === OP_DELETE) {
      ops.push({ type: 'delete', key: take(u32()) });
    } else {
      bad(`unknown op ${type}`);
    }
  }
  if (at !== data.length) bad(`${data.length - at} trailing bytes`);
  return { ts, ops };
}
