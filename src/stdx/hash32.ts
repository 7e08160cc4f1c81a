// hash32: a 32-bit hash of a byte range (MurmurHash3's x86_32 variant, seed fixed), for the cask
// engine's point-lookup index (storage/cask/point-index.ts). Not a checksum (that is CRC32C) and
// not for anything an adversary chooses to collide: the index treats equal hashes only as
// candidates and confirms each one against the record's own key.
//
// It hashes a range of a larger array (start, end) so that a key held in a leaf's arena hashes
// in place, without a view per key. Keys that share a long prefix (the usual case: `user:1`,
// `user:2`) spread like random ones: every input word is mixed in, and the finalizer avalanches.

/** HASH32_SEED: a fixed seed, so a key's hash is the same in every process (tests replay). */
const HASH32_SEED = 0x9747b28c;

/** hash32 returns the unsigned 32-bit hash of bytes[start..end). */
export function hash32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = HASH32_SEED;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    let k =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  let k = 0;
  for (let shift = 0; i < end; i++, shift += 8) k |= (bytes[i] as number) << shift;
  if ((end - start) % 4 !== 0) {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
