// pushBytes hands Lua a copy: the bytes it is given are borrowed (a command's arguments are views
// of the socket's buffer), and a Lua string outlives the call (KEYS, ARGV, the script's locals).
import { lauxlib, lua } from 'fengari';
import { describe, expect, it } from 'vitest';
import { pushBytes } from './convert.js';

describe('pushBytes', () => {
  it("copies the caller's bytes, a Buffer view included: poisoning them later changes no Lua string", () => {
    const L = lauxlib.luaL_newstate();
    const socket = Buffer.from('xxKEYxx');
    const view = socket.subarray(2, 5); // a view, as the RESP parser hands out arguments
    pushBytes(L, view);
    socket.fill(0x21);
    expect(Buffer.from(lua.lua_tolstring(L, -1) ?? []).toString()).toBe('KEY');
  });
});
