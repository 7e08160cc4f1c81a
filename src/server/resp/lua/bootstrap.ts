// The Lua side of the scripting environment, run once per VM with the standard libraries open
// (vm.ts passes in what it needs as the chunk's arguments). It builds what Redis 7 scripts
// rely on and then closes the sandbox, as Redis's scriptingInit does:
// - Lua 5.1 names: unpack, loadstring, string.gfind;
//   what 5.2 and 5.3 added taken away (cjson is JavaScript, cjson.ts);
// - once the VM has stopped a script (time or memory limit) no coroutine.resume can swallow that
//   (pcall and xpcall, in vm.ts, rethrow it too);
// - os, io, loadfile, dofile, require, package, debug and print are gone;
// - reading an undefined global is an error (Redis 7's protection; vm.ts then makes the globals
//   and every library read-only);
// - the error handler adds the script's source and line to an error, as Redis's does (an error
//   table whose source is false gets none: Redis raises some errors without a location).
export const BOOTSTRAP = `
local aborted = ...
local dbg, getinfo = debug, debug.getinfo
local type, tostring, error, pairs, setmetatable = type, tostring, error, pairs, setmetatable
local pack, unpack_ = table.pack, table.unpack

unpack = table.unpack
loadstring = function(s, name) return load(s, name, 't') end
string.gfind = string.gmatch


-- What Lua 5.2 and 5.3 added, which Redis's Lua 5.1 does not have: a script that tests for them
-- ('if table.unpack then') takes the same branch as on Redis.
rawlen, utf8 = nil, nil
string.pack, string.packsize, string.unpack = nil, nil, nil
table.move, table.pack, table.unpack = nil, nil, nil
math.maxinteger, math.mininteger, math.tointeger, math.type, math.ult = nil, nil, nil, nil, nil
coroutine.isyieldable = nil

local function rethrow_if_aborted(r)
  if not r[1] and aborted() then error(r[2], 0) end
end
-- pcall, xpcall and error are JavaScript functions (vm.ts), so that error levels count frames as
-- in Redis (a Lua wrapper here would be one more frame: pcall(error, 'x', 2) named this chunk).
local raw_resume = coroutine.resume
coroutine.resume = function(...)
  local r = pack(raw_resume(...))
  rethrow_if_aborted(r)
  return unpack_(r, 1, r.n)
end

os, io, loadfile, dofile, require, package, debug, print = nil, nil, nil, nil, nil, nil, nil, nil
KEYS, ARGV = {}, {}

-- Reading an undefined global is an error (Redis's luaSetErrorMetatable). Writing any global is
-- refused by the read-only flag vm.ts sets on _G and every table reachable from it once this
-- chunk has run (readonly.ts): no __newindex, which would guard only absent globals.
setmetatable(_G, {
  __index = function(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
  end,
})

return function(err)
  if type(err) ~= 'table' then err = { err = 'ERR ' .. tostring(err) } end
  if err.source ~= nil then return err end
  -- The innermost frame of the script itself (frames of JavaScript functions and of this
  -- bootstrap's wrappers are skipped), as Redis reports it.
  for level = 2, 64 do
    local i = getinfo(level, 'Sl')
    if not i then break end
    if i.source == '@user_script' then
      err.source = i.source
      err.line = i.currentline
      break
    end
  end
  return err
end
`;
