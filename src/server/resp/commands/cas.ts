// TXN.CAS: compare-and-swap (src/txn/compare-and-swap.ts) as one RESP command:
//
//   TXN.CAS <ncompares> <comparison>... THEN <nops> <op>... [ELSE <nops> <op>...]
//   comparison := <key> VALUE <=|!=|<|>> <operand> | <key> EXISTS <0|1>
//               | <key> VERSION|CREATE|MOD <=|!=|<|>> <integer>
//   op         := SET <key> <value> | DEL <key> | GET <key>
//
// Reply: [succeeded (1 or 0), [one element per operation of the branch that ran: the value (or
// null) for GET, OK for SET and DEL]]. Counts come first so that keys and values may be any bytes,
// including the words THEN and ELSE. VERSION, CREATE and MOD compare the key's revision (0 for
// an absent key), which TXN.REVISION reads together with the value:
//
//   TXN.REVISION <key>  ->  [value, mod, create, version], or null when the key does not exist

import { ValueType } from '../../../storage/value-type.js';
import {
  type CasOp,
  COMPARE_OPS,
  type CompareOp,
  type Comparison,
  REVISION_TARGETS,
  type RevisionTarget,
} from '../../../txn/compare-and-swap.js';
import type { CommandSpec } from '../command-table.js';
import { CommandError, checkType, ERR_SYNTAX } from '../errors.js';
import type { CommandContext, Held } from '../types.js';
import { held, intArg, lower } from './args.js';
import { FIRST_KEY, spec } from './spec.js';

/** MOVABLE_KEYS: TXN.CAS names keys at positions only its parser knows (as Redis's movablekeys). */
const MOVABLE_KEYS = [0, 0, 0] as const;

class Cursor {
  private i = 1;
  constructor(private readonly args: Buffer[]) {}

  get done(): boolean {
    return this.i >= this.args.length;
  }

  next(): Buffer {
    const a = this.args[this.i++];
    if (a === undefined) throw new CommandError(ERR_SYNTAX);
    return a;
  }

  count(): number {
    const n = intArg(this.next());
    // Each item takes at least two arguments: a count beyond what is left cannot be right.
    if (n < 0 || n > this.args.length) throw new CommandError('ERR TXN.CAS count out of range');
    return n;
  }

  word(expected: string): void {
    if (lower(this.next()) !== expected) throw new CommandError(ERR_SYNTAX);
  }
}

function comparison(c: Cursor): Comparison {
  const key = c.next();
  const target = lower(c.next());
  if (target === 'exists') {
    const flag = c.next().toString('latin1');
    if (flag !== '0' && flag !== '1') throw new CommandError('ERR TXN.CAS EXISTS takes 0 or 1');
    return { key, target: 'exists', exists: flag === '1' };
  }
  if (target === 'value' || REVISION_TARGETS.includes(target as RevisionTarget)) {
    const op = c.next().toString('latin1') as CompareOp;
    if (!COMPARE_OPS.includes(op)) {
      throw new CommandError(`ERR TXN.CAS comparison must be one of ${COMPARE_OPS.join(' ')}`);
    }
    if (target === 'value') return { key, target: 'value', op, value: c.next() };
    const operand = c.next();
    const value = intArg(operand);
    if (value < 0) throw new CommandError('ERR TXN.CAS revision operand must be a non-negative integer');
    return { key, target: target as RevisionTarget, op, value };
  }
  throw new CommandError('ERR TXN.CAS compares VALUE, EXISTS, VERSION, CREATE or MOD');
}

function operation(c: Cursor): CasOp {
  const type = lower(c.next());
  if (type === 'set') return { type: 'set', key: c.next(), value: c.next() };
  if (type === 'del') return { type: 'delete', key: c.next() };
  if (type === 'get') return { type: 'get', key: c.next() };
  throw new CommandError('ERR TXN.CAS operations are SET, DEL or GET');
}

function repeat<T>(n: number, f: () => T): T[] {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(f());
  return out;
}

/**
 * casKeys: the keys a TXN.CAS call names, in order (repeats kept), for COMMAND GETKEYS;
 * undefined when the call does not parse.
 */
export function casKeys(args: Buffer[]): Buffer[] | undefined {
  try {
    const c = new Cursor(args);
    const keys = repeat(c.count(), () => comparison(c).key as Buffer);
    c.word('then');
    keys.push(...repeat(c.count(), () => operation(c).key as Buffer));
    if (!c.done) {
      c.word('else');
      keys.push(...repeat(c.count(), () => operation(c).key as Buffer));
    }
    return c.done ? keys : undefined;
  } catch {
    return undefined;
  }
}

async function cas(ctx: CommandContext, args: Buffer[]): Promise<void> {
  if (ctx.session.txn !== undefined) {
    throw new CommandError('ERR TXN.CAS cannot run inside a TXN.BEGIN transaction');
  }
  const c = new Cursor(args);
  const compare = repeat(c.count(), () => comparison(c));
  c.word('then');
  const success = repeat(c.count(), () => operation(c));
  let failure: CasOp[] = [];
  if (!c.done) {
    c.word('else');
    failure = repeat(c.count(), () => operation(c));
  }
  if (!c.done) throw new CommandError(ERR_SYNTAX);
  // The gets' values are bounded as MGET's are: each get returns a copy of its value.
  const result = await ctx.server.db.compareAndSwap(
    { compare, success, failure },
    { resultBytesMax: ctx.server.limits.replyBytes },
  );
  const w = ctx.w;
  w.arrayHeader(2);
  w.integer(result.succeeded ? 1 : 0);
  w.arrayHeader(result.results.length);
  for (const r of result.results) {
    if (r.type === 'get') w.bulk(r.value ?? null);
    else w.ok();
  }
}

/** revision: TXN.REVISION, a key's value and revision in one linearizable read. */
async function revision(ctx: CommandContext, args: Buffer[]): Promise<Held> {
  if (ctx.session.txn !== undefined) {
    // The transaction's snapshot versions keep no revision (docs/transactions.md).
    throw new CommandError('ERR TXN.REVISION cannot run inside a TXN.BEGIN transaction');
  }
  const latest = ctx.server.db.pipeline.readLatest(args[1]!);
  // Revisions are of string values here: a hash's encoding is not its value.
  checkType(latest.value, latest.valueType, ValueType.STRING);
  return held(latest.durable, (w) => {
    const rev = latest.revision;
    if (latest.value === undefined || rev === undefined) {
      w.nullArray();
      return;
    }
    w.arrayHeader(4);
    w.bulk(latest.value);
    w.integer(rev.mod);
    w.integer(rev.create);
    w.integer(rev.version);
  });
}

export function casCommand(
  doc: (since: string, summary: string) => Pick<CommandSpec, 'group' | 'since' | 'summary'>,
): CommandSpec {
  return spec(
    'txn.cas',
    -4,
    ['write', 'denyoom', 'no_multi', 'movablekeys'],
    MOVABLE_KEYS,
    doc(
      'cairn',
      'Compare-and-swap: runs one list of operations if every comparison holds, another otherwise.',
    ),
    cas,
  );
}

export function revisionCommand(
  doc: (since: string, summary: string) => Pick<CommandSpec, 'group' | 'since' | 'summary'>,
): CommandSpec {
  return spec(
    'txn.revision',
    2,
    ['readonly', 'fast', 'no_multi'],
    FIRST_KEY,
    doc('cairn', "Returns a key's value with its mod and create timestamps and version, or null."),
    revision,
  );
}
