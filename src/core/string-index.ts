/**
 * A read-only string -> value table for the per-call user lookup (digest user, asserted user,
 * From user -> account), built once per rule compile.
 *
 * Why not a Map: with 200 000 users the lookup of a freshly parsed string was the largest single
 * cost in the decision core (~20% of a decision, bench/core-bench.ts profile). V8's Map walks a
 * bucket array, then a separate entry table, then the stored key: three dependent cache misses
 * on a large heap before the value. Here the hash and the entry number sit side by side in one
 * Int32Array (open addressing, linear probing, load <= 0.5), so a hit costs one miss for the slot
 * and one for the stored key (compared exactly: a hash match alone never attributes a call), and
 * a miss usually ends at an empty slot without touching any string.
 */
export class StringIndex<T> {
  /** Per slot: [2i] the key's hash, [2i+1] entry number + 1 (0 = empty). */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly keys: string[] = [];
  private readonly values: T[] = [];

  constructor(entries: Iterable<readonly [string, T]>) {
    const list = [...entries];
    let cap = 16;
    while (cap < list.length * 2) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * 2);
    for (const [k, v] of list) this.set(k, v);
  }

  get size(): number {
    return this.keys.length;
  }

  get(key: string): T | undefined {
    const h = hashOf(key);
    const slots = this.slots;
    const mask = this.mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = slots[2 * i + 1];
      if (e === 0) return undefined;
      if (slots[2 * i] === h && this.keys[e - 1] === key) return this.values[e - 1];
    }
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Load time only: a later set of the same key replaces the value (as Map.set does). */
  private set(key: string, value: T): void {
    const h = hashOf(key);
    const slots = this.slots;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const e = slots[2 * i + 1];
      if (e === 0) {
        this.keys.push(key);
        this.values.push(value);
        slots[2 * i] = h;
        slots[2 * i + 1] = this.keys.length;
        return;
      }
      if (slots[2 * i] === h && this.keys[e - 1] === key) {
        this.values[e - 1] = value;
        return;
      }
    }
  }
}

/** FNV-1a over UTF-16 code units, then a murmur3 finaliser so low bits spread for the mask. */
function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}
