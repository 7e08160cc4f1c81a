// The Lua 5.1 standard library functions that Redis scripts can call and fengari (Lua 5.3)
// dropped, and the 5.1 forms of the ones 5.3 changed, so that a script written for Redis runs
// unchanged (docs/lua.md, "The environment"). Written in JavaScript rather than in the Lua
// bootstrap so that a bad argument fails with Lua 5.1's message (`bad argument #1 to 'getn'
// (table expected, got nil)`), not with the message of a Lua wrapper's body.
//
// The 5.3 additions are taken away in bootstrap.ts (Redis scripts never see them).
import { getHeapStatistics } from 'node:v8';
import { type LuaState, lauxlib, lua, to_luastring } from 'fengari';
import { frexp, ldexp } from './float-parts.js';

const s = to_luastring;

type Fn = (L: LuaState) => number;

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
export function installLua51Libs(L: LuaState): void {
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
