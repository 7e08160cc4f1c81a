import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeValue } from './encoder.js';
import { RespProtocolError } from './errors.js';
import { NESTING_MAX, REPLY_BULK_BYTES_MAX, REPLY_LINE_BYTES_MAX } from './limits.js';
import {
  ERR_AGGREGATE_LENGTH,
  ERR_BIG_NUMBER,
  ERR_BOOLEAN,
  ERR_BULK_LENGTH,
  ERR_CRLF,
  ERR_DOUBLE,
  ERR_INTEGER,
  ERR_LINE_TOO_LONG,
  ERR_NESTING,
  ERR_NULL,
  ERR_VERBATIM,
  INCOMPLETE,
  ReplyParser,
} from './reply-parser.js';
import { normal, resp2, respValue } from './test-values.js';
import { RespAttributed, RespError, RespPush, type RespValue, RespVerbatim } from './types.js';

type Outcome = { replies: unknown[]; error: string | null };

function feed(chunks: Buffer[]): Outcome {
  const parser = new ReplyParser();
  const replies: unknown[] = [];
  try {
    for (const chunk of chunks) {
      parser.push(chunk);
      for (const reply of parser) replies.push(normal(reply));
    }
  } catch (err) {
    if (!(err instanceof RespProtocolError)) throw err;
    return { replies, error: err.message };
  }
  return { replies, error: null };
}

function b(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function parseOne(s: string | Buffer): RespValue {
  const parser = new ReplyParser();
  parser.push(typeof s === 'string' ? b(s) : s);
  const reply = parser.next();
  expect(reply).not.toBe(INCOMPLETE);
  expect(parser.next()).toBe(INCOMPLETE);
  return reply as RespValue;
}

function splitAt(input: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const cut of cuts) {
    out.push(input.subarray(at, cut));
    at = cut;
  }
  out.push(input.subarray(at));
  return out;
}

function expectSplitInvariant(input: Buffer): Outcome {
  const whole = feed([input]);
  for (let i = 0; i <= input.length; i++) expect(feed(splitAt(input, [i]))).toEqual(whole);
  for (let i = 0; i + 1 < input.length; i++) expect(feed(splitAt(input, [i, i + 1]))).toEqual(whole);
  expect(feed([...input].map((byte) => Buffer.from([byte])))).toEqual(whole);
  return whole;
}

describe('ReplyParser', () => {
  it('parses every RESP2 type', () => {
    expect(parseOne('+OK\r\n')).toBe('OK');
    const err = parseOne('-WRONGTYPE Operation against a key\r\n');
    expect(err).toBeInstanceOf(RespError);
    expect((err as RespError).code).toBe('WRONGTYPE');
    expect((err as RespError).bulk).toBe(false);
    expect(parseOne(':-42\r\n')).toBe(-42);
    expect(parseOne(':+7\r\n')).toBe(7);
    expect(parseOne(':9223372036854775807\r\n')).toBe(9223372036854775807n);
    expect(parseOne(':-9007199254740991\r\n')).toBe(-9007199254740991);
    expect(normal(parseOne('$5\r\nhe\r\no\r\n'))).toEqual({ bytes: b('he\r\no').toString('hex') });
    expect(normal(parseOne('$0\r\n\r\n'))).toEqual({ bytes: '' });
    expect(parseOne('$-1\r\n')).toBeNull();
    expect(parseOne('*-1\r\n')).toBeNull();
    expect(parseOne('*0\r\n')).toEqual([]);
    expect(normal(parseOne('*3\r\n:1\r\n*1\r\n+a\r\n$-1\r\n'))).toEqual([1, ['a'], null]);
  });

  it('parses every RESP3 type', () => {
    expect(parseOne('_\r\n')).toBeNull();
    expect(parseOne('#t\r\n')).toBe(true);
    expect(parseOne('#f\r\n')).toBe(false);
    expect(parseOne(',1.5\r\n')).toBe(1.5);
    expect(parseOne(',-2E3\r\n')).toBe(-2000);
    expect(parseOne(',10\r\n')).toBe(10);
    expect(parseOne(',inf\r\n')).toBe(Number.POSITIVE_INFINITY);
    expect(parseOne(',-inf\r\n')).toBe(Number.NEGATIVE_INFINITY);
    expect(parseOne(',nan\r\n')).toBeNaN();
    expect(parseOne('(3492890328409238509324850943850943825024385\r\n')).toBe(
      3492890328409238509324850943850943825024385n,
    );
    const bulkError = parseOne('!22\r\nSYNTAX invalid\r\nsyntax\r\n') as RespError;
    expect(bulkError.bulk).toBe(true);
    expect(bulkError.message).toBe('SYNTAX invalid\r\nsyntax');
    expect(bulkError.code).toBe('SYNTAX');
    const verbatim = parseOne('=15\r\ntxt:Some string\r\n') as RespVerbatim;
    expect(verbatim).toBeInstanceOf(RespVerbatim);
    expect(verbatim.format).toBe('txt');
    expect(verbatim.text.toString()).toBe('Some string');
    expect(normal(parseOne('%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n'))).toEqual({
      map: [
        ['first', 1],
        ['second', 2],
      ],
    });
    expect(normal(parseOne('~3\r\n+a\r\n:1\r\n#f\r\n'))).toEqual({ set: ['a', 1, false] });
    const push = parseOne('>3\r\n+message\r\n+chan\r\n$2\r\nhi\r\n');
    expect(push).toBeInstanceOf(RespPush);
    expect(normal(push)).toEqual({ push: ['message', 'chan', { bytes: b('hi').toString('hex') }] });
    expect(normal(parseOne('%0\r\n'))).toEqual({ map: [] });
    expect(normal(parseOne('~0\r\n'))).toEqual({ set: [] });
  });

  it('attaches attributes to the value they precede, at any depth', () => {
    const top = parseOne('|1\r\n+ttl\r\n:3\r\n$1\r\nv\r\n');
    expect(top).toBeInstanceOf(RespAttributed);
    expect(normal(top)).toEqual({ attributes: { map: [['ttl', 3]] }, value: { bytes: '76' } });
    const inner = parseOne('*2\r\n|1\r\n+key-popularity\r\n%0\r\n:2039\r\n:9543892\r\n');
    expect(normal(inner)).toEqual([
      { attributes: { map: [['key-popularity', { map: [] }]] }, value: 2039 },
      9543892,
    ]);
    const onAggregate = parseOne('|0\r\n*1\r\n:1\r\n');
    expect(normal(onAggregate)).toEqual({ attributes: { map: [] }, value: [1] });
  });

  it('returns bulk payloads inside one chunk as zero-copy subarrays', () => {
    const chunk = Buffer.alloc(11, '$5\r\nhello\r\n', 'latin1');
    const reply = parseOne(chunk) as Buffer;
    expect(reply.buffer).toBe(chunk.buffer);
  });

  it('gives the same replies for splits at every byte boundary', () => {
    const sample: RespValue = [
      1,
      'OK',
      b('bin\r\nary'),
      null,
      true,
      1.5,
      2n ** 70n,
      new RespError('ERR x'),
      new RespError('ERR\r\nbulk', true),
      new Map<RespValue, RespValue>([['a', [1, 2]]]),
      new Set<RespValue>(['s', b('')]),
      new RespVerbatim('txt', b('hi')),
      new RespPush(['m']),
      new RespAttributed(new Map([['k', 'v']]), 5),
      [[[]]],
    ];
    const input = Buffer.concat([encodeValue(sample, 3), b('+next\r\n$-1\r\n')]);
    const outcome = expectSplitInvariant(input);
    expect(outcome).toEqual({ replies: [normal(sample), 'next', null], error: null });
  });

  it('round-trips random RESP3 values through encodeValue, in random chunks', () => {
    fc.assert(
      fc.property(respValue, fc.array(fc.nat(), { maxLength: 8 }), (value, rawCuts) => {
        const input = encodeValue(value, 3);
        const cuts = [...new Set(rawCuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
        expect(feed(splitAt(input, cuts))).toEqual({ replies: [normal(value)], error: null });
      }),
      { numRuns: 1000 },
    );
  });

  it('reads what a RESP2 server writes for any value as Redis falls back', () => {
    fc.assert(
      fc.property(respValue, (value) => {
        expect(normal(parseOne(encodeValue(value, 2)))).toEqual(normal(resp2(value)));
      }),
      { numRuns: 1000 },
    );
  });

  it('reads a large array reply in small chunks without reparsing', () => {
    const items = Array.from({ length: 50_000 }, (_, i) => b(`value:${i}`));
    const input = encodeValue(items, 3);
    const parser = new ReplyParser();
    let reply: RespValue | typeof INCOMPLETE = INCOMPLETE;
    for (let at = 0; at < input.length; at += 512) {
      parser.push(input.subarray(at, at + 512));
      reply = parser.next();
      expect(parser.bufferedBytes).toBeLessThanOrEqual(Math.min(at + 512, input.length));
    }
    expect((reply as Buffer[]).length).toBe(50_000);
    expect((reply as Buffer[])[49_999]!.toString()).toBe('value:49999');
    expect(parser.bufferedBytes).toBe(0);
  });

  describe('limits and malformed input', () => {
    const nested = (depth: number) => b('*1\r\n'.repeat(depth) + ':1\r\n');
    it('accepts NESTING_MAX levels and refuses one more', () => {
      expect(feed([nested(NESTING_MAX)]).error).toBeNull();
      expect(feed([nested(NESTING_MAX + 1)]).error).toBe(ERR_NESTING);
    });

    it('refuses bulk lengths above REPLY_BULK_BYTES_MAX and lines above REPLY_LINE_BYTES_MAX', () => {
      expect(feed([b(`$${REPLY_BULK_BYTES_MAX + 1}\r\n`)]).error).toBe(ERR_BULK_LENGTH);
      const atMax = '+' + 'x'.repeat(REPLY_LINE_BYTES_MAX);
      expect(feed([b(`${atMax}\r\n`)]).error).toBeNull();
      expect(feed([b(`${atMax}x\r\n`)]).error).toBe(ERR_LINE_TOO_LONG);
      expect(feed([b(`${atMax}xx`)]).error).toBe(ERR_LINE_TOO_LONG); // no line end needed to refuse
    });

    const cases: [string, string][] = [
      ['?x\r\n', "Protocol error: got '?' as reply type byte"],
      ['+OK\n', ERR_CRLF],
      ['$3\r\nabcd\r\n', ERR_CRLF],
      ['$3\r\nabc\n\n', ERR_CRLF],
      ['$-2\r\n', ERR_BULK_LENGTH],
      ['$01\r\na\r\n', ERR_BULK_LENGTH],
      ['$x\r\n', ERR_BULK_LENGTH],
      ['!-1\r\n', ERR_BULK_LENGTH],
      ['*-2\r\n', ERR_AGGREGATE_LENGTH],
      ['%-1\r\n', ERR_AGGREGATE_LENGTH],
      ['~\r\n', ERR_AGGREGATE_LENGTH],
      [':1.5\r\n', ERR_INTEGER],
      [':\r\n', ERR_INTEGER],
      [':-\r\n', ERR_INTEGER],
      [':9223372036854775808\r\n', ERR_INTEGER],
      [',abc\r\n', ERR_DOUBLE],
      [',\r\n', ERR_DOUBLE],
      ['(1.5\r\n', ERR_BIG_NUMBER],
      ['#x\r\n', ERR_BOOLEAN],
      ['_x\r\n', ERR_NULL],
      ['=3\r\ntxt\r\n', ERR_VERBATIM],
      ['=5\r\ntxt-a\r\n', ERR_VERBATIM],
    ];
    for (const [input, message] of cases) {
      it(`${JSON.stringify(input)} -> ${message}, at every split`, () => {
        expect(expectSplitInvariant(b(input)).error).toBe(message);
      });
    }

    it('is poisoned after an error', () => {
      const parser = new ReplyParser();
      parser.push(b(':x\r\n'));
      expect(() => parser.next()).toThrow(ERR_INTEGER);
      expect(parser.error?.message).toBe(ERR_INTEGER);
      expect(() => parser.next()).toThrow(ERR_INTEGER);
      expect(() => parser.push(b('+OK\r\n'))).toThrow(ERR_INTEGER);
    });
  });
});
