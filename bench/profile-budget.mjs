// The per-command CPU budget of `cairn serve` from a `node --cpu-prof` profile: self time by
// part of the server (RESP parse, dispatch, command handlers, write pipeline, MVCC, cask write,
// key directory, value read, reply encoding, socket I/O, GC, ...), divided by the commands the
// profiled run served. Issue 14 starts from these numbers (docs/benchmarks.md).
//
//   node --cpu-prof --cpu-prof-dir=DIR dist/src/cli/cairn.js serve --addr 127.0.0.1:PORT \
//        --http off --sync never --log-level warn --dir DATA &
//   redis-benchmark -p PORT -t set -n 200000 -r 100000 -d 100 -c 50 -P 1
//   kill -INT <the server>          (the profile is written when it exits)
//   node bench/profile-budget.mjs DIR/*.cpuprofile 200000
import * as fs from 'node:fs';

const [file, commandsArg] = process.argv.slice(2);
const commands = Number(commandsArg);
const p = JSON.parse(fs.readFileSync(file));
const dt = new Map();
for (let i = 0; i < p.samples.length; i++)
  dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const rules = [
  ['idle', (_u, f) => f === '(idle)'],
  ['GC', (_u, f) => f === '(garbage collector)'],
  ['RESP parse', (u) => /protocol\/resp\/(request-parser|inline)/.test(u)],
  ['RESP reply encoding', (u) => /protocol\/resp\/encoder/.test(u)],
  [
    'connection, dispatch, reply order',
    (u) => /server\/resp\/(connection|reply-order|command-table|session|server)\.js/.test(u),
  ],
  ['metrics and counters', (u) => /server\/(counters|metrics)\.js|prom-client/.test(u)],
  ['command handlers', (u) => /server\/resp\/commands\//.test(u)],
  [
    'key store, write pipeline',
    (u) => /server\/resp\/key-store|txn\/(write-pipeline|pending-writes)/.test(u),
  ],
  ['MVCC bookkeeping', (u) => /txn\/(mvcc|version-history)/.test(u)],
  ['validation', (u) => /storage\/(validate|revision)/.test(u)],
  [
    'cask write (encode, group commit, apply)',
    (u) => /cask\/(group-commit|record|store-state|data-file-set)|stdx\/(u64|crc32c)|@node-rs\/crc32/.test(u),
  ],
  ['key directory', (u) => /cask\/key-dir/.test(u)],
  ['value read (cache, pread)', (u, f) => /cask\/(cask-engine|value-cache)/.test(u) || f === 'readSync'],
  ['key strings, bytes', (u) => /stdx\/(key-string|bytes)/.test(u)],
  [
    'socket I/O and libuv (native)',
    (u, f) => u === '' && /writev|writeBuffer|writeUtf8String|onStreamRead|write$|read/.test(f),
  ],
  ['node internals (streams, buffers, timers)', (u) => u.startsWith('node:')],
  ['program, other native', (u) => u === ''],
  ['other', () => true],
];
const cat = new Map();
let total = 0;
for (const n of p.nodes) {
  const t = dt.get(n.id) ?? 0;
  if (!t) continue;
  const u = n.callFrame.url;
  const f = n.callFrame.functionName;
  const name = rules.find(([, test]) => test(u, f))[0];
  cat.set(name, (cat.get(name) ?? 0) + t);
  if (name !== 'idle') total += t;
}
console.log(
  `busy ${(total / 1000).toFixed(0)} ms over ${commands} commands = ${(total / commands).toFixed(2)} µs/command`,
);
for (const [name, t] of [...cat].sort((a, b) => b[1] - a[1]))
  console.log(`${(t / commands).toFixed(2).padStart(7)} µs  ${name}`);
