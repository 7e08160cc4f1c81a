// writeFileAtomic: replace a small file so that a crash leaves the old content or the new, never
// a mix or nothing (temporary file, fdatasync, rename, fsync of the directory).
import * as path from 'node:path';
import type { FileSystem } from './file-system.js';

export async function writeFileAtomic(fs: FileSystem, file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.tmp`;
  await fs.unlink(tmp);
  const handle = await fs.open(tmp, 'create');
  try {
    await handle.write(bytes, 0);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.rename(tmp, file);
  await fs.syncDir(path.dirname(file));
}
