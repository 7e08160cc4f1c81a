// The handshake that opens every peer connection (docs/peer-protocol.md, "Handshake"). The
// connecting side sends `hello`; the accepting side answers `welcome` or `refuse` and closes.
// The connecting side then checks that the welcome comes from the member it meant to reach.
//
//   hello   := version u16 | clusterToken str | fromId u64 | fromName str | toName str
//              | resp str | http str
//   welcome := version u16 | id u64 | name str | resp str | http str
//   refuse  := reason str
//   str     := length u16 | utf-8 bytes (at most MAX_HANDSHAKE_STRING_BYTES)
//
// The token keeps members of different clusters (or a stray client) from talking to each other
// by mistake; it is sent in the clear and is no defence against someone on the network.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NodeId } from '../raft/types.js';
import { assert } from '../stdx/assert.js';
import { readSafeU64LE, writeU64LE } from '../stdx/u64.js';
import { PeerProtocolError } from './errors.js';
import { hexId } from './log-ids.js';
import { encodeFrame } from './peer-frame.js';

/** PEER_PROTOCOL_VERSION: the version this code speaks; bump it on any change to the wire format. */
export const PEER_PROTOCOL_VERSION = 1;

/** SUPPORTED_PROTOCOL_VERSIONS: the versions an accepting side answers with a welcome. */
export const SUPPORTED_PROTOCOL_VERSIONS: ReadonlySet<number> = new Set([PEER_PROTOCOL_VERSION]);

/** MAX_HANDSHAKE_STRING_BYTES bounds each string (names, token, addresses, reasons): ample for a host:port. */
export const MAX_HANDSHAKE_STRING_BYTES = 1024;

/**
 * MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES bounds the frames a connection accepts before its handshake
 * is done: the largest hello (six strings at most, plus fixed fields) fits with room to spare.
 */
export const MAX_HANDSHAKE_FRAME_PAYLOAD_BYTES = 8 * 1024;

export interface Hello {
  readonly version: number;
  readonly clusterToken: string;
  readonly fromId: NodeId;
  readonly fromName: string;
  readonly toName: string;
  /** resp is the sender's RESP client address "host:port". */
  readonly resp: string;
  /** http is the sender's HTTP client address "host:port", or "" when it serves none. */
  readonly http: string;
}

export interface Welcome {
  readonly version: number;
  readonly id: NodeId;
  readonly name: string;
  readonly resp: string;
  readonly http: string;
}

export interface Refuse {
  readonly reason: string;
}

/** HelloSender: who sends a hello (every connection a member opens says so). */
export interface HelloSender {
  readonly id: NodeId;
  readonly name: string;
  readonly resp: string;
  readonly http: string;
}

/**
 * helloFrame: the frame every connection a member opens to member `toName` starts with (message,
 * snapshot, start check or probe connection).
 */
export function helloFrame(self: HelloSender, clusterToken: string, toName: string): Buffer {
  const hello = encodeHello({
    version: PEER_PROTOCOL_VERSION,
    clusterToken,
    fromId: self.id,
    fromName: self.name,
    toName,
    resp: self.resp,
    http: self.http,
  });
  return encodeFrame('hello', hello);
}

export function encodeHello(h: Hello): Buffer {
  const w = new Writer();
  w.u16(h.version);
  w.str(h.clusterToken);
  w.u64(h.fromId);
  w.str(h.fromName);
  w.str(h.toName);
  w.str(h.resp);
  w.str(h.http);
  return w.finish();
}

export function decodeHello(payload: Uint8Array): Hello {
  const r = new Reader(payload);
  const hello: Hello = {
    version: r.u16(),
    clusterToken: r.str('clusterToken'),
    fromId: r.u64('fromId'),
    fromName: r.str('fromName'),
    toName: r.str('toName'),
    resp: r.str('resp'),
    http: r.str('http'),
  };
  r.end('hello');
  return hello;
}

export function encodeWelcome(wel: Welcome): Buffer {
  const w = new Writer();
  w.u16(wel.version);
  w.u64(wel.id);
  w.str(wel.name);
  w.str(wel.resp);
  w.str(wel.http);
  return w.finish();
}

export function decodeWelcome(payload: Uint8Array): Welcome {
  const r = new Reader(payload);
  const welcome: Welcome = {
    version: r.u16(),
    id: r.u64('id'),
    name: r.str('name'),
    resp: r.str('resp'),
    http: r.str('http'),
  };
  r.end('welcome');
  return welcome;
}

/** encodeRefuse encodes a refusal; a reason longer than the string limit is cut short. */
export function encodeRefuse(reason: string): Buffer {
  const w = new Writer();
  w.str(truncateUtf8(reason, MAX_HANDSHAKE_STRING_BYTES));
  return w.finish();
}

export function decodeRefuse(payload: Uint8Array): Refuse {
  const r = new Reader(payload);
  const refuse = { reason: r.str('reason') };
  r.end('refuse');
  return refuse;
}

/** AcceptorIdentity is what the accepting side checks a hello against. */
export interface AcceptorIdentity {
  readonly name: string;
  readonly clusterToken: string;
  /** isMember says whether (id, name) is a current member of the cluster (other than this node). */
  readonly isMember: (id: NodeId, name: string) => boolean;
  /** isRemoved says whether id was removed from the cluster (this node applied the removal). */
  readonly isRemoved?: (id: NodeId) => boolean;
  /** removalIndex: the index of the change that removed id, when this node applied it (the refusal names it). */
  readonly removalIndex?: (id: NodeId) => number | undefined;
}

/**
 * REMOVED_REFUSAL: how a refusal tells a member that it was removed from the cluster: a refusal
 * reason that starts with it (a stable wire text, docs/peer-protocol.md). The removed member
 * may never have applied its own removal (the leader committed it without it); etcd's peers
 * tell such a member the same way, and it stops.
 */
export const REMOVED_REFUSAL = 'removed from the cluster:';

/** isRemovedRefusal: the refusal says the connecting member was removed (REMOVED_REFUSAL). */
export function isRemovedRefusal(reason: string): boolean {
  return reason.startsWith(REMOVED_REFUSAL);
}

/** checkHello returns why the accepting side must refuse `hello`, or undefined to welcome it. */
export function checkHello(hello: Hello, self: AcceptorIdentity): string | undefined {
  if (!SUPPORTED_PROTOCOL_VERSIONS.has(hello.version)) {
    return `protocol version ${hello.version} is not supported (this node speaks ${[...SUPPORTED_PROTOCOL_VERSIONS].join(', ')})`;
  }
  if (!tokensEqual(hello.clusterToken, self.clusterToken)) return 'cluster token does not match';
  if (hello.toName !== self.name) return `this node is '${self.name}', not '${hello.toName}'`;
  if (!self.isMember(hello.fromId, hello.fromName)) {
    if (self.isRemoved?.(hello.fromId) === true) {
      const index = self.removalIndex?.(hello.fromId);
      const at = index === undefined ? '' : ` by the configuration change at index ${index}`;
      return `${REMOVED_REFUSAL} '${hello.fromName}' (id ${hexId(hello.fromId)}) was removed${at}; stop it and delete its directory`;
    }
    return `'${hello.fromName}' (id ${hexId(hello.fromId)}) is not a member of this node's cluster`;
  }
  return undefined;
}

/** checkWelcome returns why the connecting side must refuse `welcome`, or undefined to accept it. */
export function checkWelcome(
  welcome: Welcome,
  expected: { readonly id: NodeId; readonly name: string },
): string | undefined {
  if (welcome.version !== PEER_PROTOCOL_VERSION) return `welcome with protocol version ${welcome.version}`;
  if (welcome.id !== expected.id || welcome.name !== expected.name) {
    return `expected '${expected.name}' (id ${hexId(expected.id)}) but reached '${welcome.name}' (id ${hexId(welcome.id)})`;
  }
  return undefined;
}

/** tokensEqual compares in time independent of where the tokens differ (hashes have one length). */
function tokensEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  let out = Buffer.from(s).subarray(0, maxBytes).toString('utf8');
  // Cutting inside a character leaves a replacement character, which may take more bytes.
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, -1);
  return out;
}

class Writer {
  private readonly parts: Buffer[] = [];

  u16(n: number): void {
    const b = Buffer.allocUnsafe(2);
    b.writeUInt16LE(n, 0);
    this.parts.push(b);
  }

  u64(n: number): void {
    const b = Buffer.allocUnsafe(8);
    writeU64LE(b, n, 0);
    this.parts.push(b);
  }

  /** str writes a string; one longer than MAX_HANDSHAKE_STRING_BYTES is a programmer error (configuration is checked before). */
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    assert(b.length <= MAX_HANDSHAKE_STRING_BYTES, `handshake string of ${b.length} bytes`);
    this.u16(b.length);
    this.parts.push(b);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

class Reader {
  private at = 0;

  constructor(private readonly buf: Uint8Array) {}

  private need(n: number, what: string): void {
    if (this.buf.length - this.at < n) throw new PeerProtocolError(`handshake truncated at ${what}`);
  }

  u16(): number {
    this.need(2, 'version');
    const n = (this.buf[this.at] as number) | ((this.buf[this.at + 1] as number) << 8);
    this.at += 2;
    return n;
  }

  u64(what: string): number {
    this.need(8, what);
    const n = readSafeU64LE(this.buf, this.at);
    if (n === undefined) throw new PeerProtocolError(`handshake ${what} is not a safe integer`);
    this.at += 8;
    return n;
  }

  str(what: string): string {
    this.need(2, what);
    const n = (this.buf[this.at] as number) | ((this.buf[this.at + 1] as number) << 8);
    this.at += 2;
    if (n > MAX_HANDSHAKE_STRING_BYTES) throw new PeerProtocolError(`handshake ${what} of ${n} bytes`);
    this.need(n, what);
    let s: string;
    try {
      s = UTF8.decode(this.buf.subarray(this.at, this.at + n)); // decoding copies
    } catch {
      throw new PeerProtocolError(`handshake ${what} is not valid UTF-8`);
    }
    this.at += n;
    return s;
  }

  end(what: string): void {
    if (this.at !== this.buf.length)
      throw new PeerProtocolError(`${this.buf.length - this.at} trailing bytes after ${what}`);
  }
}
