// Crash test of the embedded API with real processes, the test that would have caught issue 10
// (acknowledged writes lost after a restart): a child (db-writer.ts) runs 16 concurrent writers
// doing set, delete and batch on keys in ascending, descending or random order; we SIGKILL it
// at a random moment; the next child, a separate process, first checks the store read-only,
// reopens it and reads every key back by get and by a full scan (db-verify.ts) before it writes
// in turn. Each cycle checks:
// - recovery and `cairn check` found nothing worse than a torn tail (no damaged index);
// - the scan ends, its keys strictly increase, and get agrees with it on every key;
// - every key holds its last acknowledged state, or the state of the one write of its writer
//   that was in flight at the kill; a batch in flight is all there or not there;
// - nothing is invented: every key and value is one a writer wrote.
// CAIRN_DB_CRASH_CYCLES sets the cycles per key order (default 20; `npm run test:crash` runs
// more), CAIRN_DB_CRASH_ORDERS the orders (default ascending,random; all three locally with
// `CAIRN_DB_CRASH_ORDERS=ascending,descending,random`), CAIRN_CRASH_SEED the seed.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../src/stdx/prng.js';
import { tmpDir } from '../support/tmp-dir.js';
import { KEY_ORDERS, type KeyOrder } from './db-shape.js';
import type { Verified } from './db-verify.js';
import { killAfterReady } from './kill-child.js';

const CYCLES = Number(process.env.CAIRN_DB_CRASH_CYCLES ?? 20);
const ORDERS = (process.env.CAIRN_DB_CRASH_ORDERS ?? 'ascending,random').split(',') as KeyOrder[];
const WRITER = path.join(import.meta.dirname, 'db-writer.ts');
/** TOLERATED: what a crash legitimately leaves for recovery (a write that was never acknowledged). */
const TOLERATED = new Set(['torn-tail', 'torn-batch', 'leftover-temp', 'retired-file', 'orphan-hint']);
/** KILL_AFTER_MS_MIN, KILL_AFTER_MS_MAX: the writer runs this long after it is ready. */
const KILL_AFTER_MS_MIN = 20;
const KILL_AFTER_MS_MAX = 400;

for (const order of ORDERS) if (!KEY_ORDERS.includes(order)) throw new Error(`unknown key order ${order}`);

/** State: a key's value (`KEY@GEN`) or null when absent. */
type State = string | null;

/** Intent: the write a writer had in flight, as the states it gives its keys. */
type Intent = Map<string, State>;

function parseIntent(words: readonly string[]): Intent {
  const [, , op, a, b] = words;
  const intent: Intent = new Map();
  if (op === 'set') intent.set(a!, `${a}@${b}`);
  else if (op === 'del') intent.set(a!, null);
  else if (op === 'batch') {
    for (const member of a!.split(',')) {
      // KEY:GEN, and keys have a colon of their own.
      const at = member.lastIndexOf(':');
      const key = member.slice(0, at);
      intent.set(key, `${key}@${member.slice(at + 1)}`);
    }
    if (b !== '-') intent.set(b!, null);
  } else throw new Error(`bad intent line: ${words.join(' ')}`);
  return intent;
}

/** runCycle runs one child: it verifies the store, then (unless `verifyOnly`) writes until killed. */
async function runCycle(
  dir: string,
  args: readonly string[],
  keys: readonly string[],
  killAfterMs: number | undefined,
): Promise<{ verified: Verified; lines: string[] }> {
  const keysFile = path.join(path.dirname(dir), `${path.basename(dir)}.keys.json`);
  fs.writeFileSync(keysFile, JSON.stringify(keys));
  const lines: string[] = [];
  try {
    if (killAfterMs !== undefined) {
      await killAfterReady(WRITER, [dir, ...args, keysFile], killAfterMs, (line) => lines.push(line));
    } else {
      await runToEnd([dir, ...args, keysFile, 'verify-only'], lines);
    }
  } finally {
    fs.rmSync(keysFile, { force: true });
  }
  const first = lines.shift();
  if (first === undefined || !first.startsWith('verified ')) throw new Error(`no verification: ${first}`);
  return { verified: JSON.parse(first.slice('verified '.length)) as Verified, lines };
}

/** runToEnd runs the child to its own exit (verify-only), collecting its lines. */
async function runToEnd(args: readonly string[], lines: string[]): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`verifier exited with ${code}: ${err}`);
  lines.push(...out.split('\n').filter((l) => l !== ''));
}

/**
 * check holds what a fresh process read (`v`) against the model: the acknowledged state of
 * every key and the writes in flight at the last kill. It then records in `acked` what the
 * store decided for those writes, which later cycles must keep.
 */
function check(v: Verified, acked: Map<string, State>, inFlight: Map<string, Intent>, label: string): void {
  const known = new Set(acked.keys());
  for (const intent of inFlight.values()) for (const k of intent.keys()) known.add(k);
  expect(
    v.check.problems.filter((p) => !TOLERATED.has(p.kind)),
    `${label}: cairn check`,
  ).toEqual([]);
  expect(
    v.recovery.filter((p) => !TOLERATED.has(p.kind)),
    `${label}: recovery`,
  ).toEqual([]);
  expect(v.scanError, `${label}: scan`).toBeUndefined();
  for (let j = 1; j < v.scan.length; j++) {
    const [prev, next] = [v.scan[j - 1]![0], v.scan[j]![0]];
    if (!(prev < next)) expect.fail(`${label}: scan went from ${prev} to ${next}`);
  }
  const scanned = new Map(v.scan);
  for (const [k, value] of scanned) {
    if (!known.has(k)) expect.fail(`${label}: scan returned ${k}, which no writer wrote`);
    if (v.gets[k] !== value) expect.fail(`${label}: get ${k} = ${v.gets[k]}, scan = ${value}`);
  }
  // Every key: its acknowledged state, or the state its writer's write in flight gives it.
  const inFlightState = new Map<string, State>();
  for (const intent of inFlight.values()) for (const [k, s] of intent) inFlightState.set(k, s);
  for (const k of known) {
    const got = v.gets[k] ?? null;
    if ((got !== null) !== scanned.has(k)) expect.fail(`${label}: get ${k} = ${got}, scan disagrees`);
    const before = acked.get(k) ?? null;
    const after = inFlightState.has(k) ? inFlightState.get(k)! : before;
    if (got !== before && got !== after) {
      expect.fail(
        `${label}: ${k} = ${got}; acknowledged ${before}${after !== before ? `, in flight ${after}` : ''}`,
      );
    }
  }
  // A write in flight took effect whole or not at all; the store now says which.
  for (const [w, intent] of inFlight) {
    const applied = [...intent].map(([k, s]) => (v.gets[k] ?? null) === s && s !== (acked.get(k) ?? null));
    const unapplied = [...intent].map(([k, s]) => (v.gets[k] ?? null) !== s);
    if (applied.some((x) => x) && unapplied.some((x) => x)) {
      expect.fail(`${label}: writer ${w}'s batch is torn: ${JSON.stringify([...intent])}`);
    }
    if (applied.some((x) => x)) for (const [k, s] of intent) acked.set(k, s);
  }
}

describe.concurrent('Db crash test (SIGKILL)', () => {
  it.each(ORDERS)(
    `keeps every acknowledged set, delete and batch of %s keys through ${CYCLES} kills, by get and by scan`,
    { timeout: 60_000 + CYCLES * 10_000 },
    async (order) => {
      const dir = tmpDir(`db-crash-${order}`);
      const seed = Number(process.env.CAIRN_CRASH_SEED ?? Date.now() % 1e9);
      const rng = new Prng(seed);
      const acked = new Map<string, State>();
      let inFlight = new Map<string, Intent>();
      let keysSeen = 0;
      // Process c verifies what process c - 1 left, then writes until killed; a last one only verifies.
      for (let cycle = 0; cycle <= CYCLES; cycle++) {
        const known = new Set(acked.keys());
        for (const intent of inFlight.values()) for (const k of intent.keys()) known.add(k);
        const last = cycle === CYCLES;
        const { verified, lines } = await runCycle(
          dir,
          [String(cycle), order, String(seed + cycle)],
          [...known],
          last ? undefined : rng.range(KILL_AFTER_MS_MIN, KILL_AFTER_MS_MAX),
        );
        check(verified, acked, inFlight, `${order} keys, seed ${seed}, after cycle ${cycle - 1}`);
        keysSeen = verified.scan.length;
        inFlight = new Map();
        for (const line of lines) {
          const words = line.split(' ');
          if (words[0] === 'i') inFlight.set(words[1]!, parseIntent(words));
          else if (words[0] === 'a') {
            const intent = inFlight.get(words[1]!);
            if (intent === undefined) throw new Error(`ack without intent: ${line}`);
            for (const [k, s] of intent) acked.set(k, s);
            inFlight.delete(words[1]!);
          }
        }
      }
      expect(acked.size).toBeGreaterThan(CYCLES * 16);
      expect(keysSeen).toBeGreaterThan(0);
    },
  );
});
