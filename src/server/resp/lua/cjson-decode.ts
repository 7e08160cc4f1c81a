// cjson.decode's text handling, as lua-cjson's in Redis: JSON strings stay bytes (a raw byte
// that is not valid UTF-8 is kept as it is, not replaced with U+FFFD), \uXXXX escapes become
// UTF-8, and an escape that is not a valid code point - a lone surrogate such as \ud83d, a low
// surrogate first, non-hex digits - is refused with lua-cjson's "invalid unicode escape code".
//
// The parsing itself is JSON.parse. For it to keep raw bytes, the text is read one character
// per byte, and each byte 0x80-0xFF becomes the lone low surrogate U+DC80-U+DCFF ("surrogate
// escape"): no escape can produce a lone surrogate once the escapes are checked first, so in
// the parsed strings a lone surrogate is always a raw byte, and a surrogate pair always an
// escaped code point.

/** RAW_BYTE_BASE: a raw byte b >= 0x80 stands for U+DC00 + b while JSON.parse reads the text. */
const RAW_BYTE_BASE = 0xdc00;
const HIGH_SURROGATE_MIN = 0xd800;
const LOW_SURROGATE_MIN = 0xdc00;
const LOW_SURROGATE_MAX = 0xdfff;
const ASCII_MAX = 0x7f;

/** JsonEscapeError: an invalid \u escape, at `position` (1-based, lua-cjson's "character"). */
export class JsonEscapeError extends Error {
  constructor(
    readonly position: number,
    /** inKey: the string is an object's key (lua-cjson expects an "object key string" there). */
    readonly inKey: boolean,
  ) {
    super(
      `Expected ${inKey ? 'object key string' : 'value'} but found invalid unicode escape code at character ${position}`,
    );
  }
}

/**
 * jsonText: the text JSON.parse reads for `bytes` (one character per byte, raw bytes 0x80-0xFF
 * as lone low surrogates). Throws JsonEscapeError for a \u escape lua-cjson refuses.
 */
export function jsonText(bytes: Uint8Array): string {
  const latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  checkEscapes(latin1);
  return latin1.replace(/[\x80-\xff]/g, (c) => String.fromCharCode(RAW_BYTE_BASE + c.charCodeAt(0)));
}

/** jsonStringBytes: a parsed string's bytes (raw bytes as they came, code points as UTF-8). */
export function jsonStringBytes(s: string): Buffer {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > ASCII_MAX) {
      ascii = false;
      break;
    }
  }
  if (ascii) return Buffer.from(s, 'latin1');
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= RAW_BYTE_BASE + 0x80 && c <= RAW_BYTE_BASE + 0xff) {
      out.push(c - RAW_BYTE_BASE);
      continue;
    }
    // An escaped pair (checked in jsonText) or any other code point: its UTF-8.
    const cp = s.codePointAt(i)!;
    if (cp > 0xffff) i++;
    for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) out.push(b);
  }
  return Buffer.from(out);
}

/**
 * checkEscapes finds the \u escapes of the JSON strings in `text` and refuses what lua-cjson
 * refuses: non-hex digits, a low surrogate first, a high surrogate not followed by an escaped low
 * one. The position is the escape's backslash, and the message says whether the string was an
 * object's key (the word lua-cjson's parser uses there).
 */
function checkEscapes(text: string): void {
  if (!text.includes('\\u')) return;
  const containers: string[] = [];
  let previous = ''; // the last character outside strings and blanks
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const inKey = containers.at(-1) === '{' && (previous === '{' || previous === ',');
      i = checkString(text, i + 1, inKey);
      previous = '"';
    } else if (c === '{' || c === '[') {
      containers.push(c);
      previous = c;
    } else if (c === '}' || c === ']') {
      containers.pop();
      previous = c;
    } else if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') {
      previous = c;
    }
  }
}

/** checkString checks a string's escapes from `start` (after its quote); the closing quote's index. */
function checkString(text: string, start: number, inKey: boolean): number {
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '"') return i;
    if (c !== '\\') continue;
    if (text[i + 1] !== 'u') {
      i++;
      continue;
    }
    const unit = hex4(text, i + 2);
    if (unit === undefined || (unit >= LOW_SURROGATE_MIN && unit <= LOW_SURROGATE_MAX)) {
      throw new JsonEscapeError(i + 1, inKey);
    }
    if (unit >= HIGH_SURROGATE_MIN && unit < LOW_SURROGATE_MIN) {
      const low = text[i + 6] === '\\' && text[i + 7] === 'u' ? hex4(text, i + 8) : undefined;
      if (low === undefined || low < LOW_SURROGATE_MIN || low > LOW_SURROGATE_MAX) {
        throw new JsonEscapeError(i + 1, inKey);
      }
      i += 6;
    }
    i += 5;
  }
  return text.length;
}

function hex4(text: string, at: number): number | undefined {
  const digits = text.slice(at, at + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? Number.parseInt(digits, 16) : undefined;
}
