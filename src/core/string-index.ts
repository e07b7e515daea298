/**
 * A read-only string -> value table for the per-call user lookup (digest user, asserted user,
 * From user -> account), built once per rule compile.
 *
 * Why not a Map: with 200 000 users the lookup of a freshly parsed string was the largest single
 * cost in the decision core (~20% of a decision, bench/core-bench.ts profile). V8's Map walks a
 * bucket array, then a separate entry table, then the stored key: three dependent cache misses
 * on a large heap before the value. Here the hash, the entry number and where the key's characters
 * sit are side by side in one Int32Array (open addressing, linear probing, load <= 0.5), and the
 * keys' characters are packed in one Uint16Array, so a hit costs one miss for the slot and one for
 * the characters (compared exactly: a hash match alone never attributes a call), with no key array
 * or string object to load; a miss usually ends at an empty slot without touching any key. Packing
 * the characters gained ~7% on the skewed core benchmark over keeping the key strings (paired
 * runs on an idle machine, 538-585k -> 594-624k decisions/s).
 */
export class StringIndex<T> {
  /** Per slot: [4i] the key's hash, [4i+1] entry number + 1 (0 = empty), [4i+2] where its characters start in `chars`, [4i+3] its length. */
  private readonly slots: Int32Array;
  private readonly mask: number;
  /** Every key's UTF-16 code units, back to back: a hit compares against these, not a string object. */
  private readonly chars: Uint16Array;
  private used = 0;
  private readonly values: T[] = [];

  constructor(entries: Iterable<readonly [string, T]>) {
    const list = [...entries];
    let cap = 16;
    while (cap < list.length * 2) cap *= 2;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap * 4);
    let total = 0;
    for (const [k] of list) total += k.length;
    this.chars = new Uint16Array(Math.max(1, total));
    for (const [k, v] of list) this.set(k, v);
  }

  get size(): number {
    return this.values.length;
  }

  get(key: string): T | undefined {
    const h = hashOf(key);
    const slots = this.slots;
    const mask = this.mask;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const e = slots[4 * i + 1];
      if (e === 0) return undefined;
      if (slots[4 * i] === h && this.sameKey(key, slots[4 * i + 2], slots[4 * i + 3])) return this.values[e - 1];
    }
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** Exact comparison: a hash match alone never attributes a call. */
  private sameKey(key: string, at: number, length: number): boolean {
    if (key.length !== length) return false;
    const chars = this.chars;
    for (let i = 0; i < length; i++) if (chars[at + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Load time only: a later set of the same key replaces the value (as Map.set does). */
  private set(key: string, value: T): void {
    const h = hashOf(key);
    const slots = this.slots;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const e = slots[4 * i + 1];
      if (e === 0) {
        this.values.push(value);
        slots[4 * i] = h;
        slots[4 * i + 1] = this.values.length;
        slots[4 * i + 2] = this.used;
        slots[4 * i + 3] = key.length;
        for (let c = 0; c < key.length; c++) this.chars[this.used + c] = key.charCodeAt(c);
        this.used += key.length;
        return;
      }
      if (slots[4 * i] === h && this.sameKey(key, slots[4 * i + 2], slots[4 * i + 3])) {
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
