// Read-only tables, as Redis 7 patches them into its Lua 5.1 (lua_enablereadonlytable): Redis
// marks the globals, every table reachable from them and their metatables read-only, and any
// change to such a table - an assignment, rawset, setmetatable - fails with "Attempt to modify
// a readonly table". Without it one script could replace `redis.call`, `KEYS` or the string
// metatable for every later script of every client (found from outside: `KEYS = nil` made every
// EVAL answer an internal error until SCRIPT FLUSH).
//
// fengari has no such flag, and a `__newindex` on _G guarded only absent globals. As numbers.ts
// does, this patches behaviour without changing fengari's files: a table is read-only when its
// fengari Table object has `readonly` set, and the three doors through which anything changes a
// table check it first, as Redis's lvm.c and lapi.c do:
// - ltable's luaH_setfrom: every assignment (the VM's SETTABLE/SETTABUP, lua_settable,
//   lua_setfield, lua_seti, lua_setglobal, table.insert and friends) and lua_rawset (rawset);
// - lapi's lua_rawseti (Redis checks it too; fengari's libraries reach it only on their own
//   tables);
// - lapi's lua_setmetatable (setmetatable).
// The refusal is luaG_runerror's, so the message has the script's position when a Lua function
// made the change (`x = 1`: "user_script:1: Attempt ...") and none when a library function did
// (rawset, setmetatable, table.insert), exactly as in Redis.
//
// lapi's functions are copied by fengari's lua.js when it loads: this module must be imported
// before 'fengari' (vm.ts imports it at its top, after numbers.ts, which loads lapi first);
// `readonlyInstalled` lets the VM check that the order held.
import './numbers.js';
import { createRequire } from 'node:module';
import type { LuaState } from 'fengari';

const require = createRequire(import.meta.url);

/** ERR_READONLY_TABLE: Redis 7's text for a change to a read-only table. */
export const ERR_READONLY_TABLE = 'Attempt to modify a readonly table';

interface TableLike {
  readonly?: boolean;
}
type SetFrom = (L: LuaState, t: TableLike, key: unknown, value: unknown) => void;
type RawSetI = (L: LuaState, idx: number, n: number) => void;
type SetMetatable = (L: LuaState, idx: number) => boolean;
type ToPointer = (L: LuaState, idx: number) => unknown;

const ltable = require('fengari/src/ltable.js') as {
  luaH_setfrom: SetFrom & { readonlyChecked?: true };
  Table: { prototype: TableLike; new (): TableLike };
};
const lapi = require('fengari/src/lapi.js') as {
  lua_rawseti: RawSetI;
  lua_setmetatable: SetMetatable;
  lua_topointer: ToPointer;
};
const { luaG_runerror } = require('fengari/src/ldebug.js') as {
  luaG_runerror: (L: LuaState, fmt: Uint8Array) => never;
};
const { to_luastring } = require('fengari/src/fengaricore.js') as {
  to_luastring: (s: string) => Uint8Array;
};

const READONLY_MESSAGE = to_luastring(ERR_READONLY_TABLE);

function refuse(L: LuaState): never {
  return luaG_runerror(L, READONLY_MESSAGE);
}

/** tableAt: the fengari Table at `idx`, or undefined for any other value. */
function tableAt(L: LuaState, idx: number): TableLike | undefined {
  // lua_topointer answers functions, threads and userdata too.
  const p = lapi.lua_topointer(L, idx);
  return p instanceof ltable.Table ? p : undefined;
}

if (ltable.luaH_setfrom.readonlyChecked !== true) {
  // Every table reads `readonly` from the prototype (false) unless marked, so the check on the
  // hot path is one property read of one shape.
  ltable.Table.prototype.readonly = false;
  const setfrom = ltable.luaH_setfrom;
  const checked: SetFrom & { readonlyChecked?: true } = (L, t, key, value) => {
    if (t.readonly === true) refuse(L);
    setfrom(L, t, key, value);
  };
  checked.readonlyChecked = true;
  ltable.luaH_setfrom = checked;

  const rawseti = lapi.lua_rawseti;
  lapi.lua_rawseti = (L, idx, n) => {
    if (tableAt(L, idx)?.readonly === true) refuse(L);
    rawseti(L, idx, n);
  };
  const setmetatable = lapi.lua_setmetatable;
  lapi.lua_setmetatable = (L, idx) => {
    if (tableAt(L, idx)?.readonly === true) refuse(L);
    return setmetatable(L, idx);
  };
}

/**
 * readonlyInstalled: the patch reached fengari's API, i.e. this module loaded before fengari's
 * lua.js copied lapi's functions (given lua.js's lua_setmetatable).
 */
export function readonlyInstalled(luaSetmetatable: unknown): boolean {
  return luaSetmetatable === lapi.lua_setmetatable;
}

/** setReadonly marks or unmarks the table at `idx` (Redis's lua_enablereadonlytable). */
export function setReadonly(L: LuaState, idx: number, enabled: boolean): void {
  const t = tableAt(L, idx);
  if (t === undefined) throw new Error('setReadonly: not a table');
  // Assigned, not deleted, when unmarked: KEYS and ARGV are set through _G at every run, and a
  // delete would drop the object out of V8's fast properties.
  t.readonly = enabled;
}

/**
 * ReadonlyFlag: a table's read-only flag, held from JavaScript (the VM keeps _G's, which it
 * opens and closes at every run to set KEYS and ARGV, without looking the table up each time).
 */
export interface ReadonlyFlag {
  readonly: boolean;
}

/** readonlyFlag: the flag of the table at `idx`. */
export function readonlyFlag(L: LuaState, idx: number): ReadonlyFlag {
  const t = tableAt(L, idx);
  if (t === undefined) throw new Error('readonlyFlag: not a table');
  return t as ReadonlyFlag;
}

/** isReadonly: the table at `idx` is read-only (Redis's lua_isreadonlytable). */
export function isReadonly(L: LuaState, idx: number): boolean {
  return tableAt(L, idx)?.readonly === true;
}
