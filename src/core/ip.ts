/**
 * IP text to numbers without regexes or allocation, because every request pays for it.
 *
 * Results go into a caller-supplied Uint32Array: IPv4 in word 0, IPv6 in words 0..3 (big-endian
 * order, word 0 holds the first 32 bits). IPv4-mapped IPv6 ("::ffff:1.2.3.4") comes back as IPv4
 * so a dual-stack socket's view of a v4 peer matches the v4 CIDRs an admin wrote.
 */

export const FAMILY_NONE = 0;
export const FAMILY_V4 = 4;
export const FAMILY_V6 = 6;
export type IpFamily = typeof FAMILY_NONE | typeof FAMILY_V4 | typeof FAMILY_V6;

const COLON = 58;
const DOT = 46;

/** uint32 value of dotted IPv4 in s[start, end), or -1. Leading zeros are refused (octal ambiguity). */
export function parseIPv4(s: string, start = 0, end = s.length): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return -1;
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return -1;
    } else if (c === DOT) {
      if (digits === 0 || ++dots > 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 0x20;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

const groups = new Uint16Array(8);

/** IPv6 text in s[start, end) into out[0..3]; false when malformed. Accepts a trailing dotted quad. */
export function parseIPv6(s: string, out: Uint32Array, start = 0, end = s.length): boolean {
  if (end - start < 2) return false;
  let n = 0;
  let gap = -1;
  let i = start;
  if (s.charCodeAt(i) === COLON) {
    if (s.charCodeAt(i + 1) !== COLON) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    if (n === 8) return false;
    let v = 0;
    let digits = 0;
    let j = i;
    for (; j < end; j++) {
      const h = hexValue(s.charCodeAt(j));
      if (h < 0) break;
      if (++digits > 4) return false;
      v = (v << 4) | h;
    }
    if (j < end && s.charCodeAt(j) === DOT) {
      if (n > 6) return false;
      const v4 = parseIPv4(s, i, end);
      if (v4 < 0) return false;
      groups[n++] = v4 >>> 16;
      groups[n++] = v4 & 0xffff;
      break;
    }
    if (digits === 0) return false;
    groups[n++] = v;
    if (j === end) break;
    if (s.charCodeAt(j) !== COLON) return false;
    j++;
    if (j < end && s.charCodeAt(j) === COLON) {
      if (gap >= 0) return false;
      gap = n;
      j++;
    } else if (j === end) {
      return false;
    }
    i = j;
  }
  if (gap < 0) {
    if (n !== 8) return false;
  } else {
    // "::" stands for at least one zero group.
    if (n === 8) return false;
    const tail = n - gap;
    const shift = 8 - n;
    for (let k = tail - 1; k >= 0; k--) groups[gap + shift + k] = groups[gap + k];
    for (let k = 0; k < shift; k++) groups[gap + k] = 0;
  }
  out[0] = ((groups[0] << 16) | groups[1]) >>> 0;
  out[1] = ((groups[2] << 16) | groups[3]) >>> 0;
  out[2] = ((groups[4] << 16) | groups[5]) >>> 0;
  out[3] = ((groups[6] << 16) | groups[7]) >>> 0;
  return true;
}

/** True when words hold ::ffff:a.b.c.d. */
function isV4Mapped(w: Uint32Array): boolean {
  return w[0] === 0 && w[1] === 0 && w[2] === 0xffff;
}

/**
 * Parses a socket address (no port). Brackets and a "%zone" suffix are tolerated because some
 * stacks report them. Returns the family; on FAMILY_V4 the address is in out[0].
 */
export function parseIp(s: string, out: Uint32Array): IpFamily {
  let start = 0;
  let end = s.length;
  if (end === 0) return FAMILY_NONE;
  if (s.charCodeAt(0) === 91 /* [ */ && s.charCodeAt(end - 1) === 93 /* ] */) {
    start = 1;
    end--;
  }
  // A colon always shows up within the first five characters of IPv6 text.
  let v6 = false;
  const probe = Math.min(end, start + 5);
  for (let i = start; i < probe; i++) {
    if (s.charCodeAt(i) === COLON) {
      v6 = true;
      break;
    }
  }
  if (!v6) {
    const v = parseIPv4(s, start, end);
    if (v < 0) return FAMILY_NONE;
    out[0] = v;
    return FAMILY_V4;
  }
  const zone = s.indexOf('%', start);
  if (zone >= 0 && zone < end) end = zone;
  if (!parseIPv6(s, out, start, end)) return FAMILY_NONE;
  if (isV4Mapped(out)) {
    out[0] = out[3];
    return FAMILY_V4;
  }
  return FAMILY_V6;
}

export interface ParsedCidr {
  family: typeof FAMILY_V4 | typeof FAMILY_V6;
  /** Network address with host bits cleared (one word for v4, four for v6). */
  words: Uint32Array;
  bits: number;
}

/**
 * "a.b.c.d/n", "v6/n", or a bare address (a host route). Load-time only, so it may allocate.
 * A v6 CIDR inside ::ffff:0:0/96 becomes the equivalent v4 CIDR, matching parseIp's view of
 * mapped peers. Returns a reason string when malformed.
 */
export function parseCidr(text: string): ParsedCidr | string {
  const s = text.trim();
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  if (addr.indexOf('%') >= 0) return 'a zone index is not allowed in a CIDR';
  const words = new Uint32Array(4);
  const family = parseIp(addr, words);
  if (family === FAMILY_NONE) return `"${addr}" is not an IP address`;
  const isV6Text = addr.indexOf(':') >= 0;
  const maxBits = isV6Text ? 128 : 32;
  let bits = maxBits;
  if (slash >= 0) {
    const lenText = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText)) return `"${lenText}" is not a prefix length`;
    bits = Number(lenText);
    if (bits > maxBits) return `prefix length ${bits} is longer than ${maxBits}`;
  }
  if (family === FAMILY_V4 && isV6Text) {
    // Mapped text: "/104" in v6 terms is "/8" in v4 terms; shorter covers more than v4 space.
    if (bits < 96) {
      words[3] = words[0];
      words[0] = 0;
      words[1] = 0;
      words[2] = 0xffff;
      return { family: FAMILY_V6, words: maskWords(words, 4, bits), bits };
    }
    bits -= 96;
  }
  return family === FAMILY_V4
    ? { family, words: maskWords(words.subarray(0, 1), 1, bits), bits }
    : { family, words: maskWords(words, 4, bits), bits };
}

function maskWords(w: Uint32Array, count: number, bits: number): Uint32Array {
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    const keep = Math.max(0, Math.min(32, bits - i * 32));
    out[i] = keep === 0 ? 0 : keep === 32 ? w[i] : (w[i] & (~0 << (32 - keep))) >>> 0;
  }
  return out;
}

/** Canonical "network/bits" text, so equal networks written differently compare equal. */
export function cidrKey(c: ParsedCidr): string {
  if (c.family === FAMILY_V4) {
    const v = c.words[0];
    return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}/${c.bits}`;
  }
  const parts: string[] = [];
  for (let i = 0; i < 4; i++) parts.push((c.words[i] >>> 16).toString(16), (c.words[i] & 0xffff).toString(16));
  return `${parts.join(':')}/${c.bits}`;
}
