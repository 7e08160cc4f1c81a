// Redis 7's script shebang: a script may start with a line `#!lua flags=no-writes,allow-oom`
// (eval.c evalExtractShebangFlags). The line is cut before compiling, its line feed kept so the
// script's line numbers stay what its author sees (Redis does the same); the SHA1 is the whole
// body's. Errors and their texts are Redis 7.0's.
//
// Flags (Redis 7.0's scripts_flags_def):
// - no-writes: the script may not write; its redis.call of a write command fails as in EVAL_RO.
// - allow-oom, allow-stale, no-cluster, allow-cross-slot-keys: accepted, no effect in Cairn
//   (no maxmemory refusal, no stale replicas serving scripts, no Redis Cluster slots; keys are
//   not checked against KEYS). docs/lua.md.
// Redis also treats a shebang script without no-writes as a writer under EVAL_RO (refused).
import { CommandError } from '../errors.js';

/** ScriptFlags: what a script's shebang declares (a script without one: COMPAT, no flags). */
export interface ScriptFlags {
  /** shebang: the script has a `#!lua` line (Redis's flags apply; else Redis's compat mode). */
  readonly shebang: boolean;
  readonly noWrites: boolean;
}

export const NO_SHEBANG: ScriptFlags = { shebang: false, noWrites: false };

/** KNOWN_FLAGS: Redis 7.0's script flags; only no-writes changes anything here. */
const KNOWN_FLAGS: ReadonlySet<string> = new Set([
  'no-writes',
  'allow-oom',
  'allow-stale',
  'no-cluster',
  'allow-cross-slot-keys',
]);

const HASH = 0x23;
const BANG = 0x21;
const LF = 0x0a;
const NUL = 0x00;
const ENGINE = '#!lua';
const FLAGS_PREFIX = 'flags=';

/** Shebang: the flags and the length of the shebang line (without its line feed; 0 if none). */
export interface Shebang {
  readonly flags: ScriptFlags;
  readonly length: number;
}

/** parseShebang reads a script's shebang as Redis 7.0 does; a bad one throws Redis's error. */
export function parseShebang(body: Uint8Array): Shebang {
  if (body.length < 2 || body[0] !== HASH || body[1] !== BANG) return { flags: NO_SHEBANG, length: 0 };
  // Redis finds the line's end with strchr, which stops at a NUL byte too.
  let end = -1;
  for (let i = 0; i < body.length && body[i] !== NUL; i++) {
    if (body[i] === LF) {
      end = i;
      break;
    }
  }
  if (end === -1) throw new CommandError('ERR Invalid script shebang');
  const parts = splitArgs(Buffer.from(body.subarray(0, end)).toString('latin1'));
  if (parts === undefined || parts.length === 0)
    throw new CommandError('ERR Invalid engine in script shebang');
  const engine = cString(parts[0]!);
  if (engine !== ENGINE) throw new CommandError(`ERR Unexpected engine in script shebang: ${engine}`);
  let noWrites = false;
  for (const part of parts.slice(1)) {
    if (!part.startsWith(FLAGS_PREFIX))
      throw new CommandError(`ERR Unknown lua shebang option: ${cString(part)}`);
    const list = part.slice(FLAGS_PREFIX.length);
    // sdssplitlen: an empty list is no flags; "a," is "a" and "" (an unknown flag).
    if (list.length === 0) continue;
    for (const raw of list.split(',')) {
      const flag = cString(raw);
      if (!KNOWN_FLAGS.has(flag)) throw new CommandError(`ERR Unexpected flag in script shebang: ${flag}`);
      if (flag === 'no-writes') noWrites = true;
    }
  }
  return { flags: { shebang: true, noWrites }, length: end };
}

/** cString: a token as C's strcmp and "%s" see it (up to its first NUL). */
function cString(token: string): string {
  const nul = token.indexOf('\0');
  return nul === -1 ? token : token.slice(0, nul);
}

const isHex = (c: string | undefined): boolean => c !== undefined && /^[0-9a-fA-F]$/.test(c);
/** C's isspace, which skips blanks between tokens. */
const isSpace = (c: string | undefined): boolean => c !== undefined && ' \t\n\v\f\r'.includes(c);
const ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', b: '\b', a: '\x07' };

/**
 * splitArgs is Redis's sdssplitargs over a line (bytes as latin1 characters): tokens split on
 * blanks, "double quotes" with \xHH and C escapes, 'single quotes' with \'; undefined for
 * unbalanced quotes or a closing quote not followed by a blank.
 */
export function splitArgs(line: string): string[] | undefined {
  const out: string[] = [];
  let p = 0;
  for (;;) {
    while (p < line.length && line[p] !== '\0' && isSpace(line[p])) p++;
    if (p >= line.length || line[p] === '\0') return out;
    let current = '';
    let inq = false;
    let insq = false;
    for (let done = false; !done; ) {
      const c = p < line.length ? line[p]! : '\0';
      const next = p + 1 < line.length ? line[p + 1] : undefined;
      if (inq) {
        if (c === '\\' && next === 'x' && isHex(line[p + 2]) && isHex(line[p + 3])) {
          current += String.fromCharCode(Number.parseInt(line.slice(p + 2, p + 4), 16));
          p += 3;
        } else if (c === '\\' && next !== undefined && next !== '\0') {
          p++;
          current += ESCAPES[next] ?? next;
        } else if (c === '"') {
          if (next !== undefined && next !== '\0' && !isSpace(next)) return undefined;
          done = true;
        } else if (c === '\0') {
          return undefined;
        } else current += c;
      } else if (insq) {
        if (c === '\\' && next === "'") {
          p++;
          current += "'";
        } else if (c === "'") {
          if (next !== undefined && next !== '\0' && !isSpace(next)) return undefined;
          done = true;
        } else if (c === '\0') {
          return undefined;
        } else current += c;
      } else if (c === ' ' || c === '\n' || c === '\r' || c === '\t' || c === '\0') {
        done = true;
      } else if (c === '"') {
        inq = true;
      } else if (c === "'") {
        insq = true;
      } else current += c;
      if (p < line.length && line[p] !== '\0') p++;
    }
    out.push(current);
  }
}
