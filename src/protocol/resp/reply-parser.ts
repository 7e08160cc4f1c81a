// ReplyParser: the incremental parser of server replies (RESP2 and RESP3), what a client reads.
// Produces the value model of types.ts.
//
// Like RequestParser it is a state machine that keeps only the state of the one reply being
// parsed: a stack of open aggregates (bounded by NESTING_MAX), the pieces of a line or payload
// that spans chunks (joined once, when complete). A reply may be split at any byte. Bulk
// payloads inside one chunk are zero-copy subarrays of it, with the same ownership rules as
// RequestParser: `push` takes ownership of the chunk, nothing is ever written into it.
//
// Protocol errors (bad type byte, bad number, exceeded limit) throw RespProtocolError and poison
// the parser; error *replies* (`-ERR ...`) are values (RespError), not exceptions.

import { assert } from '../../stdx/assert.js';
import { ChunkFeed, EMPTY } from './chunk-feed.js';
import { RespProtocolError } from './errors.js';
import {
  NESTING_MAX,
  REPLY_AGGREGATE_LEN_MAX,
  REPLY_BULK_BYTES_MAX,
  REPLY_LINE_BYTES_MAX,
} from './limits.js';
import { RespAttributed, RespError, RespPush, type RespValue, RespVerbatim } from './types.js';

/** INCOMPLETE is what next() returns when more bytes are needed (null is a valid reply). */
export const INCOMPLETE: unique symbol = Symbol('INCOMPLETE');
/** NONE: internal "no value completed yet". */
const NONE: unique symbol = Symbol('NONE');

const CR = 0x0d;
const LF = 0x0a;
const MINUS = 0x2d;
const PLUS = 0x2b;
const ZERO = 0x30;
const NINE = 0x39;

// Type bytes.
const T_SIMPLE = 0x2b; // +
const T_ERROR = 0x2d; // -
const T_INTEGER = 0x3a; // :
const T_BULK = 0x24; // $
const T_ARRAY = 0x2a; // *
const T_NULL = 0x5f; // _
const T_BOOLEAN = 0x23; // #
const T_DOUBLE = 0x2c; // ,
const T_BIG_NUMBER = 0x28; // (
const T_BULK_ERROR = 0x21; // !
const T_VERBATIM = 0x3d; // =
const T_MAP = 0x25; // %
const T_SET = 0x7e; // ~
const T_ATTRIBUTE = 0x7c; // |
const T_PUSH = 0x3e; // >

const S_TYPE = 0;
const S_LINE = 1;
const S_BULK_DATA = 2;
const S_BULK_CR = 3;
const S_BULK_LF = 4;

export const ERR_CRLF = 'Protocol error: expected CRLF';
export const ERR_LINE_TOO_LONG = 'Protocol error: too long reply line';
export const ERR_BULK_LENGTH = 'Protocol error: invalid bulk length';
export const ERR_AGGREGATE_LENGTH = 'Protocol error: invalid multibulk length';
export const ERR_NESTING = 'Protocol error: too deep nesting';
export const ERR_INTEGER = 'Protocol error: invalid integer';
export const ERR_DOUBLE = 'Protocol error: invalid double';
export const ERR_BIG_NUMBER = 'Protocol error: invalid big number';
export const ERR_BOOLEAN = 'Protocol error: invalid boolean';
export const ERR_NULL = 'Protocol error: invalid null';
export const ERR_VERBATIM = 'Protocol error: invalid verbatim string';
/** errTypeByte names the byte found where a reply type was expected. */
export function errTypeByte(got: number): string {
  return `Protocol error: got '${String.fromCharCode(got)}' as reply type byte`;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);
const DOUBLE_TEXT = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const BIG_NUMBER_TEXT = /^[+-]?\d+$/;
/** Frame: an aggregate being filled. Maps and attributes count keys and values separately. */
interface Frame {
  type: number;
  remaining: number;
  items: RespValue[];
  /** attrs: attributes parsed in this frame for its next item, or null. */
  attrs: Map<RespValue, RespValue> | null;
}

export class ReplyParser extends ChunkFeed {
  private state = S_TYPE;
  /** type: the type byte of the value being read. */
  private type = 0;
  private stack: Frame[] = [];
  /** topAttrs: attributes that precede the next top-level reply. */
  private topAttrs: Map<RespValue, RespValue> | null = null;
  private need = 0;
  private pieces: Buffer[] = [];
  private piecesBytes = 0;
  private payload: Buffer = EMPTY;
  /** replyStart, replyCarried: where the current reply began in `buf`, bytes of it in earlier chunks. */
  private replyStart = 0;
  private replyCarried = 0;
  private inReply = false;

  /**
   * next returns the next complete reply, or INCOMPLETE when more bytes are needed. Throws
   * RespProtocolError on malformed input, and again on every later call (poisoned).
   */
  next(): RespValue | typeof INCOMPLETE {
    if (this.poison !== null) throw this.poison;
    for (;;) {
      if (this.pos >= this.buf.length && !this.advance()) return INCOMPLETE;
      const reply = this.parse();
      if (reply !== NONE) return reply;
    }
  }

  /** Iterates the complete replies available now. */
  *[Symbol.iterator](): IterableIterator<RespValue> {
    for (let reply = this.next(); reply !== INCOMPLETE; reply = this.next()) yield reply;
  }

  /** bufferedBytes counts the bytes of the incomplete reply so far plus those not parsed yet. */
  get bufferedBytes(): number {
    const partial = this.inReply ? this.replyCarried + (this.pos - this.replyStart) : 0;
    return partial + (this.buf.length - this.pos) + this.queuedBytes;
  }

  protected carry(): void {
    if (this.inReply) {
      this.replyCarried += this.buf.length - this.replyStart;
      this.replyStart = 0;
    }
  }

  private fail(message: string): never {
    const error = this.poisonWith(new RespProtocolError(message));
    this.stack = [];
    this.pieces = [];
    this.payload = EMPTY;
    throw error;
  }

  private parse(): RespValue | typeof NONE {
    const buf = this.buf;
    const end = buf.length;
    while (this.pos < end) {
      switch (this.state) {
        case S_TYPE: {
          if (!this.inReply) {
            this.inReply = true;
            this.replyStart = this.pos;
            this.replyCarried = 0;
          }
          this.type = buf[this.pos++]!;
          this.state = S_LINE;
          this.piecesBytes = 0;
          break;
        }
        case S_LINE: {
          const lf = buf.indexOf(LF, this.pos);
          if (lf === -1) {
            this.pieces.push(buf.subarray(this.pos));
            this.piecesBytes += end - this.pos;
            this.pos = end;
            if (this.piecesBytes > REPLY_LINE_BYTES_MAX + 1) this.fail(ERR_LINE_TOO_LONG);
            break;
          }
          let line = buf.subarray(this.pos, lf);
          if (this.piecesBytes > 0) {
            this.pieces.push(line);
            line = Buffer.concat(this.pieces, this.piecesBytes + line.length);
            this.pieces = [];
            this.piecesBytes = 0;
          }
          this.pos = lf + 1;
          if (line.length === 0 || line[line.length - 1] !== CR) this.fail(ERR_CRLF);
          line = line.subarray(0, line.length - 1);
          if (line.length > REPLY_LINE_BYTES_MAX) this.fail(ERR_LINE_TOO_LONG);
          this.state = S_TYPE;
          const value = this.onLine(line);
          if (value !== NONE) {
            const reply = this.complete(value);
            if (reply !== NONE) return reply;
          }
          break;
        }
        case S_BULK_DATA: {
          const avail = end - this.pos;
          if (this.piecesBytes === 0 && avail >= this.need) {
            this.payload = buf.subarray(this.pos, this.pos + this.need);
            this.pos += this.need;
          } else {
            const take = Math.min(avail, this.need);
            this.pieces.push(buf.subarray(this.pos, this.pos + take));
            this.piecesBytes += take;
            this.need -= take;
            this.pos += take;
            if (this.need > 0) break;
            this.payload = Buffer.concat(this.pieces, this.piecesBytes);
            this.pieces = [];
            this.piecesBytes = 0;
          }
          this.state = S_BULK_CR;
          break;
        }
        case S_BULK_CR: {
          if (buf[this.pos++] !== CR) this.fail(ERR_CRLF);
          this.state = S_BULK_LF;
          break;
        }
        case S_BULK_LF: {
          if (buf[this.pos++] !== LF) this.fail(ERR_CRLF);
          this.state = S_TYPE;
          const payload = this.payload;
          this.payload = EMPTY;
          const reply = this.complete(this.onPayload(payload));
          if (reply !== NONE) return reply;
          break;
        }
        default:
          assert(false, `ReplyParser: bad state ${this.state}`);
      }
    }
    return NONE;
  }

  /** onLine handles a type byte's line: a whole value, or the header of a bulk or aggregate. */
  private onLine(line: Buffer): RespValue | typeof NONE {
    const type = this.type;
    switch (type) {
      case T_SIMPLE:
        return line.toString('utf8');
      case T_ERROR:
        return new RespError(line.toString('utf8'));
      case T_INTEGER:
        return parseInteger(line) ?? this.fail(ERR_INTEGER);
      case T_BULK:
      case T_BULK_ERROR:
      case T_VERBATIM: {
        const n = parseLength(line);
        if (n === -1 && type === T_BULK) return null;
        if (n < 0 || n > REPLY_BULK_BYTES_MAX) this.fail(ERR_BULK_LENGTH);
        if (type === T_VERBATIM && n < 4) this.fail(ERR_VERBATIM);
        this.need = n;
        this.piecesBytes = 0;
        this.state = S_BULK_DATA;
        return NONE;
      }
      case T_ARRAY:
      case T_SET:
      case T_PUSH:
      case T_MAP:
      case T_ATTRIBUTE: {
        const n = parseLength(line);
        if (n === -1 && type === T_ARRAY) return null;
        if (n < 0 || n > REPLY_AGGREGATE_LEN_MAX) this.fail(ERR_AGGREGATE_LENGTH);
        if (n === 0) {
          if (type !== T_ATTRIBUTE) return buildAggregate(type, []);
          this.setAttrs(new Map());
          return NONE;
        }
        if (this.stack.length >= NESTING_MAX) this.fail(ERR_NESTING);
        const paired = type === T_MAP || type === T_ATTRIBUTE;
        this.stack.push({ type, remaining: paired ? 2 * n : n, items: [], attrs: null });
        return NONE;
      }
      case T_NULL:
        if (line.length !== 0) this.fail(ERR_NULL);
        return null;
      case T_BOOLEAN:
        if (line.length === 1 && line[0] === 0x74) return true; // t
        if (line.length === 1 && line[0] === 0x66) return false; // f
        return this.fail(ERR_BOOLEAN);
      case T_DOUBLE:
        return parseDouble(line.toString('latin1')) ?? this.fail(ERR_DOUBLE);
      case T_BIG_NUMBER: {
        const text = line.toString('latin1');
        if (!BIG_NUMBER_TEXT.test(text)) this.fail(ERR_BIG_NUMBER);
        return BigInt(text);
      }
      default:
        return this.fail(errTypeByte(type));
    }
  }

  private onPayload(payload: Buffer): RespValue {
    switch (this.type) {
      case T_BULK:
        return payload;
      case T_BULK_ERROR:
        return new RespError(payload.toString('utf8'), true);
      default: {
        assert(this.type === T_VERBATIM, 'ReplyParser: payload type');
        if (payload[3] !== 0x3a) this.fail(ERR_VERBATIM); // `fmt:`
        return new RespVerbatim(payload.toString('latin1', 0, 3), payload.subarray(4));
      }
    }
  }

  /** setAttrs keeps attributes for the next value; two attributes in a row are merged. */
  private setAttrs(attrs: Map<RespValue, RespValue>): void {
    const top = this.stack[this.stack.length - 1];
    const pending = top === undefined ? this.topAttrs : top.attrs;
    const merged = pending === null ? attrs : new Map([...pending, ...attrs]);
    if (top === undefined) this.topAttrs = merged;
    else top.attrs = merged;
  }

  /** complete adds a finished value to the open aggregates; returns the reply once all close. */
  private complete(value: RespValue): RespValue | typeof NONE {
    let v = value;
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (top === undefined) {
        if (this.topAttrs !== null) {
          v = new RespAttributed(this.topAttrs, v);
          this.topAttrs = null;
        }
        this.inReply = false;
        return v;
      }
      if (top.attrs !== null) {
        v = new RespAttributed(top.attrs, v);
        top.attrs = null;
      }
      top.items.push(v);
      if (--top.remaining > 0) return NONE;
      this.stack.pop();
      if (top.type === T_ATTRIBUTE) {
        this.setAttrs(pairsToMap(top.items));
        return NONE;
      }
      v = buildAggregate(top.type, top.items);
    }
  }
}

function buildAggregate(type: number, items: RespValue[]): RespValue {
  switch (type) {
    case T_ARRAY:
      return items;
    case T_SET:
      return new Set(items);
    case T_PUSH:
      return new RespPush(items);
    default:
      assert(type === T_MAP, 'ReplyParser: aggregate type');
      return pairsToMap(items);
  }
}

function pairsToMap(items: RespValue[]): Map<RespValue, RespValue> {
  const map = new Map<RespValue, RespValue>();
  for (let i = 0; i < items.length; i += 2) map.set(items[i]!, items[i + 1]!);
  return map;
}

/** parseLength reads a length: digits, no leading zeros; -1 allowed; -2 for anything invalid. */
function parseLength(line: Buffer): number {
  const n = line.length;
  if (n === 2 && line[0] === MINUS && line[1] === 0x31) return -1;
  if (n === 0 || n > 15 || (line[0] === ZERO && n > 1)) return -2;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const b = line[i]!;
    if (b < ZERO || b > NINE) return -2;
    v = v * 10 + (b - ZERO);
  }
  return v;
}

/** parseInteger reads a signed 64-bit integer: a number when safe, a bigint beyond; null if invalid. */
function parseInteger(line: Buffer): number | bigint | null {
  const n = line.length;
  let i = 0;
  let negative = false;
  if (line[0] === MINUS || line[0] === PLUS) {
    negative = line[0] === MINUS;
    i = 1;
  }
  if (i >= n) return null;
  let v = 0;
  for (let j = i; j < n; j++) {
    const b = line[j]!;
    if (b < ZERO || b > NINE) return null;
    v = v * 10 + (b - ZERO);
  }
  if (n - i <= 15) return negative && v !== 0 ? -v : v; // 15 digits always fit a safe integer
  const big = BigInt(line.toString('latin1'));
  if (big < INT64_MIN || big > INT64_MAX) return null;
  return big >= SAFE_MIN && big <= SAFE_MAX ? Number(big) : big;
}

/** parseDouble reads a RESP3 double, including inf, -inf and nan; null if invalid. */
function parseDouble(text: string): number | null {
  switch (text) {
    case 'inf':
    case '+inf':
      return Number.POSITIVE_INFINITY;
    case '-inf':
      return Number.NEGATIVE_INFINITY;
    case 'nan':
    case '-nan':
      return Number.NaN;
  }
  return DOUBLE_TEXT.test(text) ? Number(text) : null;
}
