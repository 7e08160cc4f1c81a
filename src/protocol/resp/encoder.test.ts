import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCommand, encodeValue, ReplyWriter, SHARED } from './encoder.js';
import { WRITER_COPY_BYTES_MAX, WRITER_SLAB_BYTES } from './limits.js';
import { RequestParser } from './request-parser.js';
import type { RespVersion } from './types.js';

function written(protocol: RespVersion, write: (w: ReplyWriter) => void): string {
  const w = new ReplyWriter(protocol);
  write(w);
  return w.take().toString('latin1');
}

/** both checks what a write produces in RESP2 and in RESP3. */
function both(write: (w: ReplyWriter) => void, v2: string, v3: string): void {
  expect(written(2, write)).toBe(v2);
  expect(written(3, write)).toBe(v3);
}

describe('ReplyWriter', () => {
  it('writes the RESP2 types the same in both versions', () => {
    both((w) => w.simple('OK'), '+OK\r\n', '+OK\r\n');
    both((w) => w.error('WRONGTYPE Operation'), '-WRONGTYPE Operation\r\n', '-WRONGTYPE Operation\r\n');
    both((w) => w.integer(0), ':0\r\n', ':0\r\n');
    both((w) => w.integer(-1234567890123), ':-1234567890123\r\n', ':-1234567890123\r\n');
    both((w) => w.integer(Number.MAX_SAFE_INTEGER), ':9007199254740991\r\n', ':9007199254740991\r\n');
    both((w) => w.integer(-(2n ** 63n)), ':-9223372036854775808\r\n', ':-9223372036854775808\r\n');
    both((w) => w.bulk(Buffer.from('a\r\nb')), '$4\r\na\r\nb\r\n', '$4\r\na\r\nb\r\n');
    both((w) => w.bulk('é'), '$2\r\n\xc3\xa9\r\n', '$2\r\n\xc3\xa9\r\n');
    both((w) => w.bulk(''), '$0\r\n\r\n', '$0\r\n\r\n');
    both((w) => w.bulkArray(['a', null]), '*2\r\n$1\r\na\r\n$-1\r\n', '*2\r\n$1\r\na\r\n_\r\n');
    both((w) => w.array([]), '*0\r\n', '*0\r\n');
    both((w) => w.ok(), '+OK\r\n', '+OK\r\n');
    both((w) => w.pong(), '+PONG\r\n', '+PONG\r\n');
  });

  it('turns CR and LF in simple strings and errors into spaces, as Redis does', () => {
    both((w) => w.simple('a\r\nb'), '+a  b\r\n', '+a  b\r\n');
    both((w) => w.error('ERR bad\nname'), '-ERR bad name\r\n', '-ERR bad name\r\n');
  });

  it('writes RESP3 types, with the RESP2 fallbacks Redis uses', () => {
    both((w) => w.null(), '$-1\r\n', '_\r\n');
    both((w) => w.bulk(null), '$-1\r\n', '_\r\n');
    both((w) => w.nullArray(), '*-1\r\n', '_\r\n');
    both((w) => w.array(null), '*-1\r\n', '_\r\n');
    both((w) => w.boolean(true), ':1\r\n', '#t\r\n');
    both((w) => w.boolean(false), ':0\r\n', '#f\r\n');
    both((w) => w.double(1.5), '$3\r\n1.5\r\n', ',1.5\r\n');
    both((w) => w.double(Number.POSITIVE_INFINITY), '$3\r\ninf\r\n', ',inf\r\n');
    both((w) => w.double(Number.NEGATIVE_INFINITY), '$4\r\n-inf\r\n', ',-inf\r\n');
    both((w) => w.double(Number.NaN), '$3\r\nnan\r\n', ',nan\r\n');
    both(
      (w) => w.bigNumber(12345678901234567890n),
      '$20\r\n12345678901234567890\r\n',
      '(12345678901234567890\r\n',
    );
    both((w) => w.verbatim('txt', 'hi'), '$2\r\nhi\r\n', '=6\r\ntxt:hi\r\n');
    both((w) => w.bulkError('ERR a\nb'), '-ERR a b\r\n', '!7\r\nERR a\nb\r\n');
    both(
      (w) =>
        w.map(
          new Map([
            ['a', 1],
            ['b', 2],
          ]),
        ),
      '*4\r\n+a\r\n:1\r\n+b\r\n:2\r\n',
      '%2\r\n+a\r\n:1\r\n+b\r\n:2\r\n',
    );
    both((w) => w.map([[Buffer.from('k'), null]]), '*2\r\n$1\r\nk\r\n$-1\r\n', '%1\r\n$1\r\nk\r\n_\r\n');
    both((w) => w.set(new Set(['x'])), '*1\r\n+x\r\n', '~1\r\n+x\r\n');
    both(
      (w) => w.push(['message', Buffer.from('c')]),
      '*2\r\n+message\r\n$1\r\nc\r\n',
      '>2\r\n+message\r\n$1\r\nc\r\n',
    );
  });

  it('follows a protocol change at once (HELLO 3 in the middle of a pipeline)', () => {
    const w = new ReplyWriter();
    w.null();
    w.protocol = 3;
    w.null();
    expect(w.take().toString()).toBe('$-1\r\n_\r\n');
  });

  it('never changes bytes it handed out, across slabs', () => {
    const w = new ReplyWriter();
    const taken: [Buffer, string][] = [];
    for (let i = 0; i < 5_000; i++) {
      w.bulk(`value-${i}`.repeat(1 + (i % 7)));
      w.integer(i);
      if (i % 13 === 0) {
        const chunk = w.take();
        taken.push([chunk, chunk.toString('latin1')]);
      }
    }
    const last = w.take();
    taken.push([last, last.toString('latin1')]);
    for (const [chunk, text] of taken) expect(chunk.toString('latin1')).toBe(text);
    const expected: string[] = [];
    for (let i = 0; i < 5_000; i++) {
      const s = `value-${i}`.repeat(1 + (i % 7));
      expected.push(`$${s.length}\r\n${s}\r\n:${i}\r\n`);
    }
    expect(taken.map(([, text]) => text).join('')).toBe(expected.join(''));
  });

  it('batches replies into one chunk and hands large payloads over by reference', () => {
    const w = new ReplyWriter();
    w.ok();
    w.integer(7);
    expect(w.pendingBytes).toBe(9);
    const big = Buffer.alloc(WRITER_COPY_BYTES_MAX + 1, 'x');
    w.bulk(big);
    w.ok();
    const chunks = w.takeChunks();
    expect(chunks.length).toBe(3);
    expect(chunks[1]).toBe(big);
    expect(Buffer.concat(chunks).toString()).toBe(
      `+OK\r\n:7\r\n$${big.length}\r\n${big.toString()}\r\n+OK\r\n`,
    );
    expect(w.pendingBytes).toBe(0);
    expect(w.takeChunks()).toEqual([]);
    expect(w.take().length).toBe(0);
  });

  it('bulkBorrowed copies a large payload it would otherwise keep by reference', () => {
    const w = new ReplyWriter();
    const lent = Buffer.alloc(WRITER_COPY_BYTES_MAX + 1, 'x');
    const small = Buffer.from('small');
    w.bulkBorrowed(lent);
    w.bulkBorrowed(small);
    // The lender reuses its bytes after the call: the reply must not change.
    lent.fill('z');
    small.fill('z');
    const chunks = w.takeChunks();
    expect(chunks.some((c) => c === lent)).toBe(false);
    expect(Buffer.concat(chunks).toString()).toBe(
      `$${lent.length}\r\n${'x'.repeat(lent.length)}\r\n$5\r\nsmall\r\n`,
    );
  });

  it('grows past a slab for a reply larger than one', () => {
    const w = new ReplyWriter();
    const text = 'y'.repeat(WRITER_SLAB_BYTES * 2);
    w.simple(text);
    w.bulk(text);
    expect(w.take().toString()).toBe(`+${text}\r\n$${text.length}\r\n${text}\r\n`);
  });

  it('release drops the slab of an idle writer', () => {
    const w = new ReplyWriter();
    w.ok();
    w.take();
    expect(w.heldBytes).toBeGreaterThan(0);
    w.release();
    // Asserted on the writer itself: whether two slabs share an ArrayBuffer depends on the
    // Node version's Buffer pool (Node 24 pools 16 KiB allocations, Node 20 does not).
    expect(w.heldBytes).toBe(0);
    w.ok();
    expect(w.take().toString()).toBe('+OK\r\n');
    w.ok();
    expect(() => w.release()).toThrow('bytes pending');
  });

  it('encodeValue writes a whole value', () => {
    expect(encodeValue([1, 'a', null], 2).toString()).toBe('*3\r\n:1\r\n+a\r\n$-1\r\n');
  });
});

describe('encodeCommand', () => {
  it('encodes a RESP array of bulk strings', () => {
    expect(encodeCommand(['SET', Buffer.from('k'), 'é']).toString('latin1')).toBe(
      '*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\xc3\xa9\r\n',
    );
    expect(encodeCommand(['']).toString()).toBe('*1\r\n$0\r\n\r\n');
  });

  it('round-trips random commands through RequestParser, in random chunks', () => {
    const arg = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.array(arg, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (commands, rawCuts) => {
          const input = Buffer.concat(commands.map(encodeCommand));
          const cuts = [...new Set(rawCuts.map((c) => c % (input.length + 1)))].sort((x, y) => x - y);
          const parser = new RequestParser();
          const parsed: string[][] = [];
          let at = 0;
          for (const cut of [...cuts, input.length]) {
            parser.push(input.subarray(at, cut));
            at = cut;
            for (const command of parser) parsed.push(command.map((a) => a.toString('hex')));
          }
          expect(parsed).toEqual(commands.map((c) => c.map((a) => Buffer.from(a).toString('hex'))));
          expect(parser.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('SHARED replies are what the writer would write', () => {
    const w = new ReplyWriter(3);
    w.integer(0);
    w.integer(1);
    w.null();
    w.boolean(true);
    expect(w.take()).toEqual(Buffer.concat([SHARED.zero, SHARED.one, SHARED.null3, SHARED.true3]));
  });
});
