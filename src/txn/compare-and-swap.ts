// Compare-and-swap transactions in the style of etcd's Txn: a list of comparisons, the operations
// to run if all hold, the ones to run otherwise; one atomic, linearizable step. Grammar in
// docs/transactions.md. It runs as one write pipeline update over every key it names: the
// comparisons see the newest state (pending writes included) and the writes are queued as one
// batch in the same synchronous step, so nothing can change in between.
//
// Revision comparisons (`version`, `create`, `mod`) compare a key's revision (storage/engine.ts:
// its version count, creation and newest commit timestamps) with an integer; an absent key has
// all three 0, as in etcd. Each `get` reports the revision it read, and the result carries the
// commit timestamp of the branch's writes (etcd's header revision), which is the `mod` of every
// key they set.
import { compareBytes, copyBytes } from '../stdx/bytes.js';
import { keyString } from '../stdx/key-string.js';
import type { Revision } from '../storage/engine.js';
import { checkKnown } from '../storage/engine-options.js';
import { InvalidArgumentError, LimitError, WrongTypeError } from '../storage/errors.js';
import { BATCH_OPS_MAX } from '../storage/limits.js';
import { revisionOfPut } from '../storage/revision.js';
import { checkKey, checkValue, textBytes } from '../storage/validate.js';
import { valueTypeName } from '../storage/value-type.js';
import type { WritePipeline } from './write-pipeline.js';

type Bytes = string | Uint8Array;

export type CompareOp = '=' | '!=' | '<' | '>';
export const COMPARE_OPS: readonly CompareOp[] = ['=', '!=', '<', '>'];

/** RevisionTarget: the revision fields a comparison can name. */
export type RevisionTarget = 'version' | 'create' | 'mod';
export const REVISION_TARGETS: readonly RevisionTarget[] = ['version', 'create', 'mod'];

/**
 * Comparison: `value` compares bytes (an absent key only satisfies '!='); `exists` a boolean;
 * `version`, `create` and `mod` compare the key's revision with an integer (0 when absent).
 */
export type Comparison =
  | { readonly key: Bytes; readonly target: 'value'; readonly op: CompareOp; readonly value: Bytes }
  | { readonly key: Bytes; readonly target: 'exists'; readonly exists: boolean }
  | { readonly key: Bytes; readonly target: RevisionTarget; readonly op: CompareOp; readonly value: number };

export type CasOp =
  | { readonly type: 'get'; readonly key: Bytes }
  | { readonly type: 'set'; readonly key: Bytes; readonly value: Bytes }
  | { readonly type: 'delete'; readonly key: Bytes };

export interface CasRequest {
  readonly compare: readonly Comparison[];
  readonly success?: readonly CasOp[];
  readonly failure?: readonly CasOp[];
}

/** CasOptions: what a server bounds in a compare-and-swap it runs for a client. */
export interface CasOptions {
  /**
   * resultBytesMax: the most value bytes the gets of the branch that runs may return together.
   * Past it the request fails with LimitError before anything is written: each get returns a
   * copy of its value, so `n` gets of one large value would otherwise hold `n` copies at once.
   */
  readonly resultBytesMax?: number;
}

/**
 * CasResult: which branch ran, one entry per operation of it (the value and revision for
 * `get`), and the commit timestamp of its writes (undefined when it wrote nothing).
 */
export interface CasResult {
  readonly succeeded: boolean;
  readonly results: readonly (
    | { readonly type: 'get'; readonly value: Buffer | undefined; readonly revision: Revision | undefined }
    | { readonly type: 'set' | 'delete' }
  )[];
  readonly ts: number | undefined;
}

/** Cell: what a comparison or a get sees of a key. */
interface Cell {
  readonly value: Buffer | undefined;
  readonly revision: Revision | undefined;
}

interface Prepared {
  readonly keys: Buffer[];
  readonly index: Map<string, number>;
  readonly compare: readonly {
    readonly at: number;
    readonly test: (cell: Cell) => boolean;
    /** readsValue: a `value` comparison (it reads the key as a string). */
    readonly readsValue?: boolean;
  }[];
  readonly success: readonly PreparedOp[];
  readonly failure: readonly PreparedOp[];
}

interface PreparedOp {
  readonly type: 'get' | 'set' | 'delete';
  readonly at: number;
  readonly value: Buffer | undefined;
}

/** The fields of a request, a comparison and an operation (anything else is refused). */
const CAS_REQUEST_FIELDS: readonly string[] = ['compare', 'success', 'failure'];
const COMPARISON_FIELDS: readonly string[] = ['key', 'target', 'op', 'value'];
const EXISTS_COMPARISON_FIELDS: readonly string[] = ['key', 'target', 'exists'];
const SET_OP_FIELDS: readonly string[] = ['type', 'key', 'value'];
const KEY_OP_FIELDS: readonly string[] = ['type', 'key'];

function prepare(req: CasRequest): Prepared {
  if (req === null || typeof req !== 'object' || !Array.isArray(req.compare)) {
    throw new InvalidArgumentError('a compare-and-swap request needs a `compare` array');
  }
  // A misspelt field is refused by name: ignored, `sucess` ran a compare-and-swap that
  // "succeeded" and wrote nothing, and a set's `ttlMs` stored the key without its expiry.
  checkKnown(req, CAS_REQUEST_FIELDS);
  const keys: Buffer[] = [];
  const index = new Map<string, number>();
  const slot = (key: unknown): number => {
    if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
      throw new InvalidArgumentError('every key must be a string or bytes');
    }
    // A copy: the request's buffers are borrowed, and the keys are used after the read awaits.
    const bytes = copyBytes(textBytes(key));
    checkKey(bytes);
    const k = keyString(bytes);
    let at = index.get(k);
    if (at === undefined) {
      at = keys.length;
      keys.push(bytes);
      index.set(k, at);
    }
    return at;
  };
  const compare = req.compare.map((c) => {
    if (c === null || typeof c !== 'object')
      throw new InvalidArgumentError('every comparison of `compare` must be an object');
    checkKnown(c, c.target === 'exists' ? EXISTS_COMPARISON_FIELDS : COMPARISON_FIELDS);
    const at = slot(c.key);
    if (c.target === 'exists') {
      if (typeof c.exists !== 'boolean')
        throw new InvalidArgumentError("an 'exists' comparison needs `exists`");
      const want = c.exists;
      return { at, test: (cell: Cell) => (cell.value !== undefined) === want };
    }
    if (c.target === 'value' || REVISION_TARGETS.includes(c.target)) {
      if (!COMPARE_OPS.includes(c.op)) {
        throw new InvalidArgumentError(
          `unknown comparison '${String(c.op)}' (expected ${COMPARE_OPS.join(' ')})`,
        );
      }
    }
    if (c.target === 'value') {
      // A copy, like the keys: compared after the read awaits.
      const operand = copyBytes(textBytes(bytesArg(c.value, "a 'value' comparison's value")));
      const op = c.op;
      return {
        at,
        readsValue: true,
        test: (cell: Cell) =>
          cell.value === undefined ? op === '!=' : holds(op, compareBytes(cell.value, operand)),
      };
    }
    if (c.target === 'version' || c.target === 'create' || c.target === 'mod') {
      if (!Number.isSafeInteger(c.value) || c.value < 0) {
        throw new InvalidArgumentError(`a '${c.target}' comparison needs a non-negative integer`);
      }
      const target: RevisionTarget = c.target;
      const op: CompareOp = c.op;
      const value: number = c.value;
      return { at, test: (cell: Cell) => holds(op, Math.sign((cell.revision?.[target] ?? 0) - value)) };
    }
    throw new InvalidArgumentError(
      `unknown comparison target '${String((c as { target: unknown }).target)}' (expected value, exists, ${REVISION_TARGETS.join(', ')})`,
    );
  });
  const ops = (list: readonly CasOp[] | undefined, name: string): PreparedOp[] => {
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new InvalidArgumentError(`\`${name}\` must be an array`);
    if (list.length > BATCH_OPS_MAX)
      throw new InvalidArgumentError(`\`${name}\` has more than ${BATCH_OPS_MAX} operations`);
    return list.map((op) => {
      if (op === null || typeof op !== 'object')
        throw new InvalidArgumentError(`every operation of \`${name}\` must be an object`);
      checkKnown(op, op.type === 'set' ? SET_OP_FIELDS : KEY_OP_FIELDS);
      const at = slot(op.key);
      if (op.type === 'get' || op.type === 'delete') return { type: op.type, at, value: undefined };
      if (op.type === 'set') {
        // A copy: the caller may reuse its buffer before the write is queued.
        const value = copyBytes(textBytes(bytesArg(op.value, "a 'set' operation's value")));
        checkValue(value);
        return { type: 'set', at, value };
      }
      throw new InvalidArgumentError(`unknown operation type '${String((op as { type: unknown }).type)}'`);
    });
  };
  return { keys, index, compare, success: ops(req.success, 'success'), failure: ops(req.failure, 'failure') };
}

/** holds: whether comparison `op` holds for a difference of sign `d` (left minus right). */
function holds(op: CompareOp, d: number): boolean {
  return op === '=' ? d === 0 : op === '!=' ? d !== 0 : op === '<' ? d < 0 : d > 0;
}

/** compareAndSwap runs `req` atomically on the newest state; resolves once its writes are durable. */
export async function compareAndSwap(
  pipeline: WritePipeline,
  req: CasRequest,
  options: CasOptions = {},
): Promise<CasResult> {
  const p = prepare(req);
  const { resultBytesMax } = options;
  const { result, durable, ts } = pipeline.updateMany(p.keys, (current, _expiries, revisions, types) => {
    // Compare-and-swap reads strings: a value comparison or a get of a key holding another type
    // (a hash) is refused rather than answered from its encoding. `exists` and revision
    // comparisons hold for any type, and a `set` replaces any type, as SET does.
    for (const c of p.compare) {
      const t = types[c.at] ?? 0;
      if (c.readsValue === true && t !== 0) throw new WrongTypeError(valueTypeName(t));
    }
    for (const op of p.success.concat(p.failure)) {
      const t = types[op.at] ?? 0;
      if (op.type === 'get' && t !== 0) throw new WrongTypeError(valueTypeName(t));
    }
    const cells: Cell[] = current.map((value, i) => ({ value, revision: revisions[i] }));
    const succeeded = p.compare.every((c) => c.test(cells[c.at]!));
    const branch = succeeded ? p.success : p.failure;
    // Operations run in order: a get sees the branch's earlier writes, whose revision is known
    // only once the batch has its timestamp (see below).
    const state = [...current];
    const touched = new Set<number>();
    const gets: { readonly at: number; readonly written: boolean; readonly index: number }[] = [];
    const results: CasResult['results'][number][] = [];
    for (const op of branch) {
      if (op.type === 'get') {
        gets.push({ at: op.at, written: touched.has(op.at), index: results.length });
        results.push({ type: 'get', value: state[op.at], revision: cells[op.at]!.revision });
      } else {
        state[op.at] = op.value;
        touched.add(op.at);
        results.push({ type: op.type });
      }
    }
    if (resultBytesMax !== undefined) {
      // Checked before the writes are queued: a refused request changes nothing.
      let bytes = 0;
      for (const r of results) if (r.type === 'get') bytes += r.value?.length ?? 0;
      if (bytes > resultBytesMax) {
        throw new LimitError(
          `the values this compare-and-swap's gets return pass ${resultBytesMax} bytes (${bytes}); get fewer keys at a time`,
        );
      }
    }
    const writes = [...touched].map((at) => ({ key: p.keys[at]!, value: state[at] ?? null }));
    return { result: { succeeded, results, gets, cells, state }, writes };
  });
  // A get after a set in the same branch reads a value of the batch: if it is the one the batch
  // stores, its revision is the one the view gives it at `ts` (counted from the key's state
  // before); a value a later operation of the branch replaces is never stored and has none.
  const results = [...result.results];
  for (const g of result.gets) {
    if (!g.written) continue;
    const got = results[g.index] as { readonly value: Buffer | undefined };
    const stored = got.value !== undefined && got.value === result.state[g.at] && ts !== undefined;
    results[g.index] = {
      type: 'get',
      value: got.value,
      revision: stored ? revisionOfPut(result.cells[g.at]!.revision, ts) : undefined,
    };
  }
  await durable;
  // Values read are the write pipeline's own pending values (shared with its other readers and the
  // version history) or the branch's own: the caller gets copies it may write into.
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    if (r.type === 'get' && r.value !== undefined) results[i] = { ...r, value: copyBytes(r.value) };
  }
  return { succeeded: result.succeeded, results, ts };
}

/** bytesArg: a value given as a string or bytes (anything else is the caller's mistake, named). */
function bytesArg(value: unknown, what: string): string | Uint8Array {
  if (typeof value === 'string' || value instanceof Uint8Array) return value;
  throw new InvalidArgumentError(
    `${what} must be a string or bytes, got ${value === null ? 'null' : typeof value}`,
  );
}
