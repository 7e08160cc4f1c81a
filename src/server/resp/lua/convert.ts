// Redis's conversions between RESP (RESP2) and Lua values (Redis 7, script_lua.c):
//
//   RESP -> Lua (a redis.call reply)          Lua -> RESP (a script's reply)
//   integer      -> number                    number        -> integer (truncated)
//   bulk string  -> string                    string        -> bulk string
//   null bulk / null array -> false           true          -> integer 1
//   array        -> table (1..n)              false, nil    -> null bulk
//   status       -> {ok = text}               {ok = text}   -> status
//   error        -> {err = text} (pcall)      {err = text}  -> error
//                                             table         -> array up to its first nil
//
// Strings cross as bytes in both directions, copied: the VM never keeps a view of a socket chunk
// or of a value the store owns, and the store never keeps one of the VM's strings.
// First: bounds every string fengari makes (string-limit.ts), before fengari loads.
import './string-limit.js';
// Then: every number a double, printed as Lua 5.1 prints it (numbers.ts), before fengari loads.
import './numbers.js';
import { type LuaState, lua, to_luastring } from 'fengari';
import { type ReplyWriter, RespError, type RespValue } from '../../../protocol/resp/index.js';
import { SCRIPT_REPLY_DEPTH_MAX } from './limits.js';

const OK = to_luastring('ok');
const ERR = to_luastring('err');
/**
 * pushBytes pushes `bytes` as a Lua string. fengari's lua_pushstring copies (luaS_new), so a
 * borrowed view is safe to pass as it is (convert.test.ts); copying here too, as this did with
 * `slice()` (a view, not a copy, when the bytes are a Buffer), only cost time.
 */
export function pushBytes(L: LuaState, bytes: Uint8Array): void {
  lua.lua_pushstring(L, bytes);
}

/** pushNumber: every Lua number is a double (numbers.ts), as in Redis's Lua 5.1. */
export function pushNumber(L: LuaState, n: number): void {
  lua.lua_pushnumber(L, n);
}

/**
 * normalizeError turns an error reply's text into the `err` of Redis's error table: a leading
 * '-' is dropped, and a text without an error code (no space) gets ERR (luaPushErrorBuff).
 */
export function normalizeError(text: string): string {
  const body = text.startsWith('-') ? text.slice(1) : text;
  const withDash = text.startsWith('-') ? text : `-${text}`;
  const space = withDash.indexOf(' ');
  if (space === -1) return `ERR ${body}`;
  return `${withDash.slice(1, space)} ${withDash.slice(space + 1).replace(/[\r\n]+$/, '')}`;
}

/** pushErrorTable pushes {err = text} (text already normalized). */
export function pushErrorTable(L: LuaState, text: string): void {
  lua.lua_createtable(L, 0, 1);
  lua.lua_pushstring(L, to_luastring(text));
  lua.lua_setfield(L, -2, ERR);
}

/** pushReply pushes a command's reply as Redis converts it for a script (errors: {err=...}). */
export function pushReply(L: LuaState, v: RespValue): void {
  if (v === null) lua.lua_pushboolean(L, false);
  else if (typeof v === 'number') pushNumber(L, v);
  else if (typeof v === 'bigint') pushNumber(L, Number(v));
  else if (typeof v === 'string') {
    lua.lua_createtable(L, 0, 1);
    lua.lua_pushstring(L, to_luastring(v));
    lua.lua_setfield(L, -2, OK);
  } else if (typeof v === 'boolean') lua.lua_pushboolean(L, v);
  else if (Buffer.isBuffer(v)) pushBytes(L, v);
  else if (v instanceof RespError) pushErrorTable(L, normalizeError(v.message));
  else if (Array.isArray(v)) {
    lua.lua_createtable(L, v.length, 0);
    for (let i = 0; i < v.length; i++) {
      pushReply(L, v[i]!);
      lua.lua_rawseti(L, -2, i + 1);
    }
  } else lua.lua_pushboolean(L, false); // RESP3-only shapes do not occur: scripts speak RESP2
}

/** toReply converts the Lua value at `idx` into a script's reply (Redis's rules above). */
export function toReply(L: LuaState, idx: number, depth = 0): RespValue {
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TSTRING) return Buffer.from(lua.lua_tolstring(L, idx)!);
  if (t === lua.LUA_TBOOLEAN) return lua.lua_toboolean(L, idx) ? 1 : null;
  if (t === lua.LUA_TNUMBER) return truncate(lua.lua_tonumber(L, idx));
  if (t !== lua.LUA_TTABLE) return null;
  // Each level pushes up to two values: without room made for them fengari's stack overflowed
  // about 18 levels down (an internal error). Redis's own bound is its C stack (about 8000
  // levels, a self-referencing table included); Cairn's is SCRIPT_REPLY_DEPTH_MAX.
  if (depth >= SCRIPT_REPLY_DEPTH_MAX || !lua.lua_checkstack(L, 4)) {
    return new RespError('ERR reached lua stack limit');
  }
  const at = idx < 0 ? lua.lua_gettop(L) + idx + 1 : idx;
  if (lua.lua_getfield(L, at, ERR) === lua.LUA_TSTRING) {
    const text = Buffer.from(lua.lua_tolstring(L, -1)!).toString('latin1');
    lua.lua_pop(L, 1);
    return new RespError(sanitize(text.startsWith('-') ? text.slice(1) : text));
  }
  lua.lua_pop(L, 1);
  if (lua.lua_getfield(L, at, OK) === lua.LUA_TSTRING) {
    const text = Buffer.from(lua.lua_tolstring(L, -1)!).toString('latin1');
    lua.lua_pop(L, 1);
    return sanitize(text);
  }
  lua.lua_pop(L, 1);
  const out: RespValue[] = [];
  for (let i = 1; ; i++) {
    if (lua.lua_rawgeti(L, at, i) === lua.LUA_TNIL) {
      lua.lua_pop(L, 1);
      break;
    }
    out.push(toReply(L, -1, depth + 1));
    lua.lua_pop(L, 1);
  }
  return out;
}

/**
 * writeReply writes a script's reply as Redis does (RESP2 shapes: integers as integers, strings
 * as bulk, status and error lines, arrays, null bulk).
 */
export function writeReply(w: ReplyWriter, v: RespValue): void {
  if (v === null) w.bulk(null);
  else if (typeof v === 'number' || typeof v === 'bigint') w.integer(v);
  else if (typeof v === 'string') w.simple(v);
  else if (Buffer.isBuffer(v)) w.bulk(v);
  else if (v instanceof RespError) w.error(v.message);
  else if (Array.isArray(v)) {
    w.arrayHeader(v.length);
    for (const item of v) writeReply(w, item);
  } else w.value(v);
}

/** truncate: Redis casts a Lua number to long long (toward zero); out of range saturates. */
function truncate(n: number): number | bigint {
  if (Number.isNaN(n)) return -(2n ** 63n);
  const t = Math.trunc(n);
  if (Number.isSafeInteger(t)) return t;
  if (t >= 2 ** 63 || t < -(2 ** 63)) return -(2n ** 63n);
  return BigInt(t);
}

/** sanitize: status and error replies are one line (Redis maps CR and LF to spaces). */
export function sanitize(text: string): string {
  return text.replace(/[\r\n]/g, ' ');
}
