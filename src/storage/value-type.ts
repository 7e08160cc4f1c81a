// ValueType: what kind of value a key holds, kept beside the value (out of band) in every layer,
// the way `expiresAt` travels: string values are arbitrary bytes, so a type can never be told
// from the bytes themselves. 0 is a plain string, the only type before format 4; the others are
// the Redis data types whose payload a layer above the storage encodes (src/server/resp/
// hash-codec.ts for hashes). The engines store the number and never look inside the payload.
// docs/format.md, "Value types", has the codes and the on-disk encodings.
import { InvalidArgumentError } from './errors.js';

export const ValueType = {
  STRING: 0,
  HASH: 1,
  /** Reserved for the Redis types that will follow (docs/format.md, "Value types"). */
  LIST: 2,
  SET: 3,
  ZSET: 4,
} as const;
export type ValueType = (typeof ValueType)[keyof typeof ValueType];

/**
 * VALUE_TYPE_MAX: the largest type code a store accepts. The code is a u8 on disk (cask) and in
 * the top byte of the lmdb revision prefix; only the codes this build knows are taken.
 */
export const VALUE_TYPE_MAX = ValueType.ZSET;

/** checkValueType refuses a type code this build cannot store (undefined is a string). */
export function checkValueType(valueType: number | undefined): void {
  if (valueType === undefined) return;
  if (!Number.isInteger(valueType) || valueType < 0 || valueType > VALUE_TYPE_MAX) {
    throw new InvalidArgumentError(
      `value type must be an integer in [0, ${VALUE_TYPE_MAX}], got ${String(valueType)}`,
    );
  }
}

/** valueTypeName is Redis's TYPE answer for a code. */
export function valueTypeName(valueType: number): string {
  switch (valueType) {
    case ValueType.STRING:
      return 'string';
    case ValueType.HASH:
      return 'hash';
    case ValueType.LIST:
      return 'list';
    case ValueType.SET:
      return 'set';
    case ValueType.ZSET:
      return 'zset';
    default:
      return 'none';
  }
}
