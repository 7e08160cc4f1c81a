// poisoned(): a test helper that enforces the buffer-ownership rule (docs/ARCHITECTURE.md, "Who
// owns a buffer"): a buffer a caller hands in is borrowed, and may be reused the moment the call
// returns. The wrapper gives every call private copies of the caller's byte arrays (also inside
// arrays and plain objects, so batch operations and compare-and-swap requests are covered), then
// overwrites those copies with junk:
//
// - as soon as the call returns, before any promise it returned settles (code that reads its
//   arguments after an `await`, or that queued a closure over them, then reads junk);
// - again when that promise settles, and after each step of an async iterator it returned (code
//   that kept a reference, as an index key, a cache entry or a pending write, now holds junk).
//
// The caller's own buffers are never touched, so a test keeps comparing against them. The copies
// are views into larger backing buffers, at an offset, as socket chunks and file reads are: code
// that reads `.buffer` without `byteOffset` is caught too. Junk comes from a seeded PRNG
// (CAIRN_POISON_SEED), so a failure replays.
import { Prng } from '../../src/stdx/prng.js';

/** VIEW_OFFSET_BYTES: where a copy starts inside its backing buffer (and the slack after it). */
const VIEW_OFFSET_BYTES = 8;

export interface PoisonOptions {
  /**
   * wrap: applied to every value a wrapped call returns or resolves to, and to the arguments the
   * wrapped object passes to callbacks the caller gave it (`db.transaction(fn)` hands `fn` a
   * transaction), so that objects handed out (transactions, snapshots) are poisoned too.
   */
  readonly wrap?: (value: unknown) => unknown;
  /**
   * property: applied once to each property that is not a method, when first read (a server
   * reaches `db.pipeline`: wrapping it poisons the buffers the server lends the pipeline).
   */
  readonly property?: (name: PropertyKey, value: unknown) => unknown;
}

const rng = new Prng(Number(process.env.CAIRN_POISON_SEED ?? 0x5eed));

/** poisonCount: how many backing buffers have been overwritten (tests check the helper ran). */
export let poisonCount = 0;

/** Borrowed: the backing buffers of one call's copies. */
type Backings = Buffer[];

/** JUNK_PATTERN_BYTES: a fresh random pattern of this length is repeated over each buffer. */
const JUNK_PATTERN_BYTES = 61;

function poison(backings: Backings): void {
  for (const b of backings) {
    // A random pattern repeated: cheap for 64 MiB values, and with a length prime to the usual
    // record alignments, so no two poisoned keys of the same length are likely to be equal.
    b.fill(Buffer.from(rng.bytes(JUNK_PATTERN_BYTES)));
    poisonCount++;
  }
}

/** borrowCopy is a private copy of `bytes` as a view into a larger buffer, same class as `bytes`. */
function borrowCopy(bytes: Uint8Array, backings: Backings): Uint8Array {
  const backing = Buffer.alloc(bytes.length + 2 * VIEW_OFFSET_BYTES, 0xab);
  backing.set(bytes, VIEW_OFFSET_BYTES);
  backings.push(backing);
  if (Buffer.isBuffer(bytes)) return backing.subarray(VIEW_OFFSET_BYTES, VIEW_OFFSET_BYTES + bytes.length);
  return new Uint8Array(backing.buffer, backing.byteOffset + VIEW_OFFSET_BYTES, bytes.length);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** borrow replaces byte arrays in `value` (recursively through arrays and plain objects) by copies. */
function borrow(value: unknown, backings: Backings, options: PoisonOptions): unknown {
  if (value instanceof Uint8Array) return borrowCopy(value, backings);
  if (Array.isArray(value)) return value.map((v) => borrow(v, backings, options));
  if (typeof value === 'function') {
    const fn = value as (...args: unknown[]) => unknown;
    const wrap = options.wrap;
    return wrap === undefined ? fn : (...args: unknown[]) => fn(...args.map((a) => wrap(a)));
  }
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = borrow(v, backings, options);
    return out;
  }
  return value;
}

function isAsyncIterator(value: unknown): value is AsyncIterableIterator<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { next?: unknown }).next === 'function' &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
  );
}

function isThenable(value: unknown): value is Promise<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** afterwards poisons `backings` once `result` is done with them, and wraps what it yields. */
function afterwards(result: unknown, backings: Backings, options: PoisonOptions): unknown {
  const wrap = options.wrap ?? ((v: unknown) => v);
  if (isThenable(result)) {
    return result.then(
      (v) => {
        poison(backings);
        return wrap(v);
      },
      (err: unknown) => {
        poison(backings);
        throw err;
      },
    );
  }
  if (isAsyncIterator(result)) {
    const step =
      (name: 'next' | 'return' | 'throw') =>
      async (...args: unknown[]): Promise<IteratorResult<unknown>> => {
        const method = result[name] as ((...a: unknown[]) => Promise<IteratorResult<unknown>>) | undefined;
        if (method === undefined) return { done: true, value: args[0] };
        try {
          return await method.apply(result, args);
        } finally {
          poison(backings);
        }
      };
    const iterator: AsyncIterableIterator<unknown> = {
      next: step('next'),
      return: step('return'),
      throw: step('throw'),
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }
  return wrap(result);
}

/**
 * poisoned wraps `target` so that every method call borrows private copies of its byte-array
 * arguments and overwrites them as described above. Properties that are not functions are
 * passed through unchanged.
 */
export function poisoned<T extends object>(target: T, options: PoisonOptions = {}): T {
  const methods = new Map<PropertyKey, unknown>();
  const properties = new Map<PropertyKey, { raw: unknown; wrapped: unknown }>();
  return new Proxy(target, {
    get(obj, prop) {
      const value = Reflect.get(obj, prop, obj) as unknown;
      if (typeof value !== 'function') {
        if (options.property === undefined) return value;
        let known = properties.get(prop);
        if (known === undefined || known.raw !== value) {
          known = { raw: value, wrapped: options.property(prop, value) };
          properties.set(prop, known);
        }
        return known.wrapped;
      }
      let wrapped = methods.get(prop);
      if (wrapped === undefined) {
        const fn = value as (...args: unknown[]) => unknown;
        wrapped = (...args: unknown[]) => {
          const backings: Backings = [];
          const borrowed = args.map((a) => borrow(a, backings, options));
          let result: unknown;
          try {
            result = fn.apply(obj, borrowed);
          } finally {
            poison(backings);
          }
          return afterwards(result, backings, options);
        };
        methods.set(prop, wrapped);
      }
      return wrapped;
    },
  });
}
