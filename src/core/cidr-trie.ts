import { FAMILY_NONE, FAMILY_V4, FAMILY_V6, parseCidr, parseIp, type ParsedCidr } from './ip';

/**
 * Longest-prefix match over IPv4 and IPv6 CIDRs: a binary trie packed into one Int32Array
 * (three slots a node: child for bit 0, child for bit 1, value index + 1), so 10 000 CIDRs cost
 * about a megabyte and a lookup is a short loop of array reads with no allocation.
 *
 * The families are separate trees (roots at offsets 0 and 3): "::/0" does not admit IPv4
 * peers, while mapped addresses (::ffff:a.b.c.d) are looked up as the IPv4 they are.
 */

const STRIDE = 3;
const V4_ROOT = 0;
const V6_ROOT = STRIDE;

const scratch = new Uint32Array(4);

export class CidrTrie<T> {
  private nodes: Int32Array;
  private used = 2 * STRIDE;
  private readonly values: T[] = [];

  constructor(initialNodes = 16) {
    this.nodes = new Int32Array(Math.max(2, initialNodes) * STRIDE);
  }

  /** Number of distinct prefixes stored. */
  get size(): number {
    return this.values.length;
  }

  /**
   * Stores value for the CIDR (or bare address). Returns the value that was already stored for
   * exactly this network, if any (and replaces it). Throws on malformed text.
   */
  insert(cidr: string, value: T): T | undefined {
    const parsed = parseCidr(cidr);
    if (typeof parsed === 'string') throw new Error(`invalid CIDR "${cidr}": ${parsed}`);
    return this.insertParsed(parsed, value);
  }

  insertParsed(c: ParsedCidr, value: T): T | undefined {
    let node = c.family === FAMILY_V4 ? V4_ROOT : V6_ROOT;
    for (let i = 0; i < c.bits; i++) {
      const bit = (c.words[i >>> 5] >>> (31 - (i & 31))) & 1;
      const slot = node + bit;
      let next = this.nodes[slot];
      if (next === 0) {
        next = this.allocNode();
        this.nodes[slot] = next;
      }
      node = next;
    }
    const at = this.nodes[node + 2];
    if (at !== 0) {
      const previous = this.values[at - 1];
      this.values[at - 1] = value;
      return previous;
    }
    this.values.push(value);
    this.nodes[node + 2] = this.values.length;
    return undefined;
  }

  /** Longest match for an address in text form; undefined when none matches or the text is not an IP. */
  lookup(ip: string): T | undefined {
    const family = parseIp(ip, scratch);
    return family === FAMILY_NONE ? undefined : this.lookupParsed(family, scratch);
  }

  /** Longest match for an address already parsed by parseIp (lets one parse serve several tries). */
  lookupParsed(family: number, words: Uint32Array): T | undefined {
    const t = this.nodes;
    let best = 0;
    if (family === FAMILY_V4) {
      const a = words[0];
      let node = V4_ROOT;
      best = t[node + 2];
      for (let bit = 31; bit >= 0; bit--) {
        node = t[node + ((a >>> bit) & 1)];
        if (node === 0) break;
        const v = t[node + 2];
        if (v !== 0) best = v;
      }
    } else if (family === FAMILY_V6) {
      let node = V6_ROOT;
      best = t[node + 2];
      outer: for (let w = 0; w < 4; w++) {
        const a = words[w];
        for (let bit = 31; bit >= 0; bit--) {
          node = t[node + ((a >>> bit) & 1)];
          if (node === 0) break outer;
          const v = t[node + 2];
          if (v !== 0) best = v;
        }
      }
    }
    return best === 0 ? undefined : this.values[best - 1];
  }

  /** Drops spare capacity once loading is done. */
  trim(): void {
    if (this.nodes.length > this.used) this.nodes = this.nodes.slice(0, this.used);
  }

  /** Bytes held by the node array (for summaries and benchmarks). */
  get nodeBytes(): number {
    return this.nodes.byteLength;
  }

  private allocNode(): number {
    if (this.used + STRIDE > this.nodes.length) {
      const grown = new Int32Array(this.nodes.length * 2);
      grown.set(this.nodes);
      this.nodes = grown;
    }
    const at = this.used;
    this.used += STRIDE;
    return at;
  }
}

/** Membership-only view: "is this address inside any of these networks?" */
export class CidrSet {
  private readonly trie = new CidrTrie<true>();

  /** Adds a CIDR; false when exactly that network was already present. Throws on malformed text. */
  add(cidr: string): boolean {
    return this.trie.insert(cidr, true) === undefined;
  }

  addParsed(c: ParsedCidr): boolean {
    return this.trie.insertParsed(c, true) === undefined;
  }

  has(ip: string): boolean {
    return this.trie.lookup(ip) === true;
  }

  hasParsed(family: number, words: Uint32Array): boolean {
    return this.trie.lookupParsed(family, words) === true;
  }

  get size(): number {
    return this.trie.size;
  }

  trim(): void {
    this.trie.trim();
  }
}
