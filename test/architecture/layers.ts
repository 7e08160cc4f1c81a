// The layers of src/ and the one direction imports may run (docs/ARCHITECTURE.md, "Layers"):
// cli > server > db (the embedded API) > txn > storage > io > stdx, with the RESP codec
// (protocol) and the RESP client beside them and the Raft core on its own. A module may import
// a module of its own layer or of a layer below it (relaxed layering); never one above, and never
// one beside it that is not listed below it. Tests (*.test.ts) assemble whole stacks and are exempt;
// so is the package entry point (src/index.ts), which re-exports the public API.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** BELOW: for each layer (a directory under src/), the layers it may import. */
export const BELOW: Readonly<Record<string, readonly string[]>> = {
  stdx: [],
  io: ['stdx'],
  protocol: ['stdx'],
  raft: ['stdx'],
  storage: ['io', 'stdx'],
  txn: ['storage', 'io', 'stdx'],
  db: ['txn', 'storage', 'io', 'stdx'],
  replica: ['db', 'txn', 'storage', 'raft', 'io', 'stdx'],
  client: ['protocol', 'io', 'stdx'],
  server: ['replica', 'db', 'txn', 'storage', 'protocol', 'io', 'stdx'],
  cli: ['server', 'replica', 'client', 'db', 'txn', 'storage', 'protocol', 'io', 'stdx'],
};

export interface Violation {
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

const IMPORT =
  /(?:^|\n)\s*((?:import|export)\s[^'"]*?)from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** sourceFiles lists the non-test TypeScript files under `srcDir`, relative to it. */
export function sourceFiles(srcDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) {
        out.push(path.relative(srcDir, full));
      }
    }
  };
  walk(srcDir);
  return out.sort();
}

/**
 * importsOf returns the relative imports of a source file, resolved to paths under src/;
 * `runtimeOnly` leaves out `import type` and `export type` statements, which the compiler erases.
 */
export function importsOf(srcDir: string, file: string, runtimeOnly = false): string[] {
  const text = fs.readFileSync(path.join(srcDir, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    if (runtimeOnly && m[1] !== undefined && /^(?:import|export)\s+type\s/.test(m[1])) continue;
    const spec = m[2] ?? m[3];
    if (spec === undefined || !spec.startsWith('.')) continue;
    const target = path.normalize(path.join(path.dirname(file), spec)).replace(/\.js$/, '.ts');
    out.push(target);
  }
  return out;
}

function layerOf(file: string): string {
  const first = file.split(path.sep)[0] ?? '';
  return first.endsWith('.ts') ? '' : first;
}

/** layerViolations lists imports that run against the direction of BELOW. */
export function layerViolations(srcDir: string): Violation[] {
  const out: Violation[] = [];
  for (const file of sourceFiles(srcDir)) {
    const from = layerOf(file);
    if (from === '') continue; // src/index.ts: the public entry point
    const allowed = BELOW[from];
    for (const target of importsOf(srcDir, file)) {
      const to = layerOf(target);
      if (target.startsWith('..')) {
        out.push({ from: file, to: target, reason: 'imports from outside src/' });
      } else if (allowed === undefined) {
        out.push({ from: file, to: target, reason: `layer '${from}' is not in the table` });
      } else if (to !== from && !allowed.includes(to)) {
        out.push({ from: file, to: target, reason: `'${from}' may not import '${to}'` });
      }
    }
  }
  return out;
}

/**
 * importCycles finds the cycles among source files (strongly connected components of more than
 * one file) over runtime imports. Type-only imports are left out: types that refer to each other
 * (a handler's context holds the session, which queues handlers) describe one another, they do
 * not make one module load the other; the layer check above still counts them.
 */
export function importCycles(srcDir: string): string[][] {
  const files = sourceFiles(srcDir);
  const edges = new Map(files.map((f) => [f, importsOf(srcDir, f, true).filter((t) => files.includes(t))]));
  // Tarjan's algorithm.
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      for (;;) {
        const w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
        if (w === v) break;
      }
      if (component.length > 1) cycles.push(component.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return cycles;
}
