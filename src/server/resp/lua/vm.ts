// LuaVm: one Lua interpreter (fengari: Lua 5.3 in JavaScript) set up as Redis 7 sets up its
// scripting engine: the `redis` library, KEYS/ARGV, cjson, bit, the sandbox (bootstrap.ts), and
// the scripts loaded so far, kept as functions in the registry under f_<sha1>.
//
// Why fengari (docs/lua.md): it runs synchronously in the caller's stack, so a script, with
// every redis.call it makes, is one synchronous step of the server, exactly what atomicity needs
// (wasmoon's WebAssembly VM is driven through promises in part, and copies strings through
// UTF-8, which loses binary values); Lua strings are byte arrays, so binary keys and values pass
// unchanged; lua_sethook with an instruction count bounds the run.
//
// Bounds: a count hook every SCRIPT_HOOK_INSTRUCTIONS checks the time limit and, every
// SCRIPT_HEAP_CHECK_EVERY calls, the memory's growth (the heap and the strings' bytes outside it),
// as does the making of every string of LARGE_STRING_BYTES or more; past either bound it raises
// an error, and keeps raising it at every later hook and through pcall, so the script cannot
// catch its way out.
// First: bounds every string fengari makes (string-limit.ts), before fengari loads.
import './string-limit.js';
// Then: every number a double, printed as Lua 5.1 prints it (numbers.ts), before fengari loads.
import './numbers.js';
// Then: read-only tables (readonly.ts), before fengari's lua.js copies lapi's functions. (A side
// effect import: the formatter keeps it here, where it would sort a named import after fengari.)
import './readonly.js';
import { createHash } from 'node:crypto';
import { getHeapStatistics } from 'node:v8';
import { type LuaJsFunction, type LuaState, lauxlib, lua, lualib, to_luastring } from 'fengari';
import type { RespValue } from '../../../protocol/resp/index.js';
import { RespError } from '../../../protocol/resp/index.js';
import { REDIS_COMPAT_VERSION } from '../commands/connection.js';
import { CommandError } from '../errors.js';
import { BOOTSTRAP } from './bootstrap.js';
import { installCjson } from './cjson.js';
import { installCmsgpack } from './cmsgpack.js';
import {
  normalizeError,
  pushBytes,
  pushErrorTable,
  pushNumber,
  pushReply,
  type ScriptReply,
  sanitize,
  toReply,
} from './convert.js';
import { FormatError, luaFormat } from './format.js';
import { SCRIPT_HEAP_CHECK_EVERY, SCRIPT_HEAP_GROWTH_MAX, SCRIPT_HOOK_INSTRUCTIONS } from './limits.js';
import { installLua51Libs } from './lua51-libs.js';
import { numberToArgument } from './numbers.js';
import { isReadonly, type ReadonlyFlag, readonlyFlag, readonlyInstalled, setReadonly } from './readonly.js';
import { setLargeStringCheck } from './string-limit.js';
import { installStruct } from './struct.js';

/** The levels of redis.log, as Redis numbers them. */
export const LOG_LEVELS = ['debug', 'verbose', 'notice', 'warning'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** VmHost: what the VM asks of the server while a script runs. */
export interface VmHost {
  /** call runs one command for redis.call/pcall; a failure is a RespError reply, not a throw. */
  call(args: Buffer[]): RespValue;
  log(level: LogLevel, message: string): void;
  /** knows: whether `name` is a command of the server (redis.acl_check_cmd). */
  knows(name: Buffer): boolean;
}

/** RunResult: a script's reply (an error reply when it failed) and whether a limit stopped it. */
export interface RunResult {
  readonly reply: ScriptReply;
  readonly stopped: boolean;
}

export function sha1hex(body: Uint8Array): string {
  return createHash('sha1').update(body).digest('hex');
}

const s = to_luastring;
const CHUNK_NAME = s('@user_script');
const REG_HANDLER = s('cairn_error_handler');
/** CJSON_NULL: what cjson.null's light userdata points to (compared by identity). */
const CJSON_NULL = Object.freeze({ cjsonNull: true });
const KEYS = s('KEYS');
const ARGV = s('ARGV');

export class LuaVm {
  private readonly L: LuaState;
  private host: VmHost | undefined;
  /** stopReason: set when a limit stopped the running script (its error text). */
  private stopReason: string | undefined;
  private deadline = 0;
  private heapStart = 0;
  private hooks = 0;
  /** globals: _G's read-only flag (set in protect). */
  private globals: ReadonlyFlag | undefined;

  constructor(
    private readonly timeLimitMs: number,
    /** memoryGrowthMax: how much memory one run may add (tests lower it). */
    private readonly memoryGrowthMax = SCRIPT_HEAP_GROWTH_MAX,
  ) {
    const L = lauxlib.luaL_newstate();
    this.L = L;
    lualib.luaL_openlibs(L);
    this.installRedis();
    this.installBit();
    this.installFormat();
    installLua51Libs(L, { aborted: () => this.stopReason !== undefined, cjsonNull: CJSON_NULL });
    installCmsgpack(L);
    installStruct(L);
    installCjson(L, CJSON_NULL, (L) => this.onHook(L));

    if (lauxlib.luaL_loadbuffer(L, s(BOOTSTRAP), null, s('=bootstrap')) !== lua.LUA_OK) {
      throw new Error(`scripting bootstrap: ${lua.lua_tojsstring(L, -1)}`);
    }
    lua.lua_pushjsfunction(L, (L) => {
      lua.lua_pushboolean(L, this.stopReason !== undefined);
      return 1;
    });
    lua.lua_call(L, 1, 1);
    lua.lua_setfield(L, lua.LUA_REGISTRYINDEX, REG_HANDLER);
    // The loaded-modules table emptied (require is gone): Lua 5.3 names a function in an
    // argument error by looking it up there ('string.rep'); Lua 5.1, as Redis, says '?'.
    lua.lua_createtable(L, 0, 0);
    lua.lua_setfield(L, lua.LUA_REGISTRYINDEX, s('_LOADED'));
    this.protect();
  }

  /**
   * protect makes the globals, every table reachable from them (the libraries, redis, cjson,
   * bit, _G's own metatable) and the string metatable read-only, as Redis 7's scriptingInit does
   * (luaSetTableProtectionRecursively): no script can change what later scripts see.
   */
  private protect(): void {
    const L = this.L;
    if (!readonlyInstalled(lua.lua_setmetatable)) {
      throw new Error('scripting: readonly.ts must be imported before fengari');
    }
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS);
    protectRecursively(L);
    this.globals = readonlyFlag(L, -1);
    lua.lua_pop(L, 1);
    // Not reachable from _G, read-only in Redis 7 all the same (getmetatable('').__index = ...
    // would change every string's methods).
    const base = lua.lua_gettop(L);
    lua.lua_pushstring(L, s(''));
    if (lua.lua_getmetatable(L, -1)) protectRecursively(L);
    lua.lua_settop(L, base);
  }

  /** has: the script with this SHA1 is loaded. */
  has(sha: string): boolean {
    const L = this.L;
    const t = lua.lua_getfield(L, lua.LUA_REGISTRYINDEX, s(`f_${sha}`));
    lua.lua_pop(L, 1);
    return t !== lua.LUA_TNIL;
  }

  /** load compiles a script under its SHA1; a syntax error throws Redis's compile error. */
  load(sha: string, body: Uint8Array): void {
    const L = this.L;
    if (lauxlib.luaL_loadbuffer(L, body, body.length, CHUNK_NAME) !== lua.LUA_OK) {
      const msg = lua.lua_tojsstring(L, -1);
      lua.lua_pop(L, 1);
      throw new CommandError(sanitize(`ERR Error compiling script (new function): ${msg}`));
    }
    lua.lua_setfield(L, lua.LUA_REGISTRYINDEX, s(`f_${sha}`));
  }

  /** unload forgets a compiled script. */
  unload(sha: string): void {
    lua.lua_pushnil(this.L);
    lua.lua_setfield(this.L, lua.LUA_REGISTRYINDEX, s(`f_${sha}`));
  }

  /** run calls a loaded script with KEYS and ARGV, synchronously, within the limits. */
  run(sha: string, keys: readonly Buffer[], argv: readonly Buffer[], host: VmHost): RunResult {
    const L = this.L;
    const base = lua.lua_gettop(L);
    this.setArgs(KEYS, keys);
    this.setArgs(ARGV, argv);
    lua.lua_getfield(L, lua.LUA_REGISTRYINDEX, REG_HANDLER);
    lua.lua_getfield(L, lua.LUA_REGISTRYINDEX, s(`f_${sha}`));
    this.host = host;
    this.stopReason = undefined;
    this.hooks = 0;
    this.deadline = performance.now() + this.timeLimitMs;
    this.heapStart = memoryInUse();
    lua.lua_sethook(L, (L) => this.onHook(L), lua.LUA_MASKCOUNT, SCRIPT_HOOK_INSTRUCTIONS);
    setLargeStringCheck(() => this.memoryStop());
    let status: number;
    try {
      status = lua.lua_pcall(L, 0, 1, base + 1);
    } finally {
      setLargeStringCheck(undefined);
      lua.lua_sethook(L, null, 0, 0);
      this.host = undefined;
    }
    try {
      if (status === lua.LUA_OK) return { reply: toReply(L, -1), stopped: false };
      return { reply: this.errorReply(sha), stopped: this.stopReason !== undefined };
    } finally {
      lua.lua_settop(L, base);
      this.setArgs(KEYS, []);
      this.setArgs(ARGV, []);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  /** errorReply formats a failed run's error as Redis 7 does (luaCallFunction). */
  private errorReply(sha: string): RespError {
    const L = this.L;
    if (lua.lua_type(L, -1) !== lua.LUA_TTABLE) {
      return new RespError(sanitize(`ERR Error running script ${sha}, ${lua.lua_tojsstring(L, -1)}`));
    }
    const field = (name: string): string | undefined => {
      const t = lua.lua_getfield(L, -1, s(name));
      const v = t === lua.LUA_TSTRING || t === lua.LUA_TNUMBER ? lua.lua_tojsstring(L, -1) : undefined;
      lua.lua_pop(L, 1);
      return v;
    };
    const err = field('err') ?? 'ERR unknown error';
    const source = field('source');
    const line = field('line');
    const where = source !== undefined && line !== undefined ? ` script: ${sha}, on ${source}:${line}.` : '';
    return new RespError(sanitize(`${err.startsWith('-') ? err.slice(1) : err}${where}`));
  }

  private onHook(L: LuaState): void {
    if (this.stopReason === undefined) {
      if (performance.now() > this.deadline) {
        this.stopReason = `ERR Script killed: it ran longer than the time limit of ${this.timeLimitMs} ms`;
      } else if (++this.hooks % SCRIPT_HEAP_CHECK_EVERY === 0) {
        this.memoryStop();
      }
    }
    if (this.stopReason !== undefined) {
      pushErrorTable(L, this.stopReason);
      lua.lua_error(L);
    }
  }

  /**
   * memoryStop: the reason to stop the script once the memory in use has grown by
   * memoryGrowthMax since it started (then kept: the script stays stopped), else undefined.
   * Asked by the instruction hook, and at the making of every large string (string-limit.ts),
   * which a few instructions can repeat far past the bound between two hooks.
   */
  private memoryStop(): string | undefined {
    if (this.stopReason === undefined && memoryInUse() - this.heapStart > this.memoryGrowthMax)
      this.stopReason = `ERR Script killed: it used more than ${this.memoryGrowthMax} bytes of memory`;
    return this.stopReason;
  }

  /**
   * setArgs sets the global KEYS or ARGV to a new table of `values` (not read-only: scripts may
   * change their own KEYS, as in Redis). _G is read-only, so it is opened for this one raw write
   * and closed again, as Redis's luaCallFunction does; raw, so no metamethod can interfere.
   */
  private setArgs(name: Uint8Array, values: readonly Buffer[]): void {
    const L = this.L;
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS);
    lua.lua_pushstring(L, name);
    lua.lua_createtable(L, values.length, 0);
    for (let i = 0; i < values.length; i++) {
      pushBytes(L, values[i]!);
      lua.lua_rawseti(L, -2, i + 1);
    }
    const globals = this.globals!;
    globals.readonly = false;
    try {
      lua.lua_rawset(L, -3);
    } finally {
      globals.readonly = true;
    }
    lua.lua_pop(L, 1);
  }

  private fn(L: LuaState, name: string, f: LuaJsFunction): void {
    lua.lua_pushjsfunction(L, f);
    lua.lua_setfield(L, -2, s(name));
  }

  private installRedis(): void {
    const L = this.L;
    lua.lua_createtable(L, 0, 16);
    this.fn(L, 'call', (L) => this.redisCall(L, true));
    this.fn(L, 'pcall', (L) => this.redisCall(L, false));
    // Every client may run every command (requirepass has one user, as Redis's default user
    // without ACL rules): a known command is allowed. Subcommands are not checked (docs/lua.md).
    this.fn(L, 'acl_check_cmd', (L) => {
      const argc = lua.lua_gettop(L);
      if (argc === 0)
        return raiseTable(L, 'ERR Please specify at least one argument for this redis lib call');
      for (let i = 1; i <= argc; i++) {
        const t = lua.lua_type(L, i);
        if (t !== lua.LUA_TSTRING && t !== lua.LUA_TNUMBER) {
          return raiseTable(L, 'ERR Lua redis lib command arguments must be strings or integers');
        }
      }
      const name = lua.lua_tolstring(L, 1);
      if (name === null || this.host === undefined || !this.host.knows(Buffer.from(name))) {
        return raiseTable(L, 'ERR Invalid command passed to redis.acl_check_cmd()');
      }
      lua.lua_pushboolean(L, true);
      return 1;
    });
    this.fn(L, 'sha1hex', (L) => {
      if (lua.lua_gettop(L) !== 1) return raise(L, 'wrong number of arguments');
      lua.lua_pushstring(L, s(sha1hex(lua.lua_tolstring(L, 1) ?? new Uint8Array())));
      return 1;
    });
    this.fn(L, 'error_reply', (L) => {
      if (lua.lua_gettop(L) !== 1 || lua.lua_type(L, 1) !== lua.LUA_TSTRING) {
        return raiseTable(L, 'ERR wrong number or type of arguments', false);
      }
      pushErrorTable(L, normalizeError(lua.lua_tojsstring(L, 1)));
      return 1;
    });
    this.fn(L, 'status_reply', (L) => {
      if (lua.lua_gettop(L) !== 1 || lua.lua_type(L, 1) !== lua.LUA_TSTRING) {
        return raiseTable(L, 'ERR wrong number or type of arguments', false);
      }
      lua.lua_createtable(L, 0, 1);
      lua.lua_pushvalue(L, 1);
      lua.lua_setfield(L, -2, s('ok'));
      return 1;
    });
    this.fn(L, 'log', (L) => {
      const argc = lua.lua_gettop(L);
      if (argc < 2) return raise(L, 'redis.log() requires two arguments or more.');
      if (lua.lua_type(L, 1) !== lua.LUA_TNUMBER)
        return raise(L, 'First argument must be a number (log level).');
      const level = LOG_LEVELS[lua.lua_tointeger(L, 1)];
      if (level === undefined) return raise(L, 'Invalid debug level.');
      const parts: string[] = [];
      for (let i = 2; i <= argc; i++) parts.push(lua.lua_tojsstring(L, i));
      this.host?.log(level, parts.join(' '));
      return 0;
    });
    this.fn(L, 'setresp', (L) => {
      if (lua.lua_gettop(L) !== 1) return raise(L, 'redis.setresp() requires one argument.');
      const v = lua.lua_tointeger(L, 1);
      if (v !== 2 && v !== 3) return raise(L, 'RESP version must be 2 or 3.');
      if (v === 3) return raise(L, 'RESP3 replies inside scripts are not supported by Cairn');
      return 0;
    });
    // Effects replication is the only mode (Redis 7): these are accepted and change nothing.
    this.fn(L, 'replicate_commands', (L) => {
      lua.lua_pushboolean(L, true);
      return 1;
    });
    this.fn(L, 'set_repl', () => 0);
    this.fn(L, 'breakpoint', (L) => {
      lua.lua_pushboolean(L, false);
      return 1;
    });
    this.fn(L, 'debug', () => 0);
    LOG_LEVELS.forEach((level, i) => {
      lua.lua_pushinteger(L, i);
      lua.lua_setfield(L, -2, s(`LOG_${level.toUpperCase()}`));
    });
    const repl: [string, number][] = [
      ['REPL_NONE', 0],
      ['REPL_AOF', 1],
      ['REPL_SLAVE', 2],
      ['REPL_REPLICA', 2],
      ['REPL_ALL', 3],
    ];
    for (const [name, v] of repl) {
      lua.lua_pushinteger(L, v);
      lua.lua_setfield(L, -2, s(name));
    }
    // The version Cairn answers as (INFO's redis_version, HELLO), as Redis 7 gives scripts: the
    // text and (major << 16 | minor << 8 | patch).
    lua.lua_pushstring(L, s(REDIS_COMPAT_VERSION));
    lua.lua_setfield(L, -2, s('REDIS_VERSION'));
    const [major = 0, minor = 0, patch = 0] = REDIS_COMPAT_VERSION.split('.').map(Number);
    lua.lua_pushinteger(L, (major << 16) | (minor << 8) | patch);
    lua.lua_setfield(L, -2, s('REDIS_VERSION_NUM'));
    lua.lua_setglobal(L, s('redis'));
  }

  /** redisCall is redis.call (`raise`) and redis.pcall: argument checks as Redis's. */
  private redisCall(L: LuaState, raiseErrors: boolean): number {
    const argc = lua.lua_gettop(L);
    if (argc === 0) return raiseTable(L, 'ERR Please specify at least one argument for this redis lib call');
    const args: Buffer[] = [];
    for (let i = 1; i <= argc; i++) {
      const t = lua.lua_type(L, i);
      if (t !== lua.LUA_TSTRING && t !== lua.LUA_TNUMBER) {
        return raiseTable(L, 'ERR Lua redis lib command arguments must be strings or integers');
      }
      // A number is written as Redis 7.0 writes it ("%.17g": 500, not 500.0; 10/3 in full), not
      // as tostring would. A string is copied: the command may keep its arguments (the store
      // copies too, but not every path).
      if (t === lua.LUA_TNUMBER) args.push(Buffer.from(numberToArgument(lua.lua_tonumber(L, i)), 'latin1'));
      else args.push(Buffer.from(lua.lua_tolstring(L, i)!));
    }
    let reply: RespValue;
    try {
      reply = this.host === undefined ? new RespError('ERR no script is running') : this.host.call(args);
    } catch (err) {
      reply = new RespError(err instanceof Error ? `ERR ${err.message}` : 'ERR internal error');
    }
    if (reply instanceof RespError && raiseErrors) return raiseTable(L, normalizeError(reply.message));
    pushReply(L, reply);
    return 1;
  }

  /**
   * installFormat replaces fengari's string.format (JavaScript's number formatting) with Lua
   * 5.1's on glibc (format.ts), before the libraries are made read-only.
   */
  private installFormat(): void {
    const L = this.L;
    lua.lua_getglobal(L, s('string'));
    lua.lua_pushjsfunction(L, (L) => {
      const fmt = lauxlib.luaL_checklstring(L, 1);
      let out: Buffer;
      try {
        out = luaFormat(fmt, {
          count: lua.lua_gettop(L) - 1,
          number: (i) => lauxlib.luaL_checknumber(L, i + 1),
          string: (i) => lauxlib.luaL_checklstring(L, i + 1),
          noValue: (i) => lauxlib.luaL_argerror(L, i + 1, s('no value')),
        });
      } catch (err) {
        // luaL_error adds the script's position, as Lua 5.1's str_format errors carry it.
        if (err instanceof FormatError) return lauxlib.luaL_error(L, s('%s'), s(err.message));
        throw err;
      }
      lua.lua_pushstring(L, out);
      return 1;
    });
    lua.lua_setfield(L, -2, s('format'));
    lua.lua_pop(L, 1);
  }

  private installBit(): void {
    const L = this.L;
    const int = (L: LuaState, i: number): number => {
      const n = lua.lua_tonumber(L, i);
      // LuaBitOp's tobit: the number modulo 2^32, as a signed 32-bit integer.
      return Number.isFinite(n) ? Number(BigInt.asIntN(32, BigInt(Math.trunc(n)))) : 0;
    };
    const fold = (op: (a: number, b: number) => number) => (L: LuaState) => {
      let acc = int(L, 1);
      for (let i = 2; i <= lua.lua_gettop(L); i++) acc = op(acc, int(L, i));
      pushNumber(L, acc | 0);
      return 1;
    };
    const unary = (op: (a: number, b: number) => number) => (L: LuaState) => {
      pushNumber(L, op(int(L, 1), int(L, 2)) | 0);
      return 1;
    };
    lua.lua_createtable(L, 0, 12);
    this.fn(
      L,
      'tobit',
      unary((a) => a),
    );
    this.fn(
      L,
      'bnot',
      unary((a) => ~a),
    );
    this.fn(
      L,
      'band',
      fold((a, b) => a & b),
    );
    this.fn(
      L,
      'bor',
      fold((a, b) => a | b),
    );
    this.fn(
      L,
      'bxor',
      fold((a, b) => a ^ b),
    );
    this.fn(
      L,
      'lshift',
      unary((a, n) => a << (n & 31)),
    );
    this.fn(
      L,
      'rshift',
      unary((a, n) => a >>> (n & 31)),
    );
    this.fn(
      L,
      'arshift',
      unary((a, n) => a >> (n & 31)),
    );
    this.fn(
      L,
      'rol',
      unary((a, n) => (a << (n & 31)) | (a >>> (32 - (n & 31)))),
    );
    this.fn(
      L,
      'ror',
      unary((a, n) => (a >>> (n & 31)) | (a << (32 - (n & 31)))),
    );
    this.fn(
      L,
      'bswap',
      unary((a) => ((a & 0xff) << 24) | ((a & 0xff00) << 8) | ((a >>> 8) & 0xff00) | ((a >>> 24) & 0xff)),
    );
    this.fn(L, 'tohex', (L) => {
      const x = int(L, 1);
      const n = lua.lua_gettop(L) >= 2 ? int(L, 2) : 8;
      const digits = Math.min(Math.abs(n), 8);
      let hex = (x >>> 0)
        .toString(16)
        .padStart(8, '0')
        .slice(8 - digits);
      if (n < 0) hex = hex.toUpperCase();
      lua.lua_pushstring(L, s(hex));
      return 1;
    });
    lua.lua_setglobal(L, s('bit'));
  }
}

/**
 * protectRecursively marks the table on the stack's top read-only, then every table among its
 * values and its metatable, depth first (Redis's luaSetTableProtectionRecursively; a table
 * already marked is skipped, which ends the cycles such as _G._G).
 */
function protectRecursively(L: LuaState): void {
  if (isReadonly(L, -1)) return;
  setReadonly(L, -1, true);
  if (!lua.lua_checkstack(L, 3)) throw new Error('scripting: Lua stack exhausted protecting the globals');
  lua.lua_pushnil(L);
  while (lua.lua_next(L, -2) !== 0) {
    if (lua.lua_type(L, -1) === lua.LUA_TTABLE) protectRecursively(L);
    lua.lua_pop(L, 1);
  }
  if (lua.lua_getmetatable(L, -1)) {
    protectRecursively(L);
    lua.lua_pop(L, 1);
  }
}

/** raise raises a plain Lua error (the handler prefixes ERR, as for error('...')). */
function raise(L: LuaState, message: string): never {
  lua.lua_pushstring(L, s(message));
  return lua.lua_error(L);
}

/**
 * raiseTable raises Redis's error table {err = message} (no ERR added); `located` false marks
 * it to be reported without the script's line, as Redis reports some errors.
 */
function raiseTable(L: LuaState, message: string, located = true): never {
  pushErrorTable(L, message);
  if (!located) {
    lua.lua_pushboolean(L, false);
    lua.lua_setfield(L, -2, s('source'));
  }
  return lua.lua_error(L);
}

/**
 * memoryInUse: V8's heap in use plus the memory outside it that JavaScript objects hold: fengari's
 * Lua strings are Uint8Arrays, whose bytes are not in the heap (a script building strings of
 * hundreds of MB did not move used_heap_size at all).
 */
function memoryInUse(): number {
  const h = getHeapStatistics();
  return h.used_heap_size + h.external_memory;
}
