// The VM's sandbox, run in process: Redis 7's read-only globals and libraries (one script must
// not change what every later script of every client sees), and cjson.null.
import { describe, expect, it } from 'vitest';
import { RespError } from '../../../protocol/resp/index.js';
import type { ScriptReply } from './convert.js';
import { LuaVm, sha1hex, type VmHost } from './vm.js';

const host: VmHost = { call: () => null, log: () => {}, knows: () => true };

/** run loads `body` (unless loaded) and runs it with KEYS and ARGV. */
function run(vm: LuaVm, body: string, keys: string[] = [], argv: string[] = []): ScriptReply {
  const bytes = Buffer.from(body);
  const sha = sha1hex(bytes);
  if (!vm.has(sha)) vm.load(sha, bytes);
  return vm.run(sha, keys.map(Buffer.from), argv.map(Buffer.from), host).reply;
}

const errorText = (reply: ScriptReply): string => (reply instanceof RespError ? reply.message : 'no error');

describe('LuaVm sandbox', () => {
  it('refuses to replace KEYS or ARGV, and later scripts still get theirs', () => {
    const vm = new LuaVm(5_000);
    expect(errorText(run(vm, 'KEYS = nil'))).toMatch(
      /^ERR user_script:1: Attempt to modify a readonly table/,
    );
    expect(errorText(run(vm, 'ARGV = nil'))).toMatch(/Attempt to modify a readonly table/);
    expect(run(vm, 'return 1')).toBe(1);
    expect(run(vm, 'return {KEYS[1], ARGV[1]}', ['k'], ['a'])).toEqual([Buffer.from('k'), Buffer.from('a')]);
  });

  it('makes every table reachable from _G, their metatables and the string metatable read-only', () => {
    const vm = new LuaVm(5_000);
    // Every field of every library, every library itself and every global: each assignment,
    // rawset and setmetatable must fail, and nothing may change. KEYS and ARGV themselves are
    // the run's own tables, which a script may change (as in Redis); the globals naming them not.
    const probe = `
      local seen, failures, tried = {}, {}, 0
      local function try(what, f, ...)
        tried = tried + 1
        local ok, e = pcall(f, ...)
        if ok or not tostring(e):find('Attempt to modify a readonly table', 1, true) then
          failures[#failures + 1] = what .. ': ' .. tostring(e)
        end
      end
      local function visit(name, t)
        if seen[t] then return end
        seen[t] = true
        for k, v in pairs(t) do
          try(name .. '.' .. tostring(k), function() t[k] = false end)
          if type(v) == 'table' and v ~= KEYS and v ~= ARGV then visit(name .. '.' .. tostring(k), v) end
        end
        try(name .. '[new]', function() t.cairn_new_field = 1 end)
        try('rawset ' .. name, rawset, t, 'cairn_new_field', 1)
        try('setmetatable ' .. name, setmetatable, t, nil)
        local mt = getmetatable(t)
        if type(mt) == 'table' then visit(name .. '<mt>', mt) end
      end
      visit('_G', _G)
      visit("getmetatable('')", getmetatable(''))
      return {tried, unpack(failures)}`;
    const reply = run(vm, probe) as ScriptReply[];
    expect(reply.slice(1).map(String)).toEqual([]);
    expect(reply[0]).toBeGreaterThan(150); // the probe reached the libraries (184 changes tried)
    expect(run(vm, "return {redis.sha1hex(''), ('abc'):upper(), string.rep('a', 3)}")).toEqual(
      ['da39a3ee5e6b4b0d3255bfef95601890afd80709', 'ABC', 'aaa'].map((x) => Buffer.from(x)),
    );
  });

  it('leaves a script its locals and its own tables, raw writes and metatables included', () => {
    const vm = new LuaVm(5_000);
    const body =
      "local x = 1; x = x + 1; local t = {}; t.a = x; rawset(t, 'b', 3); setmetatable(t, {__index = function() return 9 end}); KEYS[2] = 'k2'; return {t.a, t.b, t.c, KEYS[2]}";
    expect(run(vm, body, ['k1'])).toEqual([2, 3, 9, Buffer.from('k2')]);
    expect(run(vm, 'return #KEYS', ['k1'])).toBe(1);
  });
});
