import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import './string-limit.js';
import { lauxlib, lua, lualib, to_luastring } from 'fengari';
import { SCRIPT_STRING_BYTES_MAX } from './limits.js';

const require = createRequire(import.meta.url);
const lstring = require('fengari/src/lstring.js') as {
  luaS_bless: (L: unknown, s: { length: number }) => unknown;
};

describe('string-limit', () => {
  it('a string past SCRIPT_STRING_BYTES_MAX raises a Lua error instead of being made', () => {
    const L = lauxlib.luaL_newstate();
    // A length alone: the bound is checked before anything reads the bytes (no 512 MiB here).
    lua.lua_pushjsfunction(L, (state: unknown) => {
      lstring.luaS_bless(state, { length: SCRIPT_STRING_BYTES_MAX + 1 });
      return 0;
    });
    expect(lua.lua_pcall(L, 0, 0, 0)).not.toBe(lua.LUA_OK);
    expect(lua.lua_tojsstring(L, -1)).toMatch(/string length overflow/);
  });

  it('scripts still concatenate and build strings below the bound', () => {
    const L = lauxlib.luaL_newstate();
    lualib.luaL_openlibs(L);
    const code = "local s = 'ab' for i = 1, 10 do s = s .. s end return #s .. table.concat({'x', 'y'})";
    const bytes = to_luastring(code);
    expect(lauxlib.luaL_loadbuffer(L, bytes, bytes.length, to_luastring('test'))).toBe(lua.LUA_OK);
    expect(lua.lua_pcall(L, 0, 1, 0)).toBe(lua.LUA_OK);
    expect(lua.lua_tojsstring(L, -1)).toBe('2048xy');
  });
});
