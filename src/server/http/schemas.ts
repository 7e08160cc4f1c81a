// JSON schemas of every route: fastify validates requests (and serializes JSON responses) with
// them, and openapi.ts builds /openapi.json from the same objects, so the document cannot drift
// from what the server enforces. Kept to keywords that both JSON Schema draft-07 (fastify's
// validator) and OpenAPI 3.1 (JSON Schema 2020-12) read the same way.
import { HTTP_ERROR_CODES } from './errors.js';
import { LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, TXN_OPS_MAX } from './limits.js';

const flag = (description: string) =>
  ({ type: 'string', enum: ['', 'true', 'false', '1', '0'], description }) as const;

export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', enum: [...HTTP_ERROR_CODES] },
        message: { type: 'string' },
      },
    },
  },
} as const;

export const KEY_PARAMS_SCHEMA = {
  type: 'object',
  required: ['key'],
  properties: {
    key: {
      type: 'string',
      description:
        'The key: percent-encoded UTF-8, or base64url (standard base64 also accepted) with ?base64.',
    },
  },
} as const;

// The query schemas are closed like the bodies': a misspelt parameter (`?ttl=`, `?b64`,
// `?prefx=`) is refused by name instead of silently ignored (a key that never expires, a key
// read as text, a listing of everything).
/**
 * NO_QUERY_SCHEMA: the query of every route that takes no parameter (app.ts gives it to each route
 * without a query schema of its own): `POST /v1/batch?base64` would otherwise run the batch with
 * its keys read as text, and a misspelt parameter anywhere would be silently ignored.
 */
export const NO_QUERY_SCHEMA = {
  type: 'object',
  properties: {},
  additionalProperties: false,
} as const;

export const KV_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    base64: flag(
      'The key in the path is base64url; GET answers JSON {key, value} in base64; PUT takes JSON {value} in base64.',
    ),
  },
  additionalProperties: false,
} as const;

/** KV_PUT_QUERY_SCHEMA: PUT's query; ttlMs is digits (at most 2^53 - 1, checked by the route). */
export const KV_PUT_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    ...KV_QUERY_SCHEMA.properties,
    ttlMs: {
      type: 'string',
      pattern: '^[1-9][0-9]{0,15}$',
      description:
        'Expire the key this many milliseconds from now (a positive integer). Without it the key never expires.',
    },
  },
  additionalProperties: false,
} as const;

export const KV_JSON_SCHEMA = {
  type: 'object',
  required: ['key', 'value'],
  properties: {
    key: { type: 'string', description: 'base64' },
    value: { type: 'string', description: 'base64' },
    expiresAt: {
      type: 'integer',
      description: 'When the key expires, in ms since the Unix epoch; absent when it never does.',
    },
  },
} as const;

export const KV_PUT_JSON_SCHEMA = {
  type: 'object',
  required: ['value'],
  properties: { value: { type: 'string', description: 'base64' } },
  additionalProperties: false,
} as const;

export const LIST_QUERY_SCHEMA = {
  type: 'object',
  properties: {
    prefix: { type: 'string', description: 'Only keys starting with this (empty: no restriction).' },
    start: { type: 'string', description: 'First key included (empty: from the first key).' },
    end: { type: 'string', description: 'First key excluded (empty: to the last key).' },
    limit: {
      // A query string is a string: digits, range-checked by the route (no type coercion).
      type: 'string',
      pattern: '^[1-9][0-9]{0,9}$',
      description: `Items per page: 1 to ${LIST_LIMIT_MAX} (default ${LIST_LIMIT_DEFAULT}).`,
    },
    reverse: flag('Descending key order.'),
    values: flag('Include values (default true); values=false lists keys only.'),
    base64: flag('prefix/start/end are base64 and every key and value in the answer is base64.'),
    cursor: { type: 'string', description: 'The `next` token of the previous page (same other parameters).' },
  },
  additionalProperties: false,
} as const;

export const LIST_ITEM_SCHEMA = {
  type: 'object',
  required: ['key'],
  properties: {
    key: { type: 'string' },
    value: { type: 'string' },
    keyEncoding: {
      type: 'string',
      enum: ['base64'],
      description: 'Present when key is base64 because it is not valid UTF-8 (text mode only).',
    },
    valueEncoding: {
      type: 'string',
      enum: ['base64'],
      description: 'Present when value is base64 because it is not valid UTF-8 (text mode only).',
    },
  },
} as const;

export const LIST_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['items'],
  properties: {
    items: { type: 'array', items: LIST_ITEM_SCHEMA },
    next: { type: 'string', description: 'Present when more items follow: pass it as cursor.' },
  },
} as const;

export const BATCH_OP_SCHEMA = {
  type: 'object',
  required: ['op', 'key'],
  properties: {
    op: { type: 'string', enum: ['set', 'delete'] },
    key: { type: 'string' },
    value: { type: 'string' },
    ttlMs: {
      type: 'integer',
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'A set only: expire the key this many milliseconds from now.',
    },
  },
  additionalProperties: false,
  // A set needs a value; a delete takes neither a value nor a ttlMs (one there is a client bug).
  // Each branch names its own op, so that an unknown op is reported as such, and a field an op
  // does not take is a `false` schema, reported by name (app.ts, schemaMessage).
  allOf: [
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
    { if: { properties: { op: { const: 'set' } } }, then: { required: ['value'] } },
    {
      if: { properties: { op: { const: 'delete' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { properties: { value: false, ttlMs: false } },
    },
  ],
} as const;

export const BATCH_BODY_SCHEMA = {
  type: 'object',
  required: ['ops'],
  properties: {
    ops: { type: 'array', items: BATCH_OP_SCHEMA },
    base64: { type: 'boolean', default: false, description: 'Keys and values are base64.' },
  },
  additionalProperties: false,
} as const;

export const BATCH_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['applied'],
  properties: { applied: { type: 'integer', description: 'Operations applied (all of them).' } },
} as const;

export const HEALTH_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['ok', 'unavailable'] },
    engine: { type: 'string' },
    keys: { type: 'integer' },
    readIndex: {
      type: 'integer',
      description: 'A cluster member: the read index a quorum confirmed for its health read.',
    },
    applied: {
      type: 'integer',
      description: 'A cluster member: its applied index (at or past readIndex when healthy).',
    },
    error: ERROR_SCHEMA.properties.error,
  },
} as const;

/** A key or value in a /v1/txn body: UTF-8 text, or base64 with `base64: true`. */
const BYTES = { type: 'string' } as const;

export const TXN_COMPARE_SCHEMA = {
  type: 'object',
  required: ['key', 'target'],
  properties: {
    key: BYTES,
    target: {
      type: 'string',
      enum: ['value', 'exists', 'version', 'create', 'mod'],
      description:
        "'version', 'create' and 'mod' compare the key's revision: its version count, creation and last commit timestamps (0 when the key does not exist).",
    },
    op: { type: 'string', enum: ['=', '!=', '<', '>'], description: "For every target but 'exists'." },
    value: { ...BYTES, description: "The operand of target 'value' (bytes, compared bytewise)." },
    number: {
      type: 'integer',
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: "The operand of targets 'version', 'create' and 'mod'.",
    },
    exists: { type: 'boolean', description: "For target 'exists'." },
  },
  additionalProperties: false,
  allOf: [
    // Each target takes its own operand and no other: a `number` beside target 'value', or an `op`
    // beside 'exists', is a client bug that would otherwise be silently ignored.
    {
      if: { properties: { target: { const: 'value' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { required: ['op', 'value'], properties: { number: false, exists: false } },
    },
    {
      if: { properties: { target: { const: 'exists' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { required: ['exists'], properties: { op: false, value: false, number: false } },
    },
    {
      if: { properties: { target: { enum: ['version', 'create', 'mod'] } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { required: ['op', 'number'], properties: { value: false, exists: false } },
    },
  ],
} as const;

export const TXN_CAS_OP_SCHEMA = {
  type: 'object',
  required: ['op', 'key'],
  properties: {
    op: { type: 'string', enum: ['get', 'set', 'delete'] },
    key: BYTES,
    value: BYTES,
  },
  additionalProperties: false,
  // A set needs a value; get and delete take none (see BATCH_OP_SCHEMA's branches).
  allOf: [
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
    { if: { properties: { op: { const: 'set' } } }, then: { required: ['value'] } },
    {
      if: { properties: { op: { enum: ['get', 'delete'] } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { properties: { value: false } },
    },
  ],
} as const;

/** SCAN_FIELDS: the fields only a scan operation takes. */
const SCAN_FIELDS = ['prefix', 'start', 'end', 'limit', 'reverse'] as const;

export const TXN_OP_SCHEMA = {
  type: 'object',
  required: ['op'],
  properties: {
    op: { type: 'string', enum: ['get', 'set', 'delete', 'scan'] },
    key: BYTES,
    value: BYTES,
    prefix: { ...BYTES, description: 'scan: only keys starting with this.' },
    start: { ...BYTES, description: 'scan: first key included.' },
    end: { ...BYTES, description: 'scan: first key excluded.' },
    limit: {
      type: 'integer',
      minimum: 1,
      maximum: LIST_LIMIT_MAX,
      description: `scan: at most this many items (default ${LIST_LIMIT_DEFAULT}).`,
    },
    reverse: { type: 'boolean', description: 'scan: descending key order.' },
  },
  additionalProperties: false,
  allOf: [
    // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
    { if: { properties: { op: { const: 'set' } } }, then: { required: ['key', 'value'] } },
    {
      if: { properties: { op: { enum: ['get', 'delete'] } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { required: ['key'], properties: { value: false } },
    },
    // Only a scan takes the scan fields; a scan takes neither key nor value.
    {
      if: { properties: { op: { const: 'scan' } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { properties: { key: false, value: false } },
    },
    {
      if: { properties: { op: { enum: ['get', 'set', 'delete'] } } },
      // biome-ignore lint/suspicious/noThenProperty: JSON Schema's conditional keyword.
      then: { properties: Object.fromEntries(SCAN_FIELDS.map((f) => [f, false])) },
    },
  ],
} as const;

export const TXN_BODY_SCHEMA = {
  type: 'object',
  description:
    'Either a compare-and-swap (`compare`, `success`, `failure`) or a one-shot transaction (`isolation`, `ops`).',
  properties: {
    compare: { type: 'array', maxItems: TXN_OPS_MAX, items: TXN_COMPARE_SCHEMA },
    success: { type: 'array', maxItems: TXN_OPS_MAX, items: TXN_CAS_OP_SCHEMA },
    failure: { type: 'array', maxItems: TXN_OPS_MAX, items: TXN_CAS_OP_SCHEMA },
    isolation: { type: 'string', enum: ['serializable', 'snapshot'], description: 'Default serializable.' },
    ops: { type: 'array', maxItems: TXN_OPS_MAX, items: TXN_OP_SCHEMA },
    base64: { type: 'boolean', description: 'Every key, value and operand is base64 (so are the answers).' },
  },
  additionalProperties: false,
  // Which of the two forms a body is (one, not both, not neither) is checked by the route, whose
  // message says so; a `oneOf` here reported "must match exactly one schema in oneOf".
} as const;

export const TXN_RESULT_SCHEMA = {
  type: 'object',
  required: ['op'],
  properties: {
    op: { type: 'string', enum: ['get', 'set', 'delete', 'scan'] },
    found: { type: 'boolean', description: 'get: whether the key had a value.' },
    value: { type: 'string', description: 'get: the value, when found.' },
    valueEncoding: LIST_ITEM_SCHEMA.properties.valueEncoding,
    revision: {
      type: 'object',
      description:
        'Compare-and-swap get, when found: the commit timestamp of the newest write (mod), of the creating write (create), and the writes since creation (version).',
      required: ['mod', 'create', 'version'],
      properties: { mod: { type: 'integer' }, create: { type: 'integer' }, version: { type: 'integer' } },
    },
    items: { type: 'array', items: LIST_ITEM_SCHEMA, description: 'scan: the entries, in order.' },
    truncated: {
      type: 'boolean',
      description: 'scan: present (true) when the page byte cap stopped it before `limit`.',
    },
  },
} as const;

export const TXN_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['results'],
  properties: {
    succeeded: { type: 'boolean', description: 'Compare-and-swap: whether every comparison held.' },
    ts: {
      type: 'integer',
      description:
        'The commit timestamp: of a one-shot transaction, or of the writes of the compare-and-swap branch that ran (absent when it wrote nothing).',
    },
    results: { type: 'array', items: TXN_RESULT_SCHEMA, description: 'One per operation run.' },
  },
} as const;
