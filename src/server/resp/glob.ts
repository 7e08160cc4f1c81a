// globMatch: Redis's stringmatchlen (util.c) over bytes: `*`, `?`, `[abc]`, `[^a-z]`, `\x`;
// no pattern but the empty one matches the empty string.
// Iterative with backtracking to the last `*`, so a pattern like `*a*a*a*b` cannot take
// exponential time (Redis added a nesting limit for the same reason).

const STAR = 0x2a;
const QUESTION = 0x3f;
const OPEN = 0x5b;
const CLOSE = 0x5d;
const CARET = 0x5e;
const BACKSLASH = 0x5c;
const DASH = 0x2d;

/** classMatch matches byte c against the class starting after `[` at p; returns [matched, end]. */
function classMatch(pattern: Buffer, p: number, c: number): [boolean, number] {
  let not = false;
  if (pattern[p] === CARET) {
    not = true;
    p++;
  }
  let match = false;
  for (;;) {
    if (p >= pattern.length) {
      // Unterminated class: Redis treats the end as closing it.
      p--;
      break;
    }
    const ch = pattern[p]!;
    if (ch === BACKSLASH && p + 1 < pattern.length) {
      p++;
      if (pattern[p] === c) match = true;
    } else if (ch === CLOSE) {
      break;
    } else if (p + 2 < pattern.length && pattern[p + 1] === DASH) {
      let start = ch;
      let end = pattern[p + 2]!;
      if (start > end) [start, end] = [end, start];
      p += 2;
      if (c >= start && c <= end) match = true;
    } else if (ch === c) {
      match = true;
    }
    p++;
  }
  return [not ? !match : match, p];
}

export function globMatch(pattern: Buffer, s: Buffer): boolean {
  // As stringmatchlen, whose loop runs only while the string is not empty: an empty string is
  // matched by the empty pattern only (`*` does not match it).
  if (s.length === 0) return pattern.length === 0;
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    if (p < pattern.length) {
      const ch = pattern[p]!;
      if (ch === STAR) {
        while (p < pattern.length && pattern[p] === STAR) p++;
        if (p === pattern.length) return true;
        starP = p;
        starI = i;
        continue;
      }
      if (ch === QUESTION) {
        p++;
        i++;
        continue;
      }
      if (ch === OPEN) {
        const [ok, end] = classMatch(pattern, p + 1, s[i]!);
        if (ok) {
          p = end + 1;
          i++;
          continue;
        }
      } else if (ch === BACKSLASH && p + 1 < pattern.length) {
        if (pattern[p + 1] === s[i]) {
          p += 2;
          i++;
          continue;
        }
      } else if (ch === s[i]) {
        p++;
        i++;
        continue;
      }
    }
    if (starP === -1) return false;
    p = starP;
    i = ++starI;
  }
  while (p < pattern.length && pattern[p] === STAR) p++;
  return p === pattern.length;
}

/**
 * isMatchAll is true for the pattern `*` alone, which KEYS, SCAN and HSCAN do not match at all
 * (as Redis): every key or field, the empty one included, where `**` skips the empty one.
 */
export function isMatchAll(pattern: Buffer): boolean {
  return pattern.length === 1 && pattern[0] === STAR;
}
