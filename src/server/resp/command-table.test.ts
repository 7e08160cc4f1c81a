import { describe, expect, it } from 'vitest';
import { Prng } from '../../stdx/prng.js';
import { aclCategories } from './commands/acl-categories.js';
import { COMMAND_TABLE } from './commands/index.js';

/** bySpelling: what lookup answered before its packed fast path (a lower-cased string). */
function bySpelling(name: Buffer) {
  return name.length > 16 ? undefined : COMMAND_TABLE.get(name.toString('latin1').toLowerCase());
}

describe('CommandTable.lookup', () => {
  it('finds every command in any case, short names by their packed bytes included', () => {
    const rng = new Prng(14);
    for (const spec of COMMAND_TABLE.all()) {
      expect(/^[\x21-\x7e]+$/.test(spec.name), spec.name).toBe(true);
      expect(spec.name.length).toBeLessThanOrEqual(16);
      const mixed = [...spec.name].map((c) => (rng.chance(0.5) ? c.toUpperCase() : c)).join('');
      for (const spelling of [spec.name, spec.name.toUpperCase(), mixed])
        expect(COMMAND_TABLE.lookup(Buffer.from(spelling, 'latin1')), spelling).toBe(spec);
    }
  });

  it('answers as the lower-cased name would for any bytes (near misses, zero and latin1 bytes)', () => {
    const rng = new Prng(15);
    const names = [...COMMAND_TABLE.all()].map((s) => s.name);
    for (let i = 0; i < 20_000; i++) {
      const base = Buffer.from(names[rng.int(names.length)]!, 'latin1');
      const name = Buffer.from(base);
      // Change a byte (or none), to anything: a letter's other case, a neighbour, 0, 0xc0.
      if (rng.chance(0.8) && name.length > 0) {
        const at = rng.int(name.length);
        const choices = [name[at]! ^ 0x20, name[at]! + 1, 0, 0xc0, 0xe0, rng.int(256)];
        name[at] = choices[rng.int(choices.length)]! & 0xff;
      }
      const cut = rng.chance(0.2) ? name.subarray(0, rng.int(name.length + 1)) : name;
      expect(COMMAND_TABLE.lookup(cut), JSON.stringify(cut.toString('latin1'))).toBe(bySpelling(cut));
    }
    expect(COMMAND_TABLE.lookup(Buffer.from('SET\0', 'latin1'))).toBeUndefined();
    expect(COMMAND_TABLE.lookup(Buffer.from('\0SET', 'latin1'))).toBeUndefined();
    expect(COMMAND_TABLE.lookup(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('ACL categories', () => {
  it('every command has some, and exactly one of fast and slow', () => {
    for (const spec of COMMAND_TABLE.all()) {
      const categories = aclCategories(spec);
      expect(categories.length, spec.name).toBeGreaterThan(0);
      expect(
        categories.filter((c) => c === 'fast' || c === 'slow'),
        spec.name,
      ).toHaveLength(1);
    }
  });
});
