// Compare-and-swap transactions in the style of etcd's Txn: a list of comparisons, the operations
// to run if all hold, the ones to run otherwise; one atomic, linearizable step. Grammar in
// docs/transactions.md. It runs as one LatestView update over every key it names: the
// comparisons see the newest state (pending writes included) and the writes are queued as one
// batch in the same synchronous step, so nothing can change in between.
import type { LatestView } from '../db/latest-view.js';
import { asBuffer, compareBytes, toBytes } from '../stdx/bytes.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { BATCH_OPS_MAX } from '../storage/limits.js';
import { checkKey, checkValue } from '../storage/validate.js';
import { keyOf } from './mvcc.js';

type Bytes = string | Uint8Array;

export type CompareOp = '=' | '!=' | '<' | '>';
export const COMPARE_OPS: readonly CompareOp[] = ['=', '!=', '<', '>'];

/** Comparison: `value` compares bytes (an absent key only satisfies '!='); `exists` a boolean. */
export type Comparison =
  | { readonly key: Bytes; readonly target: 'value'; readonly op: CompareOp; readonly value: Bytes }
  | { readonly key: Bytes; readonly target: 'exists'; readonly exists: boolean };

export type CasOp =
  | { readonly type: 'get'; readonly key: Bytes }
  | { readonly type: 'set'; readonly key: Bytes; readonly value: Bytes }
  | { readonly type: 'delete'; readonly key: Bytes };

export interface CasRequest {
  readonly compare: readonly Comparison[];
  readonly success?: readonly CasOp[];
  readonly failure?: readonly CasOp[];
}

/** CasResult: which branch ran, and one entry per operation of it (the value for `get`). */
export interface CasResult {
  readonly succeeded: boolean;
  readonly results: readonly (
    | { readonly type: 'get'; readonly value: Buffer | undefined }
    | { readonly type: 'set' | 'delete' }
  )[];
}

interface Prepared {
  readonly keys: Buffer[];
  readonly index: Map<string, number>;
  readonly compare: readonly { readonly at: number; readonly test: (v: Buffer | undefined) => boolean }[];
  readonly success: readonly PreparedOp[];
  readonly failure: readonly PreparedOp[];
}

interface PreparedOp {
  readonly type: 'get' | 'set' | 'delete';
  readonly at: number;
  readonly value: Buffer | undefined;
}

function prepare(req: CasRequest): Prepared {
  if (req === null || typeof req !== 'object' || !Array.isArray(req.compare)) {
    throw new InvalidArgumentError('a compare-and-swap request needs a `compare` array');
  }
  const keys: Buffer[] = [];
  const index = new Map<string, number>();
  const slot = (key: unknown): number => {
    if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
      throw new InvalidArgumentError('every key must be a string or bytes');
    }
    const bytes = asBuffer(toBytes(key));
    checkKey(bytes);
    const k = keyOf(bytes);
    let at = index.get(k);
    if (at === undefined) {
      at = keys.length;
      keys.push(bytes);
      index.set(k, at);
    }
    return at;
  };
  const compare = req.compare.map((c) => {
    const at = slot(c.key);
    if (c.target === 'exists') {
      if (typeof c.exists !== 'boolean')
        throw new InvalidArgumentError("an 'exists' comparison needs `exists`");
      const want = c.exists;
      return { at, test: (v: Buffer | undefined) => (v !== undefined) === want };
    }
    if (c.target === 'value') {
      if (!COMPARE_OPS.includes(c.op)) {
        throw new InvalidArgumentError(
          `unknown comparison '${String(c.op)}' (expected ${COMPARE_OPS.join(' ')})`,
        );
      }
      const operand = asBuffer(toBytes(c.value));
      const op = c.op;
      return {
        at,
        test: (v: Buffer | undefined) => {
          if (v === undefined) return op === '!=';
          const d = compareBytes(v, operand);
          return op === '=' ? d === 0 : op === '!=' ? d !== 0 : op === '<' ? d < 0 : d > 0;
        },
      };
    }
    throw new InvalidArgumentError(
      `unknown comparison target '${String((c as { target: unknown }).target)}' (expected value or exists)`,
    );
  });
  const ops = (list: readonly CasOp[] | undefined, name: string): PreparedOp[] => {
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new InvalidArgumentError(`\`${name}\` must be an array`);
    if (list.length > BATCH_OPS_MAX)
      throw new InvalidArgumentError(`\`${name}\` has more than ${BATCH_OPS_MAX} operations`);
    return list.map((op) => {
      const at = slot(op.key);
      if (op.type === 'get' || op.type === 'delete') return { type: op.type, at, value: undefined };
      if (op.type === 'set') {
        const value = Buffer.from(toBytes(op.value));
        checkValue(value);
        return { type: 'set', at, value };
      }
      throw new InvalidArgumentError(`unknown operation type '${String((op as { type: unknown }).type)}'`);
    });
  };
  return { keys, index, compare, success: ops(req.success, 'success'), failure: ops(req.failure, 'failure') };
}

/** compareAndSwap runs `req` atomically on the newest state; resolves once its writes are durable. */
export async function compareAndSwap(latest: LatestView, req: CasRequest): Promise<CasResult> {
  const p = prepare(req);
  const { result, durable } = await latest.updateMany(p.keys, (current) => {
    const succeeded = p.compare.every((c) => c.test(current[c.at]));
    const branch = succeeded ? p.success : p.failure;
    // Operations run in order: a get sees the branch's earlier writes.
    const state = [...current];
    const touched = new Set<number>();
    const results: CasResult['results'][number][] = [];
    for (const op of branch) {
      if (op.type === 'get') results.push({ type: 'get', value: state[op.at] });
      else {
        state[op.at] = op.value;
        touched.add(op.at);
        results.push({ type: op.type });
      }
    }
    const writes = [...touched].map((at) => ({ key: p.keys[at]!, value: state[at] ?? null }));
    return { result: { succeeded, results }, writes };
  });
  await durable;
  return result;
}
