import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RespProtocolError } from './errors.js';
import { ARGS_MAX, BULK_BYTES_MAX, INLINE_BYTES_MAX } from './limits.js';
import {
  ERR_BULK_CRLF,
  ERR_BULK_LENGTH,
  ERR_INLINE_TOO_BIG,
  ERR_MULTIBULK_LENGTH,
  ERR_UNBALANCED_QUOTES,
  RequestParser,
} from './request-parser.js';

type Outcome = { commands: string[][]; error: string | null };

/** feed pushes the chunks one by one, draining after each, and returns what came out. */
function feed(chunks: Buffer[], parser = new RequestParser()): Outcome {
  const commands: string[][] = [];
  try {
    for (const chunk of chunks) {
      parser.push(chunk);
      for (const command of parser) commands.push(command.map((a) => a.toString('latin1')));
    }
  } catch (err) {
    if (!(err instanceof RespProtocolError)) throw err;
    return { commands, error: err.message };
  }
  return { commands, error: null };
}

function b(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** splitAt cuts `input` at the given sorted offsets. */
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

/** expectSplitInvariant checks that every single split point (and 1-byte chunks) gives `whole`'s outcome. */
function expectSplitInvariant(input: Buffer): Outcome {
  const whole = feed([input]);
  for (let i = 0; i <= input.length; i++) expect(feed(splitAt(input, [i]))).toEqual(whole);
  for (let i = 0; i < input.length; i++) {
    for (const j of [i + 1, i + 2, i + 3]) {
      if (j <= input.length) expect(feed(splitAt(input, [i, j]))).toEqual(whole);
    }
  }
  expect(feed([...input].map((byte) => Buffer.from([byte])))).toEqual(whole);
  return whole;
}

// A stream with every request form: binary payloads with CRLF inside, empty arguments, ignored
// frames, inline with quotes, empty inline lines, bare-LF inline.
const MIXED = b(
  '*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n' +
    '*0\r\n*-1\r\n' +
    '*2\r\n$3\r\nGET\r\n$0\r\n\r\n' +
    'PING\r\n' +
    '\r\n   \r\n\n' +
    "set \"a b\\x41\\n\" 'it\\'s' plain\n" +
    '*1\r\n$11\r\n\x00\x01\xff\r\n\r\n*$\r\n\r\n' +
    'echo\t"\\"quoted\\""\r\n',
);
const MIXED_COMMANDS = [
  ['SET', 'key', 'va\r\nl'],
  ['GET', ''],
  ['PING'],
  ['set', 'a bA\n', "it's", 'plain'],
  ['\x00\x01\xff\r\n\r\n*$\r\n'],
  ['echo', '"quoted"'],
];

describe('RequestParser', () => {
  it('holds a client that has not authenticated to small requests, on both paths', () => {
    const cmd = (...args: string[]) =>
      Buffer.from(`*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`);
    const limited = () => {
      const p = new RequestParser();
      p.restrict(true);
      return p;
    };
    const ten = cmd(...Array.from({ length: 10 }, () => 'a'));
    const small = cmd('AUTH', 'x'.repeat(16 * 1024));
    // Whole (the fast path) and byte by byte (the state machine) agree.
    for (const split of [false, true]) {
      const chunks = (b: Buffer) => (split ? [...b].map((x) => Buffer.from([x])) : [b]);
      expect(feed(chunks(ten), limited()).commands).toHaveLength(1);
      expect(feed(chunks(small), limited()).commands).toHaveLength(1);
      expect(feed(chunks(cmd(...Array.from({ length: 11 }, () => 'a'))), limited()).error).toBe(
        'Protocol error: unauthenticated multibulk length',
      );
      expect(feed(chunks(cmd('SET', 'k', 'v'.repeat(16 * 1024 + 1))), limited()).error).toBe(
        'Protocol error: unauthenticated bulk length',
      );
    }
    // Lifted: the normal limits again.
    const p = limited();
    p.restrict(false);
    expect(feed([cmd('SET', 'k', 'v'.repeat(100_000))], p).commands).toHaveLength(1);
  });

  it('parses every request form', () => {
    expect(feed([MIXED])).toEqual({ commands: MIXED_COMMANDS, error: null });
  });

  it('gives the same commands for a split at every byte boundary, and for 1-byte chunks', () => {
    expect(expectSplitInvariant(MIXED).commands).toEqual(MIXED_COMMANDS);
  });

  it('gives the same commands for random multi-splits', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: MIXED.length }), { maxLength: 30 }), (cuts) => {
        cuts.sort((x, y) => x - y);
        expect(feed(splitAt(MIXED, cuts))).toEqual({ commands: MIXED_COMMANDS, error: null });
      }),
      { numRuns: 500 },
    );
  });

  it('own(): a caller reusing one buffer for every chunk gets the same commands, split anywhere', () => {
    // As the server's shared socket read buffer: each chunk is copied into the same buffer,
    // pushed as a view of it, drained (the commands copied out at once, as the server's handlers
    // use them within the call), own() called, and the buffer overwritten with junk.
    const lentFeed = (chunks: Buffer[], drainEvery = 1): Outcome => {
      const parser = new RequestParser();
      const shared = Buffer.alloc(MIXED.length);
      const commands: string[][] = [];
      chunks.forEach((chunk, i) => {
        chunk.copy(shared);
        parser.push(shared.subarray(0, chunk.length));
        // Not draining now and then: commands wait in the parser, as behind a busy command.
        if (i % drainEvery === 0)
          for (const command of parser) commands.push(command.map((a) => a.toString('latin1')));
        parser.own();
        shared.fill(0x5a);
      });
      for (const command of parser) commands.push(command.map((a) => a.toString('latin1')));
      expect(parser.bufferedBytes).toBe(0);
      return { commands, error: null };
    };
    const whole = { commands: MIXED_COMMANDS, error: null };
    for (let i = 0; i <= MIXED.length; i++) {
      expect(lentFeed(splitAt(MIXED, [i]))).toEqual(whole);
      for (const j of [i + 1, i + 2, i + 3])
        if (j <= MIXED.length) expect(lentFeed(splitAt(MIXED, [i, j]), 2)).toEqual(whole);
    }
    expect(lentFeed([...MIXED].map((byte) => Buffer.from([byte])))).toEqual(whole);
    expect(
      lentFeed(
        [...MIXED].map((byte) => Buffer.from([byte])),
        7,
      ),
    ).toEqual(whole);
  });

  it('own() keeps bufferedBytes exact and a payload spanning chunks intact', () => {
    const parser = new RequestParser();
    const payload = Buffer.alloc(10_000, 'p');
    const input = Buffer.concat([b('*2\r\n$4\r\nECHO\r\n$10000\r\n'), payload, b('\r\n')]);
    const shared = Buffer.alloc(1000);
    let got: Buffer[] | null = null;
    for (let at = 0; at < input.length; at += shared.length) {
      const n = input.copy(shared, 0, at, at + shared.length);
      parser.push(shared.subarray(0, n));
      got = parser.next();
      parser.own();
      shared.fill(0);
      if (got === null) expect(parser.bufferedBytes).toBe(Math.min(at + n, input.length));
    }
    expect(got).not.toBeNull();
    expect(got![1]!.equals(payload)).toBe(true);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('gives the same commands when chunks are pushed without draining in between', () => {
    const parser = new RequestParser();
    for (const chunk of splitAt(MIXED, [3, 10, 11, 40, 41, 42, 90])) parser.push(chunk);
    expect(parser.bufferedBytes).toBe(MIXED.length);
    const commands = [...parser].map((c) => c.map((a) => a.toString('latin1')));
    expect(commands).toEqual(MIXED_COMMANDS);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('returns arguments inside one chunk as zero-copy subarrays that survive later pushes', () => {
    const parser = new RequestParser();
    // Buffer.from would share Node's pool with Buffer.concat; a chunk of its own tells them apart.
    const text = '*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n*1\r\n$4\r\nPI';
    const chunk = Buffer.alloc(text.length, text, 'latin1');
    parser.push(chunk);
    const command = parser.next()!;
    expect(command[1]!.buffer).toBe(chunk.buffer);
    expect(parser.next()).toBeNull();
    parser.push(b('NG\r\n'));
    const spanning = parser.next()!;
    expect(spanning[0]!.toString()).toBe('PING');
    expect(spanning[0]!.buffer).not.toBe(chunk.buffer);
    expect(command.map(String)).toEqual(['GET', 'key']);
  });

  it('parses a pipeline of 10k commands in one chunk', () => {
    const parts: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const key = `key:${i}`;
      parts.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${String(i).length}\r\n${i}\r\n`);
    }
    const parser = new RequestParser();
    parser.push(b(parts.join('')));
    let n = 0;
    for (const command of parser) {
      expect(command[1]!.toString()).toBe(`key:${n}`);
      expect(command[2]!.toString()).toBe(String(n));
      n++;
    }
    expect(n).toBe(10_000);
    expect(parser.bufferedBytes).toBe(0);
  });

  it('reads a 10 MB bulk in 4 KB chunks with one copy and bounded buffering', () => {
    const size = 10 * 1024 * 1024;
    const payload = Buffer.alloc(size);
    for (let i = 0; i < size; i += 997) payload[i] = i & 0xff;
    const input = Buffer.concat([b(`*2\r\n$3\r\nSET\r\n$${size}\r\n`), payload, b('\r\nPING\r\n')]);
    const parser = new RequestParser();
    const started = performance.now();
    const commands: Buffer[][] = [];
    for (let at = 0; at < input.length; at += 4096) {
      parser.push(input.subarray(at, at + 4096));
      for (const command of parser) commands.push(command);
      // Never more than the one incomplete command, which is everything pushed so far.
      expect(parser.bufferedBytes).toBeLessThanOrEqual(Math.min(at + 4096, input.length));
    }
    expect(commands.length).toBe(2);
    expect(commands[0]![1]!.equals(payload)).toBe(true);
    expect(commands[1]!.map(String)).toEqual(['PING']);
    expect(parser.bufferedBytes).toBe(0);
    expect(performance.now() - started).toBeLessThan(5_000); // quadratic copying would take minutes
  });

  it('counts the incomplete command in bufferedBytes', () => {
    const parser = new RequestParser();
    parser.push(b('*2\r\n$3\r\nGET\r\n$3\r\nke'));
    expect(parser.next()).toBeNull();
    expect(parser.bufferedBytes).toBe(19);
    parser.push(b('y\r\nPIN'));
    expect(parser.next()!.map(String)).toEqual(['GET', 'key']);
    expect(parser.bufferedBytes).toBe(3);
    expect(parser.next()).toBeNull();
    expect(parser.bufferedBytes).toBe(3);
  });

  describe('limits', () => {
    it('accepts ARGS_MAX arguments and refuses one more', () => {
      const parser = new RequestParser();
      parser.push(b(`*${ARGS_MAX}\r\n`));
      parser.push(Buffer.from('$0\r\n\r\n'.repeat(ARGS_MAX)));
      expect(parser.next()!.length).toBe(ARGS_MAX);
      expect(feed([b(`*${ARGS_MAX + 1}\r\n`)]).error).toBe(ERR_MULTIBULK_LENGTH);
      expect(feed([b('*99999999999999999999999\r\n')]).error).toBe(ERR_MULTIBULK_LENGTH);
    });

    it('accepts a bulk of BULK_BYTES_MAX and refuses one more byte, before buffering it', () => {
      const parser = new RequestParser();
      parser.push(b(`*1\r\n$${BULK_BYTES_MAX}\r\n`));
      expect(parser.next()).toBeNull();
      expect(feed([b(`*1\r\n$${BULK_BYTES_MAX + 1}\r\n`)]).error).toBe(ERR_BULK_LENGTH);
      expect(feed([b(`*1\r\n$${BULK_BYTES_MAX}0`)]).error).toBe(ERR_BULK_LENGTH);
    });

    it('accepts an inline line of INLINE_BYTES_MAX and refuses one more byte, at any split', () => {
      const atMax = 'x'.repeat(INLINE_BYTES_MAX);
      expect(feed([b(`${atMax}\r\n`)]).commands).toEqual([[atMax]]);
      const splitCrLf = feed([b(atMax + '\r'), b('\n')]);
      expect(splitCrLf.commands).toEqual([[atMax]]);
      expect(feed([b(`${atMax}y\r\n`)]).error).toBe(ERR_INLINE_TOO_BIG);
      expect(feed([b(`${atMax}y`), b('\r\n')]).error).toBe(ERR_INLINE_TOO_BIG);
      // Without a line end at all, the parser stops buffering at the limit (plus a possible \r).
      const parser = new RequestParser();
      parser.push(b(atMax + 'y'));
      expect(parser.next()).toBeNull();
      expect(() => {
        parser.push(b('z'));
        parser.next();
      }).toThrow(ERR_INLINE_TOO_BIG);
    });
  });

  describe('malformed input', () => {
    const cases: [string, string][] = [
      ['*abc\r\n', ERR_MULTIBULK_LENGTH],
      ['*\r\n', ERR_MULTIBULK_LENGTH],
      ['*-2\r\n', ERR_MULTIBULK_LENGTH],
      ['*-0\r\n', ERR_MULTIBULK_LENGTH],
      ['*--1\r\n', ERR_MULTIBULK_LENGTH],
      ['*01\r\n', ERR_MULTIBULK_LENGTH],
      ['*+1\r\n', ERR_MULTIBULK_LENGTH],
      ['*1 \r\n', ERR_MULTIBULK_LENGTH],
      ['*1\n$1\r\na\r\n', ERR_MULTIBULK_LENGTH],
      ['*1\rx', ERR_MULTIBULK_LENGTH],
      ['*1\r\nx', "Protocol error: expected '$', got 'x'"],
      ['*2\r\n$1\r\na\r\n:1\r\n', "Protocol error: expected '$', got ':'"],
      ['*1\r\n$\r\n', ERR_BULK_LENGTH],
      ['*1\r\n$-1\r\n', ERR_BULK_LENGTH],
      ['*1\r\n$01\r\na\r\n', ERR_BULK_LENGTH],
      ['*1\r\n$1x\r\n', ERR_BULK_LENGTH],
      ['*1\r\n$1\rx', ERR_BULK_LENGTH],
      ['*1\r\n$3\r\nabcX\r\n', ERR_BULK_CRLF],
      ['*1\r\n$3\r\nabc\rX', ERR_BULK_CRLF],
      ['*1\r\n$3\r\nabc\n\r', ERR_BULK_CRLF],
      ['set "abc\r\n', ERR_UNBALANCED_QUOTES],
      ["set 'abc\r\n", ERR_UNBALANCED_QUOTES],
      ['set "a"b\r\n', ERR_UNBALANCED_QUOTES],
    ];
    for (const [input, message] of cases) {
      it(`${JSON.stringify(input)} -> ${message}, at every split`, () => {
        const outcome = expectSplitInvariant(b(input));
        expect(outcome.error).toBe(message);
      });
    }

    it('reports errors after the complete commands before them', () => {
      expect(feed([b('PING\r\n*1\r\n$1\r\nxx')])).toEqual({ commands: [['PING']], error: ERR_BULK_CRLF });
    });

    it('is poisoned after an error', () => {
      const parser = new RequestParser();
      parser.push(b('*x\r\n'));
      expect(() => parser.next()).toThrow(RespProtocolError);
      expect(parser.error?.message).toBe(ERR_MULTIBULK_LENGTH);
      expect(() => parser.next()).toThrow(ERR_MULTIBULK_LENGTH);
      expect(() => parser.push(b('PING\r\n'))).toThrow(ERR_MULTIBULK_LENGTH);
    });
  });
});

describe('RequestParser.scanKeys', () => {
  const encode = (args: string[]): string =>
    `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`;
  const scan = (parser: RequestParser, max = 64): string[] => {
    const starts = new Uint32Array(max);
    const ends = new Uint32Array(max);
    const n = parser.scanKeys(starts, ends);
    const bytes = parser.scanned;
    return Array.from({ length: n }, (_, i) => bytes.toString('latin1', starts[i], ends[i]));
  };

  it('notes the second argument of each whole command buffered, and parses nothing', () => {
    const parser = new RequestParser();
    const wire =
      encode(['GET', 'k1']) + encode(['PING']) + encode(['SET', 'k2', 'v']) + encode(['DEL', 'k3', 'k4']);
    parser.push(Buffer.from(`${wire}*2\r\n$3\r\nGET\r\n$2\r\nk`, 'latin1'));
    expect(scan(parser)).toEqual(['k1', 'k2', 'k3']);
    expect(scan(parser, 2)).toEqual(['k1', 'k2']); // at most as many as there is room for
    // The scan changed nothing: the commands come out as they would have.
    const out: string[][] = [];
    for (const c of parser) out.push(c.map((a) => a.toString('latin1')));
    expect(out).toEqual([['GET', 'k1'], ['PING'], ['SET', 'k2', 'v'], ['DEL', 'k3', 'k4']]);
    // Inside a command (its rest is in the next chunk): nothing to note.
    expect(scan(parser)).toEqual([]);
    parser.push(Buffer.from(`5\r\n${encode(['GET', 'k6'])}`, 'latin1'));
    expect(scan(parser)).toEqual([]);
    expect(parser.next()?.map(String)).toEqual(['GET', 'k5']);
    expect(scan(parser)).toEqual(['k6']);
  });

  it('stops at what it cannot read whole and leaves the errors to next()', () => {
    for (const bad of [
      'PING\r\n',
      '*2\r\n$3\r\nGET\r\n$x\r\n',
      '*0\r\n',
      `*${ARGS_MAX + 1}\r\n`,
      '*-1\r\n',
    ]) {
      const parser = new RequestParser();
      parser.push(Buffer.from(encode(['GET', 'a']) + bad + encode(['GET', 'b']), 'latin1'));
      expect(scan(parser), JSON.stringify(bad)).toEqual(['a']);
    }
    const parser = new RequestParser();
    parser.push(Buffer.from(`*1\r\n$${BULK_BYTES_MAX + 1}\r\n`, 'latin1'));
    expect(scan(parser)).toEqual([]);
    expect(() => parser.next()).toThrow(RespProtocolError);
    expect(scan(parser)).toEqual([]); // poisoned
  });

  it('agrees with next() on any batch cut anywhere (property)', () => {
    const arg = fc.string({ maxLength: 12 });
    const command = fc.array(arg, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(fc.array(command, { maxLength: 20 }), fc.nat(), (commands, cutAt) => {
        const wire = Buffer.from(commands.map(encode).join(''), 'latin1');
        const cut = wire.length === 0 ? 0 : cutAt % (wire.length + 1);
        const parser = new RequestParser();
        parser.push(wire.subarray(0, cut));
        const noted = scan(parser);
        const whole: string[] = [];
        for (const c of parser) if (c.length >= 2) whole.push(c[1]!.toString('latin1'));
        expect(noted).toEqual(whole);
      }),
    );
  });
});
