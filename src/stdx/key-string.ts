// The key string: a key's bytes as a latin1 string, one UTF-16 unit per byte. It is the map key
// wherever a key is kept by value (pending writes, the version history, the expiry index, the
// value cache, recovery's tombstones): binary-safe, ordered like the bytes (JS compares strings by
// UTF-16 unit, and each unit is one byte), and a copy by construction, so keeping it never keeps a
// caller's buffer (docs/ARCHITECTURE.md, "Who owns a buffer"). The glossary there calls it the
// key string; these two functions are the only spelling of the conversion.

/** keyString turns key bytes into their key string (a view's bytes only, whatever its backing). */
export function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

/** keyFromString turns a key string back into bytes of their own. */
export function keyFromString(k: string): Buffer {
  return Buffer.from(k, 'latin1');
}
