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
    // Hexadecimal floats, as strtold (values read from redis-server 7.0's INCRBYFLOAT).
    for (const [hex, value] of [
      ['0x10', '16'],
      ['0x1p3', '8'],
      ['0X.8', '0.5'],
      ['-0x1.8P1', '-3'],
      ['+0x1P+2', '4'],
      ['0x10e', '270'],
      ['0x1.0000000000000001p0', '1'],
    ] as const) {
      expect(formatLongDouble(parseLongDouble(hex)!), hex).toBe(value);
    }
    for (const bad of ['0x', '0x1p', '0x.p1', '0xg', ' 0x1', '0x1 ', '0x1p-']) {
      expect(parseLongDouble(bad), bad).toBeUndefined();
    }
    // Past long double's range (strtold's ERANGE): refused, where Redis refuses it.
    for (const bad of ['1e5000', '-1e5000', '1e-5000', '0x1p99999', '0x1p-99999', `1e${'9'.repeat(400)}`]) {
      expect(parseLongDouble(bad), bad).toBeUndefined();
    }
    expect(parseLongDouble('0e99999')).toEqual(parseLongDouble('0'));
    const big = formatLongDouble(parseLongDouble('1e400')!);
    expect(big).toHaveLength(401);
    expect(big.startsWith('1000000000000000000028188068394758651458645343362905203862591069')).toBe(true);
    expect(formatLongDouble(parseLongDouble('0x1p16383')!)).toHaveLength(4932);
    expect(
      isFiniteLongDouble(addLongDouble(parseLongDouble('0x1p16383')!, parseLongDouble('0x1p16383')!)),
    ).toBe(false);
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
