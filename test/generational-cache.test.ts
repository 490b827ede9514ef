import { describe, expect, it } from 'vitest';
import { GenerationalCache } from '../src/generational-cache.js';

describe('GenerationalCache', () => {
  it('holds at most its limit, dropping the oldest generation whole', () => {
    const cache = new GenerationalCache<string, number>(4);
    for (let index = 0; index < 10; index++) cache.set(`k${index}`, index);
    expect(cache.size).toBeLessThanOrEqual(4);
    expect(cache.get('k9')).toBe(9);
    expect(cache.get('k8')).toBe(8);
    expect(cache.get('k0')).toBeUndefined();
  });

  it('keeps what is in use: an entry read from the older generation survives the next turnover', () => {
    const cache = new GenerationalCache<string, number>(4);
    cache.set('kept', 1);
    cache.set('a', 2);
    cache.set('b', 3); // newer full: 'kept' and 'a' are now the older generation
    expect(cache.get('kept')).toBe(1); // promoted
    cache.set('c', 4);
    cache.set('d', 5);
    expect(cache.get('kept')).toBe(1);
    expect(cache.get('a')).toBeUndefined();
  });

  it('overwrites a key in place and forgets deleted keys in either generation', () => {
    const cache = new GenerationalCache<string, number>(4);
    cache.set('x', 1);
    cache.set('x', 2);
    expect(cache.get('x')).toBe(2);
    cache.set('y', 3);
    cache.set('z', 4);
    cache.delete('x');
    cache.delete('z');
    expect([cache.get('x'), cache.get('y'), cache.get('z')]).toEqual([undefined, 3, undefined]);
  });
});
