// cjson.decode as lua-cjson 2.1.0 (Redis's) parses, written here from its documented behaviour
// and checked against redis-server (test/server/redis-diff-lua.test.ts, CJSON_CASES and
// DECODE_CASES): the same values, the same leniency and the same error texts, so that a script's
// pcall(cjson.decode, input) behaves as on Redis. docs/lua.md, "cjson".
//
// The grammar lua-cjson accepts (its defaults: decode_invalid_numbers on, depth 1000):
//   text    = ws value ws END          END: the end of the input, or a zero byte
//   value   = object | array | string | number | "true" | "false" | "null"
//             (a literal is matched as a prefix: "truex" is true followed by a bad token)
//   object  = "{" ws ( string ws ":" ws value ws ( "," ws string ws ":" ws value ws )* )? "}"
//   array   = "[" ws ( value ws ( "," ws value ws )* )? "]"
//   string  = '"' ( byte other than '"', '\', zero | "\" escape )* '"'
//             escape: one of " \ / b f n r t, or uXXXX (a surrogate pair as two escapes);
//             raw bytes pass unchanged (control characters and invalid UTF-8 included)
//   number  = what C's strtod reads from a '-' or a digit, or from '+', "inf", "nan" (any case):
//             hexadecimal, leading zeros, "1.", Infinity and NaN included
//   ws      = ( " " | "\t" | "\n" | "\r" )*
// Errors: "Expected <what> but found <token> at character <n>", <token> a token type
// (T_OBJ_END, T_END, ...) or the scanner's complaint ("invalid token", "invalid number",
// "invalid escape code", "invalid unicode escape code", "unexpected end of string"), <n> 1-based.
// Nesting: "Found too many nested data structures (<depth>) at character <n>".

import { ByteBuilder } from './byte-builder.js';

/** DECODE_DEPTH_MAX: lua-cjson's decode_max_depth default. */
export const DECODE_DEPTH_MAX = 1000;

/** JsonValue: what the parser hands over (strings as bytes; NULL for JSON's null). */
export type JsonValue = number | boolean | Uint8Array | typeof NULL | JsonValue[] | JsonObject;
export interface JsonObject {
  readonly entries: [Uint8Array, JsonValue][];
}
/** NULL: JSON's null (cjson.null in Lua). */
export const NULL: unique symbol = Symbol('json null');

/** CjsonError: a refused text, with lua-cjson's message. */
export class CjsonError extends Error {}

enum T {
  OBJ_BEGIN,
  OBJ_END,
  ARR_BEGIN,
  ARR_END,
  STRING,
  NUMBER,
  BOOLEAN,
  NULL,
  COLON,
  COMMA,
  END,
  ERROR,
}

const TOKEN_NAMES = [
  'T_OBJ_BEGIN',
  'T_OBJ_END',
  'T_ARR_BEGIN',
  'T_ARR_END',
  'T_STRING',
  'T_NUMBER',
  'T_BOOLEAN',
  'T_NULL',
  'T_COLON',
  'T_COMMA',
  'T_END',
];

const ESCAPES: Record<number, number> = {
  34: 0x22, // "
  92: 0x5c, // \
  47: 0x2f, // /
  98: 0x08, // b
  102: 0x0c, // f
  110: 0x0a, // n
  114: 0x0d, // r
  116: 0x09, // t
};

interface Token {
  type: T;
  /** index: where the token starts (0-based), or where the scanner gave up. */
  index: number;
  number: number;
  boolean: boolean;
  string: Uint8Array;
  /** error: the scanner's complaint, for T.ERROR. */
  error: string;
}

/** DecodeOptions: lua-cjson's decode settings (cjson.decode_max_depth, decode_invalid_numbers). */
export interface DecodeOptions {
  /** maxDepth: the deepest nesting of arrays and objects read. */
  readonly maxDepth: number;
  /**
   * invalidNumbers: read numbers JSON does not allow (hexadecimal, '+', leading zeros, Infinity,
   * NaN); off, a number that starts as one is "invalid number" ('-' or a digit first) or "invalid
   * token" (anything else).
   */
  readonly invalidNumbers: boolean;
}

const DECODE_DEFAULTS: DecodeOptions = { maxDepth: DECODE_DEPTH_MAX, invalidNumbers: true };

/** decodeJson parses `data` as lua-cjson does, or throws CjsonError. */
export function decodeJson(data: Uint8Array, options: DecodeOptions = DECODE_DEFAULTS): JsonValue {
  return new Parser(data, options).document();
}

class Parser {
  private at = 0;
  private depth = 0;
  /** scratch: the bytes of a string with escapes, reused from one string to the next. */
  private readonly scratch = new ByteBuilder();
  private readonly token: Token = {
    type: T.END,
    index: 0,
    number: 0,
    boolean: false,
    string: EMPTY,
    error: '',
  };

  constructor(
    private readonly data: Uint8Array,
    private readonly options: DecodeOptions,
  ) {}

  document(): JsonValue {
    const t = this.next();
    const v = this.value(t);
    const end = this.next();
    if (end.type !== T.END) this.fail('the end', end);
    return v;
  }

  private byte(i: number): number {
    // C reads a zero byte past the end of the string.
    return i < this.data.length ? (this.data[i] as number) : 0;
  }

  private fail(expected: string, t: Token): never {
    const found = t.type === T.ERROR ? t.error : TOKEN_NAMES[t.type];
    throw new CjsonError(`Expected ${expected} but found ${found} at character ${t.index + 1}`);
  }

  private descend(): void {
    this.depth++;
    if (this.depth > this.options.maxDepth)
      throw new CjsonError(`Found too many nested data structures (${this.depth}) at character ${this.at}`);
  }

  private value(t: Token): JsonValue {
    switch (t.type) {
      case T.STRING:
        return t.string;
      case T.NUMBER:
        return t.number;
      case T.BOOLEAN:
        return t.boolean;
      case T.NULL:
        return NULL;
      case T.OBJ_BEGIN:
        return this.object();
      case T.ARR_BEGIN:
        return this.array();
      default:
        return this.fail('value', t);
    }
  }

  private object(): JsonObject {
    this.descend();
    const entries: [Uint8Array, JsonValue][] = [];
    let t = this.next();
    if (t.type === T.OBJ_END) {
      this.depth--;
      return { entries };
    }
    for (;;) {
      if (t.type !== T.STRING) this.fail('object key string', t);
      const key = t.string;
      t = this.next();
      if (t.type !== T.COLON) this.fail('colon', t);
      entries.push([key, this.value(this.next())]);
      t = this.next();
      if (t.type === T.OBJ_END) {
        this.depth--;
        return { entries };
      }
      if (t.type !== T.COMMA) this.fail('comma or object end', t);
      t = this.next();
    }
  }

  private array(): JsonValue[] {
    this.descend();
    const items: JsonValue[] = [];
    let t = this.next();
    if (t.type === T.ARR_END) {
      this.depth--;
      return items;
    }
    for (;;) {
      items.push(this.value(t));
      t = this.next();
      if (t.type === T.ARR_END) {
        this.depth--;
        return items;
      }
      if (t.type !== T.COMMA) this.fail('comma or array end', t);
      t = this.next();
    }
  }

  /** next scans the next token (the one Token object, reused: read it before the next call). */
  private next(): Token {
    const t = this.token;
    let c = this.byte(this.at);
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = this.byte(++this.at);
    t.index = this.at;
    const single = singleToken(c);
    if (single !== undefined) {
      t.type = single;
      if (single !== T.END) this.at++;
      return t;
    }
    if (c === 0x22) return this.stringToken(t);
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      if (!this.options.invalidNumbers && this.invalidNumberAhead()) return this.error(t, 'invalid number');
      return this.numberToken(t);
    }
    if (this.startsWith('true')) return this.literal(t, T.BOOLEAN, 4, true);
    if (this.startsWith('false')) return this.literal(t, T.BOOLEAN, 5, false);
    if (this.startsWith('null')) return this.literal(t, T.NULL, 4, false);
    // '+', and Infinity or NaN in any case: numbers strict JSON refuses and lua-cjson reads.
    if (this.options.invalidNumbers && this.invalidNumberAhead()) return this.numberToken(t);
    return this.error(t, 'invalid token');
  }

  /**
   * invalidNumberAhead: whether the text at the cursor starts a number JSON does not allow
   * (lua-cjson's json_is_invalid_number): a '+', a hexadecimal or a leading zero after an
   * optional '-', or "inf"/"nan" in any case. Other bad numbers are left to strtod.
   */
  private invalidNumberAhead(): boolean {
    let i = this.at;
    if (this.byte(i) === 0x2b) return true;
    if (this.byte(i) === 0x2d) i++;
    const c = this.byte(i);
    if (c === 0x30) {
      const next = this.byte(i + 1);
      return (next | 0x20) === 0x78 || (next >= 0x30 && next <= 0x39);
    }
    if (c <= 0x39) return false;
    const at = this.at;
    this.at = i;
    const named = this.startsWithNoCase('inf') || this.startsWithNoCase('nan');
    this.at = at;
    return named;
  }

  private error(t: Token, message: string): Token {
    t.type = T.ERROR;
    t.index = this.at;
    t.error = message;
    return t;
  }

  private literal(t: Token, type: T, length: number, value: boolean): Token {
    t.type = type;
    t.boolean = value;
    this.at += length;
    return t;
  }

  private startsWith(word: string): boolean {
    for (let i = 0; i < word.length; i++) if (this.byte(this.at + i) !== word.charCodeAt(i)) return false;
    return true;
  }

  private startsWithNoCase(word: string): boolean {
    for (let i = 0; i < word.length; i++)
      if ((this.byte(this.at + i) | 0x20) !== word.charCodeAt(i)) return false;
    return true;
  }

  private numberToken(t: Token): Token {
    const read = strtod(this.data, this.at);
    if (read === undefined) return this.error(t, 'invalid number');
    t.type = T.NUMBER;
    t.number = read.value;
    this.at = read.end;
    return t;
  }

  private stringToken(t: Token): Token {
    this.at++; // the opening quote
    const start = this.at;
    // No escape (most strings): a view of the input, which outlives the value tree (it is pushed
    // to Lua, which copies, within the same call).
    let end = start;
    for (let c = this.byte(end); c !== 0x22 && c !== 0x5c && c !== 0; c = this.byte(++end));
    if (this.byte(end) === 0x22) {
      this.at = end + 1;
      t.type = T.STRING;
      t.string = this.data.subarray(start, end);
      return t;
    }
    const out = this.scratch;
    out.reset();
    for (;;) {
      let c = this.byte(this.at);
      if (c === 0x22) break;
      if (c === 0) return this.error(t, 'unexpected end of string');
      if (c === 0x5c) {
        const e = this.byte(this.at + 1);
        if (e === 0x75) {
          const n = this.unicodeEscape(out);
          if (n === 0) return this.error(t, 'invalid unicode escape code');
          this.at += n;
          continue;
        }
        const mapped = ESCAPES[e];
        if (mapped === undefined) return this.error(t, 'invalid escape code');
        c = mapped;
        this.at++;
      }
      out.byte(c);
      this.at++;
    }
    this.at++; // the closing quote
    t.type = T.STRING;
    // A copy: the scratch builder is reused for the next string.
    t.string = out.view().slice();
    return t;
  }

  /**
   * unicodeEscape appends the UTF-8 of the \uXXXX escape (or surrogate pair) at the cursor and
   * returns the escape's length, or 0 when lua-cjson refuses it (bad digits, a low surrogate
   * first, a high surrogate without an escaped low one after it).
   */
  private unicodeEscape(out: ByteBuilder): number {
    let cp = this.hex4(this.at + 2);
    if (cp < 0) return 0;
    let length = 6;
    if ((cp & 0xf800) === 0xd800) {
      if (cp & 0x400) return 0;
      if (this.byte(this.at + 6) !== 0x5c || this.byte(this.at + 7) !== 0x75) return 0;
      const low = this.hex4(this.at + 8);
      if (low < 0 || (low & 0xfc00) !== 0xdc00) return 0;
      cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
      length = 12;
    }
    out.bytes(Buffer.from(String.fromCodePoint(cp), 'utf8'));
    return length;
  }

  private hex4(at: number): number {
    let n = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.byte(at + i);
      const d =
        c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1;
      if (d < 0) return -1;
      n = n * 16 + d;
    }
    return n;
  }
}

const EMPTY = new Uint8Array(0);
/** NEGATIVE_NAN: strtod's "-nan", a NaN with its sign bit set (Lua 5.1 prints it "-nan"). */
const NEGATIVE_NAN = new Float64Array(new BigUint64Array([0xfff8000000000000n]).buffer)[0] as number;

function singleToken(c: number): T | undefined {
  switch (c) {
    case 0x7b:
      return T.OBJ_BEGIN;
    case 0x7d:
      return T.OBJ_END;
    case 0x5b:
      return T.ARR_BEGIN;
    case 0x5d:
      return T.ARR_END;
    case 0x3a:
      return T.COLON;
    case 0x2c:
      return T.COMMA;
    case 0:
      return T.END;
    default:
      return undefined;
  }
}

/**
 * strtod reads a number at `at` as glibc's strtod does (the forms lua-cjson lets it read):
 * [sign] (decimal [exponent] | "0x" hex ["." hex] ["p" exponent] | "inf" ["inity"] | "nan"
 * ["(" chars ")"]). Undefined when nothing is a number there.
 */
export function strtod(data: Uint8Array, at: number): { value: number; end: number } | undefined {
  const b = (i: number): number => (i < data.length ? (data[i] as number) : 0);
  const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
  const isHex = (c: number): boolean => isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);
  const word = (i: number, w: string): boolean => {
    for (let k = 0; k < w.length; k++) if ((b(i + k) | 0x20) !== w.charCodeAt(k)) return false;
    return true;
  };
  let i = at;
  let sign = 1;
  if (b(i) === 0x2b || b(i) === 0x2d) {
    if (b(i) === 0x2d) sign = -1;
    i++;
  }
  if (word(i, 'inf'))
    return { value: sign * Number.POSITIVE_INFINITY, end: i + (word(i, 'infinity') ? 8 : 3) };
  if (word(i, 'nan')) {
    let end = i + 3;
    if (b(end) === 0x28) {
      let k = end + 1;
      while (
        isHex(b(k)) ||
        (b(k) | 0x20) === 0x78 ||
        b(k) === 0x5f ||
        ((b(k) | 0x20) >= 0x61 && (b(k) | 0x20) <= 0x7a)
      )
        k++;
      if (b(k) === 0x29) end = k + 1;
    }
    return { value: sign < 0 ? NEGATIVE_NAN : Number.NaN, end };
  }
  if (
    b(i) === 0x30 &&
    (b(i + 1) | 0x20) === 0x78 &&
    (isHex(b(i + 2)) || (b(i + 2) === 0x2e && isHex(b(i + 3))))
  ) {
    return hexFloat(data, i + 2, sign);
  }
  const start = i;
  while (isDigit(b(i))) i++;
  let digits = i - start;
  if (b(i) === 0x2e) {
    const frac = i + 1;
    let k = frac;
    while (isDigit(b(k))) k++;
    digits += k - frac;
    if (digits > 0) i = k;
  }
  if (digits === 0) return undefined;
  if ((b(i) | 0x20) === 0x65) {
    let k = i + 1;
    if (b(k) === 0x2b || b(k) === 0x2d) k++;
    if (isDigit(b(k))) {
      while (isDigit(b(k))) k++;
      i = k;
    }
  }
  const text = Buffer.from(data.buffer, data.byteOffset + start, i - start).toString('latin1');
  // JavaScript's Number() reads a decimal correctly rounded, as glibc's strtod does; "1." and
  // ".5" are decimals it reads too.
  return { value: sign * Number(text.endsWith('.') ? text.slice(0, -1) : text), end: i };
}

/** hexFloat reads hex digits [. hex digits] [p exponent] from `at` (after "0x"). */
function hexFloat(data: Uint8Array, at: number, sign: number): { value: number; end: number } {
  const b = (i: number): number => (i < data.length ? (data[i] as number) : 0);
  const hexValue = (c: number): number =>
    c >= 0x30 && c <= 0x39 ? c - 0x30 : (c | 0x20) >= 0x61 && (c | 0x20) <= 0x66 ? (c | 0x20) - 0x57 : -1;
  let i = at;
  let mantissa = 0n;
  let scale = 0;
  while (hexValue(b(i)) >= 0) mantissa = mantissa * 16n + BigInt(hexValue(b(i++)));
  if (b(i) === 0x2e) {
    i++;
    while (hexValue(b(i)) >= 0) {
      mantissa = mantissa * 16n + BigInt(hexValue(b(i++)));
      scale -= 4;
    }
  }
  if ((b(i) | 0x20) === 0x70) {
    let k = i + 1;
    let expSign = 1;
    if (b(k) === 0x2b || b(k) === 0x2d) {
      if (b(k) === 0x2d) expSign = -1;
      k++;
    }
    if (b(k) >= 0x30 && b(k) <= 0x39) {
      let e = 0;
      while (b(k) >= 0x30 && b(k) <= 0x39) {
        e = Math.min(e * 10 + (b(k) - 0x30), 100_000);
        k++;
      }
      scale += expSign * e;
      i = k;
    }
  }
  return { value: sign * scaleBinary(mantissa, scale), end: i };
}

/** scaleBinary: mantissa * 2^scale as the nearest double (exact in BigInt, rounded once). */
function scaleBinary(mantissa: bigint, scale: number): number {
  if (mantissa === 0n) return 0;
  if (scale >= 0) return scale > 2000 ? Number.POSITIVE_INFINITY : Number(mantissa << BigInt(scale));
  // Divide with enough extra bits that one rounding (Number of the quotient, then an exact power
  // of two) gives the nearest double; sticky bit for what the division drops.
  const shift = BigInt(-scale);
  const q = (mantissa << 64n) >> shift;
  const sticky = q << shift !== mantissa << 64n ? 1n : 0n;
  return Number(q | sticky) * 2 ** -64;
}
