// spec: a terse constructor for command-table entries.
import type { CommandFlag, CommandSpec } from '../command-table.js';
import type { Handler } from '../types.js';

export function spec(
  name: string,
  arity: number,
  flags: readonly CommandFlag[],
  keys: readonly [first: number, last: number, step: number],
  doc: { readonly group: string; readonly since: string; readonly summary: string },
  handler: Handler,
): CommandSpec {
  return { name, arity, flags, firstKey: keys[0], lastKey: keys[1], step: keys[2], ...doc, handler };
}

export const NO_KEYS = [0, 0, 0] as const;
export const FIRST_KEY = [1, 1, 1] as const;
export const ALL_KEYS = [1, -1, 1] as const;
