/**
 * Low-level SIP text helpers shared by the message, Via and URI parsers: comma-list splitting
 * that respects quoted strings and <...>, ;param lists, and %-decoding that never throws.
 *
 * Strings handled here are "byte strings": the message head is decoded as latin1 so one char is
 * one byte and the original bytes can be written back unchanged (see message.ts).
 */

/** [start, end) of one element of a comma-separated header value (RFC 3261 §7.3.1). */
export interface Span {
  start: number;
  end: number;
}

/**
 * Splits a header value at top-level commas. Commas inside "quoted strings" (with \-escapes) and
 * inside <URIs> do not split. Returned spans are trimmed of surrounding whitespace; empty
 * elements are skipped.
 */
export function splitCommaSpans(value: string): Span[] {
  const out: Span[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  const n = value.length;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === 0x3c /* < */) inAngle = true;
    else if (c === 0x3e /* > */) inAngle = false;
    else if (c === 0x2c /* , */ && !inAngle) {
      pushTrimmed(value, start, i, out);
      start = i + 1;
    }
  }
  pushTrimmed(value, start, n, out);
  return out;
}

/**
 * The first element of a comma-separated header value, as splitCommaSpans(value)[0] (undefined
 * when there is none). Most values hold one element: a native indexOf settles that without the
 * JS character loop and the span array (this runs for the top Via of every message).
 */
export function firstSpan(value: string): Span | undefined {
  if (value.indexOf(',') >= 0) return splitCommaSpans(value)[0];
  let start = 0;
  let end = value.length;
  while (start < end && isWs(value.charCodeAt(start))) start++;
  while (end > start && isWs(value.charCodeAt(end - 1))) end--;
  return end > start ? { start, end } : undefined;
}

function pushTrimmed(s: string, start: number, end: number, out: Span[]): void {
  while (start < end && isWs(s.charCodeAt(start))) start++;
  while (end > start && isWs(s.charCodeAt(end - 1))) end--;
  if (end > start) out.push({ start, end });
}

export function splitComma(value: string): string[] {
  return splitCommaSpans(value).map((s) => value.slice(s.start, s.end));
}

export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Parameter values: null for a flag parameter (";lr"), otherwise the raw text (quotes kept off). */
export type Params = Record<string, string | null>;

/**
 * An empty parameter table with no inherited keys (like Object.create(null), so "constructor" or
 * "__proto__" from the wire are plain own entries). Object.create(null) objects start in V8's
 * dictionary mode, which made every Via/URI/tag parameter table a hash table; instances of a
 * constructor whose prototype is itself prototype-less stay fast objects. ~35 vs ~62 ns to
 * build and read a two-parameter table (node 20 micro-benchmark).
 */
function NullProtoParams(this: object): void {}
NullProtoParams.prototype = Object.create(null) as object;
export function emptyParams<T = Params>(): T {
  return new (NullProtoParams as unknown as new () => T)();
}

/**
 * Parses ";a=b;c;d="q;x"" into {a:'b', c:null, d:'q;x'}. Names are lower-cased (parameter names
 * are case-insensitive, RFC 3261 §7.3.1); values are kept as written, quotes removed.
 * `s` must start at the first ';' (or be empty).
 */
export function parseParams(s: string): Params {
  const params: Params = emptyParams();
  let i = 0;
  const n = s.length;
  while (i < n) {
    while (i < n && (s.charCodeAt(i) === 0x3b /* ; */ || isWs(s.charCodeAt(i)))) i++;
    if (i >= n) break;
    let j = i;
    while (j < n) {
      const c = s.charCodeAt(j);
      if (c === 0x3d /* = */ || c === 0x3b || isWs(c)) break;
      j++;
    }
    const name = s.slice(i, j).toLowerCase();
    while (j < n && isWs(s.charCodeAt(j))) j++;
    if (j < n && s.charCodeAt(j) === 0x3d) {
      j++;
      while (j < n && isWs(s.charCodeAt(j))) j++;
      if (j < n && s.charCodeAt(j) === 0x22) {
        let k = j + 1;
        let v = '';
        while (k < n && s.charCodeAt(k) !== 0x22) {
          if (s.charCodeAt(k) === 0x5c && k + 1 < n) k++;
          v += s[k];
          k++;
        }
        params[name] = v;
        i = k + 1;
      } else {
        // Native indexOf, and trim() only when an end could be whitespace to it (control, space,
        // or non-ASCII such as NBSP): a JS character loop over branch values was the larger part
        // of Via parsing.
        let k = s.indexOf(';', j);
        if (k < 0) k = n;
        const v = s.slice(j, k);
        params[name] = v.length !== 0 && (mayTrim(v.charCodeAt(0)) || mayTrim(v.charCodeAt(v.length - 1))) ? v.trim() : v;
        i = k;
      }
    } else {
      if (name) params[name] = null;
      i = j;
    }
  }
  return params;
}

/** Characters String#trim() might remove: ASCII controls and space, and anything non-ASCII. */
function mayTrim(c: number): boolean {
  return c <= 0x20 || c >= 0x7f;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * %-decodes (RFC 3261 §19.1.2 "escaped") into UTF-8 text. Invalid escapes are kept literally
 * instead of throwing like decodeURIComponent does: callers get attacker-controlled input.
 * Input may be a latin1 byte string (non-ASCII bytes are treated as raw UTF-8 bytes).
 */
export function percentDecode(s: string): string {
  if (s.indexOf('%') < 0 && !hasHighBytes(s)) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) {
        bytes.push(h * 16 + l);
        i += 2;
        continue;
      }
    }
    if (c < 0x100) bytes.push(c);
    else for (const b of Buffer.from(s[i], 'utf8')) bytes.push(b);
  }
  return Buffer.from(bytes).toString('utf8');
}

/** True when a (latin1) byte string holds non-ASCII bytes, i.e. may need UTF-8 decoding. */
export function hasHighBytes(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return true;
  return false;
}

/** latin1 byte string -> JS text (UTF-8 decoded); cheap when ASCII. */
export function bytesToText(s: string): string {
  return hasHighBytes(s) ? Buffer.from(s, 'latin1').toString('utf8') : s;
}

/** JS text -> latin1 byte string of its UTF-8 encoding; cheap when ASCII. */
export function textToBytes(s: string): string {
  return hasHighBytes(s) ? Buffer.from(s, 'utf8').toString('latin1') : s;
}

/**
 * Buffer's own latin1 decoder. It is on Buffer.prototype (since Node 0.x) but not in @types/node;
 * Buffer#toString wraps it in argument checks and an encoding switch, which the proxy would pay
 * on every message it takes in.
 */
interface Latin1Methods {
  latin1Slice(start: number, end: number): string;
}

/** buf.toString('latin1', start, end). */
export function latin1Slice(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as Latin1Methods).latin1Slice(start, end);
}

/** A port number 0-65535 written as 1-5 digits, else undefined. */
export function parsePort(s: string): number | undefined {
  if (s.length === 0 || s.length > 5) return undefined;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return undefined;
    n = n * 10 + c;
  }
  return n <= 65535 ? n : undefined;
}

/**
 * A copy of `s` that shares no memory with the text it was cut from. V8 makes a slice of 13 chars
 * or more a view of its parent string, so a Call-ID or a transaction key cut from a message keeps
 * that whole message alive as long as the table entry that holds it: seconds for a lingering
 * transaction, the whole call for a dialog, for ~20 bytes of key (2,174 against 102 bytes held a
 * key of a 2 KB text, measured on Node 20). Concatenating makes a rope that slicing flattens into
 * a new string of its own, and only that stays referenced.
 */
export function own(s: string): string {
  return s.length < 13 ? s : (s + ' ').slice(0, -1);
}
