// The linearizability checker: known-good and known-bad histories, a property test that widens a
// sequential execution's operations into overlapping intervals, and a scaling test.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../src/stdx/prng.js';
import {
  applyOp,
  type CheckResult,
  checkLinearizability,
  type KvOperation,
  type KvValue,
} from './linearizability.js';

/** PROPERTY_RUNS is the number of fast-check histories per property. */
const PROPERTY_RUNS = 300;

/** SCALING_BUDGET_MS is "well under a second" for 2,000 operations, with room for a slow CI box. */
const SCALING_BUDGET_MS = 1000;

type Op = KvOperation;
const K = 'k';

// Small builders: c = client, [i, r] = invoke, complete (undefined: ambiguous).
const get = (c: number, i: number, r: number | undefined, output: KvValue, key = K): Op => ({
  client: c,
  kind: 'get',
  key,
  invoke: i,
  complete: r,
  output,
});
const put = (c: number, i: number, r: number | undefined, value: string, key = K): Op => ({
  client: c,
  kind: 'put',
  key,
  value,
  invoke: i,
  complete: r,
});
const del = (c: number, i: number, r: number | undefined, output?: boolean): Op => ({
  client: c,
  kind: 'delete',
  key: K,
  invoke: i,
  complete: r,
  ...(output === undefined ? {} : { output }),
});
const cas = (
  c: number,
  i: number,
  r: number | undefined,
  expected: KvValue,
  value: string,
  output?: boolean,
): Op => ({
  client: c,
  kind: 'cas',
  key: K,
  expected,
  value,
  invoke: i,
  complete: r,
  ...(output === undefined ? {} : { output }),
});
const incr = (c: number, i: number, r: number | undefined, by: number, output?: number): Op => ({
  client: c,
  kind: 'incr',
  key: K,
  by,
  invoke: i,
  complete: r,
  ...(output === undefined ? {} : { output }),
});
const append = (c: number, i: number, r: number | undefined, suffix: string, output?: number): Op => ({
  client: c,
  kind: 'append',
  key: K,
  suffix,
  invoke: i,
  complete: r,
  ...(output === undefined ? {} : { output }),
});

const expire = (i: number, r: number | undefined, value: string): Op => ({
  client: -1,
  kind: 'expire',
  key: K,
  value,
  invoke: i,
  complete: r,
});

function expectOk(h: readonly Op[]): void {
  const r = checkLinearizability(h);
  if (r.ok !== true) throw new Error(`expected linearizable:\n${r.ok === false ? r.explanation : r.reason}`);
}

function expectBad(h: readonly Op[]): Extract<CheckResult, { ok: false }> {
  const r = checkLinearizability(h);
  if (r.ok !== false) throw new Error(`expected a violation, got ${JSON.stringify(r)}`);
  return r;
}

describe('linearizability: known-good histories', () => {
  it('an empty history and a sequential one', () => {
    expectOk([]);
    expectOk([
      get(0, 0, 1, null),
      put(0, 2, 3, 'a'),
      get(0, 4, 5, 'a'),
      del(0, 6, 7, true),
      del(0, 8, 9, false),
      get(0, 10, 11, null),
    ]);
  });

  it('concurrent overlapping writes, reads during them see either value', () => {
    const writes = [put(0, 0, 100, 'a'), put(1, 0, 100, 'b')];
    expectOk([...writes, get(2, 10, 20, 'a'), get(2, 30, 40, 'b')]);
    expectOk([...writes, get(2, 10, 20, 'b'), get(2, 30, 40, 'a')]);
    expectOk([...writes, get(2, 10, 20, null), get(3, 110, 120, 'a')]);
    expectOk([...writes, get(2, 10, 20, null), get(3, 110, 120, 'b')]);
  });

  it('an ambiguous write that did happen, late, and one that never did', () => {
    // The timed-out put may take effect long after everyone else's calls.
    expectOk([put(0, 0, undefined, 'a'), get(1, 10, 20, null), get(1, 30, 40, 'a'), get(1, 50, 60, 'a')]);
    expectOk([put(0, 0, undefined, 'a'), get(1, 10, 20, null), get(1, 30, 40, null)]);
    // It happened between two later writes.
    expectOk([
      put(0, 0, undefined, 'a'),
      put(1, 10, 20, 'b'),
      get(1, 30, 40, 'a'),
      put(1, 50, 60, 'c'),
      get(1, 70, 80, 'c'),
    ]);
    // Its recorded output (if a recorder kept one) is ignored.
    expectOk([{ ...del(0, 0, undefined), output: true } as Op, get(1, 10, 20, null)]);
  });

  it('incr and cas, sequential and concurrent', () => {
    expectOk([incr(0, 0, 1, 1, 1), incr(0, 2, 3, 5, 6), get(0, 4, 5, '6'), incr(0, 6, 7, -10, -4)]);
    expectOk([incr(0, 0, 10, 1, 2), incr(1, 0, 10, 1, 1), get(2, 11, 12, '2')]);
    expectOk([incr(0, 0, undefined, 1), incr(1, 10, 20, 1, 2)]); // the ambiguous one happened first
    expectOk([incr(0, 0, undefined, 1), incr(1, 10, 20, 1, 1)]); // or not (yet)
    expectOk([cas(0, 0, 1, null, 'a', true), cas(0, 2, 3, null, 'b', false), get(0, 4, 5, 'a')]);
    expectOk([
      put(0, 0, 1, 'a'),
      cas(1, 2, 10, 'a', 'b', true),
      cas(2, 2, 10, 'a', 'c', false),
      get(3, 11, 12, 'b'),
    ]);
  });

  it('append returns the new length; delete says whether the key existed', () => {
    expectOk([append(0, 0, 1, 'ab', 2), append(0, 2, 3, 'é', 4), get(0, 4, 5, 'abé'), del(0, 6, 7, true)]);
    expectOk([append(0, 0, 10, 'x', 2), append(1, 0, 10, 'y', 1), get(2, 11, 12, 'yx')]);
    expectOk([put(0, 0, 10, 'a'), del(1, 0, 10, false), get(1, 11, 12, 'a')]);
    expectOk([put(0, 0, 10, 'a'), del(1, 0, 10)]); // delete's output unknown
  });

  it('a call and a return at the same time count as concurrent', () => {
    expectOk([put(0, 0, 5, 'a'), get(1, 5, 6, null)]);
  });

  it('keys are independent', () => {
    expectOk([put(0, 0, 10, 'a', 'x'), get(1, 1, 2, null, 'y'), get(1, 11, 12, 'a', 'x')]);
  });
});

describe('linearizability: expiry', () => {
  it('a value read absent after its expiry, present before it, and a later write untouched', () => {
    // put "a" with a time to live of 100: it runs out between 100 and 110.
    expectOk([put(0, 0, 10, 'a'), expire(100, 110, 'a'), get(1, 50, 60, 'a'), get(1, 120, 130, null)]);
    // Within the window either answer; a write after it is not expired with it.
    expectOk([put(0, 0, 10, 'a'), expire(100, 110, 'a'), get(1, 101, 102, 'a'), get(2, 103, 104, null)]);
    expectOk([put(0, 0, 10, 'a'), expire(100, 110, 'a'), put(0, 120, 130, 'b'), get(1, 140, 150, 'b')]);
    // Overwritten before it ran out: nothing expires.
    expectOk([put(0, 0, 10, 'a'), put(0, 20, 30, 'b'), expire(100, 110, 'a'), get(1, 120, 130, 'b')]);
  });

  it('a value seen after its expiry, a later write lost to it, a value back after it went', () => {
    expectBad([put(0, 0, 10, 'a'), expire(100, 110, 'a'), get(1, 120, 130, 'a')]);
    expectBad([put(0, 0, 10, 'a'), expire(100, 110, 'a'), put(0, 120, 130, 'b'), get(1, 140, 150, null)]);
    expectBad([put(0, 0, 10, 'a'), expire(100, 110, 'a'), get(1, 101, 102, null), get(2, 103, 104, 'a')]);
    // Gone before its time.
    expectBad([put(0, 0, 10, 'a'), expire(100, 110, 'a'), get(1, 50, 60, null)]);
  });
});

describe('linearizability: known-bad histories', () => {
  it('a stale read after a completed write', () => {
    const r = expectBad([put(0, 0, 1, 'a'), put(0, 2, 3, 'b'), get(1, 4, 5, 'a')]);
    expect(r.key).toBe(K);
    expect(r.explanation).toContain('get() -> "a" [4, 5]');
    expect(r.explanation).toContain('from state "b" it would return "b"');
    expect(r.partialLinearization.map((s) => s.stateAfter)).toEqual(['a', 'b']);
  });

  it('a read of a value never written', () => {
    const r = expectBad([put(0, 0, 10, 'a'), get(1, 5, 6, 'z')]);
    expect(r.explanation).toContain('"z"');
  });

  it('two reads that see concurrent writes in opposite orders', () => {
    expectBad([
      put(0, 0, 100, 'a'),
      put(1, 0, 100, 'b'),
      get(2, 10, 20, 'a'),
      get(2, 30, 40, 'b'),
      get(3, 10, 20, 'b'),
      get(3, 30, 40, 'a'),
    ]);
  });

  it('a lost acknowledged write', () => {
    expectBad([put(0, 0, 1, 'a'), get(1, 2, 3, null)]);
    expectBad([incr(0, 0, 1, 1, 1), incr(1, 2, 3, 1, 1)]);
    expectBad([append(0, 0, 1, 'a', 1), append(0, 2, 3, 'b', 1)]);
  });

  it('a cas that succeeded twice from the same expected value', () => {
    const r = expectBad([put(0, 0, 1, 'a'), cas(1, 2, 10, 'a', 'b', true), cas(2, 2, 10, 'a', 'c', true)]);
    expect(r.explanation).toContain('cas("a", "c") -> true');
  });

  it('a delete that says the key existed when it cannot have', () => {
    expectBad([del(0, 0, 1, true)]);
  });

  it('an incr on a non-integer that completed (a definite error would have been left out)', () => {
    expectBad([put(0, 0, 1, 'x'), incr(0, 2, 3, 1, 1)]);
    expectOk([put(0, 0, 1, 'x'), incr(0, 2, undefined, 1), get(0, 4, 5, 'x')]);
  });

  it('the violation is reported on the key that has it', () => {
    const r = expectBad([put(0, 0, 1, 'a', 'good'), put(0, 0, 1, 'a', 'bad'), get(1, 2, 3, null, 'bad')]);
    expect(r.key).toBe('bad');
  });
});

describe('linearizability: budgets', () => {
  it('answers unknown when the step budget runs out', () => {
    const h = [put(0, 0, 10, 'a'), put(1, 0, 10, 'b'), get(2, 11, 12, 'b'), get(2, 13, 14, 'b')];
    expect(checkLinearizability(h, { stepBudget: 2 }).ok).toBe('unknown');
    expect(checkLinearizability(h).ok).toBe(true);
  });

  it('answers unknown when the time budget runs out', () => {
    const h: Op[] = [];
    for (let i = 0; i < 1000; i++) h.push(put(i, 0, 100, `v${i}`));
    h.push(get(0, 101, 102, 'v0'));
    let t = 0;
    const r = checkLinearizability(h, { timeBudgetMs: 1, now: () => t++ });
    expect(r.ok).toBe('unknown');
  });

  it('rejects malformed histories', () => {
    expect(() => checkLinearizability([put(0, 5, 4, 'a')])).toThrow(RangeError);
    expect(() => checkLinearizability([put(0, Number.NaN, 4, 'a')])).toThrow(RangeError);
  });
});

// A random sequential execution of the model: operation i takes effect at time 10 * i; its
// interval is widened around that point, so the history is linearizable by construction.
const KEYS = ['a', 'b', 'c'];
const VALUES = ['v1', 'v2', 'v3'];

const arbCall = fc.oneof(
  fc.constant({ kind: 'get' as const }),
  fc.record({ kind: fc.constant('put' as const), value: fc.constantFrom(...VALUES) }),
  fc.constant({ kind: 'delete' as const }),
  fc.record({
    kind: fc.constant('cas' as const),
    expected: fc.constantFrom<KvValue>(null, ...VALUES),
    value: fc.constantFrom(...VALUES),
  }),
  fc.record({ kind: fc.constant('incr' as const), by: fc.integer({ min: -3, max: 3 }) }),
  fc.record({ kind: fc.constant('append' as const), suffix: fc.constantFrom('x', 'y') }),
);

const arbStep = fc.record({
  call: arbCall,
  key: fc.constantFrom(...KEYS),
  client: fc.nat(7),
  before: fc.nat(40),
  after: fc.nat(40),
  ambiguousRoll: fc.nat(9),
});

type Step = typeof arbStep extends fc.Arbitrary<infer T> ? T : never;

function execute(steps: readonly Step[]): Op[] {
  const state = new Map<string, KvValue>();
  const history: Op[] = [];
  steps.forEach((s, i) => {
    const point = 10 * i;
    const ambiguous = s.ambiguousRoll === 0; // one in ten
    const base = {
      client: s.client,
      key: s.key,
      invoke: point - s.before,
      complete: ambiguous ? undefined : point + s.after,
    };
    const op = { ...base, ...s.call } as Op;
    const r = applyOp(state.get(s.key) ?? null, op);
    // A definite error (incr on a non-integer) did not happen and is left out, like a recorder does.
    if (!r.ok) return;
    state.set(s.key, r.state);
    history.push(ambiguous || op.kind === 'put' ? op : ({ ...op, output: r.output } as Op));
  });
  return history;
}

describe('linearizability: properties', () => {
  it('a widened sequential execution is always linearizable', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { maxLength: 60 }), (steps) => {
        const r = checkLinearizability(execute(steps));
        if (r.ok !== true) throw new Error(r.ok === false ? r.explanation : r.reason);
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });

  it('changing one completed read to a value never written makes it fail', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 60 }), fc.nat(), (steps, pick) => {
        const h = execute(steps);
        const reads = h.flatMap((op, i) => (op.kind === 'get' && op.complete !== undefined ? [i] : []));
        fc.pre(reads.length > 0);
        const i = reads[pick % reads.length]!;
        // '#' appears in no value the model can produce.
        h[i] = { ...(h[i] as Extract<Op, { kind: 'get' }>), output: '#never' };
        const r = checkLinearizability(h);
        expect(r.ok).toBe(false);
        if (r.ok === false) expect(r.key).toBe(h[i]!.key);
      }),
      { numRuns: PROPERTY_RUNS },
    );
  });
});

/** bruteForce is the definition: some order of the operations that respects real time is legal. */
function bruteForce(h: readonly Op[]): boolean {
  const go = (rest: readonly Op[], state: KvValue): boolean => {
    if (rest.every((op) => op.complete === undefined)) return true;
    return rest.some((o, i) => {
      // o can go next unless an operation still to place returned before o was invoked.
      if (rest.some((p) => p.complete !== undefined && p.complete < o.invoke)) return false;
      const r = applyOp(state, o);
      let next: KvValue;
      if (!r.ok) {
        if (o.complete !== undefined) return false;
        next = state;
      } else {
        const claimed =
          o.complete === undefined || o.kind === 'put' || o.kind === 'expire' ? undefined : o.output;
        if (claimed !== undefined && claimed !== r.output) return false;
        next = r.state;
      }
      return go([...rest.slice(0, i), ...rest.slice(i + 1)], next);
    });
  };
  return go(h, null);
}

const arbRandomOp = fc
  .record({
    call: arbCall,
    client: fc.nat(3),
    invoke: fc.nat(20),
    length: fc.nat(10),
    ambiguousRoll: fc.nat(5),
    getOut: fc.constantFrom<KvValue>(null, ...VALUES, '1', 'x'),
    boolOut: fc.boolean(),
    numOut: fc.integer({ min: -2, max: 3 }),
  })
  .map((r): Op => {
    const base = {
      client: r.client,
      key: K,
      invoke: r.invoke,
      complete: r.ambiguousRoll === 0 ? undefined : r.invoke + r.length,
    };
    const op = { ...base, ...r.call } as Op;
    if (op.kind === 'get') return { ...op, output: r.getOut };
    if (op.kind === 'delete' || op.kind === 'cas') return { ...op, output: r.boolOut };
    if (op.kind === 'incr' || op.kind === 'append') return { ...op, output: r.numOut };
    return op;
  });

describe('linearizability: agrees with brute force', () => {
  it('on small random (mostly non-linearizable) histories of one key', () => {
    let good = 0;
    fc.assert(
      fc.property(fc.array(arbRandomOp, { maxLength: 7 }), (h) => {
        const expected = bruteForce(h);
        if (expected) good++;
        expect(checkLinearizability(h).ok).toBe(expected);
      }),
      { numRuns: PROPERTY_RUNS * 10 },
    );
    // The generator must produce both answers for the comparison to mean anything.
    expect(good).toBeGreaterThan(PROPERTY_RUNS);
  });
});

describe('linearizability: scaling', () => {
  it('2,000 operations on 20 keys from 8 concurrent clients check in well under a second', () => {
    const prng = new Prng(42);
    const keys = Array.from({ length: 20 }, (_, i) => `key${i}`);
    const state = new Map<string, KvValue>();
    const history: Op[] = [];
    // Each client has one call in flight at a time; the call takes effect at a random point
    // inside its interval, and the model applies calls in the order of those points.
    interface Pending {
      op: Op;
      point: number;
    }
    const clients = 8;
    const clock: number[] = new Array<number>(clients).fill(0);
    const pending: Pending[] = [];
    for (let n = 0; n < 2000; n++) {
      const c = n % clients;
      const invoke = clock[c]! + prng.range(0, 5);
      const complete = invoke + prng.range(1, 50);
      clock[c] = complete;
      const key = prng.pick(keys);
      const roll = prng.int(4);
      const base = { client: c, key, invoke, complete };
      const op: Op =
        roll === 0
          ? { ...base, kind: 'get' }
          : roll === 1
            ? { ...base, kind: 'put', value: `v${n}` }
            : roll === 2
              ? { ...base, kind: 'incr', by: 1 }
              : { ...base, kind: 'cas', expected: `v${prng.int(n + 1)}`, value: `w${n}` };
      pending.push({ op, point: prng.range(invoke, complete) });
    }
    pending.sort((a, b) => a.point - b.point);
    for (const { op } of pending) {
      const r = applyOp(state.get(op.key) ?? null, op);
      if (!r.ok) continue; // incr on a put's value: a definite error, left out
      state.set(op.key, r.state);
      history.push(op.kind === 'put' ? op : ({ ...op, output: r.output } as Op));
    }
    expect(history.length).toBeGreaterThan(1500);
    const start = performance.now();
    const r = checkLinearizability(history);
    const ms = performance.now() - start;
    expect(r).toEqual({ ok: true });
    expect(ms).toBeLessThan(SCALING_BUDGET_MS);
  });
});
