/**
 * Longest-prefix match over decimal digits (E.164 without the '+'): a ten-way trie packed into
 * an Int32Array, so a lookup is one array read a digit and 50 000 prefixes need no objects.
 */

const FANOUT = 10;

export class PrefixTrie<T> {
  /** Child node numbers, FANOUT a node; 0 means none (the root is never a child). */
  private kids: Int32Array;
  /** Value index + 1 a node; 0 means no prefix ends here. */
  private vals: Int32Array;
  private used = 1;
  private readonly values: T[] = [];

  constructor(initialNodes = 8) {
    const n = Math.max(1, initialNodes);
    this.kids = new Int32Array(n * FANOUT);
    this.vals = new Int32Array(n);
  }

  get size(): number {
    return this.values.length;
  }

  /**
   * Stores value under prefix ("+252" or "252"). Returns the value already stored for exactly
   * this prefix, if any (and replaces it). Throws when the prefix is not digits.
   */
  insert(prefix: string, value: T): T | undefined {
    const start = prefix.charCodeAt(0) === 43 ? 1 : 0;
    if (prefix.length === start) throw new Error(`empty prefix "${prefix}"`);
    let node = 0;
    for (let i = start; i < prefix.length; i++) {
      const d = prefix.charCodeAt(i) - 48;
      if (d < 0 || d > 9) throw new Error(`prefix "${prefix}" has a non-digit`);
      const slot = node * FANOUT + d;
      let next = this.kids[slot];
      if (next === 0) {
        next = this.allocNode();
        this.kids[slot] = next;
      }
      node = next;
    }
    const at = this.vals[node];
    if (at !== 0) {
      const previous = this.values[at - 1];
      this.values[at - 1] = value;
      return previous;
    }
    this.values.push(value);
    this.vals[node] = this.values.length;
    return undefined;
  }

  /** Value of the longest stored prefix of number (a leading '+' is skipped; stops at a non-digit). */
  lookup(number: string): T | undefined {
    const kids = this.kids;
    const vals = this.vals;
    let node = 0;
    let best = vals[0];
    const len = number.length;
    for (let i = number.charCodeAt(0) === 43 ? 1 : 0; i < len; i++) {
      const d = number.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      node = kids[node * FANOUT + d];
      if (node === 0) break;
      const v = vals[node];
      if (v !== 0) best = v;
    }
    return best === 0 ? undefined : this.values[best - 1];
  }

  /** True when some stored prefix is a prefix of number. */
  matches(number: string): boolean {
    return this.lookup(number) !== undefined;
  }

  /** Drops spare capacity once loading is done. */
  trim(): void {
    if (this.vals.length > this.used) {
      this.kids = this.kids.slice(0, this.used * FANOUT);
      this.vals = this.vals.slice(0, this.used);
    }
  }

  get nodeBytes(): number {
    return this.kids.byteLength + this.vals.byteLength;
  }

  private allocNode(): number {
    if (this.used >= this.vals.length) {
      const kids = new Int32Array(this.kids.length * 2);
      kids.set(this.kids);
      this.kids = kids;
      const vals = new Int32Array(this.vals.length * 2);
      vals.set(this.vals);
      this.vals = vals;
    }
    return this.used++;
  }
}
