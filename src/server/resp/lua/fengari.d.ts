// The part of fengari's API (Lua 5.3 in JavaScript) the scripting engine uses; fengari ships no
// types. Lua strings are byte arrays (Uint8Array), so binary values pass through unchanged.
declare module 'fengari' {
  export type LuaState = { readonly __luaState: unique symbol };
  export type LuaDebug = { readonly __luaDebug: unique symbol };
  export type LuaJsFunction = (L: LuaState) => number;
  export const lua: {
    readonly LUA_OK: number;
    readonly LUA_MULTRET: number;
    readonly LUA_REGISTRYINDEX: number;
    readonly LUA_MASKCOUNT: number;
    readonly LUA_TNIL: number;
    readonly LUA_TBOOLEAN: number;
    readonly LUA_TNUMBER: number;
    readonly LUA_TSTRING: number;
    readonly LUA_TTABLE: number;
    readonly LUA_TLIGHTUSERDATA: number;
    readonly LUA_TFUNCTION: number;
    readonly LUA_RIDX_GLOBALS: number;
    lua_gettop(L: LuaState): number;
    lua_settop(L: LuaState, idx: number): void;
    lua_pop(L: LuaState, n: number): void;
    lua_type(L: LuaState, idx: number): number;
    lua_pushnil(L: LuaState): void;
    lua_pushboolean(L: LuaState, b: boolean): void;
    lua_pushinteger(L: LuaState, n: number): void;
    lua_pushnumber(L: LuaState, n: number): void;
    lua_pushstring(L: LuaState, s: Uint8Array): Uint8Array;
    lua_pushliteral(L: LuaState, s: string): Uint8Array;
    lua_pushjsfunction(L: LuaState, f: LuaJsFunction): void;
    lua_pushvalue(L: LuaState, idx: number): void;
    lua_toboolean(L: LuaState, idx: number): boolean;
    lua_tonumber(L: LuaState, idx: number): number;
    lua_isinteger(L: LuaState, idx: number): boolean;
    lua_tointeger(L: LuaState, idx: number): number;
    lua_tolstring(L: LuaState, idx: number): Uint8Array | null;
    lua_tojsstring(L: LuaState, idx: number): string;
    lua_createtable(L: LuaState, narr: number, nrec: number): void;
    lua_rawseti(L: LuaState, idx: number, n: number): void;
    lua_rawgeti(L: LuaState, idx: number, n: number): number;
    lua_setfield(L: LuaState, idx: number, k: Uint8Array): void;
    /** lua_gettable pushes t[k] (metamethods apply) for the table at idx and the key on top (popped). */
    lua_gettable(L: LuaState, idx: number): number;
    /** lua_settable does t[k] = v for the table at idx, the key and value on top (both popped). */
    lua_settable(L: LuaState, idx: number): void;
    /** lua_rawlen: the length of a string or table without metamethods (Lua 5.1's lua_objlen). */
    lua_rawlen(L: LuaState, idx: number): number;
    /** lua_insert moves the top value to idx, shifting the values above idx up. */
    lua_insert(L: LuaState, idx: number): void;
    lua_isnumber(L: LuaState, idx: number): boolean;
    /** lua_isstring: a string or a number (convertible to one). */
    lua_isstring(L: LuaState, idx: number): boolean;
    /** lua_touserdata: the object a (light) userdata holds. */
    lua_touserdata(L: LuaState, idx: number): unknown;
    /** lua_replace pops the top value into idx. */
    lua_replace(L: LuaState, idx: number): void;
    /** lua_concat pops n values and pushes their concatenation. */
    lua_concat(L: LuaState, n: number): void;
    lua_getfield(L: LuaState, idx: number, k: Uint8Array): number;
    lua_rawget(L: LuaState, idx: number): number;
    lua_rawset(L: LuaState, idx: number): void;
    /** lua_getmetatable pushes the metatable of the value at idx, if it has one (else pushes nothing). */
    lua_getmetatable(L: LuaState, idx: number): boolean;
    lua_setmetatable(L: LuaState, idx: number): boolean;
    /** lua_pushlightuserdata pushes a light userdata: any JavaScript object, compared by identity. */
    lua_pushlightuserdata(L: LuaState, p: object): void;
    /** lua_next pops a key and pushes the next key and value of the table at idx (0 at the end). */
    lua_next(L: LuaState, idx: number): number;
    lua_setglobal(L: LuaState, name: Uint8Array): void;
    lua_getglobal(L: LuaState, name: Uint8Array): number;
    lua_pcall(L: LuaState, nargs: number, nresults: number, msgh: number): number;
    lua_call(L: LuaState, nargs: number, nresults: number): void;
    lua_error(L: LuaState): never;
    lua_checkstack(L: LuaState, n: number): boolean;
    lua_sethook(
      L: LuaState,
      f: ((L: LuaState, ar: LuaDebug) => void) | null,
      mask: number,
      count: number,
    ): void;
  };
  export const lauxlib: {
    luaL_newstate(): LuaState;
    luaL_loadbuffer(L: LuaState, buf: Uint8Array, size: number | null, name: Uint8Array): number;
    /** luaL_error: `fmt` is a lua_pushfstring format (%s takes a Lua string argument). */
    luaL_error(L: LuaState, fmt: Uint8Array, ...args: Uint8Array[]): never;
    luaL_checknumber(L: LuaState, arg: number): number;
    /** luaL_checktype raises `bad argument #arg to 'f' (T expected, got U)` unless arg has type `t`. */
    luaL_checktype(L: LuaState, arg: number, t: number): void;
    luaL_checklstring(L: LuaState, arg: number): Uint8Array;
    luaL_checkany(L: LuaState, arg: number): void;
    /** luaL_tolstring pushes tostring's text of the value at idx (metamethods apply). */
    luaL_tolstring(L: LuaState, idx: number): Uint8Array;
    /** luaL_where pushes "chunk:line: " for the function at `level` (empty when unknown). */
    luaL_where(L: LuaState, level: number): void;
    luaL_argerror(L: LuaState, arg: number, extramsg: Uint8Array): never;
    /** luaL_typename: the type name of the value at idx ("no value" past the top). */
    luaL_typename(L: LuaState, idx: number): Uint8Array;
  };
  export const lualib: {
    luaL_openlibs(L: LuaState): void;
  };
  export function to_luastring(s: string): Uint8Array;
  export function to_jsstring(s: Uint8Array): string;
}
