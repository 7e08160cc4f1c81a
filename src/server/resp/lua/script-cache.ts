// Scripts: a server's script cache (by SHA1) and the Lua VM that holds the compiled scripts.
// The VM is created at the first script, and SCRIPT FLUSH throws it away with every script (as
// Redis 7 resets its Lua interpreter). At most SCRIPT_CACHE_MAX scripts are kept: loading one
// more forgets the oldest (its EVALSHA then answers NOSCRIPT and clients fall back to EVAL).
import { SCRIPT_CACHE_MAX } from './limits.js';
import { LuaVm, type RunResult, sha1hex, type VmHost } from './vm.js';

export class Scripts {
  private vm: LuaVm | undefined;
  /** loaded: the cached SHA1s, oldest first. */
  private readonly loaded = new Set<string>();

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

  /** load compiles `body` unless cached; returns its SHA1. A syntax error throws (CommandError). */
  load(body: Buffer): string {
    const sha = sha1hex(body);
    if (this.loaded.has(sha)) return sha;
    this.vm ??= new LuaVm(this.timeLimitMs);
    this.vm.load(sha, body);
    this.loaded.add(sha);
    if (this.loaded.size > this.max) {
      const oldest = this.loaded.values().next().value as string;
      this.loaded.delete(oldest);
      this.vm.unload(oldest);
    }
    return sha;
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
