// cairn scan: prints entries in key order, `key<TAB>value` per line (raw bytes), or with --json
// one JSON object per line. Keys and values that are not valid UTF-8 are given in base64 in
// JSON output, flagged by "keyEncoding"/"valueEncoding": "base64".
import { type Command, InvalidArgumentError as InvalidOptionError } from 'commander';
import { PipeClosedError, write } from '../output.js';
import type { Cli } from '../program.js';
import { addStoreOptions, storeOptions, withDb } from '../store.js';

/** OUTPUT_CHUNK_BYTES: output is gathered into chunks of about this size before writing. */
const OUTPUT_CHUNK_BYTES = 64 * 1024;

const TAB = Buffer.from('\t');
const NEWLINE = Buffer.from('\n');
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function registerScan(program: Command, _cli: Cli): void {
  addStoreOptions(
    program
      .command('scan')
      .description('print entries in key order (key<TAB>value per line)')
      .option('-p, --prefix <prefix>', 'only keys starting with this prefix')
      .option('-s, --start <key>', 'first key included')
      .option('-e, --end <key>', 'first key excluded')
      .option('-n, --limit <count>', 'at most this many entries', parseLimit)
      .option('-r, --reverse', 'descending key order')
      .option('--json', 'one JSON object {"key","value"} per line'),
  ).action(async (options: Record<string, unknown>) => {
    const str = (name: string): string | undefined =>
      typeof options[name] === 'string' ? (options[name] as string) : undefined;
    const limit = typeof options.limit === 'number' ? options.limit : undefined;
    const json = options.json === true;
    await withDb(
      storeOptions(options),
      true,
      async (db) => {
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        const flush = async () => {
          if (pending.length === 0) return;
          const chunk = Buffer.concat(pending, pendingBytes);
          pending = [];
          pendingBytes = 0;
          await write(chunk);
        };
        try {
          for await (const [key, value] of db.scan({
            prefix: str('prefix'),
            start: str('start'),
            end: str('end'),
            limit,
            reverse: options.reverse === true,
          })) {
            const line = json
              ? [Buffer.from(`${jsonLine(key, value)}\n`, 'utf8')]
              : [Buffer.from(key), TAB, Buffer.from(value), NEWLINE];
            for (const part of line) {
              pending.push(part);
              pendingBytes += part.length;
            }
            if (pendingBytes >= OUTPUT_CHUNK_BYTES) await flush();
          }
        } catch (err) {
          // The entries read before the failure (a damaged record) are printed, then the error:
          // they were dropped with the unflushed chunk, so a scan of a damaged store printed
          // nothing of what preceded the damage.
          if (!(err instanceof PipeClosedError)) await flush().catch(() => undefined);
          throw err;
        }
        await flush();
      },
      true,
    );
  });
}

function parseLimit(text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
    throw new InvalidOptionError('expected a non-negative integer');
  }
  return n;
}

/** jsonLine renders one entry; bytes that are not valid UTF-8 are base64-encoded and flagged. */
export function jsonLine(key: Uint8Array, value: Uint8Array): string {
  const out: Record<string, string> = {};
  const k = utf8OrUndefined(key);
  const v = utf8OrUndefined(value);
  out.key = k ?? Buffer.from(key).toString('base64');
  out.value = v ?? Buffer.from(value).toString('base64');
  if (k === undefined) out.keyEncoding = 'base64';
  if (v === undefined) out.valueEncoding = 'base64';
  return JSON.stringify(out);
}

function utf8OrUndefined(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
