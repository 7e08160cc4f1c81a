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

const require = createRequire(import.meta.url);
// lstring.js requires only defs.js and llimits.js: loading it first loads no module that takes
// luaS_bless before the wrapper is in place.
const lstring = require('fengari/src/lstring.js') as { luaS_bless: Bless & { bounded?: true } };

if (lstring.luaS_bless.bounded !== true) {
  const bless = lstring.luaS_bless;
  const bounded: Bless & { bounded?: true } = (L, str) => {
    if (str.length > SCRIPT_STRING_BYTES_MAX) {
      // Loaded at the first refusal: ldebug requires the VM, which must load after the wrapper.
      const { luaG_runerror } = require('fengari/src/ldebug.js') as {
        luaG_runerror: (L: LuaState, fmt: Uint8Array) => never;
      };
      const { to_luastring } = require('fengari/src/fengaricore.js') as {
        to_luastring: (s: string) => Uint8Array;
      };
      luaG_runerror(L, to_luastring(STRING_OVERFLOW_MESSAGE));
    }
    return bless(L, str);
  };
  bounded.bounded = true;
  lstring.luaS_bless = bounded;
}
