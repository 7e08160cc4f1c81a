// ByteBuilder: a byte string built a piece at a time in one growing buffer (doubling), for the
// script libraries that build binary strings (cmsgpack.pack, struct.pack, cjson.decode's strings).
// Not an array of numbers: a script's string may be hundreds of MiB, and a JavaScript array of
// numbers costs eight or more bytes per byte.

import { SCRIPT_STRING_BYTES_MAX } from './limits.js';

/** BUILDER_START_BYTES: a builder's first buffer. */
const BUILDER_START_BYTES = 64;

/**
 * StringTooLongError: the string would pass SCRIPT_STRING_BYTES_MAX, the bound on every string a
 * script makes (string-limit.ts). Checked as the bytes come, not once at the end: a table packed
 * from one string referenced at every level of 16 nested tables is 2^16 times that string.
 */
export class StringTooLongError extends Error {}

export class ByteBuilder {
  private buf = Buffer.allocUnsafe(BUILDER_START_BYTES);
  length = 0;

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    if (this.length + n > SCRIPT_STRING_BYTES_MAX) throw new StringTooLongError();
    const next = Buffer.allocUnsafe(
      Math.min(SCRIPT_STRING_BYTES_MAX, Math.max(this.buf.length * 2, this.length + n)),
    );
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  byte(b: number): void {
    this.room(1);
    this.buf[this.length++] = b & 0xff;
  }

  /** repeat appends `n` copies of the byte `b`. */
  repeat(b: number, n: number): void {
    this.room(n);
    this.buf.fill(b & 0xff, this.length, this.length + n);
    this.length += n;
  }

  /** head appends a type byte followed by `n` as a big-endian unsigned integer of `bytes` bytes. */
  head(type: number, n: number, bytes: 1 | 2 | 4): void {
    this.room(1 + bytes);
    this.buf[this.length++] = type;
    this.buf.writeUIntBE(n, this.length, bytes);
    this.length += bytes;
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }

  /** reset empties the builder, keeping its buffer. */
  reset(): void {
    this.length = 0;
  }

  /**
   * view: the bytes so far, a view valid until the builder next changes (lua_pushstring copies
   * it; anything kept takes a copy).
   */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}
