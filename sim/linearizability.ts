// A linearizability checker for client histories of a key-value store (CLUSTER.md §3.3 item 42).
//
// Algorithm: Wing & Gong's search as improved by Lowe ("Testing for linearizability", 2017) and
// used by Porcupine: the history's call and return events sit in one time-ordered doubly linked
// list; the search walks it, tentatively linearizing any operation whose call it meets (lifting
// its call and return out of the list), and backtracks when it meets the return of an operation
// it has not linearized yet (that operation's window closed). A cache of (set of linearized
// operations, model state) pairs already explored cuts the search from factorial to, in
// practice, about linear: two paths that linearized the same operations and reached the same
// state have the same future.
//
// One pruning beyond Porcupine's: a read-only operation (a get, a cas or delete that answered
// false) that is legal where the search stands is linearized there with no alternative tried
// (see readOnly), so reads never multiply the search; only writes branch.
//
// Per-key partitioning (Herlihy & Wing's locality, Horn & Kroening's P-compositionality): a
// history of single-key operations is linearizable iff each key's sub-history is, so each key is
// checked on its own and the exponential part of the search only ever sees one key's operations.
//
// Ambiguous operations (complete === undefined: a timeout or a lost connection) have no return
// event, so their window never closes: the search may linearize them anywhere after their invoke,
// or not at all. Leaving one out equals linearizing it after every other operation (nobody
// observed it), so the search succeeds as soon as every operation that did complete is
// linearized. Their outputs are never compared.
//
// Equal times: a call and a return at the same time are treated as concurrent (calls sort before
// returns), the permissive reading when a clock's resolution hides which came first.

/** A value in the register of one key: a string, or null when the key is absent. */
export type KvValue = string | null;

/** OperationBase holds what every recorded call has. Times are in any one monotonic unit. */
export interface OperationBase {
  /** client identifies who made the call; used only in explanations. */
  readonly client: number;
  readonly key: string;
  /** invoke is when the call was sent. */
  readonly invoke: number;
  /**
   * complete is when the answer arrived, or undefined when the call failed ambiguously or timed
   * out: it may have taken effect at any time after invoke, or never, and its output is unknown
   * (any output field is ignored). A call that failed with a definite "did not happen" error is
   * left out of the history by the recorder.
   */
  readonly complete: number | undefined;
}

/** GetOp reads the key; output is its value (null: absent), undefined when not known. */
export interface GetOp extends OperationBase {
  readonly kind: 'get';
  readonly output?: KvValue;
}

/** PutOp sets the key; its answer is a plain "ok". */
export interface PutOp extends OperationBase {
  readonly kind: 'put';
  readonly value: string;
}

/** DeleteOp removes the key; output says whether it existed, undefined when not known. */
export interface DeleteOp extends OperationBase {
  readonly kind: 'delete';
  readonly output?: boolean;
}

/** CasOp sets the key to value if it holds expected (null: absent); output says whether it did. */
export interface CasOp extends OperationBase {
  readonly kind: 'cas';
  readonly expected: KvValue;
  readonly value: string;
  readonly output?: boolean;
}

/**
 * IncrOp adds by to the key's integer (absent counts as 0; values are decimal strings, as in
 * Redis INCRBY); output is the new integer. On a value that is not a 64-bit integer the call
 * fails without effect, which a recorder reports as a definite error and leaves out: a completed
 * incr that the model says would fail is therefore a violation, an ambiguous one a no-op.
 */
export interface IncrOp extends OperationBase {
  readonly kind: 'incr';
  readonly by: number;
  readonly output?: number;
}

/** AppendOp appends suffix (absent counts as ''); output is the new length in UTF-8 bytes (Redis APPEND). */
export interface AppendOp extends OperationBase {
  readonly kind: 'append';
  readonly suffix: string;
  readonly output?: number;
}

/**
 * ExpireOp is a time to live running out: the key becomes absent if it still holds `value` (the
 * value a SET with an expiry wrote; values are unique, so a later write is never taken for it).
 * It has no output. Its window is when every member's clock reaches the expiry: a recorder gives
 * it the SET's window shifted by the time to live (ambiguous when the SET was).
 */
export interface ExpireOp extends OperationBase {
  readonly kind: 'expire';
  readonly value: string;
}

export type KvOperation = GetOp | PutOp | DeleteOp | CasOp | IncrOp | AppendOp | ExpireOp;

/** LinearizationStep is one operation of a (partial) linearization and the key's value after it. */
export interface LinearizationStep {
  readonly op: KvOperation;
  readonly stateAfter: KvValue;
}

export type CheckResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly key: string;
      /** explanation is a human-readable account: the longest linearizable prefix and what blocked it. */
      readonly explanation: string;
      /** partialLinearization is the longest prefix of a linearization the search found, in order. */
      readonly partialLinearization: readonly LinearizationStep[];
    }
  | {
      readonly ok: 'unknown';
      /** key is the key being checked when the budget ran out. */
      readonly key: string;
      readonly reason: string;
    };

export interface CheckOptions {
  /** stepBudget bounds search steps over all keys together; default STEP_BUDGET_DEFAULT. */
  readonly stepBudget?: number;
  /** timeBudgetMs bounds wall time; default none (the step budget still applies). */
  readonly timeBudgetMs?: number;
  /** now reads a millisecond clock for timeBudgetMs; default performance.now. */
  readonly now?: () => number;
}

/**
 * STEP_BUDGET_DEFAULT bounds the search when the caller sets nothing, so a pathological history
 * answers 'unknown' instead of hanging a test run. Steps measured here cost 1-4 µs (more with
 * long values: the cache hashes and compares states), so this is about one to three minutes,
 * under the 5-minute budget CLUSTER.md §3.3 item 42 gives the whole check.
 */
export const STEP_BUDGET_DEFAULT = 50_000_000;

/** TIME_CHECK_INTERVAL_STEPS is how often the clock is read: reading it every step would dominate. */
const TIME_CHECK_INTERVAL_STEPS = 4096;

/** EXPLANATION_OPS_MAX bounds each list of operations printed in an explanation, to stay readable. */
const EXPLANATION_OPS_MAX = 40;

/** INT64 bounds for incr: Redis refuses to overflow a signed 64-bit integer. */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** Redis' string2ll accepts no sign on zero, no leading zeros and no spaces. */
const INTEGER_RE = /^(0|-?[1-9][0-9]*)$/;

/** StepOutcome is what the model says an operation does to a state. */
export type StepOutcome =
  | { readonly ok: true; readonly state: KvValue; readonly output: KvValue | boolean | number | undefined }
  | { readonly ok: false; readonly error: string };

/** applyOp is the sequential model of one key: the state and output after op runs on state. */
export function applyOp(state: KvValue, op: KvOperation): StepOutcome {
  switch (op.kind) {
    case 'get':
      return { ok: true, state, output: state };
    case 'put':
      return { ok: true, state: op.value, output: undefined };
    case 'delete':
      return { ok: true, state: null, output: state !== null };
    case 'cas':
      return state === op.expected
        ? { ok: true, state: op.value, output: true }
        : { ok: true, state, output: false };
    case 'incr': {
      const current = state ?? '0';
      if (!INTEGER_RE.test(current)) return { ok: false, error: `value ${show(state)} is not an integer` };
      const next = BigInt(current) + BigInt(op.by);
      if (next < INT64_MIN || next > INT64_MAX) return { ok: false, error: 'increment would overflow' };
      return { ok: true, state: next.toString(), output: Number(next) };
    }
    case 'append': {
      const next = (state ?? '') + op.suffix;
      return { ok: true, state: next, output: Buffer.byteLength(next, 'utf8') };
    }
    case 'expire':
      return { ok: true, state: state === op.value ? null : state, output: undefined };
  }
}

/** recordedOutput is the output the history claims, or undefined when unknown or irrelevant. */
function recordedOutput(op: KvOperation): KvValue | boolean | number | undefined {
  if (op.complete === undefined || op.kind === 'put' || op.kind === 'expire') return undefined;
  return op.output;
}

/** step is the model's transition for the search: the next state, or undefined if op cannot go here. */
function step(state: KvValue, op: KvOperation): { state: KvValue } | undefined {
  const r = applyOp(state, op);
  if (!r.ok) return op.complete === undefined ? { state } : undefined;
  const claimed = recordedOutput(op);
  if (claimed !== undefined && claimed !== r.output) return undefined;
  return { state: r.state };
}

/** checkLinearizability checks a history key by key; see the file comment. */
export function checkLinearizability(
  history: readonly KvOperation[],
  options: CheckOptions = {},
): CheckResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    validate(op);
    let ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, (ops = []));
    ops.push(op);
  }
  const now = options.now ?? (() => performance.now());
  const budget: Budget = {
    stepsLeft: options.stepBudget ?? STEP_BUDGET_DEFAULT,
    deadline: options.timeBudgetMs === undefined ? undefined : now() + options.timeBudgetMs,
    now,
  };
  let unknown: CheckResult | undefined;
  for (const [key, ops] of byKey) {
    const r = checkKey(key, ops, budget);
    if (r.ok === false) return r;
    // Out of budget: stop. A definite failure found on an earlier key would already have returned.
    if (r.ok === 'unknown') {
      unknown = r;
      break;
    }
  }
  return unknown ?? { ok: true };
}

function validate(op: KvOperation): void {
  if (!Number.isFinite(op.invoke)) throw new RangeError(`operation ${describeOp(op)}: invoke must be finite`);
  if (op.complete !== undefined && !(Number.isFinite(op.complete) && op.complete >= op.invoke))
    throw new RangeError(`operation ${describeOp(op)}: complete must be finite and >= invoke`);
  if (op.kind === 'incr' && !Number.isSafeInteger(op.by))
    throw new RangeError(`operation ${describeOp(op)}: by must be a safe integer`);
}

interface Budget {
  stepsLeft: number;
  readonly deadline: number | undefined;
  readonly now: () => number;
}

/** Entry is a call or return event in the search's doubly linked list. */
interface Entry {
  readonly isCall: boolean;
  /** id indexes the key's operations. */
  readonly id: number;
  readonly time: number;
  /** ret is a call's return entry; undefined for ambiguous calls and for returns. */
  ret: Entry | undefined;
  prev: Entry | undefined;
  next: Entry | undefined;
}

/** Bitset of linearized operations with a Zobrist hash kept up to date in O(1) per change. */
class Bitset {
  readonly words: Uint32Array;
  hash = 0;

  constructor(
    size: number,
    private readonly zobrist: Uint32Array,
  ) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  set(i: number): void {
    this.words[i >>> 5]! |= 1 << (i & 31);
    this.hash = (this.hash ^ this.zobrist[i]!) >>> 0;
  }

  clear(i: number): void {
    this.words[i >>> 5]! &= ~(1 << (i & 31));
    this.hash = (this.hash ^ this.zobrist[i]!) >>> 0;
  }
}

function equalWords(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** FNV-1a of a state, so the cache's bucket depends on both halves of the pair. */
function stateHash(s: KvValue): number {
  if (s === null) return 0x9e3779b9;
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Cache of explored (linearized set, state) pairs, bucketed by a combined hash. */
class Cache {
  private readonly buckets = new Map<number, { words: Uint32Array; state: KvValue }[]>();

  /** addIfNew records the pair and says whether it was new. */
  addIfNew(bits: Bitset, state: KvValue): boolean {
    const h = (bits.hash ^ Math.imul(stateHash(state), 0x27d4eb2d)) >>> 0;
    let bucket = this.buckets.get(h);
    if (bucket === undefined) this.buckets.set(h, (bucket = []));
    for (const e of bucket) if (e.state === state && equalWords(e.words, bits.words)) return false;
    bucket.push({ words: bits.words.slice(), state }); // slice copies: bits keeps changing
    return true;
  }
}

/** buildList returns the sentinel head of the time-ordered event list of ops. */
function buildList(ops: readonly KvOperation[]): Entry {
  const events: Entry[] = [];
  ops.forEach((op, id) => {
    const call: Entry = {
      isCall: true,
      id,
      time: op.invoke,
      ret: undefined,
      prev: undefined,
      next: undefined,
    };
    events.push(call);
    if (op.complete !== undefined) {
      const ret: Entry = {
        isCall: false,
        id,
        time: op.complete,
        ret: undefined,
        prev: undefined,
        next: undefined,
      };
      call.ret = ret;
      events.push(ret);
    }
  });
  // Calls before returns at equal times (concurrent); otherwise by id, so the order is stable.
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Entry = {
    isCall: false,
    id: -1,
    time: -Infinity,
    ret: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const e of events) {
    last.next = e;
    e.prev = last;
    last = e;
  }
  return head;
}

function unlink(e: Entry): void {
  e.prev!.next = e.next;
  if (e.next !== undefined) e.next.prev = e.prev;
}

function relink(e: Entry): void {
  e.prev!.next = e;
  if (e.next !== undefined) e.next.prev = e;
}

/** lift takes a call and its return out of the list. */
function lift(call: Entry): void {
  unlink(call);
  if (call.ret !== undefined) unlink(call.ret);
}

/** unlift puts them back, in the reverse order of lift, so the neighbours' links are right. */
function unlift(call: Entry): void {
  if (call.ret !== undefined) relink(call.ret);
  relink(call);
}

interface Frame {
  readonly call: Entry;
  /** stateBefore is the state to restore on backtracking. */
  readonly stateBefore: KvValue;
  readonly stateAfter: KvValue;
  /** forced is set when no other candidate needs trying at this point (see readOnly). */
  readonly forced: boolean;
}

/**
 * readOnly says whether op leaves the state as it is wherever it is legal: a get, a cas that
 * answered false, a delete that answered false (the key was absent). Such an operation, when
 * it is a legal candidate, can be linearized at once with no alternative to try: take any
 * valid completion of the search from here, move the operation to its front; every operation
 * that followed it sees the same states, and nothing pending must come before it (it is a
 * candidate, so every pending operation returns after it was invoked). This is what keeps
 * read-heavy histories cheap; writes still branch.
 */
function readOnly(op: KvOperation): boolean {
  if (op.kind === 'get') return true;
  if (op.complete === undefined) return false;
  return (op.kind === 'cas' || op.kind === 'delete') && op.output === false;
}

function checkKey(key: string, ops: readonly KvOperation[], budget: Budget): CheckResult {
  const zobrist = new Uint32Array(ops.length);
  // A fixed-seed generator (not Math.random): the same history always searches the same way.
  let seed = 0x2545f491;
  for (let i = 0; i < zobrist.length; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    zobrist[i] = seed >>> 0;
  }
  const head = buildList(ops);
  const linearized = new Bitset(ops.length, zobrist);
  const cache = new Cache();
  const stack: Frame[] = [];
  let state: KvValue = null;
  let definiteLeft = ops.filter((op) => op.complete !== undefined).length;
  // The deepest point the search reached before having to backtrack, for the explanation.
  let best: { frames: Frame[]; blocked: Entry; state: KvValue } | undefined;

  let entry = head.next;
  // fresh is set on reaching a new point of the search: look for a forced move first.
  let fresh = true;
  let steps = 0;
  while (definiteLeft > 0) {
    if (++steps > budget.stepsLeft) return outOfBudget(key, `step budget exhausted`);
    if (budget.deadline !== undefined && steps % TIME_CHECK_INTERVAL_STEPS === 0) {
      if (budget.now() > budget.deadline) return outOfBudget(key, `time budget exhausted`);
    }
    let backtrack = false;
    if (fresh) {
      fresh = false;
      for (let e = head.next; e?.isCall === true; e = e.next) {
        const op = ops[e.id]!;
        if (!readOnly(op) || step(state, op) === undefined) continue;
        linearized.set(e.id);
        if (cache.addIfNew(linearized, state)) {
          stack.push({ call: e, stateBefore: state, stateAfter: state, forced: true });
          if (op.complete !== undefined) definiteLeft--;
          lift(e);
          entry = head.next;
          fresh = true;
        } else {
          // Explored before and failed; this point is equivalent to that one, so it fails too.
          linearized.clear(e.id);
          backtrack = true;
        }
        break;
      }
      if (fresh) continue;
    }
    if (!backtrack) {
      // With definite operations left, a return is always ahead of the walk: every definite
      // operation's return comes after its call, so the end of the list is never reached here.
      if (entry === undefined) throw new Error('linearizability: walked off the event list');
      if (entry.isCall) {
        const op = ops[entry.id]!;
        const next = step(state, op);
        if (next !== undefined) {
          linearized.set(entry.id);
          if (cache.addIfNew(linearized, next.state)) {
            stack.push({ call: entry, stateBefore: state, stateAfter: next.state, forced: false });
            state = next.state;
            if (op.complete !== undefined) definiteLeft--;
            lift(entry);
            entry = head.next;
            fresh = true;
            continue;
          }
          linearized.clear(entry.id);
        }
        entry = entry.next;
        continue;
      }
      // A return of an operation not yet linearized: its window closed, so backtrack.
      if (best === undefined || stack.length > best.frames.length)
        best = { frames: stack.slice(), blocked: entry, state };
    }
    // Undo the last choice; a forced one had no alternatives, so undo the one before it too.
    for (;;) {
      const top = stack.pop();
      if (top === undefined) {
        budget.stepsLeft -= steps;
        // Every failed point of the search met a return first (a cache hit repeats one that did).
        if (best === undefined) throw new Error('linearizability: failed with no blocking return');
        return failure(key, ops, best);
      }
      state = top.stateBefore;
      linearized.clear(top.call.id);
      if (ops[top.call.id]!.complete !== undefined) definiteLeft++;
      unlift(top.call);
      if (!top.forced) {
        entry = top.call.next;
        break;
      }
    }
  }
  budget.stepsLeft -= steps;
  return { ok: true };
}

function outOfBudget(key: string, reason: string): CheckResult {
  return { ok: 'unknown', key, reason: `${reason} while checking key ${JSON.stringify(key)}` };
}

function failure(
  key: string,
  ops: readonly KvOperation[],
  best: { frames: Frame[]; blocked: Entry; state: KvValue },
): CheckResult {
  const partialLinearization = best.frames.map((f) => ({ op: ops[f.call.id]!, stateAfter: f.stateAfter }));
  const blockedOp = ops[best.blocked.id]!;
  const inPrefix = new Set(best.frames.map((f) => f.call.id));
  const lines: string[] = [];
  const ambiguous = ops.filter((op) => op.complete === undefined).length;
  lines.push(
    `key ${JSON.stringify(key)}: not linearizable (${ops.length} operations on this key, ${ambiguous} ambiguous).`,
  );
  lines.push(`Longest linearizable prefix found (${partialLinearization.length} operations):`);
  const shown = partialLinearization.slice(-EXPLANATION_OPS_MAX);
  if (shown.length < partialLinearization.length)
    lines.push(`  ... ${partialLinearization.length - shown.length} earlier operations`);
  shown.forEach((s, i) => {
    const n = partialLinearization.length - shown.length + i + 1;
    lines.push(`  ${n}. ${describeOp(s.op)}  => ${show(s.stateAfter)}`);
  });
  if (partialLinearization.length === 0) lines.push('  (none; the key starts absent)');
  const outcome = applyOp(best.state, blockedOp);
  const would = outcome.ok
    ? blockedOp.kind === 'put'
      ? 'it could not be placed'
      : `it would return ${show(outcome.output)}`
    : `it would fail (${outcome.error})`;
  lines.push(
    `Then ${describeOp(blockedOp)} must take effect by ${blockedOp.complete}, but from state ${show(best.state)} ${would}, ` +
      'and no order of the operations still pending makes it legal.',
  );
  const pending = ops.filter(
    (op, id) => !inPrefix.has(id) && id !== best.blocked.id && op.invoke <= (blockedOp.complete ?? Infinity),
  );
  if (pending.length > 0) {
    lines.push(`Operations invoked by then and not in the prefix (${pending.length}):`);
    for (const op of pending.slice(0, EXPLANATION_OPS_MAX)) lines.push(`  ${describeOp(op)}`);
    if (pending.length > EXPLANATION_OPS_MAX)
      lines.push(`  ... ${pending.length - EXPLANATION_OPS_MAX} more`);
  }
  return { ok: false, key, explanation: lines.join('\n'), partialLinearization };
}

function show(v: unknown): string {
  return v === undefined ? 'unknown' : JSON.stringify(v);
}

/** describeOp renders an operation on one line: who, what, what it returned, when. */
export function describeOp(op: KvOperation): string {
  let call: string;
  switch (op.kind) {
    case 'get':
      call = 'get()';
      break;
    case 'put':
      call = `put(${show(op.value)})`;
      break;
    case 'delete':
      call = 'delete()';
      break;
    case 'cas':
      call = `cas(${show(op.expected)}, ${show(op.value)})`;
      break;
    case 'incr':
      call = `incr(${op.by})`;
      break;
    case 'append':
      call = `append(${show(op.suffix)})`;
      break;
    case 'expire':
      call = `expire(${show(op.value)})`;
      break;
  }
  const out = op.kind === 'put' || op.kind === 'expire' ? 'ok' : show(recordedOutput(op));
  const when = op.complete === undefined ? `[${op.invoke}, ?] ambiguous` : `[${op.invoke}, ${op.complete}]`;
  return `client ${op.client} ${JSON.stringify(op.key)} ${call} -> ${op.complete === undefined ? '?' : out} ${when}`;
}
