// Scripts: a server's script cache (by SHA1) and the Lua VM that holds the compiled scripts.
// The VM is created at the first script, and SCRIPT FLUSH throws it away with every script (as
// Redis 7 resets its Lua interpreter). At most SCRIPT_CACHE_MAX scripts are kept: loading one
// more forgets the oldest (its EVALSHA then answers NOSCRIPT and clients fall back to EVAL).
// Each script keeps the flags of its shebang (shebang.ts).
import { SCRIPT_CACHE_MAX } from './limits.js';
import { NO_SHEBANG, parseShebang, type ScriptFlags } from './shebang.js';
import { LuaVm, type RunResult, sha1hex, type VmHost } from './vm.js';

export class Scripts {
  private vm: LuaVm | undefined;
  /** loaded: the cached SHA1s, oldest first, with their shebang's flags. */
  private readonly loaded = new Map<string, ScriptFlags>();

  constructor(
    private readonly timeLimitMs: number,
    private readonly max = SCRIPT_CACHE_MAX,
  ) {}

  get size(): number {
    return this.loaded.size;
  }

  has(sha: string): boolean {
    return this.loaded.has(sha);
  }

  /**
   * load compiles `body` unless cached; returns its SHA1 (the whole body's). A bad shebang or a
   * syntax error throws (CommandError). The shebang line is not compiled; its line feed is, so
   * the script's line numbers are its author's (as Redis's luaCreateFunction).
   */
  load(body: Buffer): string {
    const sha = sha1hex(body);
    if (this.loaded.has(sha)) return sha;
    const shebang = parseShebang(body);
    this.vm ??= new LuaVm(this.timeLimitMs);
    this.vm.load(sha, body.subarray(shebang.length));
    this.loaded.set(sha, shebang.flags);
    if (this.loaded.size > this.max) {
      const oldest = this.loaded.keys().next().value as string;
      this.loaded.delete(oldest);
      this.vm.unload(oldest);
    }
    return sha;
  }

  /** flagsOf: the flags of a cached script's shebang (the caller checked `has`). */
  flagsOf(sha: string): ScriptFlags {
    return this.loaded.get(sha) ?? NO_SHEBANG;
  }

  /** run runs a cached script (the caller checked `has`). */
  run(sha: string, keys: readonly Buffer[], argv: readonly Buffer[], host: VmHost): RunResult {
    this.vm ??= new LuaVm(this.timeLimitMs);
    return this.vm.run(sha, keys, argv, host);
  }

  /** flush forgets every script and the VM itself. */
  flush(): void {
    this.loaded.clear();
    this.vm = undefined;
  }
}
