// The frame codec: round trips, every cut and every bit flip detected, hostile length fields
// refused without allocating from them.
import { describe, expect, it } from 'vitest';
import type { Entry } from '../raft/types.js';
import { crc32c as crc32cOf } from '../stdx/crc32c.js';
import { writeU64LE } from '../stdx/u64.js';
import {
  decodeFrame,
  decodeSegmentHeader,
  encodeBatch,
  encodeSegmentHeader,
  FRAME_HEADER_BYTES,
  frameBytes,
  MAX_CONF_NODES,
  MAX_FRAME_PAYLOAD_BYTES,
  parseSegmentName,
  SEGMENT_HEADER_BYTES,
  segmentName,
  type WalFrame,
} from './wal-format.js';

const entry = (index: number, term: number, n: number): Entry => ({
  index,
  term,
  type: index % 2 === 0 ? 'confChange' : 'normal',
  data: new Uint8Array(n).map((_, i) => i + index),
});

const frames: WalFrame[] = [
  {
    type: 'snapshot',
    marker: {
      snapshot: {
        metadata: {
          index: 9,
          term: 2,
          confState: {
            voters: [1, 2, 3],
            learners: [4],
            votersOutgoing: [1, 2],
            learnersNext: [5],
            autoLeave: true,
          },
        },
        data: new Uint8Array([1, 2, 3]),
      },
      logStart: { index: 9, term: 2 },
      reset: true,
    },
  },
  { type: 'entry', entry: entry(10, 3, 0) },
  { type: 'entry', entry: entry(11, 3, 13) },
  { type: 'entry', entry: entry(2 ** 40, 2 ** 33, 8) },
  { type: 'hardState', hardState: { term: 3, vote: 2, commit: 10 } },
];

/** decodeAll decodes a buffer of frames, returning them or the first problem. */
function decodeAll(buf: Uint8Array): { frames: WalFrame[]; problem?: string } {
  const out: WalFrame[] = [];
  let at = 0;
  while (at < buf.length) {
    const d = decodeFrame(buf, at, buf.length);
    if (d.kind !== 'frame') return { frames: out, problem: d.kind === 'bad' ? d.reason : 'end' };
    out.push(d.frame);
    at = d.end;
  }
  return { frames: out };
}

describe('wal-format', () => {
  it('round-trips every frame type, 8-byte aligned, followed by a commit frame', () => {
    const batch = encodeBatch(frames);
    expect(batch.length % 8).toBe(0);
    const { frames: back, problem } = decodeAll(batch);
    expect(problem).toBeUndefined();
    expect(back.slice(0, -1)).toEqual(frames);
    expect(back[back.length - 1]?.type).toBe('commit');
    let size = 0;
    for (const f of back) size += frameBytes(f);
    expect(size).toBe(batch.length);
  });

  it('names and headers', () => {
    const name = segmentName(0x1f, 12345);
    expect(name).toBe('000000000000001f-00000000000000012345.wal');
    expect(parseSegmentName(name)).toEqual({ seq: 0x1f, firstIndex: 12345 });
    expect(parseSegmentName('000000000000001f-12345.wal')).toBeUndefined();
    const h = encodeSegmentHeader(7, 99);
    expect(h.length).toBe(SEGMENT_HEADER_BYTES);
    expect(decodeSegmentHeader(h)).toEqual({ seq: 7, firstIndex: 99 });
    for (let i = 0; i < h.length; i++) {
      const bad = h.slice();
      bad[i] = (bad[i] as number) ^ 0x10;
      expect(typeof decodeSegmentHeader(bad)).toBe('string');
    }
    expect(decodeSegmentHeader(h.subarray(0, 20))).toMatch(/short/);
  });

  it('detects a cut at every byte and a flip of every bit', () => {
    const batch = encodeBatch(frames);
    for (let cut = 1; cut < batch.length; cut++) {
      const r = decodeAll(batch.subarray(0, cut));
      // Whole frames before the cut decode; the cut frame is refused; nothing past it appears.
      if (r.problem === undefined) expect(cut % 8).toBe(0);
      expect(r.frames.length).toBeLessThan(frames.length + 1);
    }
    for (let i = 0; i < batch.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = batch.slice();
        bad[i] = (bad[i] as number) ^ (1 << bit);
        const r = decodeAll(bad);
        // Every byte is covered by a frame checksum, so every single-bit flip is reported.
        expect(r.problem, `byte ${i} bit ${bit}`).toBeDefined();
      }
    }
  });

  it('reads a zeroed frame header as the end of data', () => {
    expect(decodeFrame(new Uint8Array(64), 0, 64)).toEqual({ kind: 'end' });
  });

  it('refuses hostile lengths without allocating from them', () => {
    const batch = encodeBatch([{ type: 'entry', entry: entry(1, 1, 3) }]);
    for (const len of [0xffff_ffff, MAX_FRAME_PAYLOAD_BYTES + 1, MAX_FRAME_PAYLOAD_BYTES, 1 << 20]) {
      const bad = batch.slice();
      new DataView(bad.buffer).setUint32(8, len, true);
      const d = decodeFrame(bad, 0, bad.length);
      expect(d.kind).toBe('bad');
      expect(d.kind === 'bad' && /over the limit|past the end/.test(d.reason)).toBe(true);
    }
    // A snapshot marker whose node counts claim more than the payload holds: refused before
    // any list is built, even with a valid frame checksum (a bug, not damage, could write it).
    const marker = encodeBatch([frames[0] as WalFrame]);
    const p = FRAME_HEADER_BYTES;
    for (const count of [MAX_CONF_NODES, MAX_CONF_NODES + 1, 0xffff_ffff]) {
      const bad = marker.slice();
      new DataView(bad.buffer).setUint32(p + 40, count, true);
      reseal(bad, 0);
      const d = decodeFrame(bad, 0, bad.length);
      expect(d.kind).toBe('bad');
    }
    // An entry index beyond 2^53 is refused, not rounded.
    const big = batch.slice();
    writeU64LE(big, 1, p);
    big[p + 7] = 0xff;
    reseal(big, 0);
    expect(decodeFrame(big, 0, big.length).kind).toBe('bad');
  });
});

/** reseal recomputes the CRC of the frame at `at`, so that a test reaches the checks past it. */
function reseal(buf: Uint8Array, at: number): void {
  const len = new DataView(buf.buffer).getUint32(at + 8, true);
  const end = at + FRAME_HEADER_BYTES + Math.ceil(len / 8) * 8;
  const crc = crc32cOf(buf.subarray(at + 4, end));
  new DataView(buf.buffer).setUint32(at, crc, true);
}
