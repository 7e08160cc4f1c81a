// The bounds of Lua scripting (docs/lua.md, "Limits").

/**
 * SCRIPT_TIME_LIMIT_MS: how long one script may run before it is stopped with an error. Redis's
 * busy-reply-threshold (lua-time-limit) is 5 s, after which Redis answers BUSY to everyone else
 * and waits for SCRIPT KILL; a script here runs synchronously on the event loop, so nobody else
 * is served meanwhile and nobody could send SCRIPT KILL: the script is stopped instead.
 */
export const SCRIPT_TIME_LIMIT_MS = 5_000;

/** SCRIPT_HOOK_INSTRUCTIONS: the VM checks the time limit every this many Lua instructions. */
export const SCRIPT_HOOK_INSTRUCTIONS = 1_000;

/** SCRIPT_HEAP_CHECK_EVERY: every this many hook calls (~100k instructions) it checks the heap too. */
export const SCRIPT_HEAP_CHECK_EVERY = 100;

/**
 * SCRIPT_HEAP_GROWTH_MAX: how much the JavaScript heap may grow during one script before it is
 * stopped (fengari's tables and strings live in the JS heap; there is no allocator to count).
 */
export const SCRIPT_HEAP_GROWTH_MAX = 512 * 1024 * 1024;

/** SCRIPT_STRING_BYTES_MAX: the longest string string.rep may build (Redis's proto-max-bulk-len). */
export const SCRIPT_STRING_BYTES_MAX = 512 * 1024 * 1024;

/** SCRIPT_CACHE_MAX: scripts kept by SHA1; beyond it the oldest is forgotten (EVALSHA: NOSCRIPT). */
export const SCRIPT_CACHE_MAX = 10_000;

/** SCRIPT_REPLY_DEPTH_MAX: nested tables deeper than this in a script's reply are an error. */
export const SCRIPT_REPLY_DEPTH_MAX = 1_000;

/** STRING_OVERFLOW_MESSAGE: the error of a string past SCRIPT_STRING_BYTES_MAX, as C Lua's MAX_SIZE. */
export const STRING_OVERFLOW_MESSAGE = `string length overflow (a script's strings are at most ${SCRIPT_STRING_BYTES_MAX} bytes)`;
