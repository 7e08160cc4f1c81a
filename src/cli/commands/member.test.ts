import { describe, expect, it } from 'vitest';
import { shellWord } from './member.js';

describe('shellWord', () => {
  it('leaves plain tokens and addresses alone', () => {
    expect(shellWord('cairn-cluster')).toBe('cairn-cluster');
    expect(shellWord('n1=10.0.0.1:7001,n2=10.0.0.2:7001')).toBe('n1=10.0.0.1:7001,n2=10.0.0.2:7001');
  });

  it('quotes what a shell would split or expand, quotes included', () => {
    expect(shellWord('my token')).toBe("'my token'");
    expect(shellWord('$HOME')).toBe("'$HOME'");
    expect(shellWord("it's")).toBe("'it'\\''s'");
    expect(shellWord('')).toBe("''");
  });
});
