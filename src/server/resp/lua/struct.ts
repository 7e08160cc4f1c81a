// struct: packing numbers and strings into binary strings for scripts, as Redis 7 ships it
// (Roberto Ierusalimschy's struct library on Lua 5.1, x86-64 sizes), so that scripts written for
// Redis run unchanged. Written here from the library's documented behaviour and checked against
// redis-server (test/server/redis-diff-lua-libs.test.ts); docs/lua.md.
//
// struct.pack(fmt, ...), struct.unpack(fmt, s [, pos]) (the values, then the position after
// them), struct.size(fmt). The format, one option after another:
//   '<' little endian | '>' big endian | '!'[n] alignment (default 8) | ' ' ignored
//   'b'/'B' 1-byte, 'h'/'H' 2-byte, 'l'/'L' 8-byte, 'T' 8-byte (size_t), 'i'/'I'[n] n-byte
//   (default 4, at most STRUCT_INT_BYTES_MAX) signed/unsigned integers | 'f' float | 'd' double
//   | 'x' one zero byte | 'c'[n] n bytes of a string (pack: 'c0' the whole string; unpack: 'c0'
//   as many as the value before it says) | 's' a zero-terminated string
// Integers go through a 64-bit integer as the C library's do: past 8 bytes a packed number's
// higher bytes are zero, an unpacked one keeps its low 8 bytes, and out-of-range conversions
// give what x86-64's do (documented at each place).
import { type LuaState, lauxlib, lua, to_luastring } from 'fengari';
import { ByteBuilder, StringTooLongError } from './byte-builder.js';
import { LUA51_C_STACK_SLOTS } from './cmsgpack.js';
import { STRING_OVERFLOW_MESSAGE } from './limits.js';

const s = to_luastring;

/** STRUCT_INT_BYTES_MAX: the library's MAXINTSIZE, the largest 'i'/'I' size. */
export const STRUCT_INT_BYTES_MAX = 32;
/** DEFAULT_ALIGN: '!' without a number (the alignment of a double after a char on x86-64). */
const DEFAULT_ALIGN = 8;
/** INT_BYTES: 'i' and 'I' without a size (C's int). */
const INT_BYTES = 4;
/** LONG_BYTES: 'l', 'L' and 'T' (C's long and size_t on x86-64). */
const LONG_BYTES = 8;
const INT32_MAX = 2 ** 31 - 1;
const U64 = (1n << 64n) - 1n;
const INT64_MIN_BITS = 1n << 63n;
const TWO_63 = 2 ** 63;

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;

/** installStruct sets the global `struct` table (before the VM makes the globals read-only). */
export function installStruct(L: LuaState): void {
  lua.lua_createtable(L, 0, 3);
  lua.lua_pushjsfunction(L, pack);
  lua.lua_setfield(L, -2, s('pack'));
  lua.lua_pushjsfunction(L, unpack);
  lua.lua_setfield(L, -2, s('unpack'));
  lua.lua_pushjsfunction(L, size);
  lua.lua_setfield(L, -2, s('size'));
  lua.lua_setglobal(L, s('struct'));
}

/** Format: the format string (up to a zero byte, as C reads it), the cursor and the options so far. */
class Format {
  i = 0;
  little = true; // x86-64 is little endian
  align = 1;
  readonly f: Uint8Array;

  constructor(
    private readonly L: LuaState,
    raw: Uint8Array,
  ) {
    const nul = raw.indexOf(0);
    this.f = nul === -1 ? raw : raw.subarray(0, nul);
  }

  more(): boolean {
    return this.i < this.f.length;
  }

  next(): number {
    return this.f[this.i++] as number;
  }

  /** num reads the digits at the cursor, or gives `fallback` when there are none (getnum). */
  num(fallback: number): number {
    if (!isDigit(this.f[this.i])) return fallback;
    let a = 0;
    while (isDigit(this.f[this.i])) {
      const d = (this.f[this.i] as number) - DIGIT_0;
      if (a > Math.floor(INT32_MAX / 10) || a * 10 > INT32_MAX - d)
        lauxlib.luaL_error(this.L, s('integral size overflow'));
      a = a * 10 + d;
      this.i++;
    }
    return a;
  }

  /** size: the bytes option `opt` takes (optsize; 0 for the ones that take none). */
  size(opt: number): number {
    switch (String.fromCharCode(opt)) {
      case 'b':
      case 'B':
      case 'x':
        return 1;
      case 'h':
      case 'H':
        return 2;
      case 'l':
      case 'L':
      case 'T':
      case 'd':
        return LONG_BYTES;
      case 'f':
        return 4;
      case 'c':
        return this.num(1);
      case 'i':
      case 'I': {
        const n = this.num(INT_BYTES);
        if (n > STRUCT_INT_BYTES_MAX)
          lauxlib.luaL_error(
            this.L,
            s('integral size %s is larger than limit of %s'),
            s(String(n)),
            s(String(STRUCT_INT_BYTES_MAX)),
          );
        return n;
      }
      default:
        return 0;
    }
  }

  /** padding: the zero bytes before an option of `size` bytes at `at` (gettoalign). */
  padding(at: number, opt: number, size: number): number {
    if (size === 0 || opt === 0x63 /* c */) return 0;
    const n = Math.min(size, this.align);
    // As the C library computes it, also for sizes that are not powers of two.
    return (n - (at & (n - 1))) & (n - 1);
  }

  /** control handles ' ', '<', '>' and '!' (controloptions); anything else is refused. */
  control(opt: number): void {
    switch (String.fromCharCode(opt)) {
      case ' ':
        return;
      case '>':
        this.little = false;
        return;
      case '<':
        this.little = true;
        return;
      case '!': {
        const a = this.num(DEFAULT_ALIGN);
        if (!(a > 0 && (a & (a - 1)) === 0))
          lauxlib.luaL_error(this.L, s('alignment %s is not a power of 2'), s(String(a)));
        this.align = a;
        return;
      }
      default:
        lauxlib.luaL_argerror(this.L, 1, s(`invalid format option '${String.fromCharCode(opt)}'`));
    }
  }
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= DIGIT_0 && c <= DIGIT_9;
}

function isAlnum(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

function isIntegerOption(opt: number): boolean {
  return 'bBhHlLTiI'.includes(String.fromCharCode(opt));
}

/**
 * toUint64: C's conversion of a number to the library's 64-bit integer: negative numbers through
 * int64 (below -2^63: INT64_MIN, x86-64's cvttsd2si), others through uint64 (x86-64's sequence
 * gives 0 from 2^64 up and 2^63 for NaN).
 */
function toUint64(n: number): bigint {
  if (n < 0) return n >= -TWO_63 ? BigInt.asUintN(64, BigInt(Math.trunc(n))) : INT64_MIN_BITS;
  if (Number.isNaN(n)) return INT64_MIN_BITS;
  if (n < 2 * TWO_63) return BigInt(Math.trunc(n));
  return 0n;
}

function pack(L: LuaState): number {
  const f = new Format(L, lauxlib.luaL_checklstring(L, 1));
  // The C library pushes a nil to mark the end of the arguments: a missing one reads as that nil.
  lua.lua_pushnil(L);
  const out = new ByteBuilder();
  try {
    packInto(L, f, out);
  } catch (err) {
    if (err instanceof StringTooLongError) return lauxlib.luaL_error(L, s(STRING_OVERFLOW_MESSAGE));
    throw err;
  }
  lua.lua_pushstring(L, out.view());
  return 1;
}

const scratch = Buffer.alloc(8);

function packInto(L: LuaState, f: Format, out: ByteBuilder): void {
  let arg = 2;
  let total = 0;
  while (f.more()) {
    const opt = f.next();
    let size = f.size(opt);
    const pad = f.padding(total, opt, size);
    total += pad;
    out.repeat(0, pad);
    if (isIntegerOption(opt)) {
      let v = toUint64(lauxlib.luaL_checknumber(L, arg++));
      const at = out.length;
      out.repeat(0, size);
      const bytes = out.view();
      for (let k = 0; k < size; k++) {
        bytes[at + (f.little ? k : size - 1 - k)] = Number(v & 0xffn);
        v >>= 8n;
      }
    } else if (opt === 0x78 /* x */) out.byte(0);
    else if (opt === 0x66 /* f */ || opt === 0x64 /* d */) {
      const n = lauxlib.luaL_checknumber(L, arg++);
      if (opt === 0x66) f.little ? scratch.writeFloatLE(n) : scratch.writeFloatBE(n);
      else f.little ? scratch.writeDoubleLE(n) : scratch.writeDoubleBE(n);
      out.bytes(scratch.subarray(0, size));
    } else if (opt === 0x63 /* c */ || opt === 0x73 /* s */) {
      const str = lauxlib.luaL_checklstring(L, arg++);
      if (size === 0) size = str.length;
      // The C library names the argument after the string: `arg` has moved on already.
      if (str.length < size) lauxlib.luaL_argerror(L, arg, s('string too short'));
      out.bytes(str.subarray(0, size));
      if (opt === 0x73) {
        out.byte(0);
        size++;
      }
    } else f.control(opt);
    total += size;
  }
}

/** readInteger: `size` bytes at `at` as the C library reads them (getinteger). */
function readInteger(data: Uint8Array, at: number, size: number, little: boolean, signed: boolean): number {
  let v = 0n;
  for (let k = 0; k < size; k++) {
    const byte = data[little ? at + size - 1 - k : at + k] as number;
    v = ((v << 8n) | BigInt(byte)) & U64;
  }
  if (!signed) return Number(v);
  // The sign mask as x86-64 shifts: the shift count taken modulo 64 past 8 bytes.
  const mask = (U64 << BigInt((size * 8 - 1) & 63)) & U64;
  if ((v & mask) !== 0n) v |= mask;
  return Number(BigInt.asIntN(64, v));
}

function unpack(L: LuaState): number {
  const f = new Format(L, lauxlib.luaL_checklstring(L, 1));
  const data = lauxlib.luaL_checklstring(L, 2);
  const ld = data.length;
  const first = lua.lua_type(L, 3) <= lua.LUA_TNIL ? 1 : Math.trunc(lauxlib.luaL_checknumber(L, 3));
  if (!(first > 0)) lauxlib.luaL_argerror(L, 3, s('offset must be 1 or greater'));
  let pos = first - 1;
  lua.lua_settop(L, 2);
  const tooShort = (size: number): void => {
    if (!(size >= 0 && size <= ld && pos <= ld - size))
      lauxlib.luaL_argerror(L, 2, s('data string too short'));
  };
  while (f.more()) {
    const opt = f.next();
    let size = f.size(opt);
    pos += f.padding(pos, opt, size);
    tooShort(size);
    // Room for the value and for the position pushed at the end, as the library asks.
    if (lua.lua_gettop(L) + 2 > LUA51_C_STACK_SLOTS || !lua.lua_checkstack(L, 2))
      lauxlib.luaL_error(L, s('stack overflow (%s)'), s('too many results'));
    if (isIntegerOption(opt)) {
      lua.lua_pushnumber(L, readInteger(data, pos, size, f.little, opt >= 0x61));
    } else if (opt === 0x66 /* f */ || opt === 0x64 /* d */) {
      const b = Buffer.from(data.buffer, data.byteOffset + pos, size);
      const n =
        opt === 0x66
          ? f.little
            ? b.readFloatLE()
            : b.readFloatBE()
          : f.little
            ? b.readDoubleLE()
            : b.readDoubleBE();
      lua.lua_pushnumber(L, n);
    } else if (opt === 0x63 /* c */) {
      if (size === 0) {
        if (!lua.lua_isnumber(L, -1)) lauxlib.luaL_error(L, s("format 'c0' needs a previous size"));
        size = Math.trunc(lua.lua_tonumber(L, -1));
        lua.lua_pop(L, 1);
        tooShort(size);
      }
      lua.lua_pushstring(L, data.subarray(pos, pos + size));
    } else if (opt === 0x73 /* s */) {
      const end = data.indexOf(0, pos);
      if (end === -1) lauxlib.luaL_error(L, s('unfinished string in data'));
      size = end - pos + 1;
      lua.lua_pushstring(L, data.subarray(pos, end));
    } else if (opt !== 0x78 /* x */) f.control(opt);
    pos += size;
  }
  lua.lua_pushnumber(L, pos + 1);
  return lua.lua_gettop(L) - 2;
}

function size(L: LuaState): number {
  const f = new Format(L, lauxlib.luaL_checklstring(L, 1));
  let pos = 0;
  while (f.more()) {
    const opt = f.next();
    const n = f.size(opt);
    pos += f.padding(pos, opt, n);
    if (opt === 0x73 /* s */) lauxlib.luaL_argerror(L, 1, s("option 's' has no fixed size"));
    else if (opt === 0x63 /* c */ && n === 0) lauxlib.luaL_argerror(L, 1, s("option 'c0' has no fixed size"));
    if (!isAlnum(opt)) f.control(opt);
    pos += n;
  }
  lua.lua_pushnumber(L, pos);
  return 1;
}
