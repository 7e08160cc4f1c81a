import { describe, expect, it } from 'vitest';
import { MEMBER_LIST_HEADERS, type MemberJson, memberRows, shellWord } from './member.js';

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

describe('member list rows', () => {
  const m = (name: string, started: boolean | undefined): MemberJson => ({
    name,
    id: '1',
    peerAddr: '127.0.0.1:1',
    resp: '',
    http: '',
    role: 'voter',
    isLeader: false,
    ...(started === undefined ? {} : { started }),
  });

  it('shows whether each member is recorded as started', () => {
    const col = MEMBER_LIST_HEADERS.indexOf('STARTED');
    expect(col).toBeGreaterThan(0);
    const rows = memberRows([m('n1', true), m('n2', false), m('n3', undefined)]);
    expect(rows.map((r) => r[col])).toEqual(['yes', 'no', '?']);
    for (const r of rows) expect(r.length).toBe(MEMBER_LIST_HEADERS.length);
  });
});
