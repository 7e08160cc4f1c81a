// The Lua 5.1 standard library functions that Redis scripts can call and fengari (Lua 5.3)
// dropped, and the 5.1 forms of the ones 5.3 changed, so that a script written for Redis runs
// unchanged (docs/lua.md, "The environment"). Written in JavaScript rather than in the Lua
// bootstrap so that a bad argument fails with Lua 5.1's message (`bad argument #1 to 'getn'
// (table expected, got nil)`), not with the message of a Lua wrapper's body.
//
// Also the base functions whose 5.3 forms behave differently where scripts can tell: pcall,
// xpcall and error (error levels count frames as in Redis, with Redis 7's two additions),
// tostring (cjson.null) and string.rep (no separator, and a bound before building).
//
// The 5.3 additions are taken away in bootstrap.ts (Redis scripts never see them).
import { getHeapStatistics } from 'node:v8';
import { type LuaState, lauxlib, lua, to_luastring } from 'fengari';
import { frexp, ldexp } from './float-parts.js';
import { SCRIPT_STRING_BYTES_MAX } from './limits.js';
import { checkLargeString } from './string-limit.js';

const s = to_luastring;

type Fn = (L: LuaState) => number;

/** Lua51Host: what the base functions ask of the VM. */
export interface Lua51Host {
  /** aborted: the VM has stopped the running script (a limit): no pcall may swallow that. */
  aborted(): boolean;
  /** cjsonNull: cjson.null's light userdata (tostring prints it as Redis does). */
  readonly cjsonNull: object;
}

/** GC_OPTIONS: what collectgarbage accepts in Lua 5.1. */
const GC_OPTIONS = ['stop', 'restart', 'collect', 'count', 'step', 'setpause', 'setstepmul'];
/** GC_PAUSE_DEFAULT, GC_STEPMUL_DEFAULT: Lua 5.1's LUAI_GCPAUSE and LUAI_GCMUL. */
const GC_PAUSE_DEFAULT = 200;
const GC_STEPMUL_DEFAULT = 200;

/**
 * installLua51Libs adds the 5.1 functions to the math and table libraries, and a collectgarbage
 * and gcinfo (fengari has no collector of its own: its objects live in V8's heap, so 'count' is
 * the process's heap in use, in KiB, and the rest change nothing but answer as Lua 5.1 does).
 */
export function installLua51Libs(L: LuaState, host: Lua51Host): void {
  installBase(L, host);
  installRep(L);
  const num = (i: number): number => lauxlib.luaL_checknumber(L, i);
  const push = (n: number): number => {
    lua.lua_pushnumber(L, n);
    return 1;
  };
  setAll(L, 'math', {
    pow: () => push(num(1) ** num(2)),
    // 5.1's math.mod is fmod, which JavaScript's % is for doubles (the sign of the dividend).
    mod: () => push(num(1) % num(2)),
    log10: () => push(Math.log10(num(1))),
    atan2: () => push(Math.atan2(num(1), num(2))),
    cosh: () => push(Math.cosh(num(1))),
    sinh: () => push(Math.sinh(num(1))),
    tanh: () => push(Math.tanh(num(1))),
    frexp: () => {
      const [m, e] = frexp(num(1));
      lua.lua_pushnumber(L, m);
      lua.lua_pushnumber(L, e);
      return 2;
    },
    // luaL_checkint truncates the exponent.
    ldexp: () => push(ldexp(num(1), Math.trunc(num(2)))),
    // 5.1 takes one argument: a second (5.3's base, 5.3's x) is ignored, as there.
    log: () => push(Math.log(num(1))),
    atan: () => push(Math.atan(num(1))),
  });
  const gc = { pause: GC_PAUSE_DEFAULT, stepmul: GC_STEPMUL_DEFAULT };
  const heapKiB = (): number => getHeapStatistics().used_heap_size / 1024;
  lua.lua_pushjsfunction(L, () => {
    const option = lua.lua_type(L, 1) <= lua.LUA_TNIL ? 'collect' : lua.lua_tojsstring(L, 1);
    if (!GC_OPTIONS.includes(option) || lua.lua_type(L, 1) === lua.LUA_TNUMBER)
      return lauxlib.luaL_argerror(L, 1, s(`invalid option '${option}'`));
    const arg = lua.lua_type(L, 2) <= lua.LUA_TNIL ? 0 : Math.trunc(num(2));
    if (option === 'count') return push(heapKiB());
    if (option === 'step') {
      lua.lua_pushboolean(L, false);
      return 1;
    }
    if (option === 'setpause' || option === 'setstepmul') {
      const key = option === 'setpause' ? 'pause' : 'stepmul';
      const previous = gc[key];
      gc[key] = arg;
      return push(previous);
    }
    return push(0);
  });
  lua.lua_setglobal(L, s('collectgarbage'));
  lua.lua_pushjsfunction(L, () => push(Math.floor(heapKiB())));
  lua.lua_setglobal(L, s('gcinfo'));
  setAll(L, 'table', {
    getn: () => {
      lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
      return push(lua.lua_rawlen(L, 1));
    },
    setn: () => {
      lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
      return lauxlib.luaL_error(L, s("'setn' is obsolete"));
    },
    maxn: () => {
      lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
      let max = 0;
      lua.lua_pushnil(L);
      while (lua.lua_next(L, 1) !== 0) {
        lua.lua_pop(L, 1);
        if (lua.lua_type(L, -1) === lua.LUA_TNUMBER) {
          const k = lua.lua_tonumber(L, -1);
          if (k > max) max = k;
        }
      }
      return push(max);
    },
    foreach: () => {
      lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
      lauxlib.luaL_checktype(L, 2, lua.LUA_TFUNCTION);
      lua.lua_pushnil(L);
      while (lua.lua_next(L, 1) !== 0) {
        lua.lua_pushvalue(L, 2);
        lua.lua_pushvalue(L, -3);
        lua.lua_pushvalue(L, -3);
        lua.lua_call(L, 2, 1);
        if (lua.lua_type(L, -1) !== lua.LUA_TNIL) return 1;
        lua.lua_pop(L, 2);
      }
      return 0;
    },
    foreachi: () => {
      lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
      lauxlib.luaL_checktype(L, 2, lua.LUA_TFUNCTION);
      const n = lua.lua_rawlen(L, 1);
      for (let i = 1; i <= n; i++) {
        lua.lua_pushvalue(L, 2);
        lua.lua_pushnumber(L, i);
        lua.lua_rawgeti(L, 1, i);
        lua.lua_call(L, 2, 1);
        if (lua.lua_type(L, -1) !== lua.LUA_TNIL) return 1;
        lua.lua_pop(L, 1);
      }
      return 0;
    },
  });
}

function setAll(L: LuaState, library: string, fns: Record<string, Fn>): void {
  lua.lua_getglobal(L, s(library));
  for (const [name, f] of Object.entries(fns)) {
    lua.lua_pushjsfunction(L, f);
    lua.lua_setfield(L, -2, s(name));
  }
  lua.lua_pop(L, 1);
}

/**
 * installBase sets Lua 5.1's pcall, xpcall and error as JavaScript functions, so that
 * an error's level counts the same frames as in Redis (`pcall(error, 'x', 2)` is located in the
 * script), with two things of Redis 7's: a redis.call error table caught by pcall becomes its
 * text, and once the VM has stopped a script (a limit) no pcall or xpcall can swallow that.
 */
function installBase(L: LuaState, { aborted, cjsonNull }: Lua51Host): void {
  lua.lua_pushjsfunction(L, (L) => {
    lauxlib.luaL_checkany(L, 1);
    const status = lua.lua_pcall(L, lua.lua_gettop(L) - 1, lua.LUA_MULTRET, 0);
    if (status !== lua.LUA_OK) {
      if (aborted()) return lua.lua_error(L);
      if (lua.lua_type(L, -1) === lua.LUA_TTABLE) {
        if (lua.lua_getfield(L, -1, s('err')) === lua.LUA_TSTRING) lua.lua_replace(L, -2);
        else lua.lua_pop(L, 1);
      }
    }
    lua.lua_pushboolean(L, status === lua.LUA_OK);
    lua.lua_insert(L, 1);
    return lua.lua_gettop(L);
  });
  lua.lua_setglobal(L, s('pcall'));
  // Lua 5.1's xpcall(f, handler) calls f with no arguments (5.3 passes the rest on).
  lua.lua_pushjsfunction(L, (L) => {
    lauxlib.luaL_checkany(L, 2);
    lua.lua_settop(L, 2);
    lua.lua_insert(L, 1);
    const status = lua.lua_pcall(L, 0, lua.LUA_MULTRET, 1);
    if (status !== lua.LUA_OK && aborted()) return lua.lua_error(L);
    lua.lua_pushboolean(L, status === lua.LUA_OK);
    lua.lua_replace(L, 1);
    return lua.lua_gettop(L);
  });
  lua.lua_setglobal(L, s('xpcall'));
  // Lua 5.1's error: a number message is located like a string one (5.3 locates strings only).
  lua.lua_pushjsfunction(L, (L) => {
    const level = lua.lua_type(L, 2) <= lua.LUA_TNIL ? 1 : Math.trunc(lauxlib.luaL_checknumber(L, 2));
    lua.lua_settop(L, 1);
    if (lua.lua_isstring(L, 1) && level > 0) {
      lauxlib.luaL_where(L, level);
      lua.lua_pushvalue(L, 1);
      lua.lua_concat(L, 2);
    }
    return lua.lua_error(L);
  });
  lua.lua_setglobal(L, s('error'));
  // tostring as Lua 5.1's, but cjson.null prints as Redis's (a NULL light userdata: glibc's %p).
  lua.lua_pushjsfunction(L, (L) => {
    lauxlib.luaL_checkany(L, 1);
    if (lua.lua_type(L, 1) === lua.LUA_TLIGHTUSERDATA && lua.lua_touserdata(L, 1) === cjsonNull) {
      lua.lua_pushstring(L, s('userdata: (nil)'));
      return 1;
    }
    lauxlib.luaL_tolstring(L, 1);
    return 1;
  });
  lua.lua_setglobal(L, s('tostring'));
}

/** installRep sets string.rep as Lua 5.1's. */
function installRep(L: LuaState): void {
  lua.lua_getglobal(L, s('string'));
  // string.rep as Lua 5.1's (no separator; a count truncated), refusing a string past
  // SCRIPT_STRING_BYTES_MAX before building it: one call the instruction hook cannot stop.
  lua.lua_pushjsfunction(L, (L) => {
    const str = lauxlib.luaL_checklstring(L, 1);
    const n = Math.trunc(lauxlib.luaL_checknumber(L, 2));
    if (n <= 0 || str.length === 0) {
      lua.lua_pushstring(L, new Uint8Array(0));
      return 1;
    }
    if (str.length * n > SCRIPT_STRING_BYTES_MAX)
      return lauxlib.luaL_error(L, s('resulting string too large'));
    checkLargeString(L, str.length * n);
    const out = Buffer.allocUnsafe(str.length * n);
    out.set(str, 0);
    // Doubling copies: log2(n) copies, not n.
    for (let filled = str.length; filled < out.length; filled *= 2)
      out.copyWithin(filled, 0, Math.min(filled, out.length - filled));
    lua.lua_pushstring(L, out);
    return 1;
  });
  lua.lua_setfield(L, -2, s('rep'));
  lua.lua_pop(L, 1);
}
