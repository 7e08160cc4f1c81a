// Assertions for invariants: a failed assertion is a programmer error and crashes loudly.
// Operating errors (bad input, I/O failures) use typed errors instead; see src/db/errors.ts.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, message = 'unreachable'): never {
  throw new AssertionError(`${message}: ${String(value)}`);
}
