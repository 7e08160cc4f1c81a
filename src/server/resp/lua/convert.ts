// Redis's conversions between RESP (RESP2) and Lua values (Redis 7, script_lua.c):
//
//   RESP -> Lua (a redis.call reply)          Lua -> RESP (a script's reply)
//   integer      -> number                    number        -> integer (truncated)
//   bulk string  -> string                    string        -> bulk string
//   null bulk / null array -> false           true          -> integer 1
//   array        -> table (1..n)              false, nil    -> null bulk
//   status       -> {ok = text}               {ok = text}   -> status
//   error        -> {err = text} (pcall)      {err = text}  -> error
//                                             {double = n}  -> double (RESP2: bulk "%.17g")
//                                             {big_number = s} -> big number (RESP2: bulk)
//                                             {verbatim_string = {format = f, string = s}}
//                                                           -> verbatim string (RESP2: bulk)
//                                             {map = t}     -> map of t's pairs (RESP2: array)
//                                             {set = t}     -> set of t's keys (RESP2: array)
//                                             table         -> array up to its first nil
//
// A table is tested for err, ok, double, big_number, verbatim_string, map and set in that order
// (the first field of the right type decides), as Redis 7.0's luaReplyToRedisReply does; the
// typed shapes are Redis 7's RESP3 replies, which RESP2 clients get as bulk strings and arrays.
//
// Strings cross as bytes in both directions, copied: the VM never keeps a view of a socket chunk
// or of a value the store owns, and the store never keeps one of the VM's strings.
// First: bounds every string fengari makes (string-limit.ts), before fengari loads.
import './string-limit.js';
// Then: every number a double, printed as Lua 5.1 prints it (numbers.ts), before fengari loads.
import './numbers.js';
// Then: read-only tables (readonly.ts), before fengari's lua.js copies lapi's functions.
import './readonly.js';
import { type LuaState, lua, to_luastring } from 'fengari';
import { type ReplyWriter, RespError, type RespValue, RespVerbatim } from '../../../protocol/resp/index.js';
import { SCRIPT_REPLY_DEPTH_MAX } from './limits.js';
import { formatG } from './numbers.js';

const OK = to_luastring('ok');
const ERR = to_luastring('err');
const DOUBLE = to_luastring('double');
const BIG_NUMBER = to_luastring('big_number');
const VERBATIM = to_luastring('verbatim_string');
const FORMAT = to_luastring('format');
const STRING = to_luastring('string');
const MAP = to_luastring('map');
const SET = to_luastring('set');
/** DOUBLE_DIGITS: Redis 7.0 writes a double reply with "%.17g" (addReplyDouble). */
const DOUBLE_DIGITS = 17;

/** ScriptDouble: a script's {double = n} reply. */
export class ScriptDouble {
  constructor(readonly value: number) {}
}

/** ScriptBigNumber: a script's {big_number = s} reply, the text as Redis sends it. */
export class ScriptBigNumber {
  constructor(readonly text: string) {}
}

/** ScriptMap, ScriptSet: a script's {map = t} and {set = t} replies, in the table's order. */
export class ScriptMap {
  constructor(readonly entries: readonly (readonly [ScriptReply, ScriptReply])[]) {}
}
export class ScriptSet {
  constructor(readonly items: readonly ScriptReply[]) {}
}

/** ScriptReply: what a script returns, converted (RESP values and the typed shapes above). */
export type ScriptReply =
  | Exclude<RespValue, RespValue[]>
  | ScriptDouble
  | ScriptBigNumber
  | ScriptMap
  | ScriptSet
  | ScriptReply[];
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
export function toReply(L: LuaState, idx: number, depth = 0): ScriptReply {
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TSTRING) return Buffer.from(lua.lua_tolstring(L, idx)!);
  if (t === lua.LUA_TBOOLEAN) return lua.lua_toboolean(L, idx) ? 1 : null;
  if (t === lua.LUA_TNUMBER) return truncate(lua.lua_tonumber(L, idx));
  if (t !== lua.LUA_TTABLE) return null;
  // Each level pushes up to two values: without room made for them fengari's stack overflowed
  // about 18 levels down (an internal error). Redis's own bound is its C stack (about 8000
  // levels, a self-referencing table included); Cairn's is SCRIPT_REPLY_DEPTH_MAX.
  if (depth >= SCRIPT_REPLY_DEPTH_MAX || !lua.lua_checkstack(L, 6)) {
    return new RespError('ERR reached lua stack limit');
  }
  const at = idx < 0 ? lua.lua_gettop(L) + idx + 1 : idx;
  if (rawField(L, at, ERR) === lua.LUA_TSTRING) {
    const text = Buffer.from(lua.lua_tolstring(L, -1)!).toString('latin1');
    lua.lua_pop(L, 1);
    return new RespError(sanitize(text.startsWith('-') ? text.slice(1) : text));
  }
  lua.lua_pop(L, 1);
  if (rawField(L, at, OK) === lua.LUA_TSTRING) {
    const text = Buffer.from(lua.lua_tolstring(L, -1)!).toString('latin1');
    lua.lua_pop(L, 1);
    return sanitize(text);
  }
  lua.lua_pop(L, 1);
  const typed = typedReply(L, at, depth);
  if (typed !== undefined) return typed;
  const out: ScriptReply[] = [];
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
 * typedReply converts the table at `at` when it is one of Redis 7's typed replies ({double=n},
 * {big_number=s}, {verbatim_string={format=f, string=s}}, {map=t}, {set=t}), tested in that
 * order with raw reads as Redis does (err and ok before them, read the same way); undefined for any
 * other table.
 */
function typedReply(L: LuaState, at: number, depth: number): ScriptReply | undefined {
  if (rawField(L, at, DOUBLE) === lua.LUA_TNUMBER) {
    const n = lua.lua_tonumber(L, -1);
    lua.lua_pop(L, 1);
    return new ScriptDouble(n);
  }
  lua.lua_pop(L, 1);
  if (rawField(L, at, BIG_NUMBER) === lua.LUA_TSTRING) {
    // Redis maps CR and LF to spaces (the text goes out on one line).
    const text = Buffer.from(lua.lua_tolstring(L, -1)!)
      .toString('latin1')
      .replace(/[\r\n]/g, ' ');
    lua.lua_pop(L, 1);
    return new ScriptBigNumber(text);
  }
  lua.lua_pop(L, 1);
  if (rawField(L, at, VERBATIM) === lua.LUA_TTABLE) {
    const table = lua.lua_gettop(L);
    if (rawField(L, table, FORMAT) === lua.LUA_TSTRING && rawField(L, table, STRING) === lua.LUA_TSTRING) {
      const format = Buffer.from(lua.lua_tolstring(L, -2)!);
      const text = Buffer.from(lua.lua_tolstring(L, -1)!);
      lua.lua_pop(L, 3);
      // RESP3 needs a three-byte format; Redis writes whatever it is given, so a format of
      // another length is sent padded or cut to three bytes rather than as a broken frame.
      return new RespVerbatim(
        Buffer.concat([format, Buffer.from('   ')])
          .subarray(0, 3)
          .toString('latin1'),
        text,
      );
    }
    lua.lua_settop(L, table);
  }
  lua.lua_pop(L, 1);
  if (rawField(L, at, MAP) === lua.LUA_TTABLE) {
    const entries: [ScriptReply, ScriptReply][] = [];
    forEachPair(L, lua.lua_gettop(L), () => {
      const key = toReply(L, -2, depth + 1);
      entries.push([key, toReply(L, -1, depth + 1)]);
    });
    lua.lua_pop(L, 1);
    return new ScriptMap(entries);
  }
  lua.lua_pop(L, 1);
  if (rawField(L, at, SET) === lua.LUA_TTABLE) {
    const items: ScriptReply[] = [];
    forEachPair(L, lua.lua_gettop(L), () => {
      items.push(toReply(L, -2, depth + 1));
    });
    lua.lua_pop(L, 1);
    return new ScriptSet(items);
  }
  lua.lua_pop(L, 1);
  return undefined;
}

/**
 * forEachPair calls `visit` with each key and value of the table at `table` on the stack's top
 * (key at -2, value at -1), as Lua 5.1's lua_next orders them for a table built as an array: the
 * keys 1, 2, ... up to the first nil first, then the rest. fengari's lua_next alone lists a table
 * constructor's items last to first ({map = {'a', 'b'}} answered b's pair before a's); the order
 * of other keys follows fengari's tables, not Lua 5.1's hash (docs/lua.md).
 */
function forEachPair(L: LuaState, table: number, visit: () => void): void {
  let n = 0;
  for (;;) {
    pushNumber(L, n + 1);
    if (lua.lua_rawgeti(L, table, n + 1) === lua.LUA_TNIL) {
      lua.lua_pop(L, 2);
      break;
    }
    visit();
    lua.lua_pop(L, 2);
    n++;
  }
  lua.lua_pushnil(L);
  while (lua.lua_next(L, table) !== 0) {
    const key = lua.lua_type(L, -2) === lua.LUA_TNUMBER ? lua.lua_tonumber(L, -2) : 0;
    if (!(Number.isInteger(key) && key >= 1 && key <= n)) visit();
    lua.lua_pop(L, 1);
  }
}

/** rawField pushes t[name] for the table at `at` without metamethods and returns its type. */
function rawField(L: LuaState, at: number, name: Uint8Array): number {
  lua.lua_pushstring(L, name);
  return lua.lua_rawget(L, at);
}

/**
 * writeReply writes a script's reply as Redis does (RESP2 shapes: integers as integers, strings
 * as bulk, status and error lines, arrays, null bulk; the typed shapes as RESP3 to RESP3
 * clients, as bulk strings and arrays to RESP2 ones).
 */
export function writeReply(w: ReplyWriter, v: ScriptReply): void {
  if (v === null) w.bulk(null);
  else if (v instanceof ScriptDouble) w.doubleText(formatG(v.value, DOUBLE_DIGITS));
  else if (v instanceof ScriptBigNumber) w.bigNumberText(v.text);
  else if (v instanceof ScriptMap) {
    w.mapHeader(v.entries.length);
    for (const [key, value] of v.entries) {
      writeReply(w, key);
      writeReply(w, value);
    }
  } else if (v instanceof ScriptSet) {
    w.setHeader(v.items.length);
    for (const item of v.items) writeReply(w, item);
  } else if (typeof v === 'number' || typeof v === 'bigint') w.integer(v);
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
