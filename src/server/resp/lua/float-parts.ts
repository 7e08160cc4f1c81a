// C's frexp and ldexp on JavaScript numbers, for Lua 5.1's math.frexp and math.ldexp
// (lua51-libs.ts). No fengari here: tests import it without the VM's set-up order.

/** frexp splits x into m * 2^e with 0.5 <= |m| < 1 (C's frexp; 0, inf and nan give x and 0). */
export function frexp(x: number): [number, number] {
  if (x === 0 || !Number.isFinite(x)) return [x, 0];
  let e = Math.max(-1023, Math.floor(Math.log2(Math.abs(x))) + 1);
  let m = x * 2 ** -e;
  // log2 can be off by one near powers of two, and subnormals need the exponent in two steps.
  while (Math.abs(m) < 0.5) {
    m *= 2;
    e--;
  }
  while (Math.abs(m) >= 1) {
    m /= 2;
    e++;
  }
  return [m, e];
}

/** ldexp: m * 2^e without overflowing or underflowing in between (C's ldexp). */
export function ldexp(m: number, e: number): number {
  // 2^e itself leaves the double range past ±1023: scale in steps that stay in range.
  const STEP = 1000;
  let r = m;
  let left = e;
  while (left > STEP) {
    r *= 2 ** STEP;
    left -= STEP;
    if (!Number.isFinite(r)) return r;
  }
  while (left < -STEP) {
    r *= 2 ** -STEP;
    left += STEP;
    if (r === 0) return r;
  }
  return r * 2 ** left;
}
