import { describe, expect, it } from 'vitest';
import { memoized } from '../src/memo.js';

describe('memoized', () => {
  it('computes a value once per key, and forgets the oldest key past its limit', () => {
    const calls: string[] = [];
    const upper = memoized((key) => {
      calls.push(key);
      return key.toUpperCase();
    }, 2);
    expect([upper('a'), upper('a'), upper('b'), upper('c'), upper('a')]).toEqual(['A', 'A', 'B', 'C', 'A']);
    expect(calls).toEqual(['a', 'b', 'c', 'a']);
  });
});
