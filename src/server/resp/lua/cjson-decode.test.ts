import { describe, expect, it } from 'vitest';
import { JsonEscapeError, jsonStringBytes, jsonText } from './cjson-decode.js';

/** decode: a JSON string's bytes after JSON.parse, as cjson.decode hands them to Lua. */
const decode = (bytes: Buffer): Buffer => jsonStringBytes(JSON.parse(jsonText(bytes)) as string);

describe('cjson.decode text', () => {
  it('keeps raw bytes, invalid UTF-8 included, and writes escapes as UTF-8', () => {
    expect(decode(Buffer.from([0x22, 0xff, 0xfe, 0x22]))).toEqual(Buffer.from([0xff, 0xfe]));
    expect(decode(Buffer.from('"\xc3\xa9\\u00e9\\ud83d\\ude00\\u0000a"', 'latin1'))).toEqual(
      Buffer.from([0xc3, 0xa9, 0xc3, 0xa9, 0xf0, 0x9f, 0x98, 0x80, 0x00, 0x61]),
    );
    expect(decode(Buffer.from('"plain"'))).toEqual(Buffer.from('plain'));
  });

  it("refuses lone surrogates and bad digits at the escape's position, as lua-cjson", () => {
    const refusal = (json: string): [number, boolean] | undefined => {
      try {
        jsonText(Buffer.from(json));
        return undefined;
      } catch (err) {
        return err instanceof JsonEscapeError ? [err.position, err.inKey] : undefined;
      }
    };
    expect(refusal('"\\ud83d"')).toEqual([2, false]);
    expect(refusal('"ab\\udc00"')).toEqual([4, false]);
    expect(refusal('["a", "\\ud83d\\u0041"]')).toEqual([8, false]);
    expect(refusal('{"\\ud83d":1}')).toEqual([3, true]);
    expect(refusal('{"a":"\\ud83d"}')).toEqual([7, false]);
    expect(refusal('"\\uZZZZ"')).toEqual([2, false]);
    expect(refusal('"\\\\ud83d"')).toBeUndefined(); // an escaped backslash, then text
  });
});
