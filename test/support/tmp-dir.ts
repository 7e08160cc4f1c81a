// Temporary directories for tests, removed when the test file finishes.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** tmpDir returns a fresh empty directory under the OS temp dir. */
export function tmpDir(label = 'test'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cairn-${label}-`));
  made.push(dir);
  return dir;
}

export function dirBytes(dir: string): number {
  let total = 0;
  for (const name of fs.readdirSync(dir)) {
    const st = fs.statSync(path.join(dir, name));
    if (st.isFile()) total += st.size;
  }
  return total;
}
