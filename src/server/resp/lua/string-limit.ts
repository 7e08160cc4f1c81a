// Every Lua string a script makes is at most SCRIPT_STRING_BYTES_MAX bytes, as C Lua refuses a
// concatenation past MAX_SIZE ("string length overflow"). fengari has no such bound: `s = s..s`
// thirty times in a loop (a few dozen VM instructions, too few for the instruction hook's memory
// check) asked for 16 GiB and the server died of heap exhaustion. Every string fengari creates
// passes through lstring's luaS_bless, which its other modules take when they load: this module
// wraps it first, so it must be imported before 'fengari' (vm.ts and convert.ts import it at
// their top). A string past the bound raises a Lua error; the one buffer over the bound already
// allocated by the concatenation is garbage at once.
import { createRequire } from 'node:module';
import type { LuaState } from 'fengari';
import { SCRIPT_STRING_BYTES_MAX, STRING_OVERFLOW_MESSAGE } from './limits.js';

type Bless = (L: LuaState, str: Uint8Array) => unknown;

/**
 * LARGE_STRING_BYTES: a string at least this long asks the running script's memory check
 * (setLargeStringCheck) before it exists: a few such strings, made by a few instructions, could
 * otherwise pass the memory bound long before the instruction hook's next check.
 */
export const LARGE_STRING_BYTES = 1024 * 1024;

/**
 * largeStringCheck: the running script's memory check (vm.ts), undefined between runs: the reason
 * to stop the script, or undefined to go on.
 */
let largeStringCheck: (() => string | undefined) | undefined;

/** setLargeStringCheck installs the check for one run, and clears it after (undefined). */
export function setLargeStringCheck(check: (() => string | undefined) | undefined): void {
  largeStringCheck = check;
}

/**
 * checkLargeString asks the running script's memory check about a string of `bytes` about to be
 * made, and raises a Lua error if the script must stop. Library functions call it (string.rep):
 * strings pushed from JavaScript are made inside lstring.js, whose own calls do not pass through
 * the wrapper below; the wrapper calls it for the rest (concatenation).
 */
export function checkLargeString(L: LuaState, bytes: number): void {
  if (bytes < LARGE_STRING_BYTES || largeStringCheck === undefined) return;
  const stop = largeStringCheck();
  if (stop !== undefined) raise(L, stop);
}

/** raise raises a Lua error with `message` (fengari's luaG_runerror, as C Lua's own errors). */
function raise(L: LuaState, message: string): never {
  // Loaded at the first error: ldebug requires the VM, which must load after the wrapper.
  const { luaG_runerror } = require('fengari/src/ldebug.js') as {
    luaG_runerror: (L: LuaState, fmt: Uint8Array) => never;
  };
  const { to_luastring } = require('fengari/src/fengaricore.js') as {
    to_luastring: (s: string) => Uint8Array;
  };
  // luaG_runerror reads `%` as a format directive.
  return luaG_runerror(L, to_luastring(message.replaceAll('%', '%%')));
}

const require = createRequire(import.meta.url);
// lstring.js requires only defs.js and llimits.js: loading it first loads no module that takes
// luaS_bless before the wrapper is in place.
const lstring = require('fengari/src/lstring.js') as { luaS_bless: Bless & { bounded?: true } };

if (lstring.luaS_bless.bounded !== true) {
  const bless = lstring.luaS_bless;
  const bounded: Bless & { bounded?: true } = (L, str) => {
    if (str.length > SCRIPT_STRING_BYTES_MAX) raise(L, STRING_OVERFLOW_MESSAGE);
    checkLargeString(L, str.length);
    return bless(L, str);
  };
  bounded.bounded = true;
  lstring.luaS_bless = bounded;
}
