import { describe, expect, it } from 'vitest';
import { formatG, numberToArgument, numberToString } from './numbers.js';

describe('Lua 5.1 number formatting', () => {
  it('prints as C\'s printf("%.14g") does (glibc)', () => {
    const cases: [number, string][] = [
      [3, '3'],
      [-3, '-3'],
      [0.1, '0.1'],
      [1 / 3, '0.33333333333333'],
      [1e14, '1e+14'],
      [99999999999999, '99999999999999'],
      [1e15, '1e+15'],
      [2 ** 53, '9.007199254741e+15'],
      [123456789012345, '1.2345678901234e+14'], // a tie rounds to even
      [123456789012355, '1.2345678901236e+14'],
      [1e-5, '1e-05'],
      [0.0001, '0.0001'],
      [1.5e-300, '1.5e-300'],
      [1e300, '1e+300'],
      [-0, '-0'],
      [0, '0'],
      [Number.POSITIVE_INFINITY, 'inf'],
      [Number.NEGATIVE_INFINITY, '-inf'],
    ];
    for (const [n, text] of cases) expect([n, numberToString(n)]).toEqual([n, text]);
    expect(formatG(0.5, 1)).toBe('0.5');
    expect(formatG(2.5, 1)).toBe('2');
    expect(formatG(3.5, 1)).toBe('4');
  });

  it('writes a redis.call argument as Redis 7.0 does ("%.17g")', () => {
    expect(numberToArgument(6)).toBe('6');
    expect(numberToArgument(10 / 3)).toBe('3.3333333333333335');
    expect(numberToArgument(0.1)).toBe('0.10000000000000001');
    expect(numberToArgument(1e16)).toBe('10000000000000000');
    expect(numberToArgument(123456789012345680)).toBe('1.2345678901234568e+17');
    expect(numberToArgument(1e20)).toBe('1e+20');
    expect(numberToArgument(-0)).toBe('-0');
  });
});
