// Lua 5.1 numbers on fengari's Lua 5.3 (docs/lua.md, "Numbers"). Redis runs Lua 5.1, where every
// number is a double: `100000 * 100000` is 10000000000, exact up to 2^53. fengari has Lua 5.3's
// two number variants, and its integers are 32-bit: integer arithmetic wraps (`(a + b)|0`,
// Math.imul), so `65536 * 65536` was 0 and `redis.call('incrby', k, 2e9) * 2` was negative, and
// scripts returned or wrote those wrong values without a word.
//
// The fix, without changing fengari's files: every number is made to behave as a float. The VM
// and the libraries ask a value `ttisinteger()` before taking an integer path (arithmetic, for
// loops, comparisons, tostring, constant folding), and `ttisfloat()` before a float one; here
// `ttisinteger` is false for every value and `ttisfloat` true for both variants, so every
// operation takes its float path (a JavaScript double, as Lua 5.1's). A value still tagged
// integer (lua_pushinteger, table keys) is only a tag: its value is the same JavaScript number,
// and tables hash both variants alike.
//
// Numbers print as Lua 5.1 prints them (LUAI_NUMFFORMAT "%.14g": 3, not 3.0; 1e+15; inf, -inf,
// nan, -nan as glibc writes them), and a number passed to redis.call is written with "%.17g" as
// Redis 7.0 does (luaRedisGenericCommand).
//
// luaconf's lua_number2str is taken by lobject when it loads, so this module must be imported
// before 'fengari' (vm.ts and convert.ts import it at their top). It loads fengari's core, so
// string-limit.ts, which must come before that, is imported first.
import './string-limit.js';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** formatG formats `n` as C's printf("%.<precision>g") does (glibc: inf, -inf, nan, -nan). */
export function formatG(n: number, precision: number): string {
  if (Number.isNaN(n)) {
    f64[0] = n;
    const high = u32[LITTLE_ENDIAN ? 1 : 0]!;
    return high >>> 31 === 1 ? '-nan' : 'nan';
  }
  if (n === Number.POSITIVE_INFINITY) return 'inf';
  if (n === Number.NEGATIVE_INFINITY) return '-inf';
  if (n === 0) return Object.is(n, -0) ? '-0' : '0';
  // The exponent after rounding to `precision` significant digits decides the style.
  const exp = roundedExponential(n, precision);
  const e = exp.indexOf('e');
  const x = Number(exp.slice(e + 1));
  if (x < -4 || x >= precision) {
    const mantissa = stripZeros(exp.slice(0, e));
    const abs = Math.abs(x);
    return `${mantissa}e${x < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
  }
  // Fixed style from the same rounded digits (toFixed would round a tie away from zero again).
  const sign = n < 0 ? '-' : '';
  const digits = exp.slice(sign.length, e).replace('.', '');
  if (x < 0) return stripZeros(`${sign}0.${'0'.repeat(-x - 1)}${digits}`);
  return stripZeros(`${sign}${digits.slice(0, x + 1)}.${digits.slice(x + 1)}`);
}

/**
 * roundedExponential is n.toExponential(precision - 1), except that an exact tie rounds to even
 * as glibc's printf does (JavaScript rounds it away from zero): "%.14g" of 123456789012345 is
 * 1.2345678901234e+14.
 */
function roundedExponential(n: number, precision: number): string {
  const rounded = n.toExponential(precision - 1);
  const exact = n.toExponential(100);
  const sign = n < 0 ? 1 : 0;
  // exact: [-]d.ddd...e±x; the digit after the kept ones is at sign + 1 + precision.
  const next = sign + 1 + precision;
  if (exact.charCodeAt(next) !== 53 /* 5 */) return rounded;
  const e = exact.indexOf('e');
  for (let i = next + 1; i < e; i++) if (exact.charCodeAt(i) !== 48 /* 0 */) return rounded;
  const last = precision === 1 ? sign : next - 1;
  if ((exact.charCodeAt(last) - 48) % 2 === 1) return rounded; // odd: away from zero is even
  return exact.slice(0, precision === 1 ? sign + 1 : next) + exact.slice(e);
}

function stripZeros(s: string): string {
  if (!s.includes('.')) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48 /* 0 */) end--;
  if (s.charCodeAt(end - 1) === 46 /* . */) end--;
  return s.slice(0, end);
}

/** numberToString: Lua 5.1's tostring of a number (LUAI_NUMFFORMAT "%.14g"). */
export function numberToString(n: number): string {
  // The common case, an integral value that prints in full, without the general formatting.
  if (Number.isInteger(n) && n < 1e14 && n > -1e14 && !Object.is(n, -0)) return String(n);
  return formatG(n, 14);
}

/** numberToArgument: a number passed to redis.call, as Redis 7.0 writes it ("%.17g"). */
export function numberToArgument(n: number): string {
  if (Number.isInteger(n) && n < 1e17 && n > -1e17 && !Object.is(n, -0)) return String(n);
  return formatG(n, 17);
}

interface TValueLike {
  type: number;
}

const luaconf = require('fengari/src/luaconf.js') as {
  lua_number2str: (n: number) => string;
  LUA_COMPAT_FLOATSTRING: boolean;
  doubles?: true;
};

if (luaconf.doubles !== true) {
  luaconf.doubles = true;
  // Taken by lobject.js when it loads (luaO_tostring): "%.14g", and no ".0" added to integral
  // floats (LUA_COMPAT_FLOATSTRING is Lua 5.3's option for Lua 5.2's formatting).
  luaconf.lua_number2str = numberToString;
  luaconf.LUA_COMPAT_FLOATSTRING = true;
  // lapi.js loads the core in fengari's own order (lobject.js alone would not load: its
  // dependencies require it back before it has defined TValue).
  require('fengari/src/lapi.js');
  const { TValue } = require('fengari/src/lobject.js') as {
    TValue: {
      new (type: number, value: unknown): { value: number };
      prototype: { ttisinteger(): boolean; ttisfloat(): boolean };
    };
  };
  const { LUA_TNUMBER } = (require('fengari/src/defs.js') as { constant_types: { LUA_TNUMBER: number } })
    .constant_types;
  TValue.prototype.ttisinteger = () => false;
  TValue.prototype.ttisfloat = function (this: TValueLike): boolean {
    return (this.type & 0x0f) === LUA_TNUMBER;
  };
  // A library's integer argument (string positions, table.insert's position, select, unpack,
  // string.char, math.random): Lua 5.1 casts the double to an integer, truncating toward zero,
  // where Lua 5.3 refuses a non-integral one ("number has no integer representation"): so
  // `s:sub(1, #s / 2)` failed. Past fengari's 32-bit range the value is clamped to it, which
  // keeps every position's meaning (no string is that long). lapi's lua_tointegerx (and so
  // luaL_checkinteger and luaL_optinteger) reads lvm.tointeger through the module at each call.
  const lvm = require('fengari/src/lvm.js') as { tointeger: (o: unknown) => number | false };
  const { luaO_str2num } = require('fengari/src/lobject.js') as {
    luaO_str2num: (s: Uint8Array, o: { value: number }) => number;
  };
  lvm.tointeger = (o) => {
    const v = o as TValueLike & {
      value: number;
      ttisnumber(): boolean;
      ttisstring(): boolean;
      svalue(): Uint8Array;
      vslen(): number;
    };
    let n: number;
    if (v.ttisnumber()) n = v.value;
    else if (v.ttisstring()) {
      const parsed = new TValue(0, 0);
      if (luaO_str2num(v.svalue(), parsed) !== v.vslen() + 1) return false;
      n = parsed.value;
    } else return false;
    return luaInteger(n);
  };
}

/** LUA_INTEGER_MIN, LUA_INTEGER_MAX: fengari's integers (32-bit). */
const LUA_INTEGER_MIN = -(2 ** 31);
const LUA_INTEGER_MAX = 2 ** 31 - 1;

/**
 * luaInteger: the integer a library function sees for the number `n`, as Lua 5.1 on x86-64 casts
 * it (truncation toward zero; NaN and values past 64 bits are the "integer indefinite", the
 * most negative), clamped to fengari's 32-bit integers.
 */
export function luaInteger(n: number): number {
  // Out of a 64-bit integer's range, x86-64's conversion gives its "integer indefinite" too.
  if (Number.isNaN(n) || Math.abs(n) >= 2 ** 63) return LUA_INTEGER_MIN;
  const t = Math.trunc(n);
  if (t > LUA_INTEGER_MAX) return LUA_INTEGER_MAX;
  if (t < LUA_INTEGER_MIN) return LUA_INTEGER_MIN;
  return t === 0 ? 0 : t; // not -0
}
