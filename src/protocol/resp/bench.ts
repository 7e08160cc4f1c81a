// Micro-benchmark of the RESP codec (not a test, not run in CI):
//   npx tsx src/protocol/resp/bench.ts
// Shapes follow redis-benchmark: SET key:__rand_int__ with 3-byte values, GET, pipelines of 16.
import { encodeCommand, ReplyWriter } from './encoder.js';
import { INCOMPLETE, ReplyParser } from './reply-parser.js';
import { RequestParser } from './request-parser.js';

function bench(name: string, ops: number, run: () => void): void {
  run(); // warm up
  const started = process.hrtime.bigint();
  run();
  const ns = Number(process.hrtime.bigint() - started);
  console.log(
    `${name.padEnd(48)} ${(((ops / ns) * 1e9) / 1e6).toFixed(2).padStart(7)} M ops/s  ${(ns / ops).toFixed(0).padStart(5)} ns/op`,
  );
}

function chunked(input: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < input.length; at += size) out.push(input.subarray(at, at + size));
  return out;
}

const N = 1_000_000;
const setStream = Buffer.concat(
  Array.from({ length: N }, (_, i) => encodeCommand(['SET', `key:${String(i).padStart(12, '0')}`, 'xxx'])),
);
const getStream = Buffer.concat(
  Array.from({ length: N }, (_, i) => encodeCommand(['GET', `key:${String(i).padStart(12, '0')}`])),
);
for (const size of [16 * 1024, 64 * 1024]) {
  const setChunks = chunked(setStream, size);
  const getChunks = chunked(getStream, size);
  bench(`RequestParser SET, ${size / 1024} KiB chunks`, N, () => {
    const p = new RequestParser();
    let n = 0;
    for (const c of setChunks) {
      p.push(c);
      while (p.next() !== null) n++;
    }
    if (n !== N) throw new Error('count');
  });
  bench(`RequestParser GET, ${size / 1024} KiB chunks`, N, () => {
    const p = new RequestParser();
    let n = 0;
    for (const c of getChunks) {
      p.push(c);
      while (p.next() !== null) n++;
    }
    if (n !== N) throw new Error('count');
  });
}
const inlineChunks = chunked(Buffer.from('PING\r\n'.repeat(N)), 64 * 1024);
bench('RequestParser inline PING, 64 KiB chunks', N, () => {
  const p = new RequestParser();
  for (const c of inlineChunks) {
    p.push(c);
    while (p.next() !== null);
  }
});

const value = Buffer.from('xxx');
bench('ReplyWriter +OK, take every 16', N, () => {
  const w = new ReplyWriter();
  for (let i = 0; i < N; i++) {
    w.ok();
    if ((i & 15) === 15) w.takeChunks();
  }
});
bench('ReplyWriter bulk 3 bytes, take every 16', N, () => {
  const w = new ReplyWriter();
  for (let i = 0; i < N; i++) {
    w.bulk(value);
    if ((i & 15) === 15) w.takeChunks();
  }
});
bench('ReplyWriter integer, take every 16', N, () => {
  const w = new ReplyWriter();
  for (let i = 0; i < N; i++) {
    w.integer(i);
    if ((i & 15) === 15) w.takeChunks();
  }
});
bench('ReplyWriter bulk string 16 chars, take every 16', N, () => {
  const w = new ReplyWriter();
  for (let i = 0; i < N; i++) {
    w.bulk('value:0000000001');
    if ((i & 15) === 15) w.takeChunks();
  }
});
bench('encodeCommand SET key value', N, () => {
  for (let i = 0; i < N; i++) encodeCommand(['SET', 'key:000000000001', value]);
});

const w = new ReplyWriter(3);
for (let i = 0; i < N; i++) w.bulk(value);
const replyChunks = chunked(w.take(), 64 * 1024);
bench('ReplyParser bulk replies, 64 KiB chunks', N, () => {
  const p = new ReplyParser();
  for (const c of replyChunks) {
    p.push(c);
    while (p.next() !== INCOMPLETE);
  }
});
