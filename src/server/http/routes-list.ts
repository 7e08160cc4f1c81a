// GET /v1/kv: a paginated listing of keys (and values) in key order, by prefix and/or range.
// Pages end after `limit` items or LIST_PAGE_BYTES_MAX bytes; `next` is a cursor naming the
// last key returned, so a page resumes exactly after it however the store changed meanwhile.
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { Db } from '../../db/db.js';
import { compareBytes, keyAfter } from '../../stdx/bytes.js';
import { KEY_BYTES_MAX } from '../../storage/limits.js';
import {
  type CursorScope,
  decodeBase64,
  decodeCursor,
  encodeBase64,
  encodeCursor,
  jsonBytes,
  parseFlag,
} from './encoding.js';
import { invalidArgument } from './errors.js';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, LIST_PAGE_BYTES_MAX } from './limits.js';
import { LIST_QUERY_SCHEMA, LIST_RESPONSE_SCHEMA } from './schemas.js';

interface ListQuery {
  prefix?: string;
  start?: string;
  end?: string;
  limit?: string;
  reverse?: string;
  values?: string;
  base64?: string;
  cursor?: string;
}

export interface ListItem {
  key: string;
  value?: string;
  keyEncoding?: 'base64';
  valueEncoding?: 'base64';
}

export interface ListPage {
  items: ListItem[];
  next?: string;
}

/** item renders one key (and value) for JSON, in the text or the base64 scheme (also used by /v1/txn). */
export function item(key: Buffer, value: Buffer | undefined, base64: boolean): ListItem {
  if (base64) {
    return value === undefined
      ? { key: encodeBase64(key) }
      : { key: encodeBase64(key), value: encodeBase64(value) };
  }
  const k = jsonBytes(key);
  const out: ListItem = { key: k.text };
  if (k.base64) out.keyEncoding = 'base64';
  if (value !== undefined) {
    const v = jsonBytes(value);
    out.value = v.text;
    if (v.base64) out.valueEncoding = 'base64';
  }
  return out;
}

export function listRoutes(db: Db): FastifyPluginAsync {
  return async (app: FastifyInstance) => {
    app.get<{ Querystring: ListQuery }>(
      '/v1/kv',
      {
        config: { command: 'kv.list' },
        schema: {
          querystring: LIST_QUERY_SCHEMA,
          response: { 200: LIST_RESPONSE_SCHEMA },
        },
      },
      async (request): Promise<ListPage> => {
        const q = request.query;
        const base64 = parseFlag(q.base64, 'base64');
        const reverse = parseFlag(q.reverse, 'reverse');
        const withValues = q.values === undefined || parseFlag(q.values, 'values');
        const limit = q.limit === undefined ? LIST_LIMIT_DEFAULT : Number(q.limit);
        if (limit > LIST_LIMIT_MAX)
          throw invalidArgument(`limit must be at most ${LIST_LIMIT_MAX}, got ${limit}`);
        // An empty bound means no bound (an empty `end` would otherwise select nothing).
        const bound = (text: string | undefined, name: string): Buffer | undefined => {
          if (text === undefined || text === '') return undefined;
          return base64 ? decodeBase64(text, name) : Buffer.from(text, 'utf8');
        };
        // A plain Uint8Array copy: stdx prefixEnd() slices its argument and bumps the last byte,
        // and Buffer#slice is a view, so a Buffer prefix would be corrupted (and match nothing).
        const prefixBytes = bound(q.prefix, 'prefix');
        const prefix = prefixBytes === undefined ? undefined : Uint8Array.from(prefixBytes);
        let start = bound(q.start, 'start');
        let end = bound(q.end, 'end');
        // The listing a cursor belongs to: the bounds as the client gave them.
        const scope: CursorScope = [prefixBytes, start, end];
        if (q.cursor !== undefined) {
          const last = decodeCursor(q.cursor, reverse, scope);
          if (reverse) {
            if (end === undefined || compareBytes(last, end) < 0) end = last;
          } else {
            // Just after the last key: a key at the length limit has no longer successor, so
            // `last + 0x00` would be a bound over the key limit, refused by the engine (413).
            const after = keyAfter(last, KEY_BYTES_MAX);
            if (after === undefined) return { items: [] };
            if (start === undefined || compareBytes(after, start) > 0) start = Buffer.from(after);
          }
        }

        const items: ListItem[] = [];
        let bytes = 0;
        let lastKey: Buffer | undefined;
        let more = false;
        // One extra entry tells whether a next page exists without a second scan.
        for await (const [key, value] of db.scan({ prefix, start, end, reverse, limit: limit + 1 })) {
          if (items.length >= limit || bytes >= LIST_PAGE_BYTES_MAX) {
            more = true;
            break;
          }
          items.push(item(key, withValues ? value : undefined, base64));
          // Values count even when not answered (`values=false`): the scan read them, and a
          // keys-only page of 1000 keys holding 64 MiB values read 64 GB (found from outside).
          bytes += key.length + value.length;
          lastKey = key;
        }
        return more && lastKey !== undefined
          ? { items, next: encodeCursor(lastKey, reverse, scope) }
          : { items };
      },
    );
  };
}
