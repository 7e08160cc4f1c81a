import { describe, expect, it } from 'vitest';
import { parseShebang, splitArgs } from './shebang.js';

const parse = (text: string) => parseShebang(Buffer.from(text, 'latin1'));

describe('parseShebang', () => {
  it('reads #!lua and its flags; the length stops before the line feed (line numbers kept)', () => {
    expect(parse('return 1')).toEqual({ flags: { shebang: false, noWrites: false }, length: 0 });
    expect(parse('#!lua\nreturn 1')).toEqual({ flags: { shebang: true, noWrites: false }, length: 5 });
    expect(parse('#!lua flags=allow-oom,no-writes\nx')).toEqual({
      flags: { shebang: true, noWrites: true },
      length: 31,
    });
    expect(parse('#!lua flags=\nx').flags.noWrites).toBe(false);
  });

  it("refuses what Redis 7.0 refuses, with Redis's texts", () => {
    expect(() => parse('#!lua flags=no-writes')).toThrow('ERR Invalid script shebang');
    expect(() => parse('#!lua\0\nx')).toThrow('ERR Invalid script shebang');
    expect(() => parse('#!py\nx')).toThrow('ERR Unexpected engine in script shebang: #!py');
    expect(() => parse('#!lua flags=no-writes,\nx')).toThrow(/^ERR Unexpected flag in script shebang: $/);
    expect(() => parse('#!lua flags=bogus\nx')).toThrow('ERR Unexpected flag in script shebang: bogus');
    expect(() => parse('#!lua name=x\nx')).toThrow('ERR Unknown lua shebang option: name=x');
    expect(() => parse('#!lua "x\nx')).toThrow('ERR Invalid engine in script shebang');
  });
});

describe('splitArgs (sdssplitargs)', () => {
  it('splits on blanks, with quotes and escapes', () => {
    expect(splitArgs('  a  b\t"c d" \'e\\\'f\' "\\x41\\n"')).toEqual(['a', 'b', 'c d', "e'f", 'A\n']);
    expect(splitArgs('"a"b')).toBeUndefined();
    expect(splitArgs("'a")).toBeUndefined();
    expect(splitArgs('')).toEqual([]);
  });
});
