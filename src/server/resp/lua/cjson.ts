// cjson: the JSON library Redis 7 gives scripts (lua-cjson 2.1.0), in JavaScript over fengari:
// encode, decode (cjson-parse.ts), the settings functions, `new` and `null`, with lua-cjson's
// defaults, argument checks and error texts, checked against redis-server
// (test/server/redis-diff-lua-libs.test.ts); docs/lua.md, "cjson".
//
// Settings belong to a module table: each `cjson.new()` makes a table with its own, and, as in
// Redis, a setting changed by one script stays for the scripts after it until SCRIPT FLUSH makes
// a new VM. A setting function takes its arguments (nil: unchanged) and returns the settings:
//   encode_sparse_array([convert[, ratio[, safe]]])  false, 2, 10
//   encode_max_depth([depth]), decode_max_depth([depth])  1000 (1 .. 2^31-1)
//   encode_number_precision([digits])  14 (1 .. 14: "%.<digits>g")
//   encode_keep_buffer([keep])  true (kept for scripts that set it: memory only)
//   encode_invalid_numbers([setting])  false ("off"); true ("on": inf, -inf, nan); "null"
//   decode_invalid_numbers([setting])  true (hexadecimal, '+', leading zeros, Infinity, NaN)
// A boolean setting takes true/false or "on"/"off".
//
// encode (lua-cjson's json_append_data): nil and cjson.null are null; strings are escaped
// (control characters and DEL as \u00XX, except \b \f \n \r \t; '"', '\' and '/' with a
// backslash); numbers "%.14g"; a table whose keys are all positive integers is an array of
// length its largest key (nil holes are null) unless excessively sparse (largest key >
// ratio * count and > safe: an error, or an object when convert is on); an empty table is {};
// any other table an object with string and number keys ("1.5", not 1.5).
import { type LuaState, lauxlib, lua, to_luastring } from 'fengari';
import { ByteBuilder, StringTooLongError } from './byte-builder.js';
import { CjsonError, DECODE_DEPTH_MAX, decodeJson, type JsonValue, NULL } from './cjson-parse.js';
import { LUA51_C_STACK_SLOTS } from './cmsgpack.js';
import { pushNumber } from './convert.js';
import { STRING_OVERFLOW_MESSAGE } from './limits.js';
import { formatG } from './numbers.js';

const s = to_luastring;

/** ENCODE_DEPTH_MAX: lua-cjson's encode_max_depth default. */
const ENCODE_DEPTH_MAX = 1000;
/** PRECISION_DEFAULT, PRECISION_MAX: encode_number_precision's default and bound. */
const PRECISION_DEFAULT = 14;
const PRECISION_MAX = 14;
/** SPARSE_RATIO_DEFAULT, SPARSE_SAFE_DEFAULT: encode_sparse_array's defaults. */
const SPARSE_RATIO_DEFAULT = 2;
const SPARSE_SAFE_DEFAULT = 10;
/** INT_MAX: C's, the bound of every integer setting. */
const INT_MAX = 2 ** 31 - 1;
const INT_MIN = -(2 ** 31);
const CJSON_NAME = 'cjson';
const CJSON_VERSION = '2.1.0';

/** BOOL_OPTIONS, INVALID_NUMBER_OPTIONS: the words a setting accepts, in lua-cjson's order. */
const BOOL_OPTIONS = ['off', 'on'] as const;
const INVALID_NUMBER_OPTIONS = ['off', 'on', 'null'] as const;
/** INVALID_NULL: encode_invalid_numbers's "null" (0 off, 1 on). */
const INVALID_NULL = 2;

/** CjsonConfig: one module table's settings (lua-cjson's json_config_t). */
class CjsonConfig {
  sparseConvert = 0;
  sparseRatio = SPARSE_RATIO_DEFAULT;
  sparseSafe = SPARSE_SAFE_DEFAULT;
  encodeMaxDepth = ENCODE_DEPTH_MAX;
  decodeMaxDepth = DECODE_DEPTH_MAX;
  precision = PRECISION_DEFAULT;
  keepBuffer = 1;
  encodeInvalidNumbers = 0;
  decodeInvalidNumbers = 1;
}

/**
 * ENCODE_LIMITS_CHECK_EVERY: values encoded between two checks of the script's limits: an encode
 * is one JavaScript call, which the VM's instruction hook does not interrupt, and a sparse array
 * of a billion nulls would otherwise run for minutes past the time limit.
 */
const ENCODE_LIMITS_CHECK_EVERY = 4096;

/**
 * CheckLimits raises the script's time or memory limit error when it has passed one (the VM's
 * hook, called from a long JavaScript function).
 */
export type CheckLimits = (L: LuaState) => void;

/** installCjson sets the global `cjson` (before the VM makes the globals read-only). */
export function installCjson(L: LuaState, nullPointer: object, checkLimits: CheckLimits): void {
  pushModule(L, nullPointer, checkLimits);
  lua.lua_setglobal(L, s('cjson'));
}

/** pushModule pushes a new module table with settings of its own (lua_cjson_new). */
function pushModule(L: LuaState, nullPointer: object, checkLimits: CheckLimits): void {
  const cfg = new CjsonConfig();
  const functions: Setting[] = [
    ['encode', (L) => encode(L, cfg, nullPointer, checkLimits)],
    ['decode', (L) => decode(L, cfg, nullPointer)],
    [
      'encode_sparse_array',
      (L) => {
        argInit(L, 3);
        cfg.sparseConvert = enumOption(L, 1, cfg.sparseConvert, BOOL_OPTIONS);
        cfg.sparseRatio = integerOption(L, 2, cfg.sparseRatio, 0, INT_MAX);
        cfg.sparseSafe = integerOption(L, 3, cfg.sparseSafe, 0, INT_MAX);
        return 3;
      },
    ],
    integerSetting('encode_max_depth', 1, INT_MAX, cfg, 'encodeMaxDepth'),
    integerSetting('decode_max_depth', 1, INT_MAX, cfg, 'decodeMaxDepth'),
    integerSetting('encode_number_precision', 1, PRECISION_MAX, cfg, 'precision'),
    enumSetting('encode_keep_buffer', BOOL_OPTIONS, cfg, 'keepBuffer'),
    enumSetting('encode_invalid_numbers', INVALID_NUMBER_OPTIONS, cfg, 'encodeInvalidNumbers'),
    enumSetting('decode_invalid_numbers', BOOL_OPTIONS, cfg, 'decodeInvalidNumbers'),
    [
      'new',
      (L) => {
        pushModule(L, nullPointer, checkLimits);
        return 1;
      },
    ],
  ];
  lua.lua_createtable(L, 0, functions.length + 3);
  for (const [name, fn] of functions) {
    lua.lua_pushjsfunction(L, fn);
    lua.lua_setfield(L, -2, s(name));
  }
  // cjson.null: a light userdata, as lua-cjson's (type 'userdata'; a script returning it
  // replies a null, as in Redis).
  lua.lua_pushlightuserdata(L, nullPointer);
  lua.lua_setfield(L, -2, s('null'));
  lua.lua_pushstring(L, s(CJSON_NAME));
  lua.lua_setfield(L, -2, s('_NAME'));
  lua.lua_pushstring(L, s(CJSON_VERSION));
  lua.lua_setfield(L, -2, s('_VERSION'));
}

// ---- settings: lua-cjson's json_arg_init, json_integer_option and json_enum_option ----------

type Setting = [name: string, fn: (L: LuaState) => number];
type NumericField = {
  [K in keyof CjsonConfig]: CjsonConfig[K] extends number ? K : never;
}[keyof CjsonConfig];

/** integerSetting: a settings function of one integer argument in [min, max] (json_cfg_*). */
function integerSetting(
  name: string,
  min: number,
  max: number,
  cfg: CjsonConfig,
  field: NumericField,
): Setting {
  return [
    name,
    (L) => {
      argInit(L, 1);
      cfg[field] = integerOption(L, 1, cfg[field], min, max);
      return 1;
    },
  ];
}

/** enumSetting: a settings function of one boolean or named option (json_cfg_*). */
function enumSetting(
  name: string,
  options: readonly string[],
  cfg: CjsonConfig,
  field: NumericField,
): Setting {
  return [
    name,
    (L) => {
      argInit(L, 1);
      cfg[field] = enumOption(L, 1, cfg[field], options);
      return 1;
    },
  ];
}

/** argInit refuses more than `args` arguments and pads the missing ones with nil. */
function argInit(L: LuaState, args: number): void {
  if (lua.lua_gettop(L) > args) lauxlib.luaL_argerror(L, args + 1, s('found too many arguments'));
  lua.lua_settop(L, args);
}

/**
 * integerOption sets from argument `i` unless it is nil, and pushes the setting. The range error
 * names argument #1 whichever argument it was, as lua-cjson's does.
 */
function integerOption(L: LuaState, i: number, current: number, min: number, max: number): number {
  let value = current;
  if (lua.lua_type(L, i) !== lua.LUA_TNIL) {
    if (!lua.lua_isnumber(L, i)) typeError(L, i, 'number');
    value = toCInt(lua.lua_tonumber(L, i));
    if (value < min || value > max)
      lauxlib.luaL_argerror(L, 1, s(`expected integer between ${min} and ${max}`));
  }
  pushNumber(L, value);
  return value;
}

/**
 * enumOption sets from argument `i` unless it is nil: a boolean (false 0, true 1) or one of
 * `options` by name (luaL_checkoption: a number is read as its text). Pushes the setting: a
 * boolean for 0 and 1, else the option's name.
 */
function enumOption(L: LuaState, i: number, current: number, options: readonly string[]): number {
  let value = current;
  const type = lua.lua_type(L, i);
  if (type === lua.LUA_TBOOLEAN) value = lua.lua_toboolean(L, i) ? 1 : 0;
  else if (type !== lua.LUA_TNIL) {
    if (!lua.lua_isstring(L, i)) typeError(L, i, 'string');
    const name = Buffer.from(lua.lua_tolstring(L, i) ?? new Uint8Array(0)).toString('latin1');
    value = options.indexOf(name);
    if (value < 0) lauxlib.luaL_argerror(L, i, s(`invalid option '${name}'`));
  }
  if (value <= 1) lua.lua_pushboolean(L, value === 1);
  else lua.lua_pushstring(L, s(options[value] as string));
  return value;
}

/** typeError raises Lua 5.1's "bad argument #i to 'f' (T expected, got U)". */
function typeError(L: LuaState, i: number, expected: string): never {
  return lauxlib.luaL_argerror(L, i, s(`${expected} expected, got ${typeName(L, i)}`));
}

/** typeName: lua_typename of the value at `i` (a light userdata is 'userdata'). */
function typeName(L: LuaState, i: number): string {
  return Buffer.from(lauxlib.luaL_typename(L, i)).toString('latin1');
}

/**
 * toCInt: what C's `int value = luaL_checkinteger(...)` holds on x86-64 for the double `n`: a
 * truncation to a 64-bit integer (out of range or NaN: the "integer indefinite" 2^63, whose low
 * 32 bits are 0), then its low 32 bits as a signed int (4294967297 is 1).
 */
function toCInt(n: number): number {
  const t = Math.trunc(n);
  if (!Number.isFinite(t) || t >= 2 ** 63 || t < -(2 ** 63)) return 0;
  return Number(BigInt.asIntN(32, BigInt(t)));
}

// ---- encode ----------------------------------------------------------------------------------

/** EncodeFailure: an encode error, raised as a Lua error once the builder is left. */
class EncodeFailure extends Error {}

/**
 * Frame: a table being encoded. Its table is on the Lua stack while it is open: an array's
 * element, or an object's key and value, above it while they are encoded.
 */
interface Frame {
  /** length: an array's length; -1 for an object. */
  readonly length: number;
  /** next: an array's next index (1-based); for an object, whether an entry was written. */
  next: number;
}

function encode(L: LuaState, cfg: CjsonConfig, nullPointer: object, checkLimits: CheckLimits): number {
  if (lua.lua_gettop(L) !== 1) return lauxlib.luaL_argerror(L, 1, s('expected 1 argument'));
  const out = new ByteBuilder();
  try {
    encodeTop(L, cfg, nullPointer, out, checkLimits);
  } catch (err) {
    if (err instanceof StringTooLongError) return lauxlib.luaL_error(L, s(STRING_OVERFLOW_MESSAGE));
    if (err instanceof EncodeFailure) return lauxlib.luaL_error(L, s('%s'), s(err.message));
    throw err;
  }
  lua.lua_pushstring(L, out.view());
  return 1;
}

/** failure: lua-cjson's json_encode_exception for the value at `i`. */
function failure(L: LuaState, i: number, reason: string): EncodeFailure {
  return new EncodeFailure(`Cannot serialise ${typeName(L, i)}: ${reason}`);
}

/**
 * encodeTop encodes the value on top of the stack and pops it (lua-cjson's json_append_data,
 * without recursion: tables nest as deep as the depth setting allows, further than JavaScript's
 * stack would). The Lua stack holds what lua-cjson's C function would hold at each point (the
 * argument, an array's element, an object's key and value), so nesting stops where Redis's
 * Lua 5.1 stack stops it (LUAI_MAXCSTACK) when the depth setting is raised past that.
 */
function encodeTop(
  L: LuaState,
  cfg: CjsonConfig,
  nullPointer: object,
  out: ByteBuilder,
  checkLimits: CheckLimits,
): void {
  const frames: Frame[] = [];
  let value = true; // a value to encode is on top of the stack
  let values = 0;
  for (;;) {
    if (value) {
      value = false;
      if (++values % ENCODE_LIMITS_CHECK_EVERY === 0) checkLimits(L);
      if (lua.lua_type(L, -1) !== lua.LUA_TTABLE) {
        appendScalar(L, cfg, nullPointer, out);
        lua.lua_pop(L, 1);
      } else {
        const level = frames.length + 1;
        if (
          level > cfg.encodeMaxDepth ||
          lua.lua_gettop(L) + 3 > LUA51_C_STACK_SLOTS ||
          !lua.lua_checkstack(L, 3)
        )
          throw new EncodeFailure(`Cannot serialise, excessive nesting (${level})`);
        const length = arrayLength(L, cfg);
        if (length > 0)
          out.byte(0x5b); // [
        else {
          out.byte(0x7b); // {
          lua.lua_pushnil(L);
        }
        frames.push({ length: length > 0 ? length : -1, next: length > 0 ? 1 : 0 });
      }
    }
    const frame = frames[frames.length - 1];
    if (frame === undefined) return;
    if (frame.length > 0) {
      // Stack: the array.
      if (frame.next <= frame.length) {
        if (frame.next > 1) out.byte(0x2c); // ,
        lua.lua_rawgeti(L, -1, frame.next++);
        value = true;
        continue;
      }
      out.byte(0x5d); // ]
    } else {
      // Stack: the object, then the last key (nil at first).
      if (lua.lua_next(L, -2) !== 0) {
        if (frame.next === 1) out.byte(0x2c); // ,
        frame.next = 1;
        appendKey(L, cfg, out);
        value = true;
        continue;
      }
      out.byte(0x7d); // }
    }
    frames.pop();
    lua.lua_pop(L, 1); // the table: its parent's element or value, or the argument
  }
}

/** appendScalar encodes the value on top of the stack, which is not a table. */
function appendScalar(L: LuaState, cfg: CjsonConfig, nullPointer: object, out: ByteBuilder): void {
  switch (lua.lua_type(L, -1)) {
    case lua.LUA_TSTRING:
      appendString(out, lua.lua_tolstring(L, -1) as Uint8Array);
      return;
    case lua.LUA_TNUMBER:
      appendNumber(L, cfg, out, -1);
      return;
    case lua.LUA_TBOOLEAN:
      ascii(out, lua.lua_toboolean(L, -1) ? 'true' : 'false');
      return;
    case lua.LUA_TNIL:
      ascii(out, 'null');
      return;
    case lua.LUA_TLIGHTUSERDATA:
      if (lua.lua_touserdata(L, -1) === nullPointer) {
        ascii(out, 'null');
        return;
      }
      throw failure(L, -1, 'type not supported');
    default:
      throw failure(L, -1, 'type not supported');
  }
}

/** appendKey writes the key under the value on top of the stack, and its colon. */
function appendKey(L: LuaState, cfg: CjsonConfig, out: ByteBuilder): void {
  const keyType = lua.lua_type(L, -2);
  if (keyType === lua.LUA_TNUMBER) {
    out.byte(0x22);
    appendNumber(L, cfg, out, -2);
    ascii(out, '":');
  } else if (keyType === lua.LUA_TSTRING) {
    appendString(out, lua.lua_tolstring(L, -2) as Uint8Array);
    out.byte(0x3a); // :
  } else {
    throw failure(L, -2, 'table key must be a number or string');
  }
}

/**
 * arrayLength: the largest key of the table on top when every key is a positive integer (0 for
 * an empty table), else -1: an object (lua_array_length; an excessively sparse array is an error
 * unless converting is on). The largest key is a C int there: a key past 2^31-1 stores x86-64's
 * "integer indefinite" INT_MIN, as Redis's does, so such a table comes out as an object.
 */
function arrayLength(L: LuaState, cfg: CjsonConfig): number {
  let max = 0;
  let items = 0;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, -2) !== 0) {
    const k = lua.lua_type(L, -2) === lua.LUA_TNUMBER ? lua.lua_tonumber(L, -2) : 0;
    if (k >= 1 && Math.floor(k) === k) {
      if (k > max) max = k <= INT_MAX ? k : INT_MIN;
      items++;
      lua.lua_pop(L, 1);
      continue;
    }
    lua.lua_pop(L, 2);
    return -1;
  }
  if (cfg.sparseRatio > 0 && max > items * cfg.sparseRatio && max > cfg.sparseSafe) {
    if (cfg.sparseConvert === 0) throw failure(L, -1, 'excessively sparse array');
    return -1;
  }
  return max;
}

/** appendNumber: the number at `i` as "%.<precision>g", or as the invalid-number setting says. */
function appendNumber(L: LuaState, cfg: CjsonConfig, out: ByteBuilder, i: number): void {
  const n = lua.lua_tonumber(L, i);
  const invalid = !Number.isFinite(n);
  if (invalid && cfg.encodeInvalidNumbers === 0) throw failure(L, i, 'must not be NaN or Inf');
  if (invalid && cfg.encodeInvalidNumbers === INVALID_NULL) {
    ascii(out, 'null');
    return;
  }
  // "nan" whatever its sign (some C libraries print "-nan").
  ascii(out, Number.isNaN(n) ? 'nan' : formatG(n, cfg.precision));
}

/** ESCAPES: lua-cjson's char2escape, the escape of each byte that has one. */
const ESCAPES: (Uint8Array | undefined)[] = (() => {
  const table: (Uint8Array | undefined)[] = new Array(256).fill(undefined);
  const hex = (c: number) => `\\u${c.toString(16).padStart(4, '0')}`;
  for (let c = 0; c < 0x20; c++) table[c] = s(hex(c));
  table[0x7f] = s(hex(0x7f));
  const named: [number, string][] = [
    [0x08, '\\b'],
    [0x09, '\\t'],
    [0x0a, '\\n'],
    [0x0c, '\\f'],
    [0x0d, '\\r'],
    [0x22, '\\"'],
    [0x5c, '\\\\'],
    [0x2f, '\\/'],
  ];
  for (const [c, e] of named) table[c] = s(e);
  return table;
})();

function appendString(out: ByteBuilder, str: Uint8Array): void {
  out.byte(0x22);
  let from = 0;
  for (let i = 0; i < str.length; i++) {
    const escaped = ESCAPES[str[i] as number];
    if (escaped === undefined) continue;
    if (i > from) out.bytes(str.subarray(from, i));
    out.bytes(escaped);
    from = i + 1;
  }
  if (from < str.length) out.bytes(str.subarray(from));
  out.byte(0x22);
}

function ascii(out: ByteBuilder, text: string): void {
  for (let i = 0; i < text.length; i++) out.byte(text.charCodeAt(i));
}

// ---- decode ----------------------------------------------------------------------------------

function decode(L: LuaState, cfg: CjsonConfig, nullPointer: object): number {
  if (lua.lua_gettop(L) !== 1) return lauxlib.luaL_argerror(L, 1, s('expected 1 argument'));
  const text = lauxlib.luaL_checklstring(L, 1);
  // lua-cjson's check for a text in another encoding: a zero byte in either of the first two.
  if (text.length >= 2 && (text[0] === 0 || text[1] === 0))
    return lauxlib.luaL_error(L, s('JSON parser does not support UTF-16 or UTF-32'));
  let value: JsonValue;
  try {
    value = decodeJson(text, {
      maxDepth: cfg.decodeMaxDepth,
      invalidNumbers: cfg.decodeInvalidNumbers === 1,
    });
  } catch (err) {
    if (!(err instanceof CjsonError)) throw err;
    return lauxlib.luaL_error(L, s('%s'), s(err.message));
  }
  pushJson(L, value, nullPointer);
  return 1;
}

/** pushJson pushes a decoded value (nested at most decode_max_depth deep). */
function pushJson(L: LuaState, v: JsonValue, nullPointer: object): void {
  // Room for this level's table, key and value (lua-cjson's json_decode_checkstack).
  if (!lua.lua_checkstack(L, 3)) lauxlib.luaL_error(L, s('Too many nested data structures'));
  if (v === NULL) lua.lua_pushlightuserdata(L, nullPointer);
  else if (typeof v === 'number') pushNumber(L, v);
  else if (typeof v === 'boolean') lua.lua_pushboolean(L, v);
  else if (v instanceof Uint8Array) lua.lua_pushstring(L, v);
  else if (Array.isArray(v)) {
    lua.lua_createtable(L, v.length, 0);
    for (let i = 0; i < v.length; i++) {
      pushJson(L, v[i] as JsonValue, nullPointer);
      lua.lua_rawseti(L, -2, i + 1);
    }
  } else {
    lua.lua_createtable(L, 0, v.entries.length);
    for (const [key, x] of v.entries) {
      lua.lua_pushstring(L, key);
      pushJson(L, x, nullPointer);
      lua.lua_rawset(L, -3);
    }
  }
}
