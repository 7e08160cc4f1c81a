// POST /v1/txn: transactions over HTTP, in one of two forms (docs/http.md):
// - compare-and-swap `{ compare, success, failure }`: db.compareAndSwap, one atomic,
//   linearizable step on the newest state;
// - one-shot `{ isolation, ops }`: the operations in order inside one transaction (reads see the
//   snapshot plus earlier writes of the same request), committed atomically; conflicts are
//   retried on a fresh snapshot, and answered 409 TXN_CONFLICT once the attempts run out.
// JSON only, like /v1/batch; keys and values follow the batch's text/base64 convention.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import type { Revision } from '../../storage/engine.js';
import { LimitError } from '../../storage/errors.js';
import type { CasOp, CasResult, CompareOp, Comparison, RevisionTarget } from '../../txn/compare-and-swap.js';
import type { Isolation } from '../../txn/mvcc.js';
import type { Transaction } from '../../txn/transaction.js';
import { decodeBase64, encodeBase64, jsonBytes } from './encoding.js';
import { invalidArgument } from './errors.js';
import { LIST_LIMIT_DEFAULT, LIST_PAGE_BYTES_MAX, TXN_ANSWER_BYTES_MAX } from './limits.js';
import { item, type ListItem } from './routes-list.js';
import { TXN_BODY_SCHEMA, TXN_RESPONSE_SCHEMA } from './schemas.js';

interface CompareBody {
  key: string;
  target: 'value' | 'exists' | RevisionTarget;
  op?: CompareOp;
  value?: string;
  number?: number;
  exists?: boolean;
}

interface OpBody {
  op: 'get' | 'set' | 'delete' | 'scan';
  key?: string;
  value?: string;
  prefix?: string;
  start?: string;
  end?: string;
  limit?: number;
  reverse?: boolean;
}

interface TxnBody {
  compare?: CompareBody[];
  success?: OpBody[];
  failure?: OpBody[];
  isolation?: Isolation;
  ops?: OpBody[];
  base64?: boolean;
}

interface TxnResult {
  op: OpBody['op'];
  found?: boolean;
  value?: string;
  valueEncoding?: 'base64';
  items?: ListItem[];
  truncated?: boolean;
  revision?: Revision;
}

/** Op: a decoded one-shot operation (the schema guarantees the fields its kind needs). */
type Op =
  | { readonly op: 'get'; readonly key: Buffer }
  | { readonly op: 'delete'; readonly key: Buffer }
  | { readonly op: 'set'; readonly key: Buffer; readonly value: Buffer }
  | {
      readonly op: 'scan';
      readonly prefix: Buffer | undefined;
      readonly start: Buffer | undefined;
      readonly end: Buffer | undefined;
      readonly limit: number;
      readonly reverse: boolean;
    };

type Decode = (text: string, what: string) => Buffer;

function decoder(base64: boolean): Decode {
  return (text, what) => (base64 ? decodeBase64(text, what) : utf8Of(text, what));
}

/**
 * utf8Of: a JSON string's UTF-8 bytes. A lone surrogate (`"\ud800"` is valid JSON) has none:
 * Buffer.from would write U+FFFD, so two different keys would name one and values would change.
 * Refused, as /v1/batch refuses it (the store's textBytes).
 */
function utf8Of(text: string, what: string): Buffer {
  if (!(text as string & { isWellFormed(): boolean }).isWellFormed())
    throw invalidArgument(
      `${what} has a lone surrogate, which UTF-8 cannot encode; send such bytes as base64 ("base64": true)`,
    );
  return Buffer.from(text, 'utf8');
}

function getResult(value: Buffer | undefined, base64: boolean): TxnResult {
  if (value === undefined) return { op: 'get', found: false };
  if (base64) return { op: 'get', found: true, value: encodeBase64(value) };
  const v = jsonBytes(value);
  return v.base64
    ? { op: 'get', found: true, value: v.text, valueEncoding: 'base64' }
    : { op: 'get', found: true, value: v.text };
}

function decodeOps(ops: readonly OpBody[], bytes: Decode): Op[] {
  return ops.map((op, i): Op => {
    const at = `ops[${i}]`;
    const opt = (text: string | undefined, what: string) =>
      text === undefined ? undefined : bytes(text, `${at}.${what}`);
    switch (op.op) {
      case 'set':
        return {
          op: 'set',
          key: bytes(op.key ?? '', `${at}.key`),
          value: bytes(op.value ?? '', `${at}.value`),
        };
      case 'get':
        return { op: 'get', key: bytes(op.key ?? '', `${at}.key`) };
      case 'delete':
        return { op: 'delete', key: bytes(op.key ?? '', `${at}.key`) };
      default:
        return {
          op: 'scan',
          prefix: opt(op.prefix, 'prefix'),
          start: opt(op.start, 'start'),
          end: opt(op.end, 'end'),
          limit: op.limit ?? LIST_LIMIT_DEFAULT,
          reverse: op.reverse === true,
        };
    }
  });
}

/** answerTooLarge: the refusal of a request whose answer would pass TXN_ANSWER_BYTES_MAX. */
function answerTooLarge(what: string): LimitError {
  return new LimitError(
    `the ${what} of this transaction pass ${TXN_ANSWER_BYTES_MAX} bytes (TXN_ANSWER_BYTES_MAX); read less per request (a listing pages: GET /v1/kv)`,
  );
}

async function runOps(tx: Transaction, ops: readonly Op[], base64: boolean): Promise<TxnResult[]> {
  const results: TxnResult[] = [];
  // Key and value bytes read for the answer so far, every operation together.
  let spent = 0;
  const spend = (bytes: number): void => {
    spent += bytes;
    if (spent > TXN_ANSWER_BYTES_MAX) throw answerTooLarge('keys and values read');
  };
  for (const op of ops) {
    if (op.op === 'get') {
      const value = await tx.get(op.key);
      spend(value?.length ?? 0);
      results.push(getResult(value, base64));
    } else if (op.op === 'set') {
      tx.set(op.key, op.value);
      results.push({ op: 'set' });
    } else if (op.op === 'delete') {
      tx.delete(op.key);
      results.push({ op: 'delete' });
    } else {
      // Stop early at the listing's byte cap too, so 1000 large values are not one huge answer.
      const items: ListItem[] = [];
      let bytes = 0;
      let truncated = false;
      // A transaction's scan yields strings only (keys holding a hash are skipped, as in
      // listings) and its limit counts them; stopping at the limit also ends what a
      // serializable transaction read at the last key answered.
      const { prefix, start, end, limit, reverse } = op;
      for await (const [k, v] of tx.scan({ prefix, start, end, limit, reverse })) {
        spend(k.length + v.length);
        if (items.length > 0 && bytes + k.length + v.length > LIST_PAGE_BYTES_MAX) {
          truncated = true;
          break;
        }
        bytes += k.length + v.length;
        items.push(item(k, v, base64));
        if (items.length >= op.limit) break;
      }
      results.push(truncated ? { op: 'scan', items, truncated } : { op: 'scan', items });
    }
  }
  return results;
}

/** oneShot runs `ops` in a managed transaction (conflicts retried) and returns the commit ts. */
async function oneShot(
  db: Db,
  isolation: Isolation,
  ops: readonly Op[],
  base64: boolean,
): Promise<{ ts: number; results: TxnResult[] }> {
  const { value, ts } = await db.runTransaction((tx) => runOps(tx, ops, base64), { isolation });
  return { ts, results: value };
}

function casRequest(body: TxnBody, bytes: Decode) {
  const compare = (body.compare ?? []).map((c, i): Comparison => {
    const key = bytes(c.key, `compare[${i}].key`);
    // The schema guarantees op/value for 'value', op/number for revisions, exists for 'exists'.
    if (c.target === 'exists') return { key, target: 'exists', exists: c.exists === true };
    if (c.target === 'value') {
      return { key, target: 'value', op: c.op ?? '=', value: bytes(c.value ?? '', `compare[${i}].value`) };
    }
    return { key, target: c.target, op: c.op ?? '=', value: c.number ?? 0 };
  });
  const branch = (list: readonly OpBody[] | undefined, name: string): CasOp[] =>
    (list ?? []).map((op, i): CasOp => {
      const key = bytes(op.key ?? '', `${name}[${i}].key`);
      if (op.op === 'set') return { type: 'set', key, value: bytes(op.value ?? '', `${name}[${i}].value`) };
      return { type: op.op === 'delete' ? 'delete' : 'get', key };
    });
  return { compare, success: branch(body.success, 'success'), failure: branch(body.failure, 'failure') };
}

function casResults(result: CasResult, base64: boolean): TxnResult[] {
  return result.results.map((r) =>
    r.type === 'get'
      ? r.revision === undefined
        ? getResult(r.value, base64)
        : { ...getResult(r.value, base64), revision: r.revision }
      : { op: r.type },
  );
}

export function txnRoutes(db: Db): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.removeContentTypeParser('text/plain');

    app.post<{ Body: TxnBody }>(
      '/v1/txn',
      {
        config: { command: 'txn' },
        schema: { body: TXN_BODY_SCHEMA, response: { 200: TXN_RESPONSE_SCHEMA } },
      },
      async (request) => {
        const body = request.body;
        const cas = body.compare !== undefined || body.success !== undefined || body.failure !== undefined;
        const oneShotForm = body.ops !== undefined || body.isolation !== undefined;
        if (cas === oneShotForm) {
          throw invalidArgument(
            cas
              ? 'a transaction body is either a compare-and-swap (compare, success, failure) or a one-shot transaction (isolation, ops), not both'
              : 'a transaction body needs `compare` (a compare-and-swap) or `ops` (a one-shot transaction)',
          );
        }
        if (cas && body.compare === undefined)
          throw invalidArgument('a compare-and-swap needs a `compare` array');
        if (oneShotForm && body.ops === undefined)
          throw invalidArgument('a one-shot transaction needs an `ops` array');
        const base64 = body.base64 === true;
        const bytes = decoder(base64);
        // Decode everything first: a bad encoding anywhere is a 400 before anything runs.
        if (body.ops !== undefined) {
          const ops = decodeOps(body.ops, bytes);
          return oneShot(db, body.isolation ?? 'serializable', ops, base64);
        }
        const result = await db.compareAndSwap(casRequest(body, bytes), {
          resultBytesMax: TXN_ANSWER_BYTES_MAX,
        });
        return { succeeded: result.succeeded, ts: result.ts, results: casResults(result, base64) };
      },
    );
  };
}
