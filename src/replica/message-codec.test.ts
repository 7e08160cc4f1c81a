import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Entry,
  LOCAL_MESSAGES,
  type Message,
  type MessageType,
  message,
  type Snapshot,
} from '../raft/types.js';
import { AssertionError } from '../stdx/assert.js';
import { PeerProtocolError } from './errors.js';
import { decodeMessages, encodedMessagesSize, encodeMessages, MESSAGE_FIXED_BYTES } from './message-codec.js';

const NETWORK_TYPES: MessageType[] = [
  'MsgProp',
  'MsgApp',
  'MsgAppResp',
  'MsgVote',
  'MsgVoteResp',
  'MsgPreVote',
  'MsgPreVoteResp',
  'MsgSnap',
  'MsgHeartbeat',
  'MsgHeartbeatResp',
  'MsgTransferLeader',
  'MsgTimeoutNow',
  'MsgReadIndex',
  'MsgReadIndexResp',
  'MsgSnapRequest',
];

const safeInt = fc.oneof(
  fc.integer({ min: 0, max: 1000 }),
  fc.constantFrom(0, 1, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
  fc.maxSafeNat(),
);
const bytes = fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 40 }));
const ids = fc.array(safeInt, { maxLength: 5 });

const snapshotArb: fc.Arbitrary<Snapshot> = fc.record({
  metadata: fc.record({
    index: safeInt,
    term: safeInt,
    confState: fc.record({
      voters: ids,
      learners: ids,
      votersOutgoing: ids,
      learnersNext: ids,
      autoLeave: fc.boolean(),
    }),
  }),
  data: bytes,
});

const entryArb = (index: number): fc.Arbitrary<Entry> =>
  fc.record({
    term: safeInt,
    index: fc.constant(index),
    type: fc.constantFrom('normal' as const, 'confChange' as const),
    data: bytes,
  });

/** messageArb: any message the codec promises to carry (the shapes the Raft core makes). */
const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...NETWORK_TYPES),
    to: safeInt,
    from: safeInt,
    term: safeInt,
    logTerm: safeInt,
    index: fc.integer({ min: 0, max: 2 ** 40 }),
    commit: safeInt,
    reject: fc.boolean(),
    rejectHint: safeInt,
    context: bytes,
    entryCount: fc.integer({ min: 0, max: 4 }),
    snapshot: snapshotArb,
  })
  .chain(({ entryCount, snapshot, ...m }) => {
    const withEntries = m.type === 'MsgApp' || m.type === 'MsgProp';
    const n = m.type === 'MsgProp' ? Math.max(1, entryCount) : withEntries ? entryCount : 0;
    const entries = fc.tuple(
      ...Array.from({ length: n }, (_, i) => entryArb(m.type === 'MsgApp' ? m.index + 1 + i : i)),
    );
    return entries.map((es) =>
      message({ ...m, entries: es, snapshot: m.type === 'MsgSnap' ? snapshot : undefined }),
    );
  });

/** normalize turns every byte field into a plain Uint8Array so toEqual compares contents only. */
function normalize(msgs: readonly Message[]): unknown {
  const b = (x: Uint8Array) => Array.from(x);
  return msgs.map((m) => ({
    ...m,
    context: b(m.context),
    entries: m.entries.map((e) => ({ ...e, data: b(e.data) })),
    snapshot: m.snapshot === undefined ? undefined : { ...m.snapshot, data: b(m.snapshot.data) },
  }));
}

/** decodeOrProtocolError: decoding hostile bytes either works or throws PeerProtocolError, nothing else. */
function decodeOrProtocolError(input: Uint8Array): Message[] | PeerProtocolError {
  try {
    return decodeMessages(input);
  } catch (err) {
    if (err instanceof PeerProtocolError) return err;
    throw err;
  }
}

describe('message codec', () => {
  it('round-trips arbitrary message batches', () => {
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 6 }), (msgs) => {
        const enc = encodeMessages(msgs);
        expect(enc.length).toBe(encodedMessagesSize(msgs));
        expect(normalize(decodeMessages(enc))).toEqual(normalize(msgs));
      }),
      { numRuns: 300 },
    );
  });

  it('decodes byte fields as copies, not views of the input', () => {
    const msg = message({
      type: 'MsgApp',
      to: 2,
      from: 1,
      term: 3,
      index: 9,
      entries: [{ term: 3, index: 10, type: 'normal', data: Uint8Array.of(1, 2, 3) }],
      context: Uint8Array.of(7),
    });
    const enc = encodeMessages([msg]);
    const [out] = decodeMessages(enc) as [Message];
    enc.fill(0xee);
    expect(Array.from((out.entries[0] as Entry).data)).toEqual([1, 2, 3]);
    expect(Array.from(out.context)).toEqual([7]);
    expect((out.entries[0] as Entry).data.buffer).not.toBe(enc.buffer);
  });

  it('every truncation and bit flips of a valid encoding decode or throw PeerProtocolError', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 3 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }),
        (msgs, flips) => {
          const enc = encodeMessages(msgs);
          for (let n = 0; n < enc.length; n++) {
            expect(decodeOrProtocolError(enc.subarray(0, n))).toBeInstanceOf(PeerProtocolError);
          }
          const damaged = Buffer.from(enc);
          for (const [at, bit] of flips) {
            const i = at % damaged.length;
            damaged[i] = (damaged[i] as number) ^ (1 << bit);
          }
          const out = decodeOrProtocolError(damaged);
          if (!(out instanceof PeerProtocolError)) {
            // Whatever decodes is a valid message: it encodes back to the same bytes.
            expect(encodeMessages(out).equals(damaged)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses random bytes with PeerProtocolError only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (input) => {
        decodeOrProtocolError(input);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses trailing bytes, unknown and local type codes, bad flags and unsafe integers', () => {
    const valid = encodeMessages([message({ type: 'MsgHeartbeat', to: 2, from: 1, term: 1 })]);
    const expectError = (bytes: Uint8Array, pattern: RegExp): void => {
      const err = decodeOrProtocolError(bytes);
      expect(err).toBeInstanceOf(PeerProtocolError);
      expect((err as PeerProtocolError).message).toMatch(pattern);
    };
    expectError(Buffer.concat([valid, Buffer.of(0)]), /trailing/);
    const typeAt = 4;
    for (const code of [0, 1, 10, 11, 12, 19, 255]) {
      const b = Buffer.from(valid);
      b[typeAt] = code;
      expectError(b, /type code/);
    }
    const rejectAt = 4 + 1 + 7 * 8;
    const badFlag = Buffer.from(valid);
    badFlag[rejectAt] = 2;
    expectError(badFlag, /flag/);
    const unsafe = Buffer.from(valid);
    unsafe.writeUInt32LE(2 ** 21, 4 + 1 + 8 + 8 + 4); // high half of term
    expectError(unsafe, /safe integer/);
  });

  it('refuses counts and lengths beyond the bytes left without allocating them', () => {
    const huge = Buffer.alloc(4);
    huge.writeUInt32LE(0xffff_ffff, 0);
    expect(() => decodeMessages(huge)).toThrow(/exceeds/);
    const m = Buffer.from(encodeMessages([message({ type: 'MsgApp', to: 2, from: 1, term: 1 })]));
    m.writeUInt32LE(0xffff_fff0, 4 + 1 + 7 * 8 + 1); // entry count
    expect(() => decodeMessages(m)).toThrow(/entry count/);
    const ctx = Buffer.from(encodeMessages([message({ type: 'MsgHeartbeat', to: 2, from: 1, term: 1 })]));
    ctx.writeUInt32LE(1 << 30, ctx.length - 4); // context length
    expect(() => decodeMessages(ctx)).toThrow(/context length/);
    expect(MESSAGE_FIXED_BYTES).toBe(67);
  });

  it('refuses shapes the Raft core would assert on', () => {
    const cases: [Message, RegExp][] = [
      [message({ type: 'MsgProp', to: 2, from: 1 }), /MsgProp without entries/],
      [
        message({
          type: 'MsgApp',
          to: 2,
          from: 1,
          index: 5,
          entries: [{ term: 1, index: 7, type: 'normal', data: new Uint8Array(0) }],
        }),
        /entry 0 has index 7/,
      ],
      [message({ type: 'MsgSnap', to: 2, from: 1 }), /without a snapshot/],
      [
        message({
          type: 'MsgVote',
          to: 2,
          from: 1,
          entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array(0) }],
        }),
        /with entries/,
      ],
      [
        message({
          type: 'MsgHeartbeat',
          to: 2,
          from: 1,
          snapshot: { metadata: { index: 1, term: 1, confState: emptyConf() }, data: new Uint8Array(0) },
        }),
        /with a snapshot/,
      ],
    ];
    for (const [m, pattern] of cases) expect(() => decodeMessages(encodeMessages([m]))).toThrow(pattern);
  });

  it('refuses to encode local messages and unsafe integers (programmer errors)', () => {
    for (const type of LOCAL_MESSAGES)
      expect(() => encodeMessages([message({ type })])).toThrow(AssertionError);
    expect(() => encodeMessages([message({ type: 'MsgHeartbeat', term: 2 ** 53 })])).toThrow(AssertionError);
    expect(() => encodeMessages([message({ type: 'MsgHeartbeat', term: 1.5 })])).toThrow(AssertionError);
  });
});

function emptyConf() {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}
