import { FAMILY_NONE, FAMILY_V4, FAMILY_V6, cidrKey, parseCidr, parseIPv4, parseIp } from '../../../src/core/ip';

const words = new Uint32Array(4);
const v6 = (s: string): number[] => {
  expect(parseIp(s, words)).toBe(FAMILY_V6);
  return Array.from(words);
};

describe('parseIPv4', () => {
  it.each([
    ['0.0.0.0', 0],
    ['1.2.3.4', 0x01020304],
    ['255.255.255.255', 0xffffffff],
    ['27.111.12.9', 0x1b6f0c09],
  ])('%s', (text, value) => expect(parseIPv4(text)).toBe(value));

  it.each(['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.', '.1.2.3', '01.2.3.4', '1.2.3.4a', '1234.1.1.1', ' 1.2.3.4'])(
    'rejects %j',
    (text) => expect(parseIPv4(text)).toBe(-1),
  );
});

describe('parseIp', () => {
  it('reads IPv4 into word 0', () => {
    expect(parseIp('10.1.2.3', words)).toBe(FAMILY_V4);
    expect(words[0]).toBe(0x0a010203);
  });

  it('reads full, compressed and edge-compressed IPv6', () => {
    expect(v6('2001:0db8:0000:0000:0000:0000:0000:0001')).toEqual([0x20010db8, 0, 0, 1]);
    expect(v6('2001:db8::1')).toEqual([0x20010db8, 0, 0, 1]);
    expect(v6('::1')).toEqual([0, 0, 0, 1]);
    expect(v6('::')).toEqual([0, 0, 0, 0]);
    expect(v6('fe80::')).toEqual([0xfe800000, 0, 0, 0]);
    expect(v6('1:2:3:4:5:6:7:8')).toEqual([0x00010002, 0x00030004, 0x00050006, 0x00070008]);
    expect(v6('1::8')).toEqual([0x00010000, 0, 0, 8]);
    expect(v6('ABCD:ef01::')).toEqual([0xabcdef01, 0, 0, 0]);
  });

  it('returns IPv4-mapped IPv6 as IPv4 (dotted and hex forms)', () => {
    expect(parseIp('::ffff:1.2.3.4', words)).toBe(FAMILY_V4);
    expect(words[0]).toBe(0x01020304);
    expect(parseIp('::ffff:0102:0304', words)).toBe(FAMILY_V4);
    expect(words[0]).toBe(0x01020304);
  });

  it('keeps other embedded-IPv4 forms as IPv6', () => {
    expect(v6('64:ff9b::1.2.3.4')).toEqual([0x0064ff9b, 0, 0, 0x01020304]);
  });

  it('tolerates brackets and a zone suffix', () => {
    expect(v6('[2001:db8::1]')).toEqual([0x20010db8, 0, 0, 1]);
    expect(v6('fe80::1%eth0')).toEqual([0xfe800000, 0, 0, 1]);
  });

  it.each(['', 'abc', '1:2:3:4:5:6:7:8:9', '1::2::3', ':1:2', '1:2:', '12345::', '1:2:3:4:5:6:7::8', '::ffff:1.2.3', 'g::1', ':::'])(
    'rejects %j',
    (text) => expect(parseIp(text, words)).toBe(FAMILY_NONE),
  );
});

describe('parseCidr', () => {
  it('masks host bits and canonicalises', () => {
    const c = parseCidr('10.1.2.3/8');
    expect(typeof c).toBe('object');
    if (typeof c === 'string') return;
    expect(cidrKey(c)).toBe('10.0.0.0/8');
  });

  it('treats a bare address as a host route', () => {
    const c = parseCidr('192.0.2.7');
    if (typeof c === 'string') throw new Error(c);
    expect(c.bits).toBe(32);
    const d = parseCidr('2001:db8::7');
    if (typeof d === 'string') throw new Error(d);
    expect(d.bits).toBe(128);
  });

  it('turns a mapped v6 CIDR into the v4 one', () => {
    const c = parseCidr('::ffff:10.0.0.0/104');
    if (typeof c === 'string') throw new Error(c);
    expect(c.family).toBe(FAMILY_V4);
    expect(cidrKey(c)).toBe('10.0.0.0/8');
  });

  it('explains what is wrong', () => {
    expect(parseCidr('1.2.3.4/33')).toMatch(/longer than 32/);
    expect(parseCidr('2001:db8::/129')).toMatch(/longer than 128/);
    expect(parseCidr('1.2.3/24')).toMatch(/not an IP address/);
    expect(parseCidr('1.2.3.4/x')).toMatch(/not a prefix length/);
    expect(parseCidr('fe80::1%eth0/64')).toMatch(/zone/);
  });
});
