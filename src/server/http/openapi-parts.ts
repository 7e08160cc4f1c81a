// The pieces the OpenAPI document (openapi.ts) and its cluster part (openapi-cluster.ts) are
// built from: route schemas turned into parameters, error responses, JSON content.

export type JsonObject = Record<string, unknown>;

interface ObjectSchema {
  readonly properties: Readonly<Record<string, JsonObject>>;
  readonly required?: readonly string[];
}

/** parameters turns an object schema (params or querystring) into OpenAPI parameter objects. */
export function parameters(schema: ObjectSchema, where: 'path' | 'query'): JsonObject[] {
  return Object.entries(schema.properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: where,
      required: where === 'path' || (schema.required ?? []).includes(name),
      ...(description === undefined ? {} : { description }),
      // Flags may be given bare (`?base64`): an empty value must be allowed.
      ...(where === 'query' ? { allowEmptyValue: true } : {}),
      schema: rest,
    };
  });
}

const errorRef = { $ref: '#/components/schemas/Error' };

/** errors: error responses for `statuses`, described as the data routes answer them. */
export function errors(...statuses: number[]): JsonObject {
  return describedErrors(Object.fromEntries(statuses.map((s) => [s, ERROR_DESCRIPTIONS[s] ?? 'Error'])));
}

/** describedErrors: error responses, each status with what it means on the route at hand. */
export function describedErrors(descriptions: Readonly<Record<number, string>>): JsonObject {
  const out: JsonObject = {};
  for (const [status, description] of Object.entries(descriptions)) {
    out[status] = { description, content: { 'application/json': { schema: errorRef } } };
  }
  return out;
}

export const ERROR_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT: malformed parameter, encoding or body',
  404: 'KEY_NOT_FOUND (or NOT_FOUND for an unknown route)',
  408: 'REQUEST_TIMEOUT: the request did not arrive whole in time; the connection is closed',
  409: 'TXN_CONFLICT: concurrent transactions kept conflicting; run it again. WRONG_TYPE: the key holds a hash (written over RESP)',
  413: 'LIMIT: body, key (or key path), value or batch over a limit',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  500: 'CORRUPTION, IO or INTERNAL',
  503: 'CLOSED or STORE_FAILED: the store is not serving',
};

export const json = (schema: unknown): JsonObject => ({ 'application/json': { schema } });
