// The command table: every command's name, arity, flags and key positions (Redis's
// redisCommandTable), used for dispatch, arity errors, NOAUTH, COMMAND INFO/DOCS/COUNT/LIST and
// the command labels of metrics and INFO commandstats (src/server/counters.ts).
import type { Handler } from './types.js';

export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'denyoom'
  | 'admin'
  | 'noscript'
  | 'loading'
  | 'stale'
  | 'fast'
  | 'no_auth'
  | 'allow_busy'
  | 'no_multi'
  | 'skip_slowlog'
  | 'movablekeys'
  | 'pubsub'
  | 'skip_monitor'
  | 'no_mandatory_keys';

export interface CommandSpec {
  /** name: lower case, as Redis prints it. */
  readonly name: string;
  /** arity: N means exactly N arguments (name included), -N at least N. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  /** firstKey, lastKey, step: key positions as COMMAND INFO reports them (lastKey -1: to the end). */
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly group: string;
  readonly since: string;
  readonly summary: string;
  readonly handler: Handler;
}

/**
 * PACKED_NAME_BYTES_MAX: names up to this long are also found by a number packed from their
 * bytes (lookup's fast path: no string per command); 6 bytes and the length fit 2^53.
 */
const PACKED_NAME_BYTES_MAX = 6;
/** LONGEST_NAME_BYTES: no command name is longer (lookup refuses longer ones at once). */
const LONGEST_NAME_BYTES = 16;
const UPPER_A = 0x41;
const UPPER_Z = 0x5a;
const CASE_BIT = 0x20;

/**
 * packName: the bytes of a short name, ASCII letters lowered, as one integer (base 256, then
 * the length, so that names differing only by leading zero bytes differ); -1 when too long.
 */
function packName(name: Uint8Array): number {
  if (name.length > PACKED_NAME_BYTES_MAX) return -1;
  let packed = 0;
  for (let i = 0; i < name.length; i++) {
    const b = name[i]!;
    packed = packed * 256 + (b >= UPPER_A && b <= UPPER_Z ? b | CASE_BIT : b);
  }
  return packed * 8 + name.length;
}

/** CommandTable maps lower-case names to specs. */
export class CommandTable {
  private readonly byName = new Map<string, CommandSpec>();
  /** byPacked: the specs of names up to PACKED_NAME_BYTES_MAX bytes, by packName. */
  private readonly byPacked = new Map<number, CommandSpec>();

  constructor(specs: Iterable<CommandSpec>) {
    for (const spec of specs) {
      this.byName.set(spec.name, spec);
      const packed = packName(Buffer.from(spec.name, 'latin1'));
      if (packed >= 0) this.byPacked.set(packed, spec);
    }
  }

  get size(): number {
    return this.byName.size;
  }

  /** lookup finds a command by any spelling of its name. */
  lookup(name: Buffer): CommandSpec | undefined {
    // Command names are short ASCII; anything longer than the longest name cannot match.
    if (name.length > LONGEST_NAME_BYTES) return undefined;
    // Short names (GET, SET, INCR, ...: most commands sent) without a string (issue 14). Every
    // name is ASCII, so lowering only A-Z finds exactly what toLowerCase would.
    const packed = packName(name);
    if (packed >= 0) return this.byPacked.get(packed);
    return this.byName.get(name.toString('latin1').toLowerCase());
  }

  get(name: string): CommandSpec | undefined {
    return this.byName.get(name.toLowerCase());
  }

  all(): IterableIterator<CommandSpec> {
    return this.byName.values();
  }
}

/** arityOk checks the argument count (name included) against a spec's arity. */
export function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity >= 0 ? argc === spec.arity : argc >= -spec.arity;
}
