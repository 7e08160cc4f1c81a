import { describe, expect, it } from 'vitest';
import { PeerProtocolError } from './errors.js';
import {
  checkHello,
  checkWelcome,
  decodeHello,
  decodeRefuse,
  decodeWelcome,
  encodeHello,
  encodeRefuse,
  encodeWelcome,
  type Hello,
  isRemovedRefusal,
  MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES,
  MAX_HANDSHAKE_STRING_BYTES,
  PEER_PROTOCOL_VERSION,
} from './handshake.js';

const hello: Hello = {
  version: PEER_PROTOCOL_VERSION,
  clusterToken: 'sesame',
  fromId: 1,
  fromName: 'a',
  toName: 'b',
  resp: '127.0.0.1:6379',
  http: '',
};
const acceptor = {
  name: 'b',
  clusterToken: 'sesame',
  isMember: (id: number, name: string) => id === 1 && name === 'a',
};

describe('handshake', () => {
  it('round-trips hello, welcome and refuse', () => {
    expect(decodeHello(encodeHello(hello))).toEqual(hello);
    const welcome = { version: 1, id: 2 ** 40, name: 'bé', resp: '[::1]:1', http: 'h:2' };
    expect(decodeWelcome(encodeWelcome(welcome))).toEqual(welcome);
    expect(decodeRefuse(encodeRefuse('no'))).toEqual({ reason: 'no' });
    const long = decodeRefuse(encodeRefuse('é'.repeat(MAX_HANDSHAKE_STRING_BYTES)));
    expect(Buffer.byteLength(long.reason)).toBeLessThanOrEqual(MAX_HANDSHAKE_STRING_BYTES);
  });

  it('the largest hello fits the pre-handshake frame limit', () => {
    const s = 'x'.repeat(MAX_HANDSHAKE_STRING_BYTES);
    const big = { ...hello, clusterToken: s, fromName: s, toName: s, resp: s, http: s };
    expect(encodeHello(big).length).toBeLessThanOrEqual(MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES);
  });

  it('refuses truncated, padded and non-UTF-8 handshakes with PeerProtocolError', () => {
    const enc = encodeHello(hello);
    for (let n = 0; n < enc.length; n++)
      expect(() => decodeHello(enc.subarray(0, n))).toThrow(PeerProtocolError);
    expect(() => decodeHello(Buffer.concat([enc, Buffer.of(0)]))).toThrow(/trailing/);
    const bad = Buffer.from(enc);
    bad[4] = 0xff; // first byte of the token
    expect(() => decodeHello(bad)).toThrow(/UTF-8/);
    const long = Buffer.from(enc);
    long.writeUInt16LE(MAX_HANDSHAKE_STRING_BYTES + 1, 2);
    expect(() => decodeHello(long)).toThrow(PeerProtocolError);
  });

  it('the acceptor checks version, token, its own name and membership', () => {
    expect(checkHello(hello, acceptor)).toBeUndefined();
    expect(checkHello({ ...hello, version: 99 }, acceptor)).toMatch(/version 99/);
    expect(checkHello({ ...hello, clusterToken: 'sesamf' }, acceptor)).toMatch(/token/);
    expect(checkHello({ ...hello, clusterToken: '' }, acceptor)).toMatch(/token/);
    expect(checkHello({ ...hello, toName: 'c' }, acceptor)).toMatch(/this node is 'b', not 'c'/);
    expect(checkHello({ ...hello, fromId: 3 }, acceptor)).toMatch(/not a member/);
    expect(checkHello({ ...hello, fromName: 'z' }, acceptor)).toMatch(/not a member/);
  });

  it('a member removed from the cluster is told so, in a refusal it recognizes', () => {
    const knowing = { ...acceptor, isRemoved: (id: number) => id === 3 };
    const told = checkHello({ ...hello, fromId: 3 }, knowing);
    expect(told).toMatch(/was removed/);
    expect(isRemovedRefusal(told ?? '')).toBe(true);
    // Merely unknown (not removed): the ordinary refusal, which does not stop the member.
    const unknown = checkHello({ ...hello, fromId: 4 }, knowing);
    expect(unknown).toMatch(/not a member/);
    expect(isRemovedRefusal(unknown ?? '')).toBe(false);
    // When the acceptor applied the removal itself, the refusal names its index (the removed
    // member logs it: removal.ts); a removal known only from a checkpoint does not.
    expect(told).not.toMatch(/index/);
    const atIndex = checkHello({ ...hello, fromId: 3 }, { ...knowing, removalIndex: () => 57 });
    expect(atIndex).toMatch(/was removed by the configuration change at index 57;/);
    expect(isRemovedRefusal(atIndex ?? '')).toBe(true);
  });

  it('the connector checks that the welcome comes from whom it meant to reach', () => {
    const w = { version: 1, id: 2, name: 'b', resp: '', http: '' };
    expect(checkWelcome(w, { id: 2, name: 'b' })).toBeUndefined();
    expect(checkWelcome(w, { id: 3, name: 'b' })).toMatch(/expected 'b' \(id 3\) but reached 'b' \(id 2\)/);
    expect(checkWelcome({ ...w, name: 'c' }, { id: 2, name: 'b' })).toMatch(/reached 'c'/);
    expect(checkWelcome({ ...w, version: 2 }, { id: 2, name: 'b' })).toMatch(/version 2/);
  });

  it('names ids in hex, as member list, endpoint status and the logs do', () => {
    // The removed member's refusal said "(id 213932973024324)" for member list's c29226dce444.
    const id = 0xc29226dce444;
    const knowing = { ...acceptor, isRemoved: (x: number) => x === id };
    expect(checkHello({ ...hello, fromId: id }, knowing)).toMatch(/\(id c29226dce444\) was removed/);
    expect(checkHello({ ...hello, fromId: id }, acceptor)).toMatch(/\(id c29226dce444\) is not a member/);
    const w = { version: 1, id, name: 'b', resp: '', http: '' };
    expect(checkWelcome(w, { id: 0x1f, name: 'b' })).toMatch(/\(id 1f\) but reached 'b' \(id c29226dce444\)/);
  });
});
