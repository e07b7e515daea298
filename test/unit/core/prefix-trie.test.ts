import { PrefixTrie } from '../../../src/core/prefix-trie';

describe('PrefixTrie', () => {
  const t = new PrefixTrie<string>(1);
  t.insert('+252', 'Somalia');
  t.insert('+25261', 'Somalia mobile');
  t.insert('+1876', 'Jamaica');
  t.insert('882', 'International networks');

  it('finds the longest prefix, ignoring a leading +', () => {
    expect(t.lookup('+252612345678')).toBe('Somalia mobile');
    expect(t.lookup('+252712345678')).toBe('Somalia');
    expect(t.lookup('252712345678')).toBe('Somalia');
    expect(t.lookup('+18765551234')).toBe('Jamaica');
    expect(t.lookup('+8821234')).toBe('International networks');
  });

  it('misses numbers that only share part of a prefix', () => {
    expect(t.lookup('+25')).toBeUndefined();
    expect(t.lookup('+12125551234')).toBeUndefined();
    expect(t.lookup('+')).toBeUndefined();
    expect(t.lookup('')).toBeUndefined();
    expect(t.matches('+2536')).toBe(false);
    expect(t.matches('+2526')).toBe(true);
  });

  it('stops at the first non-digit', () => {
    expect(t.lookup('+25x261')).toBeUndefined();
    expect(t.lookup('+252;x')).toBe('Somalia');
  });

  it('reports a duplicate prefix and rejects non-digits', () => {
    const d = new PrefixTrie<string>();
    expect(d.insert('+44', 'a')).toBeUndefined();
    expect(d.insert('44', 'b')).toBe('a');
    expect(d.size).toBe(1);
    expect(() => d.insert('+4a', 'x')).toThrow(/non-digit/);
    expect(() => d.insert('+', 'x')).toThrow(/empty/);
  });

  it('keeps working after growth and trim()', () => {
    const g = new PrefixTrie<number>(1);
    for (let i = 0; i < 5000; i++) g.insert(`+9${i}`, i);
    g.trim();
    expect(g.size).toBe(5000);
    expect(g.lookup('+94999123')).toBe(4999);
    expect(g.lookup('+90')).toBe(0);
  });
});
