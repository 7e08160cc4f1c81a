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
  | 'pubsub';

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

/** CommandTable maps lower-case names to specs. */
export class CommandTable {
  private readonly byName = new Map<string, CommandSpec>();

  constructor(specs: Iterable<CommandSpec>) {
    for (const spec of specs) this.byName.set(spec.name, spec);
  }

  get size(): number {
    return this.byName.size;
  }

  /** lookup finds a command by any spelling of its name. */
  lookup(name: Buffer): CommandSpec | undefined {
    // Command names are short ASCII; anything longer than the longest name cannot match.
    if (name.length > 16) return undefined;
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
