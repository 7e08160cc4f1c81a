// Imports run one way (docs/ARCHITECTURE.md, "Layers"): this test fails when a module imports a
// layer above it or beside it, or when modules import each other in a cycle.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importCycles, importsOf, layerViolations, sourceFiles } from './layers.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

describe('import direction', () => {
  it('reads the sources (the check is not vacuous)', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(100);
    expect(importsOf(SRC, path.join('db', 'db.ts'))).toContain(path.join('txn', 'write-pipeline.ts'));
  });

  it('catches an upward import and a cycle in a made-up tree', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cairn-layers-'));
    try {
      const write = (file: string, text: string): void => {
        fs.mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
        fs.writeFileSync(path.join(dir, file), text);
      };
      write('storage/a.ts', "import { b } from '../db/b.js';\nexport const a = 1;\n");
      write('db/b.ts', "import { a } from '../storage/a.js';\nexport const b = a;\n");
      expect(layerViolations(dir)).toEqual([
        {
          from: path.join('storage', 'a.ts'),
          to: path.join('db', 'b.ts'),
          reason: "'storage' may not import 'db'",
        },
      ]);
      expect(importCycles(dir)).toEqual([[path.join('db', 'b.ts'), path.join('storage', 'a.ts')]]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has no import against the direction of the layers', () => {
    expect(layerViolations(SRC)).toEqual([]);
  });

  it('has no import cycles among modules', () => {
    expect(importCycles(SRC)).toEqual([]);
  });
});
