// Byte helpers shared by the storage engine, the key directory and the public API.

const encoder = new TextEncoder();

/** Bytes is what every layer below the public API speaks: keys and values are raw bytes. */
export type Bytes = Uint8Array;

/** toBytes turns API input into bytes: strings are UTF-8 encoded, byte arrays are used as they are. */
export function toBytes(input: string | Uint8Array): Uint8Array {
  return typeof input === 'string' ? encoder.encode(input) : input;
}

/**
 * copyBytes returns a Buffer of its own holding the bytes of `bytes`: for whatever is kept past
 * the call that lent them (docs/ARCHITECTURE.md, "Who owns a buffer"). Buffer#slice and
 * subarray return views, not copies. Small copies come from Node's buffer pool, like any
 * Buffer.allocUnsafe: for a copy kept for the life of a structure (an index key), prefer
 * `new Uint8Array(bytes)`, whose memory is its own and is freed with it.
 */
export function copyBytes(bytes: Uint8Array): Buffer {
  const copy = Buffer.allocUnsafe(bytes.length);
  copy.set(bytes);
  return copy;
}

/** asBuffer views bytes as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** compareBytes orders byte strings lexicographically, shorter first on a common prefix. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * prefixEnd returns the smallest key greater than every key starting with `prefix`, or
 * undefined when there is none (the prefix is empty or all 0xff bytes).
 */
export function prefixEnd(prefix: Uint8Array): Uint8Array | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      // A copy: Buffer#slice returns a view, and the caller's prefix must not change.
      const end = new Uint8Array(prefix.subarray(0, i + 1));
      end[i] = (end[i] as number) + 1;
      return end;
    }
  }
  return undefined;
}

/**
 * keyAfter returns the smallest key greater than `key` among keys of at most `maxLength` bytes
 * (an inclusive scan start that resumes just after `key`), or undefined when no such key exists.
 * `key` followed by a zero byte when that fits; at the length limit no longer key can exist, so
 * it is the next key of the same length or shorter: prefixEnd of `key`.
 */
export function keyAfter(key: Uint8Array, maxLength: number): Uint8Array | undefined {
  if (key.length < maxLength) {
    const after = new Uint8Array(key.length + 1);
    after.set(key);
    return after;
  }
  return prefixEnd(key);
}
