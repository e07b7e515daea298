import { StringIndex } from '../../../src/core/string-index';

describe('StringIndex', () => {
  it('finds every key of a large table exactly and nothing else', () => {
    const entries: Array<[string, number]> = [];
    for (let i = 0; i < 50_000; i++) entries.push([`u${i}`, i]);
    const idx = new StringIndex(entries);
    expect(idx.size).toBe(50_000);
    for (let i = 0; i < 50_000; i += 7) expect(idx.get(String.fromCharCode(117, ...[...String(i)].map((c) => c.charCodeAt(0))))).toBe(i);
    expect(idx.get('u50000')).toBeUndefined();
    expect(idx.get('')).toBeUndefined();
    expect(idx.has('u0')).toBe(true);
  });

  it('keeps the last value of a repeated key, as Map does', () => {
    const idx = new StringIndex([['a', 1], ['b', 2], ['a', 3]] as Array<[string, number]>);
    expect(idx.get('a')).toBe(3);
    expect(idx.size).toBe(2);
  });

  it('handles non-ASCII keys and an empty table', () => {
    expect(new StringIndex<number>([]).get('x')).toBeUndefined();
    const idx = new StringIndex([['jürgen', 1], ['日本', 2]] as Array<[string, number]>);
    expect(idx.get('jürgen')).toBe(1);
    expect(idx.get('日本')).toBe(2);
    expect(idx.get('jurgen')).toBeUndefined();
  });
});
