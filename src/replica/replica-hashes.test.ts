// Typed values (hashes) in a replicated group: the entry codec carries a put's value type
// (op 0x03), and a hash written on the leader reads back as a hash on every follower, through
// the same pipeline the RESP hash commands use.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestMember, type TestMember, until } from '../../test/support/replica-member.js';
import { CorruptionError, WrongTypeError } from '../storage/errors.js';
import { decodeHash, encodeHash } from '../storage/hash-codec.js';
import { ValueType } from '../storage/value-type.js';
import { decodeWrite, encodeWrite } from './entry-codec.js';
import { MemoryHub } from './memory-transport.js';

const b = (s: string) => Buffer.from(s);
const open: TestMember[] = [];

afterEach(async () => {
  for (const m of open.splice(0)) await m.db.close().catch(() => {});
});

describe('entry codec with value types', () => {
  it('round-trips a typed put, and writes a string put byte for byte as before', () => {
    const ops = [
      { type: 'put', key: b('h'), value: b('payload'), create: 7, version: 1, valueType: ValueType.HASH },
      { type: 'put', key: b('s'), value: b('v'), expiresAt: 99, create: 7, version: 2 },
      { type: 'delete', key: b('d') },
    ] as const;
    const data = encodeWrite(7, ops);
    const decoded = decodeWrite(data)!;
    expect(decoded.ts).toBe(7);
    expect(
      decoded.ops.map((op) => (op.type === 'put' ? [String(op.key), op.valueType ?? 0] : [String(op.key)])),
    ).toEqual([['h', ValueType.HASH], ['s', 0], ['d']]);
    const stringsOnly = encodeWrite(7, [ops[1]]);
    expect(stringsOnly.length).toBe(1 + 8 + 4 + 1 + 4 + 1 + 4 + 1 + 24);
    expect(stringsOnly[13]).toBe(0x01);
    // A typed put with a type this build does not know is damage.
    const bad = Buffer.from(encodeWrite(7, [ops[0]]));
    bad[bad.length - 1] = 200;
    expect(() => decodeWrite(bad)).toThrow(CorruptionError);
  });
});

describe('hashes in a replicated group', () => {
  it('a hash written on the leader reads back as a hash on every follower', async () => {
    const hub = new MemoryHub();
    const ids = [1, 2, 3];
    const members: TestMember[] = [];
    for (const id of ids) {
      const m = await startTestMember(hub, id, ids);
      members.push(m);
      open.push(m);
    }
    let leader: TestMember | undefined;
    await until(() => {
      leader = members.find((m) => m.replica.leaderReady);
      return leader !== undefined;
    });
    const key = b('user:1');
    // As HSET does: a read-modify-write of the whole hash through the pipeline, typed.
    const { durable } = leader!.db.pipeline.update(key, (current, expiresAt, valueType) => {
      expect(current === undefined || valueType === ValueType.HASH).toBe(true);
      return {
        result: undefined,
        write: encodeHash(new Map([['name', b('ada')]])),
        expiresAt,
        valueType: ValueType.HASH,
      };
    });
    await durable;
    await leader!.db.set('plain', 'v');
    const target = leader!.replica.applied;
    await until(() => members.every((m) => m.replica.applied >= target));
    for (const m of members) {
      const stored = m.engine.getStoredSync(key);
      expect(stored?.valueType).toBe(ValueType.HASH);
      expect([...decodeHash(stored!.value)]).toEqual([['name', b('ada')]]);
      expect(m.db.pipeline.readLatest(key).valueType).toBe(ValueType.HASH);
      await expect(m.db.get(key)).rejects.toThrow(WrongTypeError);
      expect(String(await m.db.get('plain'))).toBe('v');
    }
  });
});
