import { describe, expect, it } from 'vitest';
import { AssertionError, assert } from './assert.js';

describe('assert', () => {
  it('passes on truthy and throws AssertionError on falsy', () => {
    expect(() => assert(1)).not.toThrow();
    expect(() => assert(0, 'zero')).toThrow(AssertionError);
    expect(() => assert(false, 'boom')).toThrow('boom');
  });
});
