// splitInlineArgs: the argument splitting of inline commands (`SET "a b" c\r\n`), byte for byte
// Redis's sdssplitargs (also what redis-cli uses for its prompt):
//   - arguments are separated by blanks (space, \t, \n, \r, \v, \f);
//   - "double quotes" understand \n \r \t \b \a, \xHH (two hex digits), and \<any> for <any>;
//   - 'single quotes' understand only \' ;
//   - quotes may start inside a word (`a"b c"` is one argument `ab c`), but a closing quote must
//     be followed by a blank or the end of the line;
//   - an unterminated quote, or a closing quote followed by a non-blank, is an error.
// One deliberate difference: Redis works on C strings, so a NUL byte ends the line there; we
// treat NUL as an ordinary byte (inline requests are for humans, who do not type NUL).

const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;

/**
 * isBlank is C's isspace() in the "C" locale: space and \t \n \v \f \r (0x09..0x0d). Between
 * words all of them are skipped, but only space, \t, \n and \r end an unquoted word (Redis).
 */
function isBlank(b: number): boolean {
  return b === SPACE || (b >= TAB && b <= CR);
}

function hexValue(b: number): number {
  if (b >= 0x30 && b <= 0x39) return b - 0x30;
  if (b >= 0x61 && b <= 0x66) return b - 0x61 + 10;
  if (b >= 0x41 && b <= 0x46) return b - 0x41 + 10;
  return -1;
}

/**
 * splitInlineArgs splits one inline line (without its line ending) into arguments, or returns
 * null when its quotes are unbalanced. Unquoted arguments are zero-copy subarrays of `line`;
 * arguments with quotes are fresh Buffers. A blank line gives an empty array.
 */
export function splitInlineArgs(line: Buffer): Buffer[] | null {
  const args: Buffer[] = [];
  const n = line.length;
  let p = 0;
  for (;;) {
    while (p < n && isBlank(line[p]!)) p++;
    if (p >= n) return args;
    // Fast path: a word without quotes is a subarray.
    const start = p;
    while (p < n) {
      const b = line[p]!;
      if (b === SPACE || b === LF || b === CR || b === TAB || b === DQUOTE || b === SQUOTE) break;
      p++;
    }
    if (p >= n || (line[p] !== DQUOTE && line[p] !== SQUOTE)) {
      args.push(line.subarray(start, p));
      continue;
    }
    // Slow path: a word with quotes is built byte by byte.
    const out: number[] = [];
    for (let i = start; i < p; i++) out.push(line[i]!);
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      if (inDouble) {
        if (p >= n) return null; // unterminated quotes
        const b = line[p]!;
        if (
          b === BACKSLASH &&
          p + 3 < n &&
          line[p + 1] === 0x78 &&
          hexValue(line[p + 2]!) >= 0 &&
          hexValue(line[p + 3]!) >= 0
        ) {
          out.push(hexValue(line[p + 2]!) * 16 + hexValue(line[p + 3]!));
          p += 3;
        } else if (b === BACKSLASH && p + 1 < n) {
          p++;
          const e = line[p]!;
          out.push(
            e === 0x6e ? LF : e === 0x72 ? CR : e === 0x74 ? TAB : e === 0x62 ? 0x08 : e === 0x61 ? 0x07 : e,
          );
        } else if (b === DQUOTE) {
          if (p + 1 < n && !isBlank(line[p + 1]!)) return null; // closing quote must end the word
          done = true;
        } else {
          out.push(b);
        }
      } else if (inSingle) {
        if (p >= n) return null;
        const b = line[p]!;
        if (b === BACKSLASH && p + 1 < n && line[p + 1] === SQUOTE) {
          p++;
          out.push(SQUOTE);
        } else if (b === SQUOTE) {
          if (p + 1 < n && !isBlank(line[p + 1]!)) return null;
          done = true;
        } else {
          out.push(b);
        }
      } else if (p >= n) {
        done = true;
      } else {
        const b = line[p]!;
        if (b === SPACE || b === LF || b === CR || b === TAB) done = true;
        else if (b === DQUOTE) inDouble = true;
        else if (b === SQUOTE) inSingle = true;
        else out.push(b);
      }
      if (p < n) p++;
    }
    args.push(Buffer.from(out));
  }
}
