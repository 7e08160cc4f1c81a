// The RESP encoder: ReplyWriter for the server's replies (RESP2 and RESP3), encodeCommand for
// clients' requests, SHARED for replies that are the same bytes every time.
//
// ReplyWriter is built for throughput. Replies are appended into a slab (one Buffer, allocated
// when first needed) instead of one Buffer per reply; the server flushes once per turn of the
// event loop with takeChunks(), which hands out subarrays of the slab plus, by reference, any
// large payload (so one flush is one write or one writev: socket.cork(), write each chunk,
// socket.uncork()). Bytes handed out are never written again: the writer only appends after
// them, and takes a fresh slab when the current one is full, so a socket may hold a chunk for
// as long as it likes. The old slab is freed by the GC once every chunk of it is written.
//
// RESP2 fallbacks follow Redis (networking.c): map -> flat array of 2n, set and push -> array,
// null -> `$-1` (null()) or `*-1` (nullArray()), boolean -> integer 1/0, double and big number
// -> bulk string, verbatim -> bulk string of the text, bulk error -> simple error.

import { assert } from '../../stdx/assert.js';
import { WRITER_COPY_BYTES_MAX, WRITER_SLAB_BYTES, WRITER_SLAB_FREE_BYTES_MIN } from './limits.js';
import {
  RespAttributed,
  RespError,
  RespPush,
  type RespValue,
  RespVerbatim,
  type RespVersion,
} from './types.js';

const CR = 0x0d;
const LF = 0x0a;
const ZERO = 0x30;
const MINUS = 0x2d;
/** HEADER_BYTES_MAX: a type byte, a sign, 16 digits (safe integers) and CRLF. */
const HEADER_BYTES_MAX = 1 + 1 + 16 + 2;
const EMPTY = Buffer.alloc(0);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** SHARED: replies that are the same bytes every time, encoded once (Redis's shared objects). */
export const SHARED = Object.freeze({
  ok: Buffer.from('+OK\r\n'),
  pong: Buffer.from('+PONG\r\n'),
  queued: Buffer.from('+QUEUED\r\n'),
  zero: Buffer.from(':0\r\n'),
  one: Buffer.from(':1\r\n'),
  /** nullBulk: RESP2's null bulk string, `$-1`. */
  nullBulk: Buffer.from('$-1\r\n'),
  /** nullArray: RESP2's null array, `*-1`. */
  nullArray: Buffer.from('*-1\r\n'),
  /** null3: RESP3's null, `_`. */
  null3: Buffer.from('_\r\n'),
  emptyArray: Buffer.from('*0\r\n'),
  emptyBulk: Buffer.from('$0\r\n\r\n'),
  true3: Buffer.from('#t\r\n'),
  false3: Buffer.from('#f\r\n'),
  crlf: Buffer.from('\r\n'),
});

/** decimalDigits counts the digits of a non-negative safe integer. */
function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

/** writeDecimal writes a non-negative safe integer at `at`, returns the position after it. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  if (n < 10) {
    buf[at] = ZERO + n;
    return at + 1;
  }
  const end = at + decimalDigits(n);
  let p = end;
  while (n >= 10) {
    const q = Math.floor(n / 10);
    buf[--p] = ZERO + (n - q * 10);
    n = q;
  }
  buf[--p] = ZERO + n;
  return end;
}

/** oneLine makes text safe for a simple string or error: CR and LF become spaces, as Redis does. */
function oneLine(text: string): string {
  return text.indexOf('\r') === -1 && text.indexOf('\n') === -1 ? text : text.replace(/[\r\n]/g, ' ');
}

/** formatDouble spells a double as Redis does: inf, -inf, nan, else the shortest exact decimal. */
export function formatDouble(n: number): string {
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  if (Number.isNaN(n)) return 'nan';
  return Object.is(n, -0) ? '-0' : String(n);
}

export class ReplyWriter {
  /** slab, start, pos: the current slab, the first byte not handed out yet, the end of the data. */
  private slab: Buffer = EMPTY;
  private start = 0;
  private pos = 0;
  /** chunks: data ready to hand out, in order (sealed slab regions and referenced payloads). */
  private chunks: Buffer[] = [];
  private chunksBytes = 0;

  /** protocol: the version the connection negotiated (HELLO); changes take effect at once. */
  constructor(public protocol: RespVersion = 2) {}

  /** pendingBytes counts the encoded bytes not yet taken (for the server's output-buffer limit). */
  get pendingBytes(): number {
    return this.chunksBytes + (this.pos - this.start);
  }

  /**
   * takeChunks hands out everything encoded since the last take, in order, as one or more
   * Buffers (none when nothing is pending). They stay valid and unchanged forever.
   */
  takeChunks(): Buffer[] {
    this.seal();
    const chunks = this.chunks;
    this.chunks = [];
    this.chunksBytes = 0;
    if (this.slab.length - this.pos < WRITER_SLAB_FREE_BYTES_MIN) this.release();
    return chunks;
  }

  /** take is takeChunks joined into one Buffer (a copy only when there is more than one chunk). */
  take(): Buffer {
    const chunks = this.takeChunks();
    if (chunks.length === 1) return chunks[0]!;
    return chunks.length === 0 ? EMPTY : Buffer.concat(chunks);
  }

  /** heldBytes is the size of the slab the writer holds (0 after release), for tests and metrics. */
  get heldBytes(): number {
    return this.slab.length;
  }

  /** release drops the slab (when nothing is pending), so an idle connection holds no memory. */
  release(): void {
    assert(this.pos === this.start, 'ReplyWriter.release: bytes pending');
    this.slab = EMPTY;
    this.start = 0;
    this.pos = 0;
  }

  // ---- Replies ---------------------------------------------------------------------------------

  /** raw appends bytes that are already RESP (SHARED replies, a cached encoding). */
  raw(bytes: Buffer): void {
    if (bytes.length > WRITER_COPY_BYTES_MAX) {
      this.append(bytes);
      return;
    }
    this.ensure(bytes.length);
    bytes.copy(this.slab, this.pos);
    this.pos += bytes.length;
  }

  ok(): void {
    this.raw(SHARED.ok);
  }

  pong(): void {
    this.raw(SHARED.pong);
  }

  /** simple writes a simple string `+text`; CR and LF in it become spaces. */
  simple(text: string): void {
    this.line(0x2b, oneLine(text));
  }

  /**
   * error writes a simple error `-message`. The message is sent as given, so it must start with
   * its code (`ERR ...`, `WRONGTYPE ...`); CR and LF become spaces.
   */
  error(message: string): void {
    assert(message.length > 0, 'ReplyWriter.error: empty message');
    this.line(0x2d, oneLine(message));
  }

  /** bulkError writes a RESP3 bulk error `!len` (any bytes); RESP2 gets a simple error. */
  bulkError(message: string): void {
    if (this.protocol === 2) {
      this.error(message);
      return;
    }
    this.bulkLike(0x21, message);
  }

  /** integer writes `:n`. Numbers must be safe integers; bigints must fit 64 bits. */
  integer(n: number | bigint): void {
    if (typeof n === 'bigint') {
      assert(n >= INT64_MIN && n <= INT64_MAX, 'ReplyWriter.integer: beyond 64 bits');
      this.line(0x3a, n.toString());
      return;
    }
    assert(Number.isSafeInteger(n), 'ReplyWriter.integer: not a safe integer');
    this.header(0x3a, n);
  }

  /** bulk writes a bulk string (UTF-8 for strings), or the null bulk string for null. */
  bulk(value: Buffer | string | null): void {
    if (value === null) {
      this.null();
      return;
    }
    if (typeof value === 'string') {
      this.bulkLike(0x24, value);
      return;
    }
    const n = value.length;
    if (n > WRITER_COPY_BYTES_MAX) {
      this.header(0x24, n);
      this.append(value);
      this.ensure(2);
      this.crlf();
      return;
    }
    this.ensure(HEADER_BYTES_MAX + n + 2);
    this.headerUnchecked(0x24, n);
    value.copy(this.slab, this.pos);
    this.pos += n;
    this.crlf();
  }

  /**
   * bulkBorrowed is `bulk` of bytes lent for the call only (a view of a store's cache): a payload
   * too long to copy into the slab, which `bulk` would keep by reference, is copied first.
   */
  bulkBorrowed(value: Buffer): void {
    this.bulk(value.length > WRITER_COPY_BYTES_MAX ? Buffer.from(value) : value);
  }

  /** null writes a null: `_` in RESP3, the null bulk string `$-1` in RESP2. */
  null(): void {
    this.raw(this.protocol === 3 ? SHARED.null3 : SHARED.nullBulk);
  }

  /** nullArray writes a null where an array was expected: `_` in RESP3, `*-1` in RESP2. */
  nullArray(): void {
    this.raw(this.protocol === 3 ? SHARED.null3 : SHARED.nullArray);
  }

  /** boolean writes `#t`/`#f` in RESP3, `:1`/`:0` in RESP2. */
  boolean(b: boolean): void {
    if (this.protocol === 3) this.raw(b ? SHARED.true3 : SHARED.false3);
    else this.raw(b ? SHARED.one : SHARED.zero);
  }

  /** double writes `,n` in RESP3 and a bulk string in RESP2 (inf, -inf, nan as Redis spells them). */
  double(n: number): void {
    this.doubleText(formatDouble(n));
  }

  /**
   * doubleText is double with the number already spelled (a script's {double=n} reply, which
   * Redis 7.0 spells with "%.17g"); `text` must not contain CR or LF.
   */
  doubleText(text: string): void {
    if (this.protocol === 3) this.line(0x2c, text);
    else this.bulkLike(0x24, text);
  }

  /** bigNumber writes `(n` in RESP3 and a bulk string in RESP2. */
  bigNumber(n: bigint): void {
    this.bigNumberText(n.toString());
  }

  /**
   * bigNumberText is bigNumber with the number as text, unchecked, as Redis writes a script's
   * {big_number=s} reply; `text` must not contain CR or LF.
   */
  bigNumberText(text: string): void {
    if (this.protocol === 3) this.line(0x28, text);
    else this.bulkLike(0x24, text);
  }

  /** verbatim writes `=len\r\nfmt:text` in RESP3 and a bulk string of the text in RESP2. */
  verbatim(format: string, text: Buffer | string): void {
    assert(format.length === 3 && Buffer.byteLength(format) === 3, 'ReplyWriter.verbatim: format is 3 bytes');
    if (this.protocol === 2) {
      this.bulk(text);
      return;
    }
    const body = typeof text === 'string' ? Buffer.from(text) : text;
    this.header(0x3d, body.length + 4);
    this.ensure(4);
    this.pos += this.slab.write(format, this.pos, 'latin1');
    this.slab[this.pos++] = 0x3a;
    this.raw(body);
    this.ensure(2);
    this.crlf();
  }

  /** arrayHeader starts an array of n elements; the caller writes them next. */
  arrayHeader(n: number): void {
    this.header(0x2a, n);
  }

  /** mapHeader starts a map of n pairs (`%n`; RESP2: `*2n`); the caller writes key, value, ... */
  mapHeader(n: number): void {
    if (this.protocol === 3) this.header(0x25, n);
    else this.header(0x2a, 2 * n);
  }

  /** setHeader starts a set of n elements (`~n`; RESP2: `*n`). */
  setHeader(n: number): void {
    this.header(this.protocol === 3 ? 0x7e : 0x2a, n);
  }

  /** pushHeader starts an out-of-band push of n elements (`>n`; RESP2: `*n`, as pub/sub does). */
  pushHeader(n: number): void {
    this.header(this.protocol === 3 ? 0x3e : 0x2a, n);
  }

  /** attributeHeader starts n attribute pairs before a value. RESP3 only: RESP2 has no way to say it. */
  attributeHeader(n: number): void {
    assert(this.protocol === 3, 'ReplyWriter.attributeHeader: RESP3 only');
    this.header(0x7c, n);
  }

  /** array writes an array of values (see value()), or the null array for null. */
  array(items: readonly RespValue[] | null): void {
    if (items === null) {
      this.nullArray();
      return;
    }
    this.arrayHeader(items.length);
    for (const item of items) this.value(item);
  }

  /** bulkArray writes an array of bulk strings and nulls: KEYS, MGET, SCAN's keys. */
  bulkArray(items: readonly (Buffer | string | null)[]): void {
    this.arrayHeader(items.length);
    for (const item of items) this.bulk(item);
  }

  /** map writes a map of values (RESP2: a flat array of key, value, ...). */
  map(entries: ReadonlyMap<RespValue, RespValue> | readonly (readonly [RespValue, RespValue])[]): void {
    const size = entries instanceof Map ? entries.size : (entries as readonly unknown[]).length;
    this.mapHeader(size);
    for (const [k, v] of entries) {
      this.value(k);
      this.value(v);
    }
  }

  /** set writes a set of values (RESP2: an array). */
  set(items: ReadonlySet<RespValue> | readonly RespValue[]): void {
    this.setHeader(items instanceof Set ? items.size : (items as readonly RespValue[]).length);
    for (const item of items) this.value(item);
  }

  /** push writes an out-of-band push of values (RESP2: an array). */
  push(items: readonly RespValue[]): void {
    this.pushHeader(items.length);
    for (const item of items) this.value(item);
  }

  /**
   * value writes any value of the model in types.ts: string as a simple string, Buffer as a bulk
   * string, number as an integer when it is a safe integer (else a double), bigint as a big
   * number, null as null(), attributes dropped in RESP2.
   */
  value(v: RespValue): void {
    if (v === null) this.null();
    else if (typeof v === 'string') this.simple(v);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) this.integer(v);
      else this.double(v);
    } else if (typeof v === 'bigint') this.bigNumber(v);
    else if (typeof v === 'boolean') this.boolean(v);
    else if (Buffer.isBuffer(v)) this.bulk(v);
    else if (Array.isArray(v)) this.array(v);
    else if (v instanceof RespError) {
      if (v.bulk) this.bulkError(v.message);
      else this.error(v.message);
    } else if (v instanceof Map) this.map(v);
    else if (v instanceof Set) this.set(v);
    else if (v instanceof RespPush) this.push(v.items);
    else if (v instanceof RespVerbatim) this.verbatim(v.format, v.text);
    else {
      assert(v instanceof RespAttributed, 'ReplyWriter.value: unknown value');
      if (this.protocol === 3) {
        this.attributeHeader(v.attributes.size);
        for (const [k, a] of v.attributes) {
          this.value(k);
          this.value(a);
        }
      }
      this.value(v.value);
    }
  }

  // ---- Internals -------------------------------------------------------------------------------

  /** ensure makes room for n more bytes in the slab, sealing it and taking a new one if needed. */
  private ensure(n: number): void {
    if (this.pos + n <= this.slab.length) return;
    this.seal();
    this.slab = Buffer.allocUnsafe(Math.max(WRITER_SLAB_BYTES, n));
    this.start = 0;
    this.pos = 0;
  }

  /** seal moves the slab's data not handed out yet to the chunk list. */
  private seal(): void {
    if (this.pos === this.start) return;
    this.chunks.push(this.slab.subarray(this.start, this.pos));
    this.chunksBytes += this.pos - this.start;
    this.start = this.pos;
  }

  /** append queues a large buffer by reference, after what the slab holds. */
  private append(bytes: Buffer): void {
    this.seal();
    this.chunks.push(bytes);
    this.chunksBytes += bytes.length;
  }

  private crlf(): void {
    this.slab[this.pos++] = CR;
    this.slab[this.pos++] = LF;
  }

  /** header writes `<type><n>\r\n` for a safe integer n. */
  private header(type: number, n: number): void {
    this.ensure(HEADER_BYTES_MAX);
    this.headerUnchecked(type, n);
  }

  private headerUnchecked(type: number, n: number): void {
    const slab = this.slab;
    let p = this.pos;
    slab[p++] = type;
    if (n < 0) {
      slab[p++] = MINUS;
      n = -n;
    }
    p = writeDecimal(slab, p, n);
    slab[p++] = CR;
    slab[p++] = LF;
    this.pos = p;
  }

  /** line writes `<type><text>\r\n`; text must not contain CR or LF. */
  private line(type: number, text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit, so this reserves enough without measuring.
    const max = 3 * text.length + 3;
    if (max > WRITER_COPY_BYTES_MAX) {
      this.raw(Buffer.from(String.fromCharCode(type) + text + '\r\n'));
      return;
    }
    this.ensure(max);
    this.slab[this.pos++] = type;
    this.pos += this.slab.write(text, this.pos, 'utf8');
    this.crlf();
  }

  /** bulkLike writes `<type><len>\r\n<utf-8 text>\r\n` ($, !). */
  private bulkLike(type: number, text: string): void {
    const n = Buffer.byteLength(text, 'utf8');
    if (n > WRITER_COPY_BYTES_MAX) {
      this.header(type, n);
      this.append(Buffer.from(text, 'utf8'));
      this.ensure(2);
      this.crlf();
      return;
    }
    this.ensure(HEADER_BYTES_MAX + n + 2);
    this.headerUnchecked(type, n);
    this.pos += this.slab.write(text, this.pos, 'utf8');
    this.crlf();
  }
}

/**
 * encodeCommand encodes a client request as a RESP array of bulk strings (strings as UTF-8),
 * into one Buffer of exactly the right size.
 */
export function encodeCommand(args: readonly (string | Buffer)[]): Buffer {
  assert(args.length > 0, 'encodeCommand: no arguments');
  let size = 1 + decimalDigits(args.length) + 2;
  const lengths = new Array<number>(args.length);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const n = typeof arg === 'string' ? Buffer.byteLength(arg, 'utf8') : arg.length;
    lengths[i] = n;
    size += 1 + decimalDigits(n) + 2 + n + 2;
  }
  const out = Buffer.allocUnsafe(size);
  out[0] = 0x2a;
  let p = writeDecimal(out, 1, args.length);
  out[p++] = CR;
  out[p++] = LF;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const n = lengths[i]!;
    out[p++] = 0x24;
    p = writeDecimal(out, p, n);
    out[p++] = CR;
    out[p++] = LF;
    p += typeof arg === 'string' ? out.write(arg, p, 'utf8') : arg.copy(out, p);
    out[p++] = CR;
    out[p++] = LF;
  }
  assert(p === size, 'encodeCommand: size');
  return out;
}

/** encodeValue encodes one value of the model into a fresh Buffer (tests, tools; not the hot path). */
export function encodeValue(value: RespValue, protocol: RespVersion = 3): Buffer {
  const writer = new ReplyWriter(protocol);
  writer.value(value);
  return writer.take();
}
