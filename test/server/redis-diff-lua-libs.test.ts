// Differential test of the libraries a Redis script can call beyond the redis table: Lua 5.1's
// standard library as Redis has it (fengari is Lua 5.3: 5.1's table.getn, math.pow, string.gfind
// and others were missing, 5.3's utf8, table.unpack, math.type present), cmsgpack and struct
// (missing: scripts that keep MessagePack payloads failed with "nonexistent global variable").
// The same EVALs against our server and a real redis-server, replies compared one by one.
// Binary results are compared as hex (replyText compares text). A MessagePack map with more than
// one key is compared through a round trip: its keys' order follows the VM's table order, which
// differs (docs/lua.md). Skipped, with a message, when redis-server is not installed.
import { describe, expect, it } from 'vitest';
import { differences, hasRedisServer } from '../support/redis-server.js';
import { useRedisPair } from './support.js';

const hasRedis = hasRedisServer('redis-diff-lua-libs.test.ts');

/** HEX: a Lua prelude; hex(s) spells a binary string in hex. */
const HEX =
  "local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end ";

/** LISTING: the names and types in a library table, sorted (a script's view of what exists). */
const listing = (lib: string): string =>
  `local names = {} for k, v in pairs(${lib}) do table.insert(names, tostring(k) .. ':' .. type(v)) end table.sort(names) return table.concat(names, ' ')`;

const ENVIRONMENT_CASES: readonly (readonly string[])[] = [
  ...[
    'string',
    'table',
    'math',
    'coroutine',
    'bit',
    'cmsgpack',
    'struct',
    'redis',
    'cjson',
    'cjson.new()',
  ].map((lib) => ['eval', listing(lib), '0']),
  // The globals that are not tables (Redis's own error handler aside).
  [
    'eval',
    "local names = {} for k, v in pairs(_G) do if type(v) ~= 'table' and k ~= '__redis__err__handler' then table.insert(names, k .. ':' .. type(v)) end end table.sort(names) return table.concat(names, ' ')",
    '0',
  ],
  ['eval', 'return utf8', '0'],
  ['eval', 'return type(rawget(_G, "utf8"))', '0'],
];

const STDLIB_CASES: readonly (readonly string[])[] = [
  [
    'eval',
    'return {table.getn({1, 2, 3}), table.getn({}), table.maxn({1, 2, [10] = 3, x = 4}), table.maxn({})}',
    '0',
  ],
  ['eval', 'return tostring(table.maxn({[1.5] = 1}))', '0'],
  ['eval', 'return table.getn(nil)', '0'],
  ['eval', "return table.getn('abc')", '0'],
  ['eval', 'return table.setn({}, 1)', '0'],
  ['eval', 'local n = 0; table.foreach({10, 20, 30}, function(k, v) n = n + k * v end); return n', '0'],
  [
    'eval',
    "return table.foreach({5, 6, 7}, function(k, v) if v == 6 then return 'found ' .. k end end)",
    '0',
  ],
  [
    'eval',
    "local s = ''; table.foreachi({'a', 'b', 'c', x = 'y'}, function(i, v) s = s .. i .. v end); return s",
    '0',
  ],
  ['eval', 'return table.foreachi({4, 5}, function(i, v) if i == 2 then return v * 10 end end)', '0'],
  ['eval', 'return table.foreach({}, 1)', '0'],
  [
    'eval',
    'return {tostring(math.pow(2, 10)), tostring(math.pow(2, 0.5)), tostring(math.mod(7, 3)), tostring(math.mod(-7, 3)), tostring(math.mod(7, -3)), tostring(math.mod(5.5, 2))}',
    '0',
  ],
  [
    'eval',
    'return {tostring(math.log10(1000)), tostring(math.log10(2)), tostring(math.atan2(1, 1)), tostring(math.atan2(-1, -1)), tostring(math.atan2(0, -1))}',
    '0',
  ],
  [
    'eval',
    'return {tostring(math.cosh(1)), tostring(math.sinh(1)), tostring(math.tanh(1)), tostring(math.tanh(100))}',
    '0',
  ],
  [
    'eval',
    'local out = {} for _, x in ipairs({8, 1, 0.3, -12.5, 0, 1e300, 1e-310, 2^-1074}) do local m, e = math.frexp(x) table.insert(out, tostring(m) .. "," .. tostring(e)) end return table.concat(out, " ")',
    '0',
  ],
  [
    'eval',
    'return {tostring(math.ldexp(0.5, 4)), tostring(math.ldexp(1, 1023)), tostring(math.ldexp(1, 1024)), tostring(math.ldexp(1, -1074)), tostring(math.ldexp(1, -1075)), tostring(math.ldexp(0.75, 2.9)), tostring(math.ldexp(1, -2000)), tostring(math.ldexp(3, 2000 - 1990))}',
    '0',
  ],
  // 5.1's log and atan take one argument; a second is ignored.
  [
    'eval',
    'return {tostring(math.log(100, 10)), tostring(math.log(8)), tostring(math.atan(1, 2)), tostring(math.atan(1))}',
    '0',
  ],
  ['eval', 'return math.pow(2)', '0'],
  ['eval', "return math.pow('x', 2)", '0'],
  ['eval', 'return math.log10()', '0'],
  [
    'eval',
    "local s = '' for w in string.gfind('one two three', '%a+') do s = s .. w .. ',' end return s",
    '0',
  ],
  ['eval', "return string.rep('ab', 3, ',')", '0'],
  [
    'eval',
    "return {string.rep('x', 0), string.rep('x', -1), string.rep('', 1e10), string.rep('ab', 2.7), ('z'):rep(5)}",
    '0',
  ],
  ['eval', 'return {pcall(string.rep)}', '0'],
  ['eval', "return {pcall(string.rep, 'x')}", '0'],
  ['eval', 'return string.rep({}, 2)', '0'],
  ['eval', 'return type(gcinfo())', '0'],
  // What 5.2 and 5.3 added is absent, as in Redis (reading an absent global is an error there).
  [
    'eval',
    'return {type(table.unpack), type(table.pack), type(table.move), type(math.type), type(math.tointeger)}',
    '0',
  ],
  [
    'eval',
    "return {type(string.pack), type(string.unpack), type(coroutine.isyieldable), type(rawget(_G, 'rawlen'))}",
    '0',
  ],
  ['eval', 'return rawlen({1})', '0'],
  ['eval', 'return {unpack({1, 2, 3})}', '0'],
  // Integer arguments: Lua 5.1 truncates a double (1.5 is 1); Lua 5.3 refused it, and anything past 2^31.
  ['eval', "return ('abcde'):sub(1, 5/2)", '0'],
  ['eval', "return string.byte('abc', 1.7)", '0'],
  ['eval', "return table.concat({1,2,3}, ',', 1.5)", '0'],
  ['eval', 'local t = {1,2} table.insert(t, 1.5, 9) return t', '0'],
  ['eval', "return select(1.5, 'a', 'b')", '0'],
  ['eval', "return select(-1.5, 'a', 'b')", '0'],
  ['eval', 'return {unpack({1,2,3}, 1.5)}', '0'],
  ['eval', "return ('abc'):find('b', 1.5)", '0'],
  ['eval', 'return math.random(1.5)', '0'],
  ['eval', 'return string.char(65.9)', '0'],
  ['eval', "return ('x'):sub(2^31)", '0'],
  ['eval', "return ('abc'):sub(-2^32, 2)", '0'],
  ['eval', "return string.byte('abc', 2^31)", '0'],
  ['eval', "return ('abc'):sub(-1.5)", '0'],
  ['eval', "return ('abc'):sub('1.5')", '0'],
  ['eval', "return ('abc'):sub('x')", '0'],
  ['eval', "return ('abc'):sub(0/0)", '0'],
  ['eval', "return string.find('abc', 'b', 2^33)", '0'],
  ['eval', "return {('abcdef'):byte(-2.9, 1e300)}", '0'],
];

const nested = (depth: number): string =>
  `return type(cmsgpack.unpack(string.rep(string.char(0x91), ${depth}) .. string.char(1)))`;
const topLevel = (count: number): string =>
  `return select('#', cmsgpack.unpack(string.rep(string.char(1), ${count})))`;

const CMSGPACK_CASES: readonly (readonly string[])[] = [
  // Integers at every encoding's edges.
  [
    'eval',
    `${HEX}local out = {} for _, n in ipairs({0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2^53, -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -2^53, -2^63}) do table.insert(out, hex(cmsgpack.pack(n))) end return table.concat(out, ' ')`,
    '0',
  ],
  // Floats: float32 when exact, float64 otherwise; 2^63 and past are not int64.
  [
    'eval',
    `${HEX}local out = {} for _, n in ipairs({0.5, 0.1, -2.25, 1e300, 1/0, -1/0, 2^63, 2^64, 3.5e38, 1e-40}) do table.insert(out, hex(cmsgpack.pack(n))) end return table.concat(out, ' ')`,
    '0',
  ],
  [
    'eval',
    `${HEX}local out = {} for _, n in ipairs({0, 1, 31, 32, 255, 256, 65535, 65536}) do table.insert(out, hex(cmsgpack.pack(string.rep('a', n))):sub(1, 12)) end return table.concat(out, ' ')`,
    '0',
  ],
  ['eval', `${HEX}return hex(cmsgpack.pack(true, false, nil, 'x', print, cjson.null))`, '0'],
  [
    'eval',
    `${HEX}return hex(cmsgpack.pack({}, {1, 2, 3}, {a = 1}, {[1] = 'x', [3] = 'y'}, {[1.5] = 1}, {[0] = 1}))`,
    '0',
  ],
  ['eval', `${HEX}local t = {} for i = 1, 20 do t[i] = i end return hex(cmsgpack.pack(t))`, '0'],
  [
    'eval',
    `${HEX}local t = {} for i = 1, 70000 do t[i] = 1 end return hex(cmsgpack.pack(t)):sub(1, 20)`,
    '0',
  ],
  [
    'eval',
    `${HEX}local t = {} for i = 1, 20 do t['k' .. i] = true end local s = cmsgpack.pack(t) return {hex(s:sub(1, 3)), #s}`,
    '0',
  ],
  // Tables nested past 16 pack as nil; a table that holds itself ends there.
  [
    'eval',
    `${HEX}local t = {} local c = t for i = 1, 20 do c[1] = {} c = c[1] end return hex(cmsgpack.pack(t))`,
    '0',
  ],
  ['eval', `${HEX}local t = {} t[1] = t return hex(cmsgpack.pack(t))`, '0'],
  // Round trips, maps of several keys included.
  [
    'eval',
    "local t = cmsgpack.unpack(cmsgpack.pack({name = 'job', attempts = 3, data = {1, 2.5, 'x', true}, opts = {delay = -1}})) return {t.name, t.attempts, t.data[1], tostring(t.data[2]), t.data[3], tostring(t.data[4]), t.opts.delay}",
    '0',
  ],
  ['eval', "return {cmsgpack.unpack(cmsgpack.pack(1, 'two', {3}))}", '0'],
  ['eval', 'return select("#", cmsgpack.unpack(""))', '0'],
  // Decoding every type byte, lua-cmsgpack's quirks included.
  [
    'eval',
    "local out = {} for _, s in ipairs({'\\204\\255', '\\208\\128', '\\205\\255\\255', '\\209\\128\\0', '\\206\\255\\255\\255\\255', '\\210\\128\\0\\0\\0', '\\211\\255\\255\\255\\255\\255\\255\\255\\254', '\\207\\0\\0\\0\\1\\0\\0\\0\\0', '\\207\\255\\255\\255\\255\\255\\255\\255\\255', '\\202\\63\\192\\0\\0', '\\203\\64\\9\\33\\251\\84\\68\\45\\24', '\\224', '\\255', '\\127'}) do table.insert(out, tostring(cmsgpack.unpack(s))) end return table.concat(out, ' ')",
    '0',
  ],
  ['eval', "return {cmsgpack.unpack('\\217\\3abc\\218\\0\\2de\\219\\0\\0\\0\\1f\\163ghi')}", '0'],
  // (Not #t: with a hole, Lua's length may be any border, and fengari's is another than 5.1's.)
  ['eval', "local t = cmsgpack.unpack('\\147\\1\\192\\3') return {t[1], tostring(t[2]), t[3]}", '0'],
  ['eval', "local t = cmsgpack.unpack('\\220\\0\\2\\1\\2') return {#t, t[2]}", '0'],
  ['eval', "local t = cmsgpack.unpack('\\222\\0\\1\\161a\\5') return t.a", '0'],
  ['eval', "local t = cmsgpack.unpack('\\129\\161b\\195') return tostring(t.b)", '0'],
  ['eval', "return cmsgpack.unpack('\\129\\192\\1')", '0'],
  ['eval', "return cmsgpack.unpack('\\193')", '0'],
  ['eval', "return cmsgpack.unpack('\\196\\1a')", '0'],
  ['eval', "return cmsgpack.unpack('\\212\\1\\1')", '0'],
  ['eval', "return cmsgpack.unpack('\\146\\1')", '0'],
  ['eval', "return cmsgpack.unpack('\\217\\9abc')", '0'],
  ['eval', "return cmsgpack.unpack('\\205\\1')", '0'],
  ['eval', 'return cmsgpack.unpack()', '0'],
  ['eval', 'return cmsgpack.pack()', '0'],
  // unpack_one and unpack_limit: the next offset first, -1 at the end.
  ['eval', "return {cmsgpack.unpack_one('\\1\\2\\3')}", '0'],
  ['eval', "return {cmsgpack.unpack_one('\\1\\2\\3', 1)}", '0'],
  ['eval', "return {cmsgpack.unpack_one('\\1\\2\\3', 2)}", '0'],
  ['eval', "return {cmsgpack.unpack_one('\\1\\2\\3', 3)}", '0'],
  ['eval', "return {cmsgpack.unpack_one('\\1\\2\\3', 4)}", '0'],
  ['eval', "return {cmsgpack.unpack_one('\\1\\2\\3', -1)}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3', 2)}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3', 2, 2)}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3', 0, 0)}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3', 0, 1)}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3', -1)}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3')}", '0'],
  ['eval', "return {cmsgpack.unpack_limit('\\1\\2\\3', 1.7)}", '0'],
  // Lua 5.1's C stack: how many values one call may return, how deep arrays may nest.
  ['eval', topLevel(7999), '0'],
  ['eval', topLevel(8000), '0'],
  ['eval', nested(3999), '0'],
  ['eval', nested(4000), '0'],
  ['eval', nested(100_000), '0'],
  ['eval', 'return {cmsgpack._NAME, cmsgpack._VERSION, cmsgpack._COPYRIGHT, cmsgpack._DESCRIPTION}', '0'],
  ['eval', 'cmsgpack.pack = nil', '0'],
];

const STRUCT_CASES: readonly (readonly string[])[] = [
  [
    'eval',
    `${HEX}return {hex(struct.pack('bBhHlLTiI', -1, 255, -2, 65535, -3, 7, 8, -4, 5)), hex(struct.pack('>bBhHlLTiI', -1, 255, -2, 65535, -3, 7, 8, -4, 5))}`,
    '0',
  ],
  [
    'eval',
    `${HEX}return {hex(struct.pack('i3', 5)), hex(struct.pack('>i16', -2)), hex(struct.pack('<I9', 2^53))}`,
    '0',
  ],
  [
    'eval',
    `${HEX}return {hex(struct.pack('b', 300)), hex(struct.pack('L', 2^64)), hex(struct.pack('l', -2^70)), hex(struct.pack('i', 0/0)), hex(struct.pack('L', 2^63 + 2^11))}`,
    '0',
  ],
  ['eval', `${HEX}return {hex(struct.pack('fd', 0.1, 0.1)), hex(struct.pack('>fd', 1/0, -2.5))}`, '0'],
  [
    'eval',
    `${HEX}return {hex(struct.pack('!4 b i', 1, 2)), hex(struct.pack('!bd', 1, 2)), hex(struct.pack('!2 b h b i', 1, 2, 3, 4)), hex(struct.pack('! b i3 b', 1, 2, 3))}`,
    '0',
  ],
  [
    'eval',
    `${HEX}return {hex(struct.pack('xbxxb', 1, 2)), hex(struct.pack('c3', 'abcdef')), hex(struct.pack('c0s', 'ab', 'cd')), hex(struct.pack(' < > !4 i', 1))}`,
    '0',
  ],
  ['eval', "return struct.pack('c5', 'ab')", '0'],
  ['eval', "return struct.pack('i99999999999', 5)", '0'],
  ['eval', "return struct.pack('i33', 5)", '0'],
  ['eval', "return struct.pack('z')", '0'],
  ['eval', "return struct.pack('!3i', 1)", '0'],
  ['eval', "return struct.pack('d')", '0'],
  ['eval', "return struct.pack('i', 'x')", '0'],
  ['eval', 'return struct.pack()', '0'],
  ['eval', "return {struct.unpack('<i16', string.rep(string.char(255), 16))}", '0'],
  ['eval', "return {struct.unpack('<i9', string.rep(string.char(255), 8) .. string.char(0))}", '0'],
  ['eval', "local a, b = struct.unpack('<I9', string.rep(string.char(255), 9)) return {tostring(a), b}", '0'],
  [
    'eval',
    "return {struct.unpack('bBhHiI', struct.pack('bBhHiI', -5, 250, -300, 60000, -70000, 4000000000))}",
    '0',
  ],
  [
    'eval',
    "return {struct.unpack('>bBhHiI', struct.pack('>bBhHiI', -5, 250, -300, 60000, -70000, 4000000000))}",
    '0',
  ],
  [
    'eval',
    "local f, d, n = struct.unpack('fd', struct.pack('fd', 0.1, 0.1)) return {tostring(f), tostring(d), n}",
    '0',
  ],
  ['eval', "return {struct.unpack('!8bd', string.rep(string.char(0), 16))}", '0'],
  ['eval', "return {struct.unpack('bc0', string.char(2) .. 'abc')}", '0'],
  ['eval', "return {struct.unpack('sbs', 'ab\\0\\7cd\\0')}", '0'],
  ['eval', "return {struct.unpack('c2c1', 'abc')}", '0'],
  ['eval', "return {struct.unpack('b', 'abc', 2)}", '0'],
  ['eval', "return {struct.unpack('b', 'abc', 0)}", '0'],
  ['eval', "return {struct.unpack('b', 'ab', 3)}", '0'],
  ['eval', "return {struct.unpack('xxb', 'ab')}", '0'],
  ['eval', "return {struct.unpack('c0', 'abc')}", '0'],
  ['eval', "return {struct.unpack('s', 'abc')}", '0'],
  ['eval', "return {struct.unpack('bc0', string.char(9) .. 'abc')}", '0'],
  ['eval', "return {struct.unpack('q', 'abc')}", '0'],
  [
    'eval',
    "return {struct.size('bhilTfd'), struct.size('!bhilTfd'), struct.size('i3i'), struct.size('c10'), struct.size('x'), struct.size('z'), struct.size('<>! ')}",
    '0',
  ],
  ['eval', "return struct.size('s')", '0'],
  ['eval', "return struct.size('c0')", '0'],
  ['eval', "return struct.size('!5')", '0'],
  ['eval', "return struct.size('#')", '0'],
  ['eval', `return select('#', struct.unpack(string.rep('b', 7997), string.rep('a', 7997)))`, '0'],
  ['eval', `return select('#', struct.unpack(string.rep('b', 7998), string.rep('a', 7998)))`, '0'],
];

/** ERROR_CASES: error levels and pcall/xpcall as Lua 5.1 counts frames (a number is located too). */
const ERROR_CASES: readonly (readonly string[])[] = [
  ['eval', 'error(123)', '0'],
  ['eval', 'error(123, 0)', '0'],
  ['eval', 'error(1.5)', '0'],
  ['eval', 'error()', '0'],
  ['eval', 'error(true)', '0'],
  ['eval', "local function f() error('deep', 2) end f()", '0'],
  ['eval', "local function f() error('deep', 3) end local function g() f() end g()", '0'],
  ['eval', "return select(2, pcall(error, 'x', 2))", '0'],
  ['eval', "return select(2, pcall(error, 'x', 1))", '0'],
  ['eval', 'return select(2, pcall(error, 7))', '0'],
  ['eval', "return {xpcall(function(...) return select('#', ...) end, tostring, 1, 2)}", '0'],
  ['eval', "return {xpcall(function() error('boom') end, function(e) return 'handled: ' .. e end)}", '0'],
  ['eval', "return {pcall(redis.call, 'nosuch')}", '0'],
  ['eval', 'return {xpcall(function() end)}', '0'],
  ['eval', 'return {pcall(function() return 1, 2, 3 end)}', '0'],
  ['eval', "return {pcall(pcall, error, 'e')}", '0'],
  ['eval', "local co = coroutine.create(function() error('in co') end) return {coroutine.resume(co)}", '0'],
  ['eval', 'local ok, e = pcall(error, {code = 5}) return type(e) .. tostring(e.code)', '0'],
  ['eval', 'return {tostring(cjson.null), tostring(nil), tostring(true), tostring(1e15), tostring()}', '0'],
  ['eval', 'return tostring()', '0'],
  ['eval', "return tostring(setmetatable({}, {__tostring = function() return 'custom' end}))", '0'],
];

/**
 * DECODED: cjson.decode's answer for ARGV[1], as text: the value re-encoded (numbers through
 * tostring, so that NaN and Infinity print), or the error pcall caught.
 */
const DECODED = `local function show(v)
  if type(v) == 'table' then
    local keys = {} for k in pairs(v) do table.insert(keys, k) end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    local out = {} for _, k in ipairs(keys) do table.insert(out, tostring(k) .. '=' .. show(v[k])) end
    return '{' .. table.concat(out, ',') .. '}'
  end
  if v == cjson.null then return 'null' end
  return type(v) .. ':' .. tostring(v)
end
local ok, v = pcall(cjson.decode, ARGV[1])
if not ok then return 'error: ' .. v end
return show(v)`;

/** CJSON_DECODE_CASES: lua-cjson's grammar, leniency (NaN, hex, '+') and error texts. */
const CJSON_DECODE_CASES: readonly (readonly string[])[] = [
  ['eval', DECODED, '0', ''],
  ['eval', DECODED, '0', ' '],
  ['eval', DECODED, '0', '[1,'],
  ['eval', DECODED, '0', '{"a":}'],
  ['eval', DECODED, '0', 'nul'],
  ['eval', DECODED, '0', '[1 2]'],
  ['eval', DECODED, '0', '{"a" 1}'],
  ['eval', DECODED, '0', '{1:2}'],
  ['eval', DECODED, '0', '{"a":1 "b"}'],
  ['eval', DECODED, '0', '[1,]'],
  ['eval', DECODED, '0', '"abc'],
  ['eval', DECODED, '0', '"a\\qb"'],
  ['eval', DECODED, '0', '"\\u12"'],
  ['eval', DECODED, '0', '[1]x'],
  ['eval', DECODED, '0', '+1'],
  ['eval', DECODED, '0', '0x1F'],
  ['eval', DECODED, '0', '-0x1p4'],
  ['eval', DECODED, '0', '0x1.8p1'],
  ['eval', DECODED, '0', '01'],
  ['eval', DECODED, '0', 'NaN'],
  ['eval', DECODED, '0', '-nan'],
  ['eval', DECODED, '0', 'Infinity'],
  ['eval', DECODED, '0', '-Infinity'],
  ['eval', DECODED, '0', 'inf'],
  ['eval', DECODED, '0', 'INF'],
  ['eval', DECODED, '0', 'infinit'],
  ['eval', DECODED, '0', '1e500'],
  ['eval', DECODED, '0', '-'],
  ['eval', DECODED, '0', '1.'],
  ['eval', DECODED, '0', '.5'],
  ['eval', DECODED, '0', '[true,false,null]'],
  ['eval', DECODED, '0', 'truex'],
  ['eval', DECODED, '0', '"\\ud800"'],
  ['eval', DECODED, '0', '  [ 1 , 2 ]  '],
  ['eval', DECODED, '0', '1e'],
  ['eval', DECODED, '0', '1e+'],
  ['eval', DECODED, '0', 'tru'],
  ['eval', DECODED, '0', '[-]'],
  ['eval', DECODED, '0', '0x'],
  ['eval', DECODED, '0', '"x"y'],
  ['eval', DECODED, '0', '{"a":1,}'],
  ['eval', DECODED, '0', '['],
  ['eval', DECODED, '0', '{'],
  ['eval', DECODED, '0', '{"a"'],
  ['eval', DECODED, '0', '0.1e1'],
  ['eval', DECODED, '0', '1E2'],
  ['eval', DECODED, '0', '-0'],
  ['eval', DECODED, '0', '[1,2'],
  ['eval', DECODED, '0', '"\\t\\n\\/\\"\\\\"'],
  ['eval', DECODED, '0', '"\\u00e9\\uD83D\\uDE00"'],
  ['eval', DECODED, '0', '{"a":1,"a":2}'],
  ['eval', DECODED, '0', '1.7976931348623157e308'],
  ['eval', DECODED, '0', '4.9e-324'],
  ['eval', DECODED, '0', '123456789012345678901234567890'],
  ['eval', DECODED, '0', '"\\ud83d\\u0041"'],
  ['eval', DECODED, '0', '{"k":[{"x":null}]}'],
  ['eval', "return cjson.decode('[1]' .. string.char(0) .. 'x')[1]", '0'],
  ['eval', 'return cjson.decode(string.char(0, 65))', '0'],
  ['eval', 'return cjson.decode()', '0'],
  ['eval', "return cjson.decode('1', 2)", '0'],
  ['eval', 'return cjson.decode(12)', '0'],
  ['eval', 'return cjson.decode({})', '0'],
  ['eval', DECODED, '0', `${'['.repeat(1000)}${']'.repeat(1000)}`],
  ['eval', DECODED, '0', `${'['.repeat(1001)}${']'.repeat(1001)}`],
  ['eval', DECODED, '0', `[1 ${'['.repeat(1001)}`],
  ['eval', DECODED, '0', `{"a":${'{"b":'.repeat(1000)}1${'}'.repeat(1001)}`],
];

/**
 * TRIED: a Lua prelude; tried(f, ...) is "ok" and f's answers, or "error" and pcall's message, as
 * text (a table as "table": its address differs).
 */
const TRIED = `local function tried(f, ...)
  local r = {pcall(f, ...)}
  for i = 1, table.maxn(r) do r[i] = type(r[i]) == 'table' and 'table' or tostring(r[i]) end
  r[1] = r[1] == 'true' and 'ok' or 'error'
  return table.concat(r, ' ')
end `;

/** ENCODED: cjson.encode of the Lua expression `e`, or the error, as text. */
const encoded = (e: string, prelude = ''): string[] => [
  'eval',
  `${TRIED}${prelude} return tried(cjson.encode, ${e})`,
  '0',
];

/**
 * CJSON_ENCODE_CASES: lua-cjson's encoding with its default settings: arrays, sparse arrays,
 * objects and their keys, escapes, numbers, errors. (Objects of one key only: the order of a
 * table's keys is the VM's, which differs.)
 */
const CJSON_ENCODE_CASES: readonly (readonly string[])[] = [
  encoded('{1, 2, 3}'),
  encoded('{}'),
  encoded('{a = {1, {b = true}}}'),
  encoded('{[1] = 1, [3] = 3}'),
  encoded('{[1] = 1, [11] = 1}'),
  encoded('{[10] = 1}'),
  encoded('{[11] = 1}'),
  encoded('{[0] = 1}'),
  encoded('{[-1] = 1}'),
  encoded('{[1.5] = 1}'),
  encoded('{[true] = 1}'),
  encoded('{[{}] = 1}'),
  encoded('{[1e15] = 1}'),
  encoded('{nil, 2}'),
  encoded('{cjson.null, false}'),
  encoded('string.char(0, 1, 8, 9, 10, 12, 13, 31, 34, 47, 92, 127, 128, 255)'),
  encoded("'plain'"),
  encoded('0.1'),
  encoded('-0.0'),
  encoded('1e15'),
  encoded('123456789012345678'),
  encoded('1/3'),
  encoded('2^53'),
  encoded('1/0'),
  encoded('-1/0'),
  encoded('0/0'),
  encoded('{1/0}'),
  encoded('{x = 0/0}'),
  encoded('coroutine.create(function() end)'),
  encoded('tostring'),
  encoded('{f = tostring}'),
  ['eval', `${TRIED} return tried(cjson.encode)`, '0'],
  ['eval', `${TRIED} return tried(cjson.encode, 1, 2)`, '0'],
  encoded('t', 'local t = {} for i = 1, 999 do t = {t} end'),
  encoded('t', 'local t = {} for i = 1, 1000 do t = {t} end'),
  encoded('t', 'local t = {} for i = 1, 1000 do t = {x = t} end'),
];

/**
 * CJSON_SETTINGS_CASES: the settings functions (defaults, changes, argument checks) and what they
 * change. A setting stays for later scripts, on Redis as here, so the last case puts every one back.
 */
const CJSON_SETTINGS_CASES: readonly (readonly string[])[] = [
  ['eval', `${TRIED} return tried(cjson.encode_sparse_array)`, '0'],
  [
    'eval',
    `${TRIED} return table.concat({tried(cjson.encode_max_depth), tried(cjson.decode_max_depth), tried(cjson.encode_number_precision), tried(cjson.encode_keep_buffer), tried(cjson.encode_invalid_numbers), tried(cjson.decode_invalid_numbers)}, ' | ')`,
    '0',
  ],
  [
    'eval',
    'return {cjson._NAME, cjson._VERSION, type(cjson.null), tostring(cjson.new().null == cjson.null)}',
    '0',
  ],
  ...[
    'cjson.encode_max_depth, 0',
    'cjson.encode_max_depth, 2147483648',
    'cjson.encode_max_depth, 4294967297',
    "cjson.encode_max_depth, 'x'",
    "cjson.encode_max_depth, '7'",
    'cjson.encode_max_depth, 2.9',
    'cjson.encode_max_depth, {}',
    'cjson.encode_max_depth, 1, 2',
    'cjson.encode_max_depth, 0/0',
    'cjson.encode_max_depth, 1e300',
    'cjson.decode_max_depth, -1',
    'cjson.encode_number_precision, 0',
    'cjson.encode_number_precision, 15',
    "cjson.encode_sparse_array, 'x'",
    'cjson.encode_sparse_array, 1',
    'cjson.encode_sparse_array, nil, -1',
    'cjson.encode_sparse_array, nil, nil, -1',
    'cjson.encode_sparse_array, nil, nil, nil, nil',
    'cjson.encode_sparse_array, {}',
    'cjson.encode_keep_buffer, 1',
    'cjson.encode_keep_buffer, {}',
    "cjson.encode_keep_buffer, 'on'",
    "cjson.encode_invalid_numbers, 'x'",
    "cjson.decode_invalid_numbers, 'null'",
  ].map((args) => ['eval', `${TRIED} return tried(${args})`, '0']),
  // Encoding under changed settings, each in a module of its own (cjson.new) and on cjson itself.
  [
    'eval',
    `${TRIED} local c = cjson.new() c.encode_number_precision(3)
     return table.concat({tried(c.encode, 3.14159), tried(cjson.encode, 3.14159), tried(c.encode, {[1.23456] = 1}), tried(c.encode, 123456)}, ' | ')`,
    '0',
  ],
  [
    'eval',
    `${TRIED} local c = cjson.new() c.encode_sparse_array(true)
     local d = cjson.new() d.encode_sparse_array(false, 0)
     local e = cjson.new() e.encode_sparse_array(false, 1, 1)
     return table.concat({tried(c.encode, {[20] = 1}), tried(d.encode, {[1000] = 1}), tried(e.encode, {[1] = 1, [3] = 3}), tried(e.encode, {1, 2})}, ' | ')`,
    '0',
  ],
  [
    'eval',
    `${TRIED} local c = cjson.new() local d = cjson.new() c.encode_invalid_numbers(true) d.encode_invalid_numbers('null')
     return table.concat({tried(c.encode, {1/0, -1/0, 0/0}), tried(d.encode, {1/0, 0/0}), tried(d.encode, {[0/0 ~= 0/0 and 1 or 2] = -1/0})}, ' | ')`,
    '0',
  ],
  [
    'eval',
    `${TRIED} local c = cjson.new() c.encode_max_depth(2) c.decode_max_depth(2)
     return table.concat({tried(c.encode, {{1}}), tried(c.encode, {{{1}}}), tried(c.decode, '[[1]]'), tried(c.decode, '[[[1]]]'), tried(c.decode, '{"a":{"b":{}}}')}, ' | ')`,
    '0',
  ],
  [
    'eval',
    `${TRIED} local c = cjson.new() c.decode_invalid_numbers(false)
     local out = {}
     for _, text in ipairs({'[0x10]', '[+1]', '[-inf]', '[01]', 'nan', 'Infinity', '-0.5', '[0]', '[-0]', '[1e5]', '[-]', '-x', '.5'}) do
       table.insert(out, text .. ' ' .. tried(c.decode, text))
     end
     return table.concat(out, ' | ')`,
    '0',
  ],
  [
    'eval',
    `${TRIED} local c = cjson.new() c.encode_max_depth(100000)
     local t = {} for i = 1, 9000 do t = {t} end
     local o = {} for i = 1, 5000 do o = {x = o} end
     local r1, r2 = tried(c.encode, t), tried(c.encode, o)
     return {r1:sub(1, 60), #r1, r2:sub(1, 60), #r2}`,
    '0',
  ],
  // Settings on cjson itself stay for the scripts after: both servers keep them.
  ['eval', 'cjson.encode_max_depth(2) return 1', '0'],
  ['eval', `${TRIED} return tried(cjson.encode, {{{1}}})`, '0'],
  [
    'eval',
    'cjson.encode_sparse_array(false, 2, 10) cjson.encode_max_depth(1000) cjson.decode_max_depth(1000) cjson.encode_number_precision(14) cjson.encode_keep_buffer(true) cjson.encode_invalid_numbers(false) cjson.decode_invalid_numbers(true) return 1',
    '0',
  ],
];

const ACL_CASES: readonly (readonly string[])[] = [
  ['eval', "return redis.acl_check_cmd('get', 'x')", '0'],
  ['eval', "return redis.acl_check_cmd('GET')", '0'],
  ['eval', "return redis.acl_check_cmd('set')", '0'],
  ['eval', "return redis.acl_check_cmd('nosuch')", '0'],
  ['eval', 'return redis.acl_check_cmd(1)', '0'],
  ['eval', 'return redis.acl_check_cmd()', '0'],
  ['eval', 'return redis.acl_check_cmd({})', '0'],
];

describe.skipIf(!hasRedis)("a script's libraries against a real redis-server", () => {
  const pair = useRedisPair();

  it('offers what Redis offers: the same names in every library and the same globals', async () => {
    expect(await differences(pair.ours, pair.theirs, ENVIRONMENT_CASES)).toEqual([]);
  });

  it("has Lua 5.1's standard library as Redis does, not Lua 5.3's", async () => {
    expect(await differences(pair.ours, pair.theirs, STDLIB_CASES)).toEqual([]);
  });

  it('packs and unpacks MessagePack byte for byte as Redis (cmsgpack)', async () => {
    expect(await differences(pair.ours, pair.theirs, CMSGPACK_CASES)).toEqual([]);
  });

  it('packs and unpacks binary structures byte for byte as Redis (struct)', async () => {
    expect(await differences(pair.ours, pair.theirs, STRUCT_CASES)).toEqual([]);
  });

  it('locates errors and counts error levels as Lua 5.1 does (pcall, xpcall, error)', async () => {
    expect(await differences(pair.ours, pair.theirs, ERROR_CASES)).toEqual([]);
  });

  it('decodes JSON as lua-cjson does: its leniency and its error texts (cjson.decode)', async () => {
    expect(await differences(pair.ours, pair.theirs, CJSON_DECODE_CASES)).toEqual([]);
  });

  it('encodes JSON as lua-cjson does: arrays, sparse arrays, keys, escapes, numbers, errors (cjson.encode)', async () => {
    expect(await differences(pair.ours, pair.theirs, CJSON_ENCODE_CASES)).toEqual([]);
  });

  it("has lua-cjson's settings, checked and applied as Redis does (cjson.new, encode_*, decode_*)", async () => {
    expect(await differences(pair.ours, pair.theirs, CJSON_SETTINGS_CASES)).toEqual([]);
  });

  it('answers redis.acl_check_cmd as Redis does for its default user', async () => {
    expect(await differences(pair.ours, pair.theirs, ACL_CASES)).toEqual([]);
  });
});
