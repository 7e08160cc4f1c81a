// string.format as Redis's Lua 5.1 has it (lstrlib.c's str_format, which hands each item to C's
// sprintf). fengari's own string.format formats numbers with JavaScript's rules, so scripts got
// other answers than from Redis: `%.0f` of 2.5 was 3 (C: 2, ties to even on the exact binary
// value), `%g` of 1e20 was 100000000000000000000 (C: 1e+20), `%e` of 12345 was 1.2345e+4 (C:
// 1.234500e+04), `%f` of 1/0 Infinity (C: inf), and `%#x` failed. Found from outside.
//
// The grammar of an item, as Lua 5.1 scans it:
//
//   item  := '%' flags width ['.' precision] conversion  |  '%%'
//   flags := at most 5 characters of '-' '+' ' ' '#' '0' (repeats count)
//   width, precision := at most 2 digits each
//   conversion := c d i o u x X e E f g G q s
//
// Numbers are C's: d and i cast the double to a 64-bit integer (truncated; out of range or NaN
// is -2^63, as x86 converts), o u x X to an unsigned one (negatives wrap), c to a byte; e E f g G
// format the double exactly, rounding ties to even on its exact value (glibc), which BigInt
// arithmetic does here. `%s` without a precision keeps a string of 100 bytes or more whole, and
// otherwise stops at a NUL byte (sprintf's %s); `%q` quotes as Lua 5.1 does.

/** FormatError: what Lua 5.1 raises with luaL_error (the caller adds the script's position). */
export class FormatError extends Error {}

/** FormatArgs: the arguments after the format string, read as str_format reads them. */
export interface FormatArgs {
  /** count: how many arguments follow the format string. */
  readonly count: number;
  /** number(i): argument i (1-based after the format) as luaL_checknumber reads it. */
  number(i: number): number;
  /** string(i): argument i as luaL_checklstring reads it (numbers as tostring prints them). */
  string(i: number): Uint8Array;
  /** noValue(i): raises "bad argument #i to 'format' (no value)" (Lua counts the format as #1). */
  noValue(i: number): never;
}

const FLAGS = '-+ #0';
/** FLAGS_MAX: Lua 5.1 refuses a run of flags as long as sizeof(FLAGS): 5 characters and the NUL. */
const FLAGS_MAX = FLAGS.length + 1;
/** DIGITS_MAX: width and precision take at most two digits each. */
const DIGITS_MAX = 2;
/** LONG_STRING_BYTES: `%s` without a precision keeps a string this long or longer as it is. */
const LONG_STRING_BYTES = 100;
/** DEFAULT_PRECISION: C's precision for e, f and g when none is given. */
const DEFAULT_PRECISION = 6;
const INT64_MIN = -(2n ** 63n);
const TWO_63 = 2 ** 63;
const TWO_64 = 2 ** 64;

interface Spec {
  readonly minus: boolean;
  readonly plus: boolean;
  readonly space: boolean;
  readonly hash: boolean;
  readonly zero: boolean;
  readonly width: number;
  /** precision: undefined when the item has none. */
  readonly precision: number | undefined;
}

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/** latin1 reads bytes [from, to) of `bytes` as text (one character per byte). */
const latin1 = (bytes: Uint8Array, from: number, to: number): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset + from, to - from).toString('latin1');

/** luaFormat formats `fmt` with `args` as Lua 5.1's string.format does. */
export function luaFormat(fmt: Uint8Array, args: FormatArgs): Buffer {
  const out: Buffer[] = [];
  let literalFrom = 0;
  let arg = 0;
  let p = 0;
  while (p < fmt.length) {
    if (fmt[p] !== 0x25 /* % */) {
      p++;
      continue;
    }
    out.push(Buffer.from(fmt.subarray(literalFrom, p)));
    p++;
    if (fmt[p] === 0x25) {
      out.push(Buffer.from('%'));
      p++;
      literalFrom = p;
      continue;
    }
    if (++arg > args.count) args.noValue(arg);
    // Scan the item as scanformat does.
    const flagsFrom = p;
    while (p < fmt.length && FLAGS.includes(String.fromCharCode(fmt[p]!))) p++;
    if (p - flagsFrom >= FLAGS_MAX) throw new FormatError('invalid format (repeated flags)');
    const flags = latin1(fmt, flagsFrom, p);
    const widthFrom = p;
    for (let k = 0; k < DIGITS_MAX && isDigit(fmt[p]); k++) p++;
    const width = p > widthFrom ? Number(latin1(fmt, widthFrom, p)) : 0;
    let precision: number | undefined;
    if (fmt[p] === 0x2e /* . */) {
      p++;
      const from = p;
      for (let k = 0; k < DIGITS_MAX && isDigit(fmt[p]); k++) p++;
      precision = p > from ? Number(latin1(fmt, from, p)) : 0;
    }
    if (isDigit(fmt[p])) throw new FormatError('invalid format (width or precision too long)');
    const spec: Spec = {
      minus: flags.includes('-'),
      plus: flags.includes('+'),
      space: flags.includes(' '),
      hash: flags.includes('#'),
      zero: flags.includes('0'),
      width,
      precision,
    };
    const conversion = p < fmt.length ? fmt[p]! : 0;
    p++;
    literalFrom = p;
    out.push(formatItem(conversion, spec, arg, args));
  }
  out.push(Buffer.from(fmt.subarray(literalFrom)));
  return Buffer.concat(out);
}

function formatItem(conversion: number, spec: Spec, arg: number, args: FormatArgs): Buffer {
  const c = String.fromCharCode(conversion);
  switch (c) {
    case 'c': {
      // (int) of the double, then the low byte, as sprintf's %c; a NUL ends the item (strlen).
      const byte = Number(BigInt.asUintN(8, toInt64(args.number(arg))));
      if (byte === 0) return Buffer.alloc(0);
      return pad(Buffer.from([byte]), spec);
    }
    case 'd':
    case 'i':
      return formatInteger(toInt64(args.number(arg)), spec, 10, false);
    case 'o':
      return formatInteger(toUint64(args.number(arg)), spec, 8, false);
    case 'u':
      return formatInteger(toUint64(args.number(arg)), spec, 10, false);
    case 'x':
    case 'X':
      return formatInteger(toUint64(args.number(arg)), spec, 16, c === 'X');
    case 'e':
    case 'E':
    case 'f':
    case 'g':
    case 'G':
      return Buffer.from(formatDouble(args.number(arg), spec, c), 'latin1');
    case 'q':
      return quoted(args.string(arg));
    case 's': {
      const s = args.string(arg);
      if (spec.precision === undefined && s.length >= LONG_STRING_BYTES) return Buffer.from(s);
      const nul = s.indexOf(0);
      let bytes = Buffer.from(nul === -1 ? s : s.subarray(0, nul));
      if (spec.precision !== undefined) bytes = bytes.subarray(0, spec.precision);
      return pad(bytes, spec);
    }
    default:
      throw new FormatError(`invalid option '%${conversion === 0 ? '' : c}' to 'format'`);
  }
}

/** toInt64: C's (long long) of a double on x86: truncated; NaN or out of range is -2^63. */
function toInt64(n: number): bigint {
  if (Number.isNaN(n) || n >= TWO_63 || n < -TWO_63) return INT64_MIN;
  return BigInt(Math.trunc(n));
}

/** toUint64: C's (unsigned long long) of a double as gcc on x86 converts it (negatives wrap). */
function toUint64(n: number): bigint {
  if (n >= TWO_63 && n < TWO_64) return BigInt(Math.trunc(n));
  return BigInt.asUintN(64, toInt64(n));
}

function formatInteger(v: bigint, spec: Spec, radix: number, upper: boolean): Buffer {
  const negative = v < 0n;
  let digits = (negative ? -v : v).toString(radix);
  if (upper) digits = digits.toUpperCase();
  // A precision is the least number of digits; precision 0 prints nothing for 0.
  if (spec.precision !== undefined) {
    if (spec.precision === 0 && v === 0n) digits = '';
    else if (digits.length < spec.precision) digits = digits.padStart(spec.precision, '0');
  }
  let prefix = '';
  if (radix === 10) prefix = negative ? '-' : spec.plus ? '+' : spec.space ? ' ' : '';
  else if (spec.hash && radix === 8 && !digits.startsWith('0')) digits = `0${digits}`;
  else if (spec.hash && radix === 16 && v !== 0n) prefix = upper ? '0X' : '0x';
  // The 0 flag pads between the sign or prefix and the digits, unless a precision is given.
  const zeroPad = spec.zero && !spec.minus && spec.precision === undefined;
  return Buffer.from(padParts(prefix, digits, spec, zeroPad), 'latin1');
}

function padParts(prefix: string, body: string, spec: Spec, zeroPad: boolean): string {
  const len = prefix.length + body.length;
  if (len >= spec.width) return prefix + body;
  const fill = spec.width - len;
  if (spec.minus) return prefix + body + ' '.repeat(fill);
  if (zeroPad) return prefix + '0'.repeat(fill) + body;
  return ' '.repeat(fill) + prefix + body;
}

/** pad widens a %c or %s item to the width with spaces (C leaves the 0 flag undefined there). */
function pad(bytes: Buffer, spec: Spec): Buffer {
  if (bytes.length >= spec.width) return bytes;
  const fill = Buffer.alloc(spec.width - bytes.length, 0x20);
  return spec.minus ? Buffer.concat([bytes, fill]) : Buffer.concat([fill, bytes]);
}

/** quoted: `%q` as Lua 5.1's addquoted: in double quotes, with " \ newline \r and NUL escaped. */
function quoted(s: Uint8Array): Buffer {
  const out: number[] = [0x22];
  for (const b of s) {
    if (b === 0x22 || b === 0x5c || b === 0x0a) out.push(0x5c, b);
    else if (b === 0x0d) out.push(0x5c, 0x72);
    else if (b === 0) out.push(0x5c, 0x30, 0x30, 0x30);
    else out.push(b);
  }
  out.push(0x22);
  return Buffer.from(out);
}

/** formatDouble formats `n` with e, E, f, g or G as glibc's printf does. */
function formatDouble(n: number, spec: Spec, conversion: string): string {
  const upper = conversion === 'E' || conversion === 'G';
  const negative = n < 0 || Object.is(n, -0) || (Number.isNaN(n) && signBit(n));
  const sign = negative ? '-' : spec.plus ? '+' : spec.space ? ' ' : '';
  if (!Number.isFinite(n)) {
    const word = Number.isNaN(n) ? 'nan' : 'inf';
    // glibc pads inf and nan with spaces, whatever the 0 flag says.
    return padParts(sign, upper ? word.toUpperCase() : word, spec, false);
  }
  const abs = Math.abs(n);
  const precision = spec.precision ?? DEFAULT_PRECISION;
  let body: string;
  if (conversion === 'f') body = fixed(abs, precision, spec.hash);
  else if (conversion === 'e' || conversion === 'E') body = exponential(abs, precision, spec.hash, upper);
  else body = general(abs, precision === 0 ? 1 : precision, spec.hash, upper);
  return padParts(sign, body, spec, spec.zero && !spec.minus);
}

const f64 = new Float64Array(1);
const u8 = new Uint8Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function signBit(n: number): boolean {
  f64[0] = n;
  return (u8[LITTLE_ENDIAN ? 7 : 0]! & 0x80) !== 0;
}

/** exact: a finite non-negative double as mantissa * 2^exponent, both exact. */
function exact(abs: number): { mantissa: bigint; exponent: number } {
  if (abs === 0) return { mantissa: 0n, exponent: 0 };
  let exponent = 0;
  let m = abs;
  // Scale to an integer mantissa (at most 53 significant bits) by powers of two, exactly.
  while (!Number.isInteger(m)) {
    m *= 2;
    exponent--;
  }
  return { mantissa: BigInt(m), exponent };
}

/** scaledRound: round(abs * 10^shift) to an integer, ties to even, exactly. */
function scaledRound(abs: number, shift: number): bigint {
  const { mantissa, exponent } = exact(abs);
  let num = mantissa;
  let den = 1n;
  if (exponent >= 0) num <<= BigInt(exponent);
  else den <<= BigInt(-exponent);
  if (shift >= 0) num *= 10n ** BigInt(shift);
  else den *= 10n ** BigInt(-shift);
  const q = num / den;
  const r = num - q * den;
  const twice = 2n * r;
  if (twice > den || (twice === den && q % 2n === 1n)) return q + 1n;
  return q;
}

/** fixed: %f's digits of `abs` with `precision` decimals. */
function fixed(abs: number, precision: number, hash: boolean): string {
  const digits = scaledRound(abs, precision)
    .toString()
    .padStart(precision + 1, '0');
  const int = digits.slice(0, digits.length - precision);
  const frac = digits.slice(digits.length - precision);
  return precision === 0 ? (hash ? `${int}.` : int) : `${int}.${frac}`;
}

/**
 * roundedDigits: `abs` rounded to precision + 1 significant digits (ties to even), and the decimal
 * exponent of the first of them, as %e prints it.
 */
function roundedDigits(abs: number, precision: number): { digits: string; exp: number } {
  if (abs === 0) return { digits: '0'.repeat(precision + 1), exp: 0 };
  let exp = Math.floor(Math.log10(abs));
  // log10 may be off by one near powers of ten: correct it exactly.
  for (;;) {
    const digits = scaledRound(abs, precision - exp).toString();
    if (digits.length > precision + 1) {
      exp++;
      continue;
    }
    if (digits.length < precision + 1) {
      exp--;
      continue;
    }
    return { digits, exp };
  }
}

function exponentText(exp: number, upper: boolean): string {
  const abs = Math.abs(exp);
  return `${upper ? 'E' : 'e'}${exp < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
}

/** exponential: %e's text of `abs`. */
function exponential(abs: number, precision: number, hash: boolean, upper: boolean): string {
  const { digits, exp } = roundedDigits(abs, precision);
  const mantissa = precision === 0 ? (hash ? `${digits}.` : digits) : `${digits[0]}.${digits.slice(1)}`;
  return mantissa + exponentText(exp, upper);
}

/** general: %g's text of `abs` with `p` significant digits (C99 7.19.6.1). */
function general(abs: number, p: number, hash: boolean, upper: boolean): string {
  const { exp } = roundedDigits(abs, p - 1);
  let text: string;
  if (exp < p && exp >= -4) text = fixed(abs, p - 1 - exp, hash);
  else text = exponential(abs, p - 1, hash, upper);
  if (hash) return text;
  // Without '#', trailing zeros of the fraction go, and the point with them.
  const e = text.search(/[eE]/);
  const mantissa = e === -1 ? text : text.slice(0, e);
  const rest = e === -1 ? '' : text.slice(e);
  if (!mantissa.includes('.')) return text;
  return mantissa.replace(/0+$/, '').replace(/\.$/, '') + rest;
}
