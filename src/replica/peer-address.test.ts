import { describe, expect, it } from 'vitest';
import { InvalidPeerAddressError, parseHostPort, unreachableListen } from './peer-address.js';

describe('parseHostPort', () => {
  it('parses host:port and [ipv6]:port, and refuses the rest', () => {
    expect(parseHostPort('127.0.0.1:2380')).toEqual({ host: '127.0.0.1', port: 2380 });
    expect(parseHostPort('[::1]:2380')).toEqual({ host: '::1', port: 2380 });
    expect(() => parseHostPort('127.0.0.1')).toThrow(InvalidPeerAddressError);
    expect(() => parseHostPort('h:70000')).toThrow(InvalidPeerAddressError);
  });
});

describe('unreachableListen', () => {
  it('accepts the advertised address itself, a wildcard on its port, and loopback spelled another way', () => {
    expect(unreachableListen('10.0.0.5:2380', '10.0.0.5:2380')).toBeUndefined();
    expect(unreachableListen('0.0.0.0:2380', '10.0.0.5:2380')).toBeUndefined();
    expect(unreachableListen('[::]:2380', 'node-a.example:2380')).toBeUndefined();
    expect(unreachableListen('localhost:2380', '127.0.0.1:2380')).toBeUndefined();
    expect(unreachableListen('[::1]:2380', 'localhost:2380')).toBeUndefined();
  });

  it('names a different port, whatever the host', () => {
    expect(unreachableListen('127.0.0.1:2381', '127.0.0.1:2380')).toBe(
      'port 2381 is not the advertised port 2380',
    );
    expect(unreachableListen('0.0.0.0:2381', '10.0.0.5:2380')).toBe(
      'port 2381 is not the advertised port 2380',
    );
  });

  it('names a specific host that is not the advertised one', () => {
    expect(unreachableListen('127.0.0.1:2380', '10.0.0.5:2380')).toBe(
      'host 127.0.0.1 is not the advertised host 10.0.0.5',
    );
  });
});
