// scanStrings: the entries of a range that hold strings, the only type Db.scan yields (keys
// holding a hash, written over RESP, are skipped as Db.get refuses them). The limit counts the
// strings yielded: an engine scan limited to `limit` entries would spend some of them on hashes
// and end short, and a caller that reads "fewer than asked" as "nothing more" (the HTTP
// listing's `next`) would then never see the keys after them.
import { asBuffer, keyAfter } from '../stdx/bytes.js';
import type { Engine, ScanRange } from '../storage/engine.js';
import { shown } from '../storage/engine-options.js';
import { InvalidArgumentError } from '../storage/errors.js';
import { KEY_BYTES_MAX } from '../storage/limits.js';

/** checkScanLimit refuses a limit that is not a non-negative integer (as the engines and transactions do). */
export function checkScanLimit(limit: unknown): void {
  if (limit !== undefined && !(typeof limit === 'number' && Number.isSafeInteger(limit) && limit >= 0)) {
    throw new InvalidArgumentError(`scan limit must be a non-negative integer, got ${shown(limit)}`);
  }
}

/**
 * scanStrings yields the [key, value] string entries of `range` in its order, at most
 * `range.limit` of them. Each engine scan asks for as many entries as strings are still wanted
 * (so a limited scan reads no more values than it returns when there are no hashes); when
 * skipped hashes left it short of the limit, the next one resumes just after the last key seen.
 */
export async function* scanStrings(
  engine: Engine,
  range: ScanRange,
): AsyncIterableIterator<[Buffer, Buffer]> {
  checkScanLimit(range.limit);
  const limited = range.limit !== undefined;
  let remaining = range.limit ?? Number.POSITIVE_INFINITY;
  let { start, end } = range;
  while (remaining > 0) {
    const asked = remaining;
    let seen = 0;
    let skipped = 0;
    let last: Uint8Array | undefined;
    for await (const [k, v, valueType] of engine.scan({
      start,
      end,
      reverse: range.reverse,
      limit: limited ? asked : undefined,
    })) {
      seen++;
      last = k;
      if (valueType) {
        skipped++;
        continue;
      }
      remaining--;
      yield [asBuffer(k), asBuffer(v)];
    }
    // Unlimited scans and scans that ran out of entries before their limit are complete.
    if (!limited || skipped === 0 || seen < asked || last === undefined) return;
    if (range.reverse === true) end = Uint8Array.from(last);
    else {
      const after = keyAfter(last, KEY_BYTES_MAX);
      if (after === undefined) return;
      start = after;
    }
  }
}
