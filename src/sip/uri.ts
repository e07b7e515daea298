/**
 * SIP/SIPS and tel: URI parsing (RFC 3261 §19.1, RFC 3966) and name-addr / addr-spec parsing
 * (RFC 3261 §20.10, §25.1). Hand-written scanners, no regex backtracking on attacker input.
 * Parse errors throw UriError; tryParse* variants return undefined.
 */
import { isIP } from 'node:net';
import { ipVersion } from './address';
import { Params, emptyParams, parseParams, percentDecode, isWs, parsePort } from './syntax';

export { parsePort };

export class UriError extends Error {
  constructor(message: string, readonly input: string) {
    super(message);
    this.name = 'UriError';
  }
}

export interface SipUri {
  scheme: 'sip' | 'sips';
  /** %-decoded user without its ;user-params ("+6421555" from "sip:+6421555;phone-context=+64@h"). */
  user?: string;
  /** The user part exactly as written, params included. */
  userRaw?: string;
  /** Parameters written inside the user part (RFC 3261 §19.1.6 telephone-subscriber), e.g. phone-context. */
  userParams: Params;
  password?: string;
  /** Lower-cased host; IPv6 without brackets. */
  host: string;
  /** True when host is an IP literal (v4 or v6). */
  hostIsIp: boolean;
  port?: number;
  /** uri-parameters: transport, lr, user, maddr, ... (names lower-cased). */
  params: Params;
  /** ?header=value pairs, %-decoded. */
  headers: Record<string, string>;
  /** ;phone-context from the user part, if any. */
  phoneContext?: string;
}

export interface TelUri {
  scheme: 'tel';
  /** The number as written, %-decoded, without parameters (visual separators kept). */
  number: string;
  params: Params;
  phoneContext?: string;
}

export type Uri = SipUri | TelUri;

/** Parses a sip:, sips: or tel: URI. Throws UriError. */
export function parseUri(input: string): Uri {
  const s = input.trim();
  const colon = s.indexOf(':');
  if (colon <= 0) throw new UriError('URI has no scheme', input);
  const scheme = s.slice(0, colon).toLowerCase();
  if (scheme === 'sip' || scheme === 'sips') return parseSipBody(scheme, s.slice(colon + 1), input);
  if (scheme === 'tel') return parseTelBody(s.slice(colon + 1), input);
  throw new UriError(`unsupported URI scheme "${scheme}"`, input);
}

export function tryParseUri(input: string): Uri | undefined {
  try {
    return parseUri(input);
  } catch {
    return undefined;
  }
}

/** Parses a sip:/sips: URI only. Throws UriError for anything else. */
export function parseSipUri(input: string): SipUri {
  const u = parseUri(input);
  if (u.scheme === 'tel') throw new UriError('expected a sip: or sips: URI', input);
  return u;
}

function parseSipBody(scheme: 'sip' | 'sips', rest: string, input: string): SipUri {
  // Headers (?a=b) come last and cannot contain an unescaped '@', so find them first.
  let headersPart = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    headersPart = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let userinfo: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  // host[:port][;params]
  let host: string;
  let i: number;
  if (rest.charCodeAt(0) === 0x5b /* [ */) {
    const close = rest.indexOf(']');
    if (close < 0) throw new UriError('unterminated IPv6 reference', input);
    host = rest.slice(1, close);
    if (isIP(host) !== 6) throw new UriError(`invalid IPv6 host "${host}"`, input);
    i = close + 1;
  } else {
    i = 0;
    while (i < rest.length) {
      const c = rest.charCodeAt(i);
      if (c === 0x3a /* : */ || c === 0x3b /* ; */) break;
      i++;
    }
    host = rest.slice(0, i);
    if (!isValidHostname(host)) throw new UriError(`invalid host "${host}"`, input);
  }
  let port: number | undefined;
  if (rest.charCodeAt(i) === 0x3a) {
    let j = i + 1;
    while (j < rest.length && rest.charCodeAt(j) !== 0x3b) j++;
    port = parsePort(rest.slice(i + 1, j));
    if (port === undefined) throw new UriError(`invalid port "${rest.slice(i + 1, j)}"`, input);
    i = j;
  }
  if (i < rest.length && rest.charCodeAt(i) !== 0x3b) throw new UriError('garbage after host', input);
  const params = parseParams(rest.slice(i));

  const uri: SipUri = {
    scheme,
    host: host.toLowerCase(),
    hostIsIp: ipVersion(host) !== 0,
    params,
    userParams: emptyParams(),
    headers: parseUriHeaders(headersPart),
  };
  if (port !== undefined) uri.port = port;
  if (userinfo !== undefined) {
    // user[:password]; a ':' inside user params (phone-context) is unlikely but the password
    // separator must come before any ';'.
    let user = userinfo;
    const semi = user.indexOf(';');
    const colon = user.indexOf(':');
    if (colon >= 0 && (semi < 0 || colon < semi)) {
      uri.password = percentDecode(user.slice(colon + 1));
      user = user.slice(0, colon);
    }
    uri.userRaw = user;
    const us = user.indexOf(';');
    if (us >= 0) {
      uri.userParams = parseParams(user.slice(us));
      user = user.slice(0, us);
    }
    uri.user = percentDecode(user);
    const pc = uri.userParams['phone-context'];
    if (pc) uri.phoneContext = percentDecode(pc);
  }
  return uri;
}

function parseTelBody(rest: string, input: string): TelUri {
  const q = rest.indexOf('?');
  if (q >= 0) rest = rest.slice(0, q);
  const semi = rest.indexOf(';');
  const rawNumber = semi >= 0 ? rest.slice(0, semi) : rest;
  if (!rawNumber) throw new UriError('tel: URI without a number', input);
  const params = semi >= 0 ? parseParams(rest.slice(semi)) : emptyParams();
  const uri: TelUri = { scheme: 'tel', number: percentDecode(rawNumber), params };
  const pc = params['phone-context'];
  if (pc) uri.phoneContext = percentDecode(pc);
  return uri;
}

function parseUriHeaders(s: string): Record<string, string> {
  const out: Record<string, string> = emptyParams<Record<string, string>>();
  if (!s) return out;
  for (const pair of s.split('&')) {
    const eq = pair.indexOf('=');
    if (eq < 0) out[percentDecode(pair)] = '';
    else out[percentDecode(pair.slice(0, eq))] = percentDecode(pair.slice(eq + 1));
  }
  return out;
}

function isValidHostname(h: string): boolean {
  if (h.length === 0 || h.length > 255) return false;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d || c === 0x2e || c === 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** The number a URI dials: tel: number or sip: user, with its phone-context (for CallAttempt). */
export function dialledOf(uri: Uri): { dialled: string; phoneContext?: string } | undefined {
  if (uri.scheme === 'tel') return { dialled: uri.number, phoneContext: uri.phoneContext };
  if (uri.user === undefined) return undefined;
  return { dialled: uri.user, phoneContext: uri.phoneContext };
}

/** "host" or "[v6]" with ":port" when given. */
export function formatHostPort(host: string, port?: number): string {
  const h = host.indexOf(':') >= 0 && host.charCodeAt(0) !== 0x5b ? `[${host}]` : host;
  return port === undefined ? h : `${h}:${port}`;
}

export interface NameAddr {
  /** Display name, unquoted and unescaped; undefined when absent. */
  displayName?: string;
  /** The URI text between < > (or the bare addr-spec). */
  uri: string;
  /** Header parameters after the address (tag, expires, q, ...). */
  params: Params;
}

/**
 * Parses name-addr / addr-spec as in From, To, Contact, Route, Record-Route, P-Asserted-Identity
 * (RFC 3261 §20.10). In the bare addr-spec form every ';param' belongs to the header, not the
 * URI (§20.10: URIs with params must be in <>). Throws UriError.
 */
export function parseNameAddr(input: string): NameAddr {
  const s = input;
  let i = 0;
  const n = s.length;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  let displayName: string | undefined;
  let uri: string;
  let rest: string;
  const lt = findUnquoted(s, 0x3c /* < */, i);
  if (lt >= 0) {
    let dn = s.slice(i, lt).trim();
    if (dn.charCodeAt(0) === 0x22) {
      let out = '';
      let k = 1;
      for (; k < dn.length && dn.charCodeAt(k) !== 0x22; k++) {
        if (dn.charCodeAt(k) === 0x5c && k + 1 < dn.length) k++;
        out += dn[k];
      }
      if (k >= dn.length) throw new UriError('unterminated quoted display name', input);
      dn = out;
    }
    if (dn) displayName = dn;
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) throw new UriError('missing ">" in name-addr', input);
    uri = s.slice(lt + 1, gt).trim();
    rest = s.slice(gt + 1);
  } else {
    if (s.charCodeAt(i) === 0x22) throw new UriError('display name without <URI>', input);
    let j = i;
    while (j < n && s.charCodeAt(j) !== 0x3b && !isWs(s.charCodeAt(j))) j++;
    uri = s.slice(i, j);
    rest = s.slice(j);
  }
  if (!uri) throw new UriError('empty URI', input);
  rest = rest.trim();
  if (rest && rest.charCodeAt(0) !== 0x3b) throw new UriError('garbage after address', input);
  const out: NameAddr = { uri, params: parseParams(rest) };
  if (displayName !== undefined) out.displayName = displayName;
  return out;
}

export function tryParseNameAddr(input: string): NameAddr | undefined {
  try {
    return parseNameAddr(input);
  } catch {
    return undefined;
  }
}

function findUnquoted(s: string, ch: number, from: number): number {
  let inQuote = false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === ch) return i;
  }
  return -1;
}

/** Header parameters of a name-addr header value (e.g. the tag of From/To). */
export function headerParams(value: string): Params {
  return parseNameAddr(value).params;
}
