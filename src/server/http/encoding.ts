// How bytes travel through the HTTP API. Paths carry keys as percent-encoded UTF-8, or as
// base64url with `?base64`; JSON carries bytes as UTF-8 strings, or as base64 (standard
// alphabet, padded, on output; either alphabet, padding optional, on input). Listing cursors
// are opaque base64url tokens. See docs/http.md.
import { isUtf8 } from 'node:buffer';
import { crc32c } from '../../stdx/crc32c.js';
import { invalidArgument } from './errors.js';

/** Either base64 alphabet (standard or url-safe), optional padding. */
const BASE64_TEXT = /^[A-Za-z0-9+/_-]*={0,2}$/;

/**
 * parseFlag reads a boolean query parameter: present without a value (`?base64`), `true` or `1`
 * mean true; absent, `false` or `0` mean false.
 */
export function parseFlag(value: string | undefined, name: string): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === '' || value === 'true' || value === '1') return true;
  throw invalidArgument(`query parameter ${name} must be true, false, 1, 0 or empty`);
}

/**
 * decodeBase64 decodes either base64 alphabet strictly: Buffer.from alone skips bad characters,
 * and ignores set bits past the last whole byte, so that two spellings (`Y2Fmw6`, `Y2Fmw4`)
 * would name one key. A text whose bytes do not encode back to it (padding and alphabet aside)
 * is refused.
 */
export function decodeBase64(text: string, what: string): Buffer {
  const bare = text.replace(/=+$/, '');
  if (!BASE64_TEXT.test(text) || bare.length % 4 === 1) {
    throw invalidArgument(`${what} is not valid base64`);
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64url') !== bare.replace(/\+/g, '-').replace(/\//g, '_')) {
    throw invalidArgument(`${what} is not valid base64 (bits set past its last byte)`);
  }
  return bytes;
}

/** encodeBase64 is the output form: standard alphabet, padded (what most JSON clients decode). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Bytes rendered for JSON in text mode: a string, and whether it had to be base64. */
export interface JsonBytes {
  readonly text: string;
  readonly base64: boolean;
}

/** jsonBytes renders bytes as their UTF-8 text when they are valid UTF-8, else as base64. */
export function jsonBytes(bytes: Buffer): JsonBytes {
  return isUtf8(bytes)
    ? { text: bytes.toString('utf8'), base64: false }
    : { text: encodeBase64(bytes), base64: true };
}

// Cursor: base64url of
//   cursor := version u8 (2) | direction u8 | check u32le | last key
//   check  := crc32c(scope | last key), scope := the listing's prefix, start and end, each
//             present u8 | length u32le | bytes
// The version lets the format change without misreading old tokens; the direction catches a
// cursor replayed with the other order; the check catches one replayed with another prefix or
// range, and one made up or mistyped. (It is a checksum, not a signature: a cursor only says
// where a listing resumes, which `start` and `end` can say too, so there is nothing to protect.)
const CURSOR_VERSION = 2;
const CURSOR_HEADER_BYTES = 6;
const FORWARD = 0;
const BACKWARD = 1;

/** CursorScope: the bounds of the listing a cursor belongs to (undefined: none). */
export type CursorScope = readonly (Uint8Array | undefined)[];

function cursorCheck(scope: CursorScope, lastKey: Uint8Array): number {
  const parts: Uint8Array[] = [];
  for (const bound of scope) {
    const head = Buffer.alloc(5);
    head[0] = bound === undefined ? 0 : 1;
    head.writeUInt32LE(bound?.length ?? 0, 1);
    parts.push(head);
    if (bound !== undefined) parts.push(bound);
  }
  parts.push(lastKey);
  return crc32c(Buffer.concat(parts));
}

/** encodeCursor returns the token that continues a listing of `scope` after `lastKey`. */
export function encodeCursor(lastKey: Uint8Array, reverse: boolean, scope: CursorScope): string {
  const out = Buffer.allocUnsafe(CURSOR_HEADER_BYTES + lastKey.length);
  out[0] = CURSOR_VERSION;
  out[1] = reverse ? BACKWARD : FORWARD;
  out.writeUInt32LE(cursorCheck(scope, lastKey), 2);
  out.set(lastKey, CURSOR_HEADER_BYTES);
  return out.toString('base64url');
}

/**
 * decodeCursor returns the last key a cursor names, checking that this server issued it for a
 * listing of `scope` in this order.
 */
export function decodeCursor(token: string, reverse: boolean, scope: CursorScope): Buffer {
  const raw = decodeBase64(token, 'cursor');
  if (
    raw.length < CURSOR_HEADER_BYTES ||
    raw[0] !== CURSOR_VERSION ||
    (raw[1] !== FORWARD && raw[1] !== BACKWARD)
  ) {
    throw invalidArgument('cursor is not a cursor this server issued');
  }
  if ((raw[1] === BACKWARD) !== reverse) {
    throw invalidArgument('cursor was issued for the other order: pass the same reverse flag');
  }
  const lastKey = raw.subarray(CURSOR_HEADER_BYTES);
  if (raw.readUInt32LE(2) !== cursorCheck(scope, lastKey)) {
    throw invalidArgument('cursor was not issued for this listing: pass the same prefix, start and end');
  }
  return lastKey;
}
