// cmsgpack: MessagePack for scripts, as Redis 7 ships it (lua-cmsgpack 0.4.0 on Lua 5.1), so that
// scripts written for Redis (job queues keep their payloads so) run unchanged. Written here from
// the library's documented behaviour and checked byte for byte against redis-server
// (test/server/redis-diff-lua-libs.test.ts); docs/lua.md.
//
// pack(v1, v2, ...) encodes each value and concatenates them:
//   string  -> fixstr (< 32 bytes) | str8 0xd9 | str16 0xda | str32 0xdb
//   boolean -> 0xc3 | 0xc2;  nil, functions, userdata (cjson.null too) -> nil 0xc0
//   number  -> the smallest integer encoding when it is a whole number in the int64 range,
//              else float32 0xca when that is exact, else float64 0xcb
//   table   -> an array when its keys are exactly 1..n (n may be 0: the empty table is an
//              array), else a map; a table nested PACK_NESTING_MAX deep is packed as nil (a
//              table that contains itself ends there)
// unpack(s) decodes every value in `s`; unpack_one(s [, offset]) and unpack_limit(s, limit
// [, offset]) decode at most one or `limit` values from byte `offset` (0-based) and return the
// offset after them first (-1 once `s` is used up). Binary strings (bin8..32) and extension
// types are "Bad data format in input.", as in lua-cmsgpack 0.4.0; an unsigned 64-bit integer
// past 2^63 reads as negative, as there.
//
// Lua 5.1's C stack (LUAI_MAXCSTACK slots for one C function's values) bounds what one call may
// leave on the stack: LUA51_C_STACK_SLOTS below reproduces where Redis stops (7,999 top-level
// values; arrays nested 3,999 deep), and keeps a hostile input from recursing without bound.
import { type LuaState, lauxlib, lua, to_luastring } from 'fengari';
import { ByteBuilder, StringTooLongError } from './byte-builder.js';
import { STRING_OVERFLOW_MESSAGE } from './limits.js';

const s = to_luastring;

/** PACK_NESTING_MAX: lua-cmsgpack's LUACMSGPACK_MAX_NESTING; deeper tables pack as nil. */
export const PACK_NESTING_MAX = 16;
/** LUA51_C_STACK_SLOTS: Lua 5.1's LUAI_MAXCSTACK, the values one C function may hold. */
export const LUA51_C_STACK_SLOTS = 8000;
/** INT32_MAX: unpack's default limit (C's INT_MAX): no limit. */
const INT32_MAX = 2 ** 31 - 1;
const TWO_63 = 2 ** 63;

const VERSION = 'lua-cmsgpack 0.4.0';
const COPYRIGHT = 'Copyright (C) 2012, Salvatore Sanfilippo';
const DESCRIPTION = 'MessagePack C implementation for Lua';

/** installCmsgpack sets the global `cmsgpack` table (before the VM makes the globals read-only). */
export function installCmsgpack(L: LuaState): void {
  lua.lua_createtable(L, 0, 8);
  const fn = (name: string, f: (L: LuaState) => number): void => {
    lua.lua_pushjsfunction(L, f);
    lua.lua_setfield(L, -2, s(name));
  };
  fn('pack', pack);
  fn('unpack', (L) => unpackFull(L, 0, 0));
  fn('unpack_one', (L) => {
    const offset = optWhole(L, 2, 0);
    lua.lua_settop(L, 1);
    return unpackFull(L, 1, offset);
  });
  fn('unpack_limit', (L) => {
    const limit = Math.trunc(lauxlib.luaL_checknumber(L, 2));
    const offset = optWhole(L, 3, 0);
    lua.lua_settop(L, 1);
    return unpackFull(L, limit, offset);
  });
  for (const [key, value] of [
    ['_NAME', 'cmsgpack'],
    ['_VERSION', VERSION],
    ['_COPYRIGHT', COPYRIGHT],
    ['_DESCRIPTION', DESCRIPTION],
  ] as const) {
    lua.lua_pushstring(L, s(value));
    lua.lua_setfield(L, -2, s(key));
  }
  lua.lua_setglobal(L, s('cmsgpack'));
}

/** optWhole: an optional number argument truncated toward zero, as Lua 5.1's luaL_optinteger. */
function optWhole(L: LuaState, arg: number, fallback: number): number {
  if (lua.lua_type(L, arg) <= lua.LUA_TNIL) return fallback;
  return Math.trunc(lauxlib.luaL_checknumber(L, arg));
}

// ---------------------------------------------------------------------------------------------
// Encoding

function pack(L: LuaState): number {
  const n = lua.lua_gettop(L);
  if (n === 0) return lauxlib.luaL_argerror(L, 0, s('MessagePack pack needs input.'));
  const out = new ByteBuilder();
  try {
    for (let i = 1; i <= n; i++) {
      lua.lua_pushvalue(L, i);
      encodeTop(L, out, 0);
    }
  } catch (err) {
    if (err instanceof StringTooLongError) return lauxlib.luaL_error(L, s(STRING_OVERFLOW_MESSAGE));
    throw err;
  }
  lua.lua_pushstring(L, out.view());
  return 1;
}

/** encodeTop encodes the value on top of the stack and pops it. */
function encodeTop(L: LuaState, out: ByteBuilder, level: number): void {
  let t = lua.lua_type(L, -1);
  if (t === lua.LUA_TTABLE && level === PACK_NESTING_MAX) t = lua.LUA_TNIL;
  if (t === lua.LUA_TSTRING) encodeBytes(out, lua.lua_tolstring(L, -1) as Uint8Array);
  else if (t === lua.LUA_TBOOLEAN) out.byte(lua.lua_toboolean(L, -1) ? 0xc3 : 0xc2);
  else if (t === lua.LUA_TNUMBER) encodeNumber(out, lua.lua_tonumber(L, -1));
  else if (t === lua.LUA_TTABLE) {
    if (isArray(L)) encodeArray(L, out, level);
    else encodeMap(L, out, level);
  } else out.byte(0xc0);
  lua.lua_pop(L, 1);
}

function encodeBytes(out: ByteBuilder, b: Uint8Array): void {
  const n = b.length;
  if (n < 32) out.byte(0xa0 | n);
  else if (n <= 0xff) out.head(0xd9, n, 1);
  else if (n <= 0xffff) out.head(0xda, n, 2);
  else out.head(0xdb, n, 4);
  out.bytes(b);
}

function encodeNumber(out: ByteBuilder, n: number): void {
  // lua-cmsgpack's IS_INT64_EQUIVALENT: finite and unchanged by a cast to int64 (x86-64's cast
  // of anything out of range, NaN included, is INT64_MIN, so only -2^63 itself passes there).
  if (Number.isFinite(n) && Math.trunc(n) === n && n >= -TWO_63 && n < TWO_63) encodeInt(out, n);
  else if (Math.fround(n) === n) {
    out.byte(0xca);
    const b = Buffer.allocUnsafe(4);
    b.writeFloatBE(n);
    out.bytes(b);
  } else {
    out.byte(0xcb);
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleBE(n);
    out.bytes(b);
  }
}

function encodeInt(out: ByteBuilder, n: number): void {
  if (n >= 0) {
    if (n <= 0x7f) out.byte(n);
    else if (n <= 0xff) out.head(0xcc, n, 1);
    else if (n <= 0xffff) out.head(0xcd, n, 2);
    else if (n <= 0xffffffff) out.head(0xce, n, 4);
    else int64(out, 0xcf, n);
  } else if (n >= -32) out.byte(n & 0xff);
  else if (n >= -128) out.head(0xd0, n & 0xff, 1);
  else if (n >= -32768) out.head(0xd1, n & 0xffff, 2);
  else if (n >= -2147483648) out.head(0xd2, n >>> 0, 4);
  else int64(out, 0xd3, n);
}

function int64(out: ByteBuilder, type: number, n: number): void {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(n)));
  out.byte(type);
  out.bytes(b);
}

function arrayHead(out: ByteBuilder, n: number): void {
  if (n <= 15) out.byte(0x90 | n);
  else if (n <= 0xffff) out.head(0xdc, n, 2);
  else out.head(0xdd, n, 4);
}

function mapHead(out: ByteBuilder, n: number): void {
  if (n <= 15) out.byte(0x80 | n);
  else if (n <= 0xffff) out.head(0xde, n, 2);
  else out.head(0xdf, n, 4);
}

/**
 * isArray: the table on top has only whole-number keys 1..n in C int range, with no hole (its
 * largest key equals its key count), as lua-cmsgpack's table_is_an_array on Lua 5.1.
 */
function isArray(L: LuaState): boolean {
  let count = 0;
  let max = 0;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, -2) !== 0) {
    lua.lua_pop(L, 1);
    const k = lua.lua_type(L, -1) === lua.LUA_TNUMBER ? lua.lua_tonumber(L, -1) : 0;
    if (!(k > 0 && k <= INT32_MAX && Math.trunc(k) === k)) {
      lua.lua_pop(L, 1);
      return false;
    }
    if (k > max) max = k;
    count++;
  }
  return max === count;
}

function encodeArray(L: LuaState, out: ByteBuilder, level: number): void {
  const n = lua.lua_rawlen(L, -1);
  arrayHead(out, n);
  for (let j = 1; j <= n; j++) {
    lua.lua_pushnumber(L, j);
    lua.lua_gettable(L, -2);
    encodeTop(L, out, level + 1);
  }
}

function encodeMap(L: LuaState, out: ByteBuilder, level: number): void {
  let n = 0;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, -2) !== 0) {
    lua.lua_pop(L, 1);
    n++;
  }
  mapHead(out, n);
  lua.lua_pushnil(L);
  while (lua.lua_next(L, -2) !== 0) {
    lua.lua_pushvalue(L, -2);
    encodeTop(L, out, level + 1); // the key
    encodeTop(L, out, level + 1); // the value
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Missing, BadFormat: lua-cmsgpack's two decoding errors (raised once the value stops). */
class Missing extends Error {}
class BadFormat extends Error {}

/** Cursor: the input, the read position, and the C stack slots the call holds (see the top). */
interface Cursor {
  readonly b: Buffer;
  pos: number;
  slots: number;
}

/**
 * need reserves one stack slot, as luaL_checkstack(L, 1, why) in Lua 5.1 would: the limit is
 * Lua 5.1's, and the stack is grown (a JavaScript function may push only LUA_MINSTACK values
 * without asking).
 */
function need(L: LuaState, c: Cursor, why: string): void {
  if (c.slots + 1 > LUA51_C_STACK_SLOTS || !lua.lua_checkstack(L, 1))
    lauxlib.luaL_error(L, s('stack overflow (%s)'), s(why));
}

function take(c: Cursor, n: number): number {
  if (c.b.length - c.pos < n) throw new Missing();
  const at = c.pos;
  c.pos += n;
  return at;
}

/**
 * Open: a table being filled: an array (its next index pushed before each value) or a map (a
 * key, then its value), and how many entries are still to come.
 */
interface Open {
  readonly array: boolean;
  left: number;
  index: number;
  keyRead: boolean;
}

/**
 * decode pushes the next value of `c` (one more slot held). Nested tables are filled with an
 * explicit stack of Open tables, not by recursion: an input nested thousands deep must reach
 * Lua 5.1's stack limit (an error), not JavaScript's.
 */
function decode(L: LuaState, c: Cursor): void {
  const open: Open[] = [];
  for (;;) {
    const table = readItem(L, c);
    if (table !== undefined && table.left > 0) {
      open.push(table);
      if (table.array) pushIndex(L, c, table);
      continue;
    }
    // A whole value is on top (a scalar or an empty table): hand it to the tables it completes.
    for (;;) {
      const parent = open[open.length - 1];
      if (parent === undefined) return;
      if (!parent.array && !parent.keyRead) {
        parent.keyRead = true; // the key: its value comes next
        break;
      }
      lua.lua_settable(L, -3);
      c.slots -= 2;
      parent.keyRead = false;
      parent.left--;
      if (parent.left > 0) {
        if (parent.array) pushIndex(L, c, parent);
        break;
      }
      open.pop(); // the parent is complete: it is now the value on top
    }
  }
}

function pushIndex(L: LuaState, c: Cursor, table: Open): void {
  lua.lua_pushnumber(L, table.index++);
  c.slots++;
}

/**
 * readItem reads the item at the cursor and pushes it: a scalar, or a new table for an array or
 * map header, returned with the count of entries to read into it.
 */
function readItem(L: LuaState, c: Cursor): Open | undefined {
  if (c.pos >= c.b.length) throw new Missing();
  need(L, c, 'too many return values at once; use unpack_one or unpack_limit instead.');
  const b = c.b;
  const type = b[c.pos] as number;
  const n = fixedNumber(c, type);
  if (n !== undefined) {
    lua.lua_pushnumber(L, n);
    c.slots++;
    return undefined;
  }
  let at: number;
  switch (type) {
    case 0xc0:
      take(c, 1);
      lua.lua_pushnil(L);
      c.slots++;
      return undefined;
    case 0xc3:
    case 0xc2:
      take(c, 1);
      lua.lua_pushboolean(L, type === 0xc3);
      c.slots++;
      return undefined;
    case 0xd9:
      pushString(L, c, 1);
      return undefined;
    case 0xda:
      pushString(L, c, 2);
      return undefined;
    case 0xdb:
      pushString(L, c, 4);
      return undefined;
    case 0xdc:
      at = take(c, 3);
      return newTable(L, c, true, b.readUInt16BE(at + 1));
    case 0xdd:
      at = take(c, 5);
      return newTable(L, c, true, b.readUInt32BE(at + 1));
    case 0xde:
      at = take(c, 3);
      return newTable(L, c, false, b.readUInt16BE(at + 1));
    case 0xdf:
      at = take(c, 5);
      return newTable(L, c, false, b.readUInt32BE(at + 1));
  }
  if ((type & 0xe0) === 0xa0) {
    const len = type & 0x1f;
    at = take(c, 1 + len);
    lua.lua_pushstring(L, b.subarray(at + 1, at + 1 + len));
    c.slots++;
    return undefined;
  }
  if ((type & 0xf0) === 0x90) {
    take(c, 1);
    return newTable(L, c, true, type & 0x0f);
  }
  if ((type & 0xf0) === 0x80) {
    take(c, 1);
    return newTable(L, c, false, type & 0x0f);
  }
  throw new BadFormat();
}

/** newTable pushes the table of an array or map header (lua-cmsgpack checks the stack for an array's). */
function newTable(L: LuaState, c: Cursor, array: boolean, n: number): Open {
  lua.lua_createtable(L, 0, 0);
  c.slots++;
  if (array) need(L, c, 'in function mp_decode_to_lua_array');
  return { array, left: n, index: 1, keyRead: false };
}

/** fixedNumber reads a number of the type at the cursor, if it is one (undefined if not). */
function fixedNumber(c: Cursor, type: number): number | undefined {
  const b = c.b;
  switch (type) {
    case 0xcc:
      return b.readUInt8(take(c, 2) + 1);
    case 0xd0:
      return b.readInt8(take(c, 2) + 1);
    case 0xcd:
      return b.readUInt16BE(take(c, 3) + 1);
    case 0xd1:
      return b.readInt16BE(take(c, 3) + 1);
    case 0xce:
      return b.readUInt32BE(take(c, 5) + 1);
    case 0xd2:
      return b.readInt32BE(take(c, 5) + 1);
    case 0xcf: // Pushed through lua_pushinteger (int64): past 2^63 it wraps negative.
    case 0xd3:
      return Number(b.readBigInt64BE(take(c, 9) + 1));
    case 0xca:
      return b.readFloatBE(take(c, 5) + 1);
    case 0xcb:
      return b.readDoubleBE(take(c, 9) + 1);
  }
  if ((type & 0x80) === 0) {
    take(c, 1);
    return type; // positive fixnum
  }
  if ((type & 0xe0) === 0xe0) {
    take(c, 1);
    return type - 0x100; // negative fixnum
  }
  return undefined;
}

/** pushString reads a string whose length is the `lengthBytes` bytes after the type byte. */
function pushString(L: LuaState, c: Cursor, lengthBytes: 1 | 2 | 4): void {
  const at = take(c, 1 + lengthBytes);
  const n = c.b.readUIntBE(at + 1, lengthBytes);
  const from = take(c, n);
  lua.lua_pushstring(L, c.b.subarray(from, from + n));
  c.slots++;
}

/**
 * unpackFull decodes up to `limit` values of the string argument from byte `offset`; with
 * neither (both 0) it decodes them all and returns no offset, as lua-cmsgpack's mp_unpack_full.
 */
function unpackFull(L: LuaState, limit: number, offset: number): number {
  const bytes = lauxlib.luaL_checklstring(L, 1);
  const len = bytes.length;
  const all = limit === 0 && offset === 0;
  if (offset < 0 || limit < 0) {
    // lua-cmsgpack prints the input's length where it says limit.
    return lauxlib.luaL_error(
      L,
      s('Invalid request to unpack with offset of %s and limit of %s.'),
      s(String(offset | 0)),
      s(String(len | 0)),
    );
  }
  if (offset > len)
    return lauxlib.luaL_error(
      L,
      s('Start offset %s greater than input length %s.'),
      s(String(offset | 0)),
      s(String(len)),
    );
  const max = all ? INT32_MAX : limit;
  const c: Cursor = { b: Buffer.from(bytes.buffer, bytes.byteOffset, len), pos: offset, slots: 1 };
  let count = 0;
  try {
    for (; c.pos < len && count < max; count++) decode(L, c);
  } catch (err) {
    if (err instanceof Missing) return lauxlib.luaL_error(L, s('Missing bytes in input.'));
    if (err instanceof BadFormat) return lauxlib.luaL_error(L, s('Bad data format in input.'));
    throw err;
  }
  if (all) return count;
  lua.lua_pushnumber(L, c.pos === len ? -1 : c.pos);
  lua.lua_insert(L, 2);
  return count + 1;
}
