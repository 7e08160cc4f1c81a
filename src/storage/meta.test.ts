import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tmpDir } from '../../test/support/tmp-dir.js';
import { nodeFileSystem } from '../io/node-file-system.js';
import { CorruptionError, IncompatibleError } from './errors.js';
import {
  decodeMeta,
  encodeMeta,
  FORMAT_NEW_STORE,
  loadOrCreateMeta,
  type Meta,
  readMeta,
  writeMeta,
} from './meta.js';

const meta: Meta = { format: 1, engine: 'cask', generation: 3, createdAtMs: 1, fields: { retired: [1, 2] } };

describe('metadata', () => {
  it('round-trips and rejects any damaged byte', () => {
    const bytes = encodeMeta(meta);
    expect(decodeMeta(bytes)).toEqual(meta);
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i] = (copy[i] as number) ^ 0x01;
      expect(typeof decodeMeta(copy)).toBe('string');
    }
  });

  it('takes the newest valid copy', async () => {
    const dir = tmpDir('meta');
    await writeMeta(nodeFileSystem, dir, meta);
    fs.writeFileSync(path.join(dir, 'META-2'), encodeMeta({ ...meta, generation: 9 }));
    expect((await readMeta(nodeFileSystem, dir)).meta?.generation).toBe(9);
    fs.writeFileSync(path.join(dir, 'META-2'), 'torn');
    const read = await readMeta(nodeFileSystem, dir);
    expect(read.meta?.generation).toBe(3);
    expect(read.problems).toEqual(['META-2: too short']);
  });

  it('creates, repairs, and refuses what it cannot trust', async () => {
    const dir = tmpDir('meta');
    const created = await loadOrCreateMeta(nodeFileSystem, dir, 'cask', 5, true);
    expect(created.meta).toMatchObject({ format: FORMAT_NEW_STORE, engine: 'cask', generation: 1 });
    fs.rmSync(path.join(dir, 'META-1'));
    const repaired = await loadOrCreateMeta(nodeFileSystem, dir, 'cask', 6, false);
    expect(repaired.problems).toEqual(['META-1: missing']);
    expect(fs.existsSync(path.join(dir, 'META-1'))).toBe(true);
    await expect(loadOrCreateMeta(nodeFileSystem, dir, 'lmdb', 7, false)).rejects.toBeInstanceOf(
      IncompatibleError,
    );
    fs.writeFileSync(path.join(dir, 'META-1'), 'x');
    fs.writeFileSync(path.join(dir, 'META-2'), 'y');
    await expect(loadOrCreateMeta(nodeFileSystem, dir, 'cask', 8, false)).rejects.toBeInstanceOf(
      CorruptionError,
    );
  });
});
