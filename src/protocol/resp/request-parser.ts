// RequestParser: the incremental parser of client requests, what a Redis server reads.
//
// Two forms, chosen by the first byte of a command (as Redis does):
//   - `*`: a RESP array of bulk strings, `*N\r\n` then N times `$len\r\n<len bytes>\r\n`;
//   - anything else: an inline command, one line split by the quoting rules of inline.ts.
// The grammar, the limits and the error messages are in docs/resp.md.
//
// Fast path: complete well-formed arrays are parsed in one go (fastCommand); everything else,
// including the incomplete command at the end of a chunk, goes through the state machine.
//
// Incremental: the parser is a state machine over bytes, so a frame may be split at any byte
// (inside a length, inside `\r\n`, inside a payload) and no byte is ever examined twice. What is
// kept between chunks is only the state of the one command being parsed: its arguments so far,
// the pieces of a bulk payload or inline line that spans chunks. Payload pieces are joined once,
// when complete, so a large payload in many chunks costs one copy (linear, not quadratic).
//
// Zero-copy: an argument that lies inside one pushed chunk is a subarray of that chunk; one that
// spans chunks is a fresh Buffer. The parser never writes into chunks and never reuses them, so
// arguments stay valid after later pushes, for as long as the caller keeps them. The price:
// `push` takes ownership of the chunk (the caller must not modify it afterwards), and an argument
// kept long-term pins its whole chunk in memory; a consumer that stores arguments (a cache, a
// key directory) should copy them. Socket 'data' chunks are fresh allocations, so this is safe.
// A caller that pushes views of a buffer it reuses calls own() before reusing it.

import { assert } from '../../stdx/assert.js';
import { ChunkFeed, EMPTY } from './chunk-feed.js';
import { RespProtocolError } from './errors.js';
import { splitInlineArgs } from './inline.js';
import {
  ARGS_MAX,
  BULK_BYTES_MAX,
  INLINE_BYTES_MAX,
  UNAUTHENTICATED_ARGS_MAX,
  UNAUTHENTICATED_BULK_BYTES_MAX,
} from './limits.js';

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a;
const DOLLAR = 0x24;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

// States. Plain numbers rather than an enum: they are compared in the hottest loop.
/** START: between commands; the next byte picks the form. */
const START = 0;
/** MB_LEN: the digits of `*N` (after the `*`). */
const MB_LEN = 1;
/** MB_LF: the `\n` after `*N\r`. */
const MB_LF = 2;
/** BULK_DOLLAR: the `$` of the next argument. */
const BULK_DOLLAR = 3;
/** BULK_LEN: the digits of `$len`. */
const BULK_LEN = 4;
/** BULK_LEN_LF: the `\n` after `$len\r`. */
const BULK_LEN_LF = 5;
/** BULK_DATA: the payload of an argument. */
const BULK_DATA = 6;
/** BULK_CR, BULK_LF: the `\r\n` after a payload. */
const BULK_CR = 7;
const BULK_LF = 8;
/** INLINE: an inline line, up to its `\n`. */
const INLINE = 9;

export const ERR_MULTIBULK_LENGTH = 'Protocol error: invalid multibulk length';
export const ERR_BULK_LENGTH = 'Protocol error: invalid bulk length';
export const ERR_UNAUTHENTICATED_MULTIBULK_LENGTH = 'Protocol error: unauthenticated multibulk length';
export const ERR_UNAUTHENTICATED_BULK_LENGTH = 'Protocol error: unauthenticated bulk length';
export const ERR_BULK_CRLF = 'Protocol error: expected CRLF after bulk data';
export const ERR_INLINE_TOO_BIG = 'Protocol error: too big inline request';
export const ERR_UNBALANCED_QUOTES = 'Protocol error: unbalanced quotes in request';
/** errExpectedDollar is Redis's message for a missing `$`, naming the byte found instead. */
export function errExpectedDollar(got: number): string {
  return `Protocol error: expected '$', got '${String.fromCharCode(got)}'`;
}

export class RequestParser extends ChunkFeed {
  private state = START;
  /** num, digits, negative: the length being read, digit by digit. */
  private num = 0;
  private digits = 0;
  private negative = false;
  /** argc, args: the announced argument count and the arguments read so far. */
  private argc = 0;
  private args: Buffer[] = [];
  /** need: payload bytes still missing from the current argument. */
  private need = 0;
  /** pieces, piecesBytes: parts of a payload or inline line that spans chunks. */
  private pieces: Buffer[] = [];
  private piecesBytes = 0;
  /**
   * ownedArgs, ownedPieces: how many of `args` and `pieces` own() has copied already (a payload
   * spanning many reads would otherwise be copied again at every read).
   */
  private ownedArgs = 0;
  private ownedPieces = 0;
  /** arg: the current argument's payload, between its last byte and its `\r\n`. */
  private arg: Buffer = EMPTY;
  /** cmdStart, cmdCarried: where the current command began in `buf`, bytes of it in earlier chunks. */
  private cmdStart = 0;
  private cmdCarried = 0;
  /** argsMax, bulkBytesMax: the limits in force (see restrict), with their errors. */
  private argsMax = ARGS_MAX;
  private bulkBytesMax = BULK_BYTES_MAX;
  private errArgs = ERR_MULTIBULK_LENGTH;
  private errBulk = ERR_BULK_LENGTH;

  /**
   * restrict switches to the limits for a client that has not authenticated (true) or back to
   * the normal ones (false). The server calls it before each command it parses, so a command
   * after a successful AUTH in the same chunk is held to the normal limits.
   */
  restrict(unauthenticated: boolean): void {
    this.argsMax = unauthenticated ? UNAUTHENTICATED_ARGS_MAX : ARGS_MAX;
    this.bulkBytesMax = unauthenticated ? UNAUTHENTICATED_BULK_BYTES_MAX : BULK_BYTES_MAX;
    this.errArgs = unauthenticated ? ERR_UNAUTHENTICATED_MULTIBULK_LENGTH : ERR_MULTIBULK_LENGTH;
    this.errBulk = unauthenticated ? ERR_UNAUTHENTICATED_BULK_LENGTH : ERR_BULK_LENGTH;
  }

  /**
   * next returns the next complete command as its arguments (never empty), or null when more
   * bytes are needed. Throws RespProtocolError on malformed input or an exceeded limit, and
   * again on every later call (the parser is poisoned).
   */
  next(): Buffer[] | null {
    if (this.poison !== null) throw this.poison;
    for (;;) {
      if (this.pos >= this.buf.length && !this.advance()) return null;
      const command = this.parse();
      if (command !== null) return command;
    }
  }

  /** Iterates the complete commands available now (next() until it returns null). */
  *[Symbol.iterator](): IterableIterator<Buffer[]> {
    for (let command = this.next(); command !== null; command = this.next()) yield command;
  }

  /**
   * bufferedBytes counts the bytes the parser holds: those of the incomplete command so far
   * (headers included) plus those pushed but not parsed yet. The server compares it with its
   * query-buffer limit. Zero after every command when the caller drains with next().
   */
  get bufferedBytes(): number {
    const partial = this.state === START ? 0 : this.cmdCarried + (this.pos - this.cmdStart);
    return partial + (this.buf.length - this.pos) + this.queuedBytes;
  }

  /**
   * own is for a caller that reads into a buffer it reuses (the server's shared socket read
   * buffer, src/server/resp/read-buffer.ts): it has pushed a view of that buffer, and before the
   * buffer is read into again the parser copies everything it still references there: the
   * unparsed bytes, the arguments of the incomplete command so far, the pieces of a payload that
   * spans reads. Commands already returned by next() are the caller's to copy if it keeps them.
   * A drained parser between commands (the common case) copies nothing.
   */
  own(): void {
    if (this.poison !== null) return;
    if (this.state !== START) {
      // The bytes of the current command parsed so far stay counted in bufferedBytes.
      this.cmdCarried += this.pos - this.cmdStart;
      this.cmdStart = 0;
    }
    this.ownUnparsed();
    const args = this.args;
    for (let i = this.ownedArgs; i < args.length; i++) args[i] = Buffer.from(args[i]!);
    this.ownedArgs = args.length;
    const pieces = this.pieces;
    for (let i = this.ownedPieces; i < pieces.length; i++) pieces[i] = Buffer.from(pieces[i]!);
    this.ownedPieces = pieces.length;
    if (this.arg.length > 0) this.arg = Buffer.from(this.arg);
  }

  /** carry notes, before `buf` is replaced, how much of the current command it held. */
  protected carry(): void {
    if (this.state !== START) {
      this.cmdCarried += this.buf.length - this.cmdStart;
      this.cmdStart = 0;
    }
  }

  private fail(message: string): never {
    // Drop everything: the connection is about to be closed.
    const error = this.poisonWith(new RespProtocolError(message));
    this.args = [];
    this.ownedArgs = 0;
    this.pieces = [];
    this.ownedPieces = 0;
    this.arg = EMPTY;
    throw error;
  }

  /** parse runs the state machine over `buf` until a command completes or the chunk ends. */
  private parse(): Buffer[] | null {
    const buf = this.buf;
    const end = buf.length;
    let pos = this.pos;
    let state = this.state;
    while (pos < end) {
      switch (state) {
        case START: {
          if (buf[pos] === STAR) {
            const command = this.fastCommand(buf, pos);
            if (command !== null) return command;
          }
          this.cmdStart = pos;
          this.cmdCarried = 0;
          if (buf[pos] === STAR) {
            pos++;
            state = MB_LEN;
            this.num = 0;
            this.digits = 0;
            this.negative = false;
          } else {
            state = INLINE;
            this.piecesBytes = 0;
          }
          break;
        }
        case MB_LEN: {
          const b = buf[pos++]!;
          if (b >= ZERO && b <= NINE) {
            // string2ll rules: no leading zeros, no "-0"; the count may not exceed ARGS_MAX
            // and the only negative count is the null array, -1.
            if (this.digits > 0 && this.num === 0) this.fail(ERR_MULTIBULK_LENGTH);
            this.num = this.num * 10 + (b - ZERO);
            this.digits++;
            if (this.negative && this.num !== 1) this.fail(ERR_MULTIBULK_LENGTH);
            if (!this.negative && this.num > this.argsMax) this.fail(this.errArgs);
          } else if (b === CR && this.digits > 0) {
            state = MB_LF;
          } else if (b === MINUS && this.digits === 0 && !this.negative) {
            this.negative = true;
          } else {
            this.fail(ERR_MULTIBULK_LENGTH);
          }
          break;
        }
        case MB_LF: {
          if (buf[pos++] !== LF) this.fail(ERR_MULTIBULK_LENGTH);
          if (this.negative || this.num === 0) {
            state = START; // `*-1\r\n` and `*0\r\n` are ignored, as in Redis
          } else {
            this.argc = this.num;
            this.args = [];
            this.ownedArgs = 0;
            state = BULK_DOLLAR;
          }
          break;
        }
        case BULK_DOLLAR: {
          const b = buf[pos++]!;
          if (b !== DOLLAR) this.fail(errExpectedDollar(b));
          state = BULK_LEN;
          this.num = 0;
          this.digits = 0;
          break;
        }
        case BULK_LEN: {
          const b = buf[pos++]!;
          if (b >= ZERO && b <= NINE) {
            if (this.digits > 0 && this.num === 0) this.fail(ERR_BULK_LENGTH);
            this.num = this.num * 10 + (b - ZERO);
            this.digits++;
            if (this.num > this.bulkBytesMax) this.fail(this.errBulk);
          } else if (b === CR && this.digits > 0) {
            state = BULK_LEN_LF;
          } else {
            this.fail(ERR_BULK_LENGTH);
          }
          break;
        }
        case BULK_LEN_LF: {
          if (buf[pos++] !== LF) this.fail(ERR_BULK_LENGTH);
          const need = this.num;
          // Fast path: payload and CRLF all in this chunk, the common case by far.
          if (end - pos >= need + 2 && buf[pos + need] === CR && buf[pos + need + 1] === LF) {
            this.args.push(buf.subarray(pos, pos + need));
            pos += need + 2;
            if (this.args.length === this.argc) {
              this.state = START;
              this.pos = pos;
              return this.complete();
            }
            state = BULK_DOLLAR;
          } else {
            this.need = need;
            this.piecesBytes = 0;
            state = BULK_DATA;
          }
          break;
        }
        case BULK_DATA: {
          const avail = end - pos;
          if (this.piecesBytes === 0 && avail >= this.need) {
            this.arg = buf.subarray(pos, pos + this.need);
            pos += this.need;
          } else {
            const take = Math.min(avail, this.need);
            this.pieces.push(buf.subarray(pos, pos + take));
            this.piecesBytes += take;
            this.need -= take;
            pos += take;
            if (this.need > 0) break;
            this.arg = Buffer.concat(this.pieces, this.piecesBytes);
            this.pieces = [];
            this.ownedPieces = 0;
            this.piecesBytes = 0;
          }
          state = BULK_CR;
          break;
        }
        case BULK_CR: {
          if (buf[pos++] !== CR) this.fail(ERR_BULK_CRLF);
          state = BULK_LF;
          break;
        }
        case BULK_LF: {
          if (buf[pos++] !== LF) this.fail(ERR_BULK_CRLF);
          this.args.push(this.arg);
          this.arg = EMPTY;
          if (this.args.length === this.argc) {
            this.state = START;
            this.pos = pos;
            return this.complete();
          }
          state = BULK_DOLLAR;
          break;
        }
        case INLINE: {
          const lf = buf.indexOf(LF, pos);
          if (lf === -1) {
            this.pieces.push(buf.subarray(pos));
            this.piecesBytes += end - pos;
            pos = end;
            // One extra byte: it may be the `\r` of a `\r\n` split across chunks.
            if (this.piecesBytes > INLINE_BYTES_MAX + 1) this.fail(ERR_INLINE_TOO_BIG);
            break;
          }
          let line = buf.subarray(pos, lf);
          if (this.piecesBytes > 0) {
            this.pieces.push(line);
            line = Buffer.concat(this.pieces, this.piecesBytes + line.length);
            this.pieces = [];
            this.ownedPieces = 0;
            this.piecesBytes = 0;
          }
          pos = lf + 1;
          if (line.length > 0 && line[line.length - 1] === CR) line = line.subarray(0, line.length - 1);
          if (line.length > INLINE_BYTES_MAX) this.fail(ERR_INLINE_TOO_BIG);
          const args = splitInlineArgs(line);
          if (args === null) this.fail(ERR_UNBALANCED_QUOTES);
          state = START;
          if (args.length > 0) {
            this.state = START;
            this.pos = pos;
            return args; // empty lines are ignored, as in Redis
          }
          break;
        }
        default:
          assert(false, `RequestParser: bad state ${state}`);
      }
    }
    this.pos = pos;
    this.state = state;
    return null;
  }

  /**
   * fastCommand parses a whole well-formed RESP array at `pos` without touching the state
   * machine, for the common case of complete commands in one chunk. Anything else (an incomplete
   * or malformed command, `*0`, `*-1`) returns null and the state machine, which is the
   * authority, parses it from `pos`. So the only bytes ever read twice are those of the one
   * incomplete command at the end of a chunk.
   */
  private fastCommand(buf: Buffer, start: number): Buffer[] | null {
    const end = buf.length;
    let pos = start + 1;
    let argc = 0;
    let b = 0;
    // `*N\r\n`, N in 1..ARGS_MAX without a leading zero.
    if (pos >= end || (b = buf[pos]!) <= ZERO || b > NINE) return null;
    for (;;) {
      argc = argc * 10 + (b - ZERO);
      if (argc > this.argsMax || ++pos >= end) return null;
      b = buf[pos]!;
      if (b < ZERO || b > NINE) break;
    }
    if (b !== CR || pos + 1 >= end || buf[pos + 1] !== LF) return null;
    pos += 2;
    const args: Buffer[] = [];
    for (let i = 0; i < argc; i++) {
      // `$len\r\n<payload>\r\n`
      if (pos + 1 >= end || buf[pos] !== DOLLAR) return null;
      b = buf[++pos]!;
      if (b < ZERO || b > NINE || (b === ZERO && buf[pos + 1] !== CR)) return null;
      let len = 0;
      for (;;) {
        len = len * 10 + (b - ZERO);
        if (len > this.bulkBytesMax || ++pos >= end) return null;
        b = buf[pos]!;
        if (b < ZERO || b > NINE) break;
      }
      const data = pos + 2;
      if (b !== CR || data + len + 2 > end || buf[pos + 1] !== LF) return null;
      if (buf[data + len] !== CR || buf[data + len + 1] !== LF) return null;
      args.push(buf.subarray(data, data + len));
      pos = data + len + 2;
    }
    this.pos = pos;
    this.state = START;
    return args;
  }

  /**
   * scanKeys looks ahead, without parsing anything for real, at the complete RESP arrays buffered
   * from the next command on (in the current chunk only, and only between commands) and notes
   * where the second argument of each lies in `scanned`: `starts[i]..ends[i]`, for at most
   * `starts.length` commands. It returns how many it noted. A hint for prefetching the keys of a
   * pipelined batch (most commands' key is their second argument; a wrong guess only touches
   * memory in vain): it allocates nothing, changes no state, and stops at the first command it
   * cannot read whole, whatever the reason, leaving every error to next().
   */
  scanKeys(starts: Uint32Array, ends: Uint32Array): number {
    if (this.poison !== null || this.state !== START) return 0;
    const buf = this.buf;
    const end = buf.length;
    const max = Math.min(starts.length, ends.length);
    let pos = this.pos;
    let n = 0;
    while (n < max && pos < end && buf[pos] === STAR) {
      let argc = 0;
      let b = 0;
      let p = pos + 1;
      while (p < end && (b = buf[p]!) >= ZERO && b <= NINE && argc <= this.argsMax) {
        argc = argc * 10 + (b - ZERO);
        p++;
      }
      if (p + 1 >= end || b !== CR || argc === 0 || argc > this.argsMax) break;
      p += 2;
      let i = 0;
      for (; i < argc; i++) {
        if (p >= end || buf[p] !== DOLLAR) break;
        let len = 0;
        p++;
        while (p < end && (b = buf[p]!) >= ZERO && b <= NINE && len <= this.bulkBytesMax) {
          len = len * 10 + (b - ZERO);
          p++;
        }
        if (b !== CR || len > this.bulkBytesMax || p + 2 + len + 2 > end) break;
        const data = p + 2;
        if (i === 1) {
          starts[n] = data;
          ends[n] = data + len;
        }
        p = data + len + 2;
      }
      if (i < argc) break;
      if (argc >= 2) n++;
      pos = p;
    }
    return n;
  }

  /** scanned: the chunk that scanKeys's offsets point into (valid until the next push or next()). */
  get scanned(): Buffer {
    return this.buf;
  }

  private complete(): Buffer[] {
    const args = this.args;
    assert(args.length === this.argc && args.length > 0, 'RequestParser: command complete');
    this.args = [];
    this.ownedArgs = 0;
    return args;
  }
}
