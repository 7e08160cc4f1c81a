// HINCRBYFLOAT's arithmetic, so its answers match Redis's digit for digit. Redis parses with
// strtold, adds in C `long double` (x86-64: 80-bit extended, a 64-bit mantissa) and prints with
// "%.17Lf", then strips trailing zeros (util.c ld2string, LD_STR_HUMAN): "10.5" + "0.1" is
// "10.6", but "5.6" + "5.0e3" is "5005.60000000000000009". A JS double cannot give those digits,
// so this emulates the format exactly on BigInts: a value is mantissa × 2^exponent with the
// mantissa rounded to MANTISSA_BITS (round half to even, as the FPU), and printing takes the exact
// binary value to 17 places (round half to even, as glibc's printf). strtold's hexadecimal floats
// ("0x10", "0x1.8p3") parse too, and its range is long double's: a value that overflows it, or
// underflows to zero, is refused, as Redis's string2ld refuses strtold's ERANGE. (Subnormals keep
// the full mantissa here; printed to 17 places they are all 0 anyway.)

/** MANTISSA_BITS: the precision of x86-64's long double. */
const MANTISSA_BITS = 64;
/** FRACTION_DIGITS: the places Redis prints ("%.17Lf"). */
const FRACTION_DIGITS = 17;
/** FLOAT_CHARS_MAX: Redis refuses a float argument longer than this (MAX_LONG_DOUBLE_CHARS). */
const FLOAT_CHARS_MAX = 5 * 1024;
/** BINARY_EXPONENT_MAX: a long double is below 2^this (x86-64 extended: 2^16384). */
const BINARY_EXPONENT_MAX = 16384;
/** BINARY_EXPONENT_MIN: a value below 2^this rounds to zero (half the smallest subnormal, 2^-16445). */
const BINARY_EXPONENT_MIN = -16446;
/** log2(10), to bound a decimal's magnitude before computing it. */
const LOG2_10 = Math.log2(10);

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;
const HEXADECIMAL = /^([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?\d+))?$/;
const INFINITY = /^[+-]?inf(inity)?$/i;

/**
 * LongDouble: mantissa × 2^exponent, the mantissa at most MANTISSA_BITS bits (0 for zero), or a
 * double where the emulation was given up (infinities, huge exponents).
 */
export type LongDouble = { readonly m: bigint; readonly e: number } | { readonly double: number };

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** roundShift: n / 2^shift rounded half to even (shift > 0), for non-negative n. */
function roundShift(n: bigint, shift: number): bigint {
  const s = BigInt(shift);
  const q = n >> s;
  const r = n - (q << s);
  const half = 1n << (s - 1n);
  if (r > half || (r === half && (q & 1n) === 1n)) return q + 1n;
  return q;
}

/** normalize rounds an exact value n × 2^e to MANTISSA_BITS bits; past the range, an infinity. */
function normalize(n: bigint, e: number): LongDouble {
  if (n === 0n) return { m: 0n, e: 0 };
  const negative = n < 0n;
  let abs = negative ? -n : n;
  let exp = e;
  const extra = bitLength(abs) - MANTISSA_BITS;
  if (extra > 0) {
    abs = roundShift(abs, extra);
    exp += extra;
    // Rounding up may carry into one more bit.
    if (bitLength(abs) > MANTISSA_BITS) {
      abs >>= 1n;
      exp += 1;
    }
  }
  if (bitLength(abs) + exp > BINARY_EXPONENT_MAX) return { double: negative ? -Infinity : Infinity };
  return { m: negative ? -abs : abs, e: exp };
}

/**
 * inRange: whether digits × base^exponent (digits > 0, `digitCount` of them in `base`) can be a
 * finite non-zero long double, judged from its magnitude before it is computed (so a huge
 * exponent costs nothing); a margin of a few powers either side, the exact check follows.
 */
function inRange(digitCount: number, log2Base: number, exponent: number): boolean {
  const log2 = (digitCount + exponent) * log2Base;
  return log2 <= BINARY_EXPONENT_MAX + 8 && log2 >= BINARY_EXPONENT_MIN - 8;
}

/** exactOrRefused: the parsed exact value n × 2^e, undefined when strtold would report ERANGE. */
function exactOrRefused(n: bigint, e: number): LongDouble | undefined {
  const abs = n < 0n ? -n : n;
  if (bitLength(abs) + e <= BINARY_EXPONENT_MIN) return undefined; // underflows to zero
  const x = normalize(n, e);
  return 'double' in x ? undefined : x; // overflows
}

/** parseHex reads strtold's hexadecimal form: 0x, hex digits with an optional point, p exponent. */
function parseHex(text: string): LongDouble | undefined {
  const match = HEXADECIMAL.exec(text);
  if (match === null) return undefined;
  const [, sign = '', int = '', frac = '', exp] = match;
  if (int.length === 0 && frac.length === 0) return undefined;
  const digits = `${int}${frac}`.replace(/^0+/, '');
  if (digits.length === 0) return { m: 0n, e: 0 };
  // Value: digits × 16^-frac.length × 2^exp.
  const e2 = (exp === undefined ? 0 : Number(exp)) - 4 * frac.length;
  if (!inRange(digits.length, 4, e2 / 4)) return undefined;
  const n = BigInt(`0x${digits}`);
  return exactOrRefused(sign === '-' ? -n : n, e2);
}

/**
 * parseLongDouble reads a float as Redis's strtold-based string2ld accepts it (decimal or
 * hexadecimal, no spaces, no NaN, within long double's range), rounded to the nearest long
 * double; undefined when it is not one. An infinity parses (callers refuse it with Redis's texts).
 */
export function parseLongDouble(text: string): LongDouble | undefined {
  if (text.length === 0 || text.length > FLOAT_CHARS_MAX) return undefined;
  if (INFINITY.test(text)) return { double: text.startsWith('-') ? -Infinity : Infinity };
  if (/^[+-]?0[xX]/.test(text)) return parseHex(text);
  const match = DECIMAL.exec(text);
  if (match === null) return undefined;
  const [, sign = '', int = '', frac = '', exp] = match;
  if (int.length === 0 && frac.length === 0) return undefined;
  const significant = `${int}${frac}`.replace(/^0+/, '');
  if (significant.length === 0) return { m: 0n, e: 0 };
  const e10 = (exp === undefined ? 0 : Number(exp)) - frac.length;
  if (!inRange(significant.length, LOG2_10, e10)) return undefined;
  const digits = sign === '-' ? -BigInt(significant) : BigInt(significant);
  if (e10 >= 0) return exactOrRefused(digits * 10n ** BigInt(e10), 0);
  // digits / 10^k: scale up by 2^s so the quotient has MANTISSA_BITS + 2 bits, then round once,
  // with the remainder as a sticky bit so the rounding is that of the exact quotient.
  const abs = digits < 0n ? -digits : digits;
  const den = 10n ** BigInt(-e10);
  const s = Math.max(0, MANTISSA_BITS + 2 - (bitLength(abs) - bitLength(den)));
  const scaled = abs << BigInt(s);
  let q = scaled / den;
  if (scaled % den !== 0n) q = (q << 1n) | 1n;
  else q <<= 1n;
  return exactOrRefused(digits < 0n ? -q : q, -s - 1);
}

function toDouble(x: LongDouble): number {
  if ('double' in x) return x.double;
  return Number(x.m) * 2 ** x.e;
}

/** addLongDouble: a + b rounded to a long double (exact emulation unless either gave up). */
export function addLongDouble(a: LongDouble, b: LongDouble): LongDouble {
  if ('double' in a || 'double' in b) return { double: toDouble(a) + toDouble(b) };
  const e = Math.min(a.e, b.e);
  return normalize((a.m << BigInt(a.e - e)) + (b.m << BigInt(b.e - e)), e);
}

/** isFiniteLongDouble: false for an infinite (or NaN) value: Redis's "NaN or Infinity" errors. */
export function isFiniteLongDouble(x: LongDouble): boolean {
  return !('double' in x) || Number.isFinite(x.double);
}

/** formatLongDouble prints as Redis's ld2string(LD_STR_HUMAN): "%.17Lf", trailing zeros cut. */
export function formatLongDouble(x: LongDouble): string {
  if ('double' in x) return stripZeros(x.double.toFixed(FRACTION_DIGITS));
  const negative = x.m < 0n;
  const abs = negative ? -x.m : x.m;
  // The exact value × 10^17, rounded half to even to an integer.
  const scaled = abs * 10n ** BigInt(FRACTION_DIGITS);
  const units = x.e >= 0 ? scaled << BigInt(x.e) : roundShift(scaled, -x.e);
  const digits = units.toString().padStart(FRACTION_DIGITS + 1, '0');
  const text = `${digits.slice(0, digits.length - FRACTION_DIGITS)}.${digits.slice(digits.length - FRACTION_DIGITS)}`;
  return stripZeros(negative ? `-${text}` : text);
}

function stripZeros(text: string): string {
  if (!text.includes('.')) return text;
  return text.replace(/0+$/, '').replace(/\.$/, '');
}
