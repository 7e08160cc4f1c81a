import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addLongDouble, formatLongDouble, isFiniteLongDouble, parseLongDouble } from './decimal-float.js';

function add(a: string, b: string): string {
  return formatLongDouble(addLongDouble(parseLongDouble(a)!, parseLongDouble(b)!));
}

describe('HINCRBYFLOAT arithmetic (x86-64 long double, printed as Redis does)', () => {
  it('gives the digits redis-server 7 gives', () => {
    // Each pair below was read from redis-server 7.0 (redis-diff-hashes.test.ts compares live).
    expect(add('10.5', '0.1')).toBe('10.6');
    expect(add('5.6', '5.0e3')).toBe('5005.60000000000000009');
    expect(add('5205.60000000000000009', '1e-3')).toBe('5205.60099999999999998');
    expect(add('0.1', '0.2')).toBe('0.3');
    expect(add('3.0', '0')).toBe('3');
    expect(add('-0.5', '.5')).toBe('0');
    expect(add('1', '-3')).toBe('-2');
  });

  it('parses what strtold accepts and refuses the rest', () => {
    for (const bad of ['', 'x', '1x', ' 1', '1 ', '.', 'e5', 'nan', '--1', '1e']) {
      expect(parseLongDouble(bad), bad).toBeUndefined();
    }
    for (const good of ['1', '-1', '+1', '1.', '.5', '1e3', '1E-3', '-0', '00012']) {
      expect(parseLongDouble(good), good).toBeDefined();
    }
    expect(isFiniteLongDouble(parseLongDouble('inf')!)).toBe(false);
    expect(isFiniteLongDouble(parseLongDouble('-Infinity')!)).toBe(false);
  });

  it('is exact on integers and agrees with doubles to 15 significant digits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
        fc.integer({ min: -(2 ** 50), max: 2 ** 50 }),
        (a, b) => {
          expect(add(String(a), String(b))).toBe(String(a + b));
        },
      ),
    );
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        (a, b) => {
          const ours = Number(add(String(a), String(b)));
          expect(Math.abs(ours - (a + b))).toBeLessThanOrEqual(Math.max(1e-9, Math.abs(a + b) * 1e-13));
        },
      ),
    );
  });
});
