import { describe, expect, it } from 'vitest';
import { splitInlineArgs } from './inline.js';

function split(line: string): string[] | null {
  const args = splitInlineArgs(Buffer.from(line, 'latin1'));
  return args === null ? null : args.map((a) => a.toString('latin1'));
}

describe('splitInlineArgs (sdssplitargs)', () => {
  it('splits on blanks and skips runs of them', () => {
    expect(split('SET  key\tvalue ')).toEqual(['SET', 'key', 'value']);
    expect(split('  \t ')).toEqual([]);
    expect(split('')).toEqual([]);
    expect(split('a\rb')).toEqual(['a', 'b']);
  });

  it('skips \\v and \\f between words but keeps them inside a word, like Redis', () => {
    expect(split('\va\vb\f')).toEqual(['a\vb\f']);
  });

  it('understands double-quote escapes', () => {
    expect(split('"a b"')).toEqual(['a b']);
    expect(split('"\\n\\r\\t\\b\\a\\\\\\"\\z"')).toEqual(['\n\r\t\b\x07\\"z']);
    expect(split('"\\x41\\x7a\\xff\\x4"')).toEqual(['Az\xffx4']);
    expect(split('"\\xZZ"')).toEqual(['xZZ']);
    expect(split('""')).toEqual(['']);
  });

  it("understands single quotes, where only \\' is an escape", () => {
    expect(split('\'a "b" \\n\'')).toEqual(['a "b" \\n']);
    expect(split("'it\\'s'")).toEqual(["it's"]);
    expect(split("''")).toEqual(['']);
  });

  it('lets quotes start inside a word', () => {
    expect(split('foo"bar baz" qux')).toEqual(['foobar baz', 'qux']);
    expect(split("a'b c'")).toEqual(['ab c']);
  });

  it('refuses unbalanced quotes and a closing quote followed by a non-blank', () => {
    expect(split('"abc')).toBeNull();
    expect(split("'abc")).toBeNull();
    expect(split('"abc\\"')).toBeNull();
    expect(split('"a"b')).toBeNull();
    expect(split("'a'b")).toBeNull();
    expect(split('"a"\tb')).toEqual(['a', 'b']);
  });

  it('returns unquoted words as subarrays of the line', () => {
    const line = Buffer.from('GET key');
    const args = splitInlineArgs(line)!;
    expect(args[1]!.buffer).toBe(line.buffer);
  });
});
