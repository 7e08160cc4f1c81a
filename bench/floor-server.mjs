// floor-server: the least a Node.js RESP server can do for redis-benchmark's SET and GET, as a
// reference row of `npm run bench:server` (issue 14). It is not a database: no ordered index, no
// CRC, no recovery, no revisions, no limits, no compaction. What it does is what any durable Node
// server must pay on this machine: the socket reads and writes, parsing the requests, a copy of
// each value kept in a Map, one append of the turn's writes to a log file and, with `--sync
// always`, one fdatasync per turn on libuv's thread pool before the turn's replies go out (the
// next turn is parsed while it runs). Its ratio to Redis is the ceiling a Node server reaches
// here, which the benchmark prints beside Cairn's (docs/benchmarks.md).
//
//   node bench/floor-server.mjs --port PORT --dir DIR [--sync always|never]
//
// Understands PING, SET key value, GET key, and CONFIG (an empty answer, which redis-benchmark
// accepts); anything else is an error reply. Requests are RESP arrays of bulk strings, or inline
// commands (PING).
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string' },
    dir: { type: 'string' },
    sync: { type: 'string', default: 'never' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (opts.port === undefined || opts.dir === undefined || !['always', 'never'].includes(opts.sync)) {
  console.error('usage: node bench/floor-server.mjs --port PORT --dir DIR [--sync always|never]');
  process.exit(2);
}
const always = opts.sync === 'always';

const CRLF = 13;
const OK = Buffer.from('+OK\r\n');
const PONG = Buffer.from('+PONG\r\n');
const NIL = Buffer.from('$-1\r\n');
const EMPTY = Buffer.from('*0\r\n');
const UNKNOWN = Buffer.from('-ERR unknown command\r\n');
const PROTOCOL = Buffer.from('-ERR Protocol error\r\n');
const CRLF_BYTES = Buffer.from('\r\n');

const store = new Map();
const log = fs.openSync(path.join(opts.dir, 'floor.log'), 'a');
let logBytes = [];
/** The replies of the turn being parsed, and of the turn waiting for its fdatasync. */
let replies = [];
let syncing = false;
let flushScheduled = false;

/** bulkHeader: `$LEN\r\n`, made once per length. */
const headers = new Map();
function bulkHeader(length) {
  let h = headers.get(length);
  if (h === undefined) {
    h = Buffer.from(`$${length}\r\n`);
    headers.set(length, h);
  }
  return h;
}

/** One connection's unparsed bytes and the replies of this turn. */
class Conn {
  constructor(socket) {
    this.socket = socket;
    this.pending = undefined;
    this.out = [];
    this.queued = false;
  }
}

/** parse runs every whole command in `buf` from `at`; returns where the unparsed rest begins. */
function parse(conn, buf, at) {
  for (;;) {
    if (at >= buf.length) return at;
    if (buf[at] !== 0x2a) {
      // Inline command: one line.
      const end = buf.indexOf(CRLF, at);
      if (end < 0) return at;
      const words = buf.latin1Slice(at, end).trim().split(/\s+/);
      run(conn, words[0]?.toLowerCase() ?? '', []);
      at = end + 2;
      continue;
    }
    const head = buf.indexOf(CRLF, at);
    if (head < 0) return at;
    const n = Number(buf.latin1Slice(at + 1, head));
    let p = head + 2;
    const args = [];
    for (let i = 0; i < n; i++) {
      if (p >= buf.length) return at;
      if (buf[p] !== 0x24) {
        conn.out.push(PROTOCOL);
        conn.socket.end();
        return buf.length;
      }
      const lenEnd = buf.indexOf(CRLF, p);
      if (lenEnd < 0) return at;
      const len = Number(buf.latin1Slice(p + 1, lenEnd));
      const start = lenEnd + 2;
      if (start + len + 2 > buf.length) return at;
      args.push(buf.subarray(start, start + len));
      p = start + len + 2;
    }
    at = p;
    if (args.length > 0) run(conn, args[0].latin1Slice(0, args[0].length).toLowerCase(), args);
  }
}

function run(conn, name, args) {
  if (name === 'set' && args.length === 3) {
    const value = Buffer.from(args[2]);
    store.set(args[1].latin1Slice(0, args[1].length), value);
    logBytes.push(Buffer.from(args[1]), value);
    conn.out.push(OK);
  } else if (name === 'get' && args.length === 2) {
    const value = store.get(args[1].latin1Slice(0, args[1].length));
    if (value === undefined) conn.out.push(NIL);
    else conn.out.push(bulkHeader(value.length), value, CRLF_BYTES);
  } else if (name === 'ping') conn.out.push(PONG);
  else if (name === 'config') conn.out.push(EMPTY);
  else conn.out.push(UNKNOWN);
  if (!conn.queued) {
    conn.queued = true;
    replies.push(conn);
  }
  scheduleFlush();
}

function scheduleFlush() {
  if (flushScheduled) return;
  flushScheduled = true;
  setImmediate(flush);
}

/** send writes each connection's replies of one turn in one write. */
function send(turn) {
  for (const conn of turn) {
    const out = conn.out;
    conn.out = [];
    conn.queued = false;
    if (!conn.socket.destroyed) conn.socket.write(out.length === 1 ? out[0] : Buffer.concat(out));
  }
}

/**
 * flush appends the turn's writes to the log, then replies; with --sync always, after an
 * fdatasync, and a turn that comes while one runs waits for it (its replies may reveal writes
 * the running fdatasync covers).
 */
function flush() {
  flushScheduled = false;
  if (always && syncing) return; // the fdatasync's completion flushes what gathered meanwhile
  const wrote = logBytes.length > 0;
  if (wrote) {
    fs.writeSync(log, Buffer.concat(logBytes));
    logBytes = [];
  }
  const turn = replies;
  replies = [];
  // A turn of reads only has nothing to make durable (as Redis's appendfsync always).
  if (!always || !wrote) {
    send(turn);
    return;
  }
  syncing = true;
  fs.fdatasync(log, (err) => {
    if (err) throw err;
    syncing = false;
    send(turn);
    if (replies.length > 0) scheduleFlush();
  });
}

net
  .createServer((socket) => {
    socket.setNoDelay(true);
    const conn = new Conn(socket);
    socket.on('data', (chunk) => {
      const buf = conn.pending === undefined ? chunk : Buffer.concat([conn.pending, chunk]);
      const rest = parse(conn, buf, 0);
      conn.pending = rest < buf.length ? Buffer.from(buf.subarray(rest)) : undefined;
    });
    socket.on('error', () => {});
  })
  .listen(Number(opts.port), opts.host);

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
