// Runs every trace in testdata/ (the format is described in interaction.ts). Set
// CAIRN_REWRITE_TRACES=1 to regenerate the expected output after an intended change, then
// review the diff like code.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatTrace, Interaction, parseTrace } from './interaction.js';

const dir = join(import.meta.dirname, 'testdata');
const rewrite = process.env.CAIRN_REWRITE_TRACES === '1';

describe('interaction traces', () => {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.txt'))) {
    it(file, () => {
      const text = readFileSync(join(dir, file), 'utf8');
      const cases = parseTrace(text);
      const it = new Interaction();
      const results = cases.map((c) => ({ ...c, actual: it.run(c.command) }));
      if (rewrite) {
        // Keep the leading comment block of the file as its header.
        const header = text.slice(0, text.length - text.trimStart().length) + headerOf(text);
        writeFileSync(join(dir, file), formatTrace(header, results));
        return;
      }
      for (const r of results)
        expect(`line ${r.line}: ${r.command}\n${r.actual}`).toBe(
          `line ${r.line}: ${r.command}\n${r.expected}`,
        );
    });
  }
});

function headerOf(text: string): string {
  const lines = text.trimStart().split('\n');
  const out: string[] = [];
  for (const l of lines) {
    if (!l.startsWith('#')) break;
    out.push(l);
  }
  return out.length > 0 ? `${out.join('\n')}\n\n` : '';
}
