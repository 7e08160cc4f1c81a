// cmsgpack, struct and the Lua 5.1 library functions, run in process (the byte-for-byte
// comparison with redis-server is test/server/redis-diff-lua-libs.test.ts; this file runs
// without one): known encodings from the MessagePack specification, round trips of random
// values against a model, and the bounds that keep a hostile input from taking the server down.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RespError } from '../../../protocol/resp/index.js';
import type { ScriptReply } from './convert.js';
import { frexp, ldexp } from './float-parts.js';
import { LuaVm, sha1hex, type VmHost } from './vm.js';

const host: VmHost = { call: () => null, log: () => {}, knows: () => true };
const HEX =
  "local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end ";

function run(vm: LuaVm, body: string, argv: Buffer[] = []): ScriptReply {
  const bytes = Buffer.from(body);
  const sha = sha1hex(bytes);
  if (!vm.has(sha)) vm.load(sha, bytes);
  return vm.run(sha, [], argv, host).reply;
}

const text = (reply: ScriptReply): string =>
  reply instanceof RespError
    ? `error: ${reply.message}`
    : Buffer.isBuffer(reply)
      ? reply.toString()
      : String(reply);

describe('cmsgpack', () => {
  const vm = new LuaVm(5_000);

  it('encodes each type as the MessagePack specification lays it out', () => {
    const cases: [string, string][] = [
      ['0', '00'],
      ['127', '7f'],
      ['128', 'cc80'],
      ['65536', 'ce00010000'],
      ['2^32', 'cf0000000100000000'],
      ['-1', 'ff'],
      ['-33', 'd0df'],
      ['-2^31 - 1', 'd3ffffffff7fffffff'],
      ['0.5', 'ca3f000000'],
      ['0.1', 'cb3fb999999999999a'],
      ['2^63', 'ca5f000000'],
      ["'abc'", 'a3616263'],
      ["string.rep('x', 32)", `d920${'78'.repeat(32)}`],
      ['true', 'c3'],
      ['nil', 'c0'],
      ['{}', '90'],
      ['{1, 2}', '920102'],
      ["{a = 'b'}", '81a161a162'],
      ["{[1] = 'x', [3] = 'y'}", '8201a17803a179'],
    ];
    for (const [lua, hex] of cases) {
      expect(text(run(vm, `${HEX}return hex(cmsgpack.pack(${lua}))`)), lua).toBe(hex);
    }
  });

  it('gives back what it packed (random nested values against a model)', () => {
    // A value and the Lua expression that builds it; strings are printable so that the Lua
    // source can carry them in quotes.
    const leaf = fc.oneof(
      fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
      fc.stringMatching(/^[a-z0-9 ]{0,40}$/),
      fc.boolean(),
    );
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.array(tie('v'), { maxLength: 5 }),
        fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), tie('v'), { maxKeys: 5 }),
      ),
    })).v;
    const lua = (v: unknown): string => {
      if (typeof v === 'number') return Number.isInteger(v) ? String(v) : `(${v.toPrecision(17)})`;
      if (typeof v === 'string') return `'${v}'`;
      if (typeof v === 'boolean') return String(v);
      if (Array.isArray(v)) return `{${v.map(lua).join(', ')}}`;
      return `{${Object.entries(v as object)
        .map(([k, x]) => `['${k}'] = ${lua(x)}`)
        .join(', ')}}`;
    };
    // The script compares the unpacked value with the original, deeply, in Lua.
    const same = `
      local function same(a, b)
        if type(a) ~= type(b) then return false end
        if type(a) ~= 'table' then return a == b end
        for k, v in pairs(a) do if not same(v, b[k]) then return false end end
        for k in pairs(b) do if a[k] == nil then return false end end
        return true
      end `;
    fc.assert(
      fc.property(value, (v) => {
        const expr = lua(v);
        // An empty object and an empty array are both the empty table.
        return (
          run(
            vm,
            `${same} local v = ${expr} return same(v, cmsgpack.unpack(cmsgpack.pack(v))) and 1 or 0`,
          ) === 1
        );
      }),
      { numRuns: 200 },
    );
  });

  it('refuses truncated and malformed input with lua-cmsgpack errors, and deep nesting at Lua 5.1 stack limit', () => {
    expect(text(run(vm, "return cmsgpack.unpack('\\146\\1')"))).toMatch(/Missing bytes in input\./);
    expect(text(run(vm, "return cmsgpack.unpack('\\193')"))).toMatch(/Bad data format in input\./);
    const nested = (depth: number): string =>
      `return type(cmsgpack.unpack(string.rep(string.char(0x91), ${depth}) .. string.char(1)))`;
    expect(text(run(vm, nested(3999)))).toBe('table');
    // Far past the limit: an error, not JavaScript's own stack overflow.
    expect(text(run(vm, nested(1_000_000)))).toMatch(/stack overflow \(in function mp_decode_to_lua_array\)/);
    // A header that announces four billion entries and brings none: no table of that size is
    // made before the entries are read.
    expect(text(run(vm, 'return cmsgpack.unpack(ARGV[1])', [Buffer.from('ddffffffff', 'hex')]))).toMatch(
      /Missing bytes/,
    );
  });
});

describe('hostile input', () => {
  const vm = new LuaVm(5_000);
  // Values, or the libraries' own errors (Lua errors raised inside the decoder, such as a nil
  // map key, included); never an internal error.
  it('cmsgpack.unpack answers every byte string with values or its own errors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const reply = run(vm, 'return {pcall(cmsgpack.unpack, ARGV[1])}', [Buffer.from(bytes)]);
        expect(reply instanceof RespError ? reply.message : 'values').not.toMatch(
          /internal|unknown error|Error running/,
        );
        const detail = run(
          vm,
          "local ok, e = pcall(cmsgpack.unpack, ARGV[1]) return ok and 'ok' or tostring(e)",
          [Buffer.from(bytes)],
        );
        expect(text(detail)).toMatch(
          /^ok$|Missing bytes|Bad data format|stack overflow|table index is (nil|NaN)/,
        );
      }),
      { numRuns: 500 },
    );
  });

  it('struct.unpack answers every format and data with values or its own errors', () => {
    const format = fc.stringMatching(/^[<>!0-9 bBhHlLTiIfdxcsz#]{0,12}$/);
    fc.assert(
      fc.property(format, fc.uint8Array({ maxLength: 40 }), (fmt, bytes) => {
        const reply = run(
          vm,
          'local ok, e = pcall(struct.unpack, ARGV[1], ARGV[2]) return ok and "ok" or tostring(e)',
          [Buffer.from(fmt), Buffer.from(bytes)],
        );
        expect(text(reply)).toMatch(
          /^ok$|data string too short|unfinished string|needs a previous size|invalid format option|not a power of 2|larger than limit|integral size overflow|stack overflow|offset must be/,
        );
      }),
      { numRuns: 500 },
    );
  });
});

describe('limits inside a library call', () => {
  it('strings made by a few instructions count against the memory bound (they live outside the heap)', () => {
    const MIB = 1024 * 1024;
    const vm = new LuaVm(60_000, 64 * MIB);
    const started = performance.now();
    // 30 strings of 16 MiB: 480 MiB in 30 loop turns, far too few instructions for the hook.
    const rep = run(vm, "local t = {} for i = 1, 30 do t[i] = string.rep('x', 2^24) end return #t");
    expect(text(rep)).toMatch(/Script killed: it used more than 67108864 bytes of memory/);
    const concat = run(
      vm,
      "local t, s = {}, string.rep('y', 2^20) for i = 1, 300 do t[i] = s .. i end return #t",
    );
    expect(text(concat)).toMatch(/Script killed: it used more than 67108864 bytes of memory/);
    expect(performance.now() - started).toBeLessThan(10_000);
    // The VM goes on, with large strings below the bound. (Below it even counting each string
    // twice, as the figure does until V8 collects them: string.rep's buffer and fengari's copy.
    // 20 strings of 2 MiB, 80 MiB with the copies, were refused in one CI run: the bound counts
    // garbage not yet collected, as docs/lua.md says.)
    expect(run(vm, "local n = 0 for i = 1, 12 do n = n + #string.rep('z', 2^21) end return n")).toBe(
      12 * 2 * MIB,
    );
  });

  it('a cjson.encode that runs past the time limit is stopped by it, not after its billion values', () => {
    // One JavaScript call, which the VM's instruction hook does not interrupt: encode checks the
    // script's limits itself. Before, this call ran 34 s, past a 5 s limit.
    const vm = new LuaVm(200);
    const started = performance.now();
    const reply = run(
      vm,
      'local c = cjson.new() c.encode_sparse_array(false, 0) return #c.encode({[2^31 - 1] = 1})',
    );
    expect(text(reply)).toMatch(/Script killed: it ran longer than the time limit of 200 ms/);
    expect(performance.now() - started).toBeLessThan(5_000);
    // The VM goes on.
    expect(run(vm, "return cjson.encode({1, 'a'})")).toEqual(Buffer.from('[1,"a"]'));
  });
});

describe('large strings', () => {
  const vm = new LuaVm(60_000);

  it('pack and decode build large strings whole, byte for byte', () => {
    expect(
      run(vm, "local s = string.rep('ab', 2^24) return #struct.pack('c0s', s, s) == 4 * 2^24 + 1 and 1 or 0"),
    ).toBe(1);
    expect(
      run(vm, "local s = string.rep('ab', 2^24) return cmsgpack.unpack(cmsgpack.pack(s)) == s and 1 or 0"),
    ).toBe(1);
    expect(
      run(
        vm,
        // Escaped: each 'a\\n' of the text (three bytes) decodes to 'a' and a line feed.
        "local s = string.rep('a' .. string.char(92) .. 'n', 2^23) local d = cjson.decode('\"' .. s .. '\"') return #d == 2^24 and d:sub(1, 2) == 'a' .. string.char(10) and 1 or 0",
      ),
    ).toBe(1);
  });

  it('a packed string past the script string bound is an error, not a heap the size of the table', () => {
    // One 1 MiB string referenced twice at each of 15 levels: 32 GiB once packed. Refused as soon
    // as the output passes SCRIPT_STRING_BYTES_MAX.
    expect(
      text(
        run(vm, "local t = string.rep('x', 2^20) for i = 1, 15 do t = {t, t} end return #cmsgpack.pack(t)"),
      ),
    ).toMatch(/string length overflow/);
    expect(text(run(vm, "local s = string.rep('x', 2^28) return #struct.pack('c0c0c0', s, s, s)"))).toMatch(
      /string length overflow/,
    );
    expect(run(vm, 'return 1')).toBe(1);
  }, 60_000);
});

describe('struct', () => {
  const vm = new LuaVm(5_000);

  it('packs integers in either byte order, aligned as asked', () => {
    expect(text(run(vm, `${HEX}return hex(struct.pack('<i>i', 1, 1))`))).toBe('0100000000000001');
    expect(text(run(vm, `${HEX}return hex(struct.pack('!4bi', 1, 2))`))).toBe('0100000002000000');
    expect(text(run(vm, `${HEX}return hex(struct.pack('hs', -2, 'ab'))`))).toBe('feff616200');
  });

  it('unpacks what it packed and returns the next position', () => {
    expect(run(vm, "return {struct.unpack('<hIc3', struct.pack('<hIc3', -7, 4000000000, 'xyz'))}")).toEqual([
      -7,
      4000000000,
      Buffer.from('xyz'),
      10,
    ]);
    expect(run(vm, "return struct.size('!8bd')")).toBe(16);
    expect(text(run(vm, "return struct.unpack('i', 'ab')"))).toMatch(/data string too short/);
  });
});

describe('pcall and xpcall (JavaScript functions, vm.ts)', () => {
  it('cannot swallow the time limit, with or without a message handler', () => {
    const vm = new LuaVm(50);
    for (const body of [
      'while true do pcall(function() while true do end end) end',
      'while true do xpcall(function() while true do end end, function(e) return e end) end',
      'while true do pcall(pcall, function() while true do end end) end',
    ]) {
      expect(text(run(vm, body)), body).toMatch(/time limit/);
      expect(run(vm, 'return 1')).toBe(1);
    }
  });
});

describe('Lua 5.1 math helpers', () => {
  it('frexp and ldexp invert each other over the whole double range', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        const [m, e] = frexp(x);
        if (x !== 0) expect(Math.abs(m)).toBeGreaterThanOrEqual(0.5);
        expect(Math.abs(m)).toBeLessThan(1);
        return Object.is(ldexp(m, e), x);
      }),
      { numRuns: 2_000 },
    );
  });
});
