import { CidrSet, CidrTrie } from '../../../src/core/cidr-trie';

describe('CidrTrie', () => {
  it('returns the longest matching IPv4 prefix', () => {
    const t = new CidrTrie<string>();
    t.insert('10.0.0.0/8', 'eight');
    t.insert('10.1.0.0/16', 'sixteen');
    t.insert('10.1.2.3/32', 'host');
    expect(t.lookup('10.9.9.9')).toBe('eight');
    expect(t.lookup('10.1.9.9')).toBe('sixteen');
    expect(t.lookup('10.1.2.3')).toBe('host');
    expect(t.lookup('10.1.2.4')).toBe('sixteen');
    expect(t.lookup('11.0.0.1')).toBeUndefined();
  });

  it('handles /0 and /32 at the edges of the range', () => {
    const t = new CidrTrie<string>();
    t.insert('0.0.0.0/0', 'any');
    t.insert('255.255.255.255/32', 'top');
    t.insert('0.0.0.0/32', 'bottom');
    expect(t.lookup('255.255.255.255')).toBe('top');
    expect(t.lookup('255.255.255.254')).toBe('any');
    expect(t.lookup('0.0.0.0')).toBe('bottom');
    expect(t.lookup('0.0.0.1')).toBe('any');
    // IPv4 /0 says nothing about IPv6.
    expect(t.lookup('2001:db8::1')).toBeUndefined();
  });

  it('matches IPv6 prefixes, /0 and /128', () => {
    const t = new CidrTrie<string>();
    t.insert('2001:db8::/32', 'doc');
    t.insert('2001:db8:1::/48', 'site');
    t.insert('2001:db8:1::42/128', 'host');
    expect(t.lookup('2001:db8:ffff::1')).toBe('doc');
    expect(t.lookup('2001:db8:1:2::1')).toBe('site');
    expect(t.lookup('2001:db8:1::42')).toBe('host');
    expect(t.lookup('2001:db8:1::43')).toBe('site');
    expect(t.lookup('2001:db9::1')).toBeUndefined();
    t.insert('::/0', 'any6');
    expect(t.lookup('2001:db9::1')).toBe('any6');
    // IPv6 /0 does not swallow IPv4 peers.
    expect(t.lookup('192.0.2.1')).toBeUndefined();
  });

  it('matches IPv4-mapped sources against IPv4 CIDRs', () => {
    const t = new CidrTrie<string>();
    t.insert('27.111.12.0/24', '2talk');
    expect(t.lookup('::ffff:27.111.12.40')).toBe('2talk');
    expect(t.lookup('::FFFF:27.111.13.40')).toBeUndefined();
  });

  it('stores mapped IPv6 CIDRs as IPv4 ones', () => {
    const t = new CidrTrie<string>();
    t.insert('::ffff:192.0.2.0/120', 'mapped');
    expect(t.lookup('192.0.2.77')).toBe('mapped');
  });

  it('replaces and reports the value already stored for the same network', () => {
    const t = new CidrTrie<string>();
    expect(t.insert('10.0.0.0/8', 'a')).toBeUndefined();
    expect(t.insert('10.255.0.0/8', 'b')).toBe('a');
    expect(t.size).toBe(1);
    expect(t.lookup('10.1.1.1')).toBe('b');
  });

  it('grows past its initial capacity and still answers after trim()', () => {
    const t = new CidrTrie<number>(2);
    for (let i = 0; i < 2000; i++) t.insert(`10.${i >> 8}.${i & 255}.0/24`, i);
    t.trim();
    expect(t.size).toBe(2000);
    expect(t.lookup('10.7.207.9')).toBe(7 * 256 + 207);
    expect(t.lookup('10.7.208.9')).toBeUndefined();
    expect(t.lookup('10.8.0.1')).toBeUndefined();
  });

  it('throws on malformed CIDRs and finds nothing for malformed addresses', () => {
    const t = new CidrTrie<string>();
    expect(() => t.insert('10.0.0.0/40', 'x')).toThrow(/invalid CIDR/);
    t.insert('0.0.0.0/0', 'any');
    expect(t.lookup('not-an-ip')).toBeUndefined();
  });
});

describe('CidrSet', () => {
  it('answers membership for both families', () => {
    const s = new CidrSet();
    expect(s.add('192.0.2.0/24')).toBe(true);
    expect(s.add('192.0.2.0/24')).toBe(false);
    s.add('2001:db8::/32');
    expect(s.has('192.0.2.200')).toBe(true);
    expect(s.has('::ffff:192.0.2.200')).toBe(true);
    expect(s.has('192.0.3.1')).toBe(false);
    expect(s.has('2001:db8::5')).toBe(true);
    expect(s.has('2001:db9::5')).toBe(false);
    expect(s.size).toBe(2);
  });
});

describe('CidrTrie, large', () => {
  it('gives the same longest match as a brute-force scan, for v4 and v6, short and long prefixes', () => {
    let seed = 11;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const v4 = (): number[] => [rand(4), rand(256), rand(256), rand(256)].map((x, i) => (i === 0 ? 10 + x : x));
    const cidrs: Array<{ text: string; bits: number; v6: boolean; words: number[] }> = [];
    const trie = new CidrTrie<string>();
    for (let i = 0; i < 1500; i++) {
      const bits = [0, 4, 8, 12, 15, 16, 17, 20, 24, 28, 32][rand(11)];
      const o = v4();
      const text = `${o.join('.')}/${bits}`;
      trie.insert(text, text);
      cidrs.push({ text, bits, v6: false, words: [((o[0] << 24) | (o[1] << 16) | (o[2] << 8) | o[3]) >>> 0] });
    }
    for (let i = 0; i < 1500; i++) {
      const bits = [3, 12, 16, 17, 32, 40, 48, 64, 128][rand(9)];
      const g = [0x2001, 0x0db8 + rand(4), rand(65536), rand(65536), 0, 0, 0, rand(65536)];
      const text = `${g.map((x) => x.toString(16)).join(':')}/${bits}`;
      trie.insert(text, text);
      cidrs.push({ text, bits, v6: true, words: [0, 2, 4, 6].map((k) => ((g[k] << 16) | g[k + 1]) >>> 0) });
    }
    trie.trim();
    const prefixOf = (w: number[], bits: number): boolean[] => {
      const out: boolean[] = [];
      for (let b = 0; b < bits; b++) out.push(((w[b >>> 5] >>> (31 - (b & 31))) & 1) === 1);
      return out;
    };
    const covers = (c: (typeof cidrs)[number], w: number[]): boolean => prefixOf(c.words, c.bits).every((bit, i) => bit === prefixOf(w, c.bits)[i]);
    // Equal lengths covering one address are the same network: the later insert replaced the earlier.
    const naive = (v6: boolean, w: number[]): string | undefined => {
      let best: (typeof cidrs)[number] | undefined;
      for (const c of cidrs) if (c.v6 === v6 && covers(c, w) && (best === undefined || c.bits >= best.bits)) best = c;
      return best?.text;
    };
    let matched = 0;
    for (let i = 0; i < 400; i++) {
      const base = cidrs[rand(cidrs.length)];
      if (!base.v6) {
        const addr = (base.words[0] ^ (rand(2) === 0 ? 0 : rand(1 << 12))) >>> 0;
        const text = `${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
        const want = naive(false, [addr]);
        expect(trie.lookup(text)).toBe(want);
        if (want !== undefined) matched++;
      } else {
        const w = base.words.map((x, k) => (k === 3 ? (x ^ rand(1 << 16)) >>> 0 : x));
        const groups: string[] = [];
        for (const x of w) groups.push((x >>> 16).toString(16), (x & 0xffff).toString(16));
        const text = groups.join(':');
        const want = naive(true, w);
        expect(trie.lookup(text)).toBe(want);
        if (want !== undefined) matched++;
      }
    }
    expect(matched).toBeGreaterThan(300);
  });
});
