import { describe, expect, it } from 'vitest';
import { parseInt64 } from '../../src/server/resp/commands/args.js';
import { substring } from '../../src/server/resp/commands/strings.js';
import { unknownCommand } from '../../src/server/resp/connection.js';
import { globMatch } from '../../src/server/resp/glob.js';

const m = (p: string, s: string) => globMatch(Buffer.from(p), Buffer.from(s));

describe('globMatch (Redis stringmatchlen)', () => {
  it('matches Redis glob syntax', () => {
    // stringmatchlen: the empty string matches only the empty pattern.
    expect(m('*', '')).toBe(false);
    expect(m('**', '')).toBe(false);
    expect(m('', '')).toBe(true);
    expect(m('', 'a')).toBe(false);
    expect(m('a*', 'a')).toBe(true);
    expect(m('a**', 'a')).toBe(true);
    expect(m('*', 'a')).toBe(true);
    expect(m('h?llo', 'hello')).toBe(true);
    expect(m('h*llo', 'heeeello')).toBe(true);
    expect(m('h[ae]llo', 'hallo')).toBe(true);
    expect(m('h[ae]llo', 'hillo')).toBe(false);
    expect(m('h[^e]llo', 'hallo')).toBe(true);
    expect(m('h[^e]llo', 'hello')).toBe(false);
    expect(m('h[a-b]llo', 'hbllo')).toBe(true);
    expect(m('h\\*llo', 'h*llo')).toBe(true);
    expect(m('h\\*llo', 'hello')).toBe(false);
    expect(m('user:*', 'user:')).toBe(true);
    expect(m('a*b', 'acb-')).toBe(false);
  });

  it('is not exponential on pathological patterns', () => {
    const start = Date.now();
    expect(m('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
    expect(Date.now() - start).toBeLessThan(2000);
  });
});

describe('helpers', () => {
  it('unknownCommand echoes Redis text', () => {
    const args = ['foo', 'a', 'b'].map((s) => Buffer.from(s));
    expect(unknownCommand(args)).toBe("ERR unknown command 'foo', with args beginning with: 'a' 'b' ");
  });

  it('substring follows GETRANGE rules', () => {
    const v = Buffer.from('This is a string');
    expect(substring(v, 0, 3).toString()).toBe('This');
    expect(substring(v, -3, -1).toString()).toBe('ing');
    expect(substring(v, 0, -1).toString()).toBe('This is a string');
    expect(substring(v, 10, 100).toString()).toBe('string');
    expect(substring(v, 5, 1).toString()).toBe('');
  });

  it('parseInt64 is strict like string2ll', () => {
    expect(parseInt64(Buffer.from('-9223372036854775808'))).toBe(-(2n ** 63n));
    for (const bad of ['', '-', '+1', '01', '-0', ' 1', '1 ', '9223372036854775808', '1.0'])
      expect(parseInt64(Buffer.from(bad))).toBeUndefined();
    expect(parseInt64(Buffer.from('0'))).toBe(0n);
  });
});
