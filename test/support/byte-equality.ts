// Setup for every test file (vitest.config.ts, setupFiles): toEqual and friends compare byte
// arrays of one class (Buffer with Buffer, Uint8Array with Uint8Array) by their bytes in one
// native comparison. The default walks them element by element through its generic equality:
// a test that read back twenty 300 KB values spent 30-60 s there (and timed out on a busy
// machine). The verdict is the same: equal exactly when the lengths and every byte are equal.
// Other pairs (a Buffer against a Uint8Array, against an array) keep the default rules.
import { expect } from 'vitest';

function bytesEqual(a: unknown, b: unknown): boolean | undefined {
  if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.constructor !== b.constructor)
    return undefined;
  if (a.length !== b.length) return false;
  return (
    Buffer.compare(
      Buffer.from(a.buffer, a.byteOffset, a.byteLength),
      Buffer.from(b.buffer, b.byteOffset, b.byteLength),
    ) === 0
  );
}

expect.addEqualityTesters([bytesEqual]);
