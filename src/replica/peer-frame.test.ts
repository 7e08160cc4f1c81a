import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PeerProtocolError } from './errors.js';
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  type FrameKind,
  FrameReader,
  MAX_PEER_FRAME_BYTES,
  MAX_PEER_FRAME_PAYLOAD_BYTES,
  type PeerFrame,
} from './peer-frame.js';

function drain(reader: FrameReader): PeerFrame[] {
  const out: PeerFrame[] = [];
  for (let f = reader.next(); f !== undefined; f = reader.next())
    out.push({ kind: f.kind, payload: Buffer.from(f.payload) });
  return out;
}

const kinds: FrameKind[] = ['hello', 'welcome', 'refuse', 'raft', 'snapshot'];

describe('peer frames', () => {
  it('reassembles frames split at every byte boundary', () => {
    const frames = [
      encodeFrame('hello', Buffer.from('abc')),
      encodeFrame('raft', Buffer.alloc(0)),
      encodeFrame('raft', Buffer.alloc(3000, 7)),
    ];
    const wire = Buffer.concat(frames);
    for (let cut = 0; cut <= wire.length; cut++) {
      const r = new FrameReader();
      r.push(wire.subarray(0, cut));
      const got = drain(r);
      r.push(wire.subarray(cut));
      got.push(...drain(r));
      expect(got.map((f) => f.kind)).toEqual(['hello', 'raft', 'raft']);
      expect(got[2]?.payload.equals(Buffer.alloc(3000, 7))).toBe(true);
      expect(r.buffered).toBe(0);
    }
  });

  it('round-trips arbitrary frames fed in arbitrary chunks', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...kinds), fc.uint8Array({ maxLength: 100 })), { maxLength: 8 }),
        fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
        (specs, cuts) => {
          const wire = Buffer.concat(specs.map(([k, p]) => encodeFrame(k, p)));
          const r = new FrameReader();
          const got: PeerFrame[] = [];
          let at = 0;
          for (let i = 0; at < wire.length; i++) {
            const n = cuts[i % cuts.length] as number;
            r.push(wire.subarray(at, at + n));
            at += n;
            got.push(...drain(r));
          }
          expect(got.map((f) => [f.kind, Array.from(f.payload)])).toEqual(
            specs.map(([k, p]) => [k, Array.from(p)]),
          );
        },
      ),
    );
  });

  it('refuses a frame announcing more than the limit as soon as its header is in', () => {
    const head = Buffer.alloc(FRAME_HEADER_BYTES);
    head.writeUInt32LE(MAX_PEER_FRAME_PAYLOAD_BYTES + 1, 0);
    head[8] = 4;
    const r = new FrameReader();
    r.push(head);
    expect(() => r.next()).toThrow(PeerProtocolError);
    const small = new FrameReader(100);
    small.push(encodeFrame('hello', Buffer.alloc(101)));
    expect(() => small.next()).toThrow(/exceeds the limit of 100/);
    expect(MAX_PEER_FRAME_BYTES).toBe(MAX_PEER_FRAME_PAYLOAD_BYTES + FRAME_HEADER_BYTES);
  });

  it('refuses a frame whose CRC, kind or payload was damaged', () => {
    const frame = encodeFrame('raft', Buffer.from('hello world'));
    for (let i = 4; i < frame.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const damaged = Buffer.from(frame);
        damaged[i] = (damaged[i] as number) ^ (1 << bit);
        const r = new FrameReader();
        r.push(damaged);
        expect(() => r.next()).toThrow(PeerProtocolError);
      }
    }
    const unknown = Buffer.from(frame);
    unknown[8] = 99;
    const r = new FrameReader();
    r.push(unknown);
    expect(() => r.next()).toThrow(/unknown frame kind 99/);
  });

  it('random bytes yield frames or PeerProtocolError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const r = new FrameReader(1000);
        r.push(bytes);
        try {
          drain(r);
        } catch (err) {
          expect(err).toBeInstanceOf(PeerProtocolError);
        }
      }),
      { numRuns: 500 },
    );
  });
});
