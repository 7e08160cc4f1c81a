// The key string: a key's bytes as a latin1 string, one UTF-16 unit per byte. It is the map key
// wherever a key is kept by value (pending writes, the version history, the expiry index, the
// value cache, recovery's tombstones): binary-safe, ordered like the bytes (JS compares strings by
// UTF-16 unit, and each unit is one byte), and a copy by construction, so keeping it never keeps a
// caller's buffer (docs/ARCHITECTURE.md, "Who owns a buffer"). The glossary there calls it the
// key string; these two functions are the only spelling of the conversion.

/**
 * latin1Slice: Buffer's own latin1 decoder (the native method behind `buf.toString('latin1')`),
 * which takes any Uint8Array. Called directly it skips the Buffer view and the argument checks
 * of toString: 52-56 ns against 127-136 for a 16-byte key (issue 14; every write makes at least
 * one key string). Node has had it on Buffer.prototype since its first releases; a runtime
 * without it takes the documented way.
 */
const latin1Slice = (Buffer.prototype as unknown as { latin1Slice?: (start: number, end: number) => string })
  .latin1Slice;

/** keyString turns key bytes into their key string (a view's bytes only, whatever its backing). */
export const keyString: (key: Uint8Array) => string =
  typeof latin1Slice === 'function'
    ? (key) => latin1Slice.call(key, 0, key.byteLength)
    : (key) => Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');

/** keyFromString turns a key string back into bytes of their own. */
export function keyFromString(k: string): Buffer {
  return Buffer.from(k, 'latin1');
}
