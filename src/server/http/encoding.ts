// How bytes travel through the HTTP API. Paths carry keys as percent-encoded UTF-8, or as
// base64url with `?base64`; JSON carries bytes as UTF-8 strings, or as base64 (standard
// alphabet, padded, on output; either alphabet, padding optional, on input). Listing cursors
// are opaque base64url tokens. See docs/http.md.
import { isUtf8 } from 'node:buffer';
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

/** decodeBase64 decodes either base64 alphabet strictly (Buffer.from alone skips bad characters). */
export function decodeBase64(text: string, what: string): Buffer {
  if (!BASE64_TEXT.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw invalidArgument(`${what} is not valid base64`);
  }
  return Buffer.from(text, 'base64');
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

// Cursor: base64url of [version, direction, ...last key]. The version lets the format change
// without misreading old tokens; the direction catches a cursor replayed with the other order.
const CURSOR_VERSION = 1;
const FORWARD = 0;
const BACKWARD = 1;

/** encodeCursor returns the token that continues a listing after `lastKey`. */
export function encodeCursor(lastKey: Uint8Array, reverse: boolean): string {
  const out = Buffer.allocUnsafe(2 + lastKey.length);
  out[0] = CURSOR_VERSION;
  out[1] = reverse ? BACKWARD : FORWARD;
  out.set(lastKey, 2);
  return out.toString('base64url');
}

/** decodeCursor returns the last key a cursor names, checking it belongs to a listing in this order. */
export function decodeCursor(token: string, reverse: boolean): Buffer {
  const raw = decodeBase64(token, 'cursor');
  if (raw.length < 2 || raw[0] !== CURSOR_VERSION || (raw[1] !== FORWARD && raw[1] !== BACKWARD)) {
    throw invalidArgument('cursor is not a cursor this server issued');
  }
  if ((raw[1] === BACKWARD) !== reverse) {
    throw invalidArgument('cursor was issued for the other order: pass the same reverse flag');
  }
  return raw.subarray(2);
}

/** keyAfter returns the smallest key greater than `key` (append a zero byte). */
export function keyAfter(key: Uint8Array): Buffer {
  const out = Buffer.alloc(key.length + 1);
  out.set(key, 0);
  return out;
}
