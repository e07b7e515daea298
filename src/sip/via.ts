/**
 * Via header values (RFC 3261 §20.42, §18.2.1, RFC 3581 rport): parsing, and the edits a proxy
 * makes to the sender's topmost value (received=, rport=).
 */
import { isIP } from 'node:net';
import { parseParams, isWs } from './syntax';
import { parsePort } from './uri';

export interface Via {
  /** "UDP", "TCP", "TLS", "SCTP", "WS", ... upper-cased. */
  transport: string;
  /** sent-by host, lower-cased, IPv6 without brackets. */
  host: string;
  /** sent-by port, when written. */
  port?: number;
  branch?: string;
  /** RFC 3581: undefined = absent, null = present without a value (";rport"), number = filled in. */
  rport?: number | null;
  received?: string;
}

/** Magic cookie of RFC 3261 branches (§8.1.1.7); without it the sender is RFC 2543. */
export const BRANCH_COOKIE = 'z9hG4bK';

/** End of a sent-protocol part starting at i: before the next '/', ';' or whitespace. */
function protocolTokenEnd(s: string, i: number): number {
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x2f /* / */ || isWs(c) || c === 0x3b) break;
    i++;
  }
  return i;
}

/** Parses one Via value ("SIP/2.0/UDP host:port;branch=..."). Returns an error string on failure. */
export function parseVia(value: string): Via | string {
  const s = value;
  const n = s.length;
  let i = 0;
  // sent-protocol = protocol-name SLASH protocol-version SLASH transport, LWS allowed around SLASH.
  // Nearly every Via starts "SIP/2.0/": take that without the general scan's part list.
  let transport: string;
  if (s.startsWith('SIP/2.0/')) {
    const start = 8;
    i = protocolTokenEnd(s, start);
    if (i === start) return 'bad sent-protocol';
    transport = s.slice(start, i);
    if (transport !== 'UDP' && transport !== 'TCP') transport = transport.toUpperCase();
    while (i < n && isWs(s.charCodeAt(i))) i++;
  } else {
    const parts: string[] = [];
    for (let k = 0; k < 3; k++) {
      while (i < n && isWs(s.charCodeAt(i))) i++;
      const start = i;
      i = protocolTokenEnd(s, start);
      if (i === start) return 'bad sent-protocol';
      parts.push(s.slice(start, i));
      while (i < n && isWs(s.charCodeAt(i))) i++;
      if (k < 2) {
        if (s.charCodeAt(i) !== 0x2f) return 'bad sent-protocol';
        i++;
      }
    }
    if (parts[0].toUpperCase() !== 'SIP' || parts[1] !== '2.0') return 'bad sent-protocol';
    transport = parts[2].toUpperCase();
  }
  while (i < n && isWs(s.charCodeAt(i))) i++;
  let host: string;
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i);
    if (close < 0) return 'bad sent-by';
    host = s.slice(i + 1, close);
    if (isIP(host) !== 6) return 'bad sent-by';
    i = close + 1;
  } else {
    const start = i;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x3a || c === 0x3b || isWs(c)) break;
      i++;
    }
    host = s.slice(start, i);
    if (!host) return 'missing sent-by';
  }
  let port: number | undefined;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (s.charCodeAt(i) === 0x3a) {
    i++;
    while (i < n && isWs(s.charCodeAt(i))) i++;
    const start = i;
    while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) i++;
    port = parsePort(s.slice(start, i));
    if (port === undefined) return 'bad sent-by port';
  }
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i < n && s.charCodeAt(i) !== 0x3b) return 'garbage after sent-by';
  const via: Via = { transport, host: host.toLowerCase() };
  if (port !== undefined) via.port = port;
  return viaParams(s, i, via);
}

/**
 * The parameters a proxy uses (branch, rport, received) into `via`, from s[i..] (";a=b;c").
 * Only those three are cut out of the text: a Via of every message is parsed, and a table of all
 * its parameters was most of the cost. Names compare case-insensitively and the last occurrence
 * wins; a quoted or spaced value takes the general parameter parser, as before.
 */
function viaParams(s: string, i: number, via: Via): Via | string {
  const n = s.length;
  const paramsStart = i;
  let rport: string | null | undefined;
  while (i < n) {
    const semi = s.indexOf(';', i);
    if (semi < 0) break;
    let end = s.indexOf(';', semi + 1);
    if (end < 0) end = n;
    const eq = s.indexOf('=', semi + 1);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    const name = nameOf(s, semi + 1, nameEnd);
    i = end;
    if (name === '') continue;
    let value: string | null = null;
    if (nameEnd < end) {
      value = s.slice(nameEnd + 1, end);
      if (value.length !== 0 && (mayTrimOrQuote(value.charCodeAt(0)) || mayTrimOrQuote(value.charCodeAt(value.length - 1)))) {
        // Rare forms ("; branch = x", quoted values): the general parser reads the whole list.
        return viaParamsGeneral(s.slice(paramsStart), via);
      }
    }
    if (name === 'branch') {
      if (value) via.branch = value;
      else delete via.branch;
    } else if (name === 'rport') rport = value;
    else if (name === 'received') {
      if (value) via.received = value;
      else delete via.received;
    }
  }
  return rportOf(via, rport);
}

/** Lower-cased parameter name in s[from, to), '' when empty; spaces around it are dropped. */
function nameOf(s: string, from: number, to: number): string {
  while (from < to && isWs(s.charCodeAt(from))) from++;
  while (to > from && isWs(s.charCodeAt(to - 1))) to--;
  const name = s.slice(from, to);
  if (name === 'branch' || name === 'rport' || name === 'received') return name;
  return name.toLowerCase();
}

function mayTrimOrQuote(c: number): boolean {
  return c <= 0x20 || c >= 0x7f || c === 0x22;
}

function viaParamsGeneral(rest: string, via: Via): Via | string {
  const params = parseParams(rest);
  if (params.branch) via.branch = params.branch;
  else delete via.branch;
  if (params.received) via.received = params.received;
  else delete via.received;
  return rportOf(via, 'rport' in params ? params.rport : undefined);
}

function rportOf(via: Via, rport: string | null | undefined): Via | string {
  if (rport === undefined) return via;
  if (rport === null || rport === '') via.rport = null;
  else {
    const p = parsePort(rport);
    if (p === undefined) return 'bad rport';
    via.rport = p;
  }
  return via;
}

/**
 * §18.2.1 / RFC 3581 §4: the server adds received= when the sent-by host is not the packet's
 * source address, and fills an empty rport with the source port (RFC 3581 then requires
 * received= too). With `symmetric` (UDP), a sender whose sent-by port is not its source port gets
 * rport= even without asking, as Kamailio's force_rport() does: the proxy answers the port a
 * request came from (customers behind NAT), and the Via must say so, because 2xx retransmissions
 * and forked 2xx that outlive the transaction are forwarded by Via alone (§16.7).
 * Returns the edited value, or undefined when nothing has to change.
 */
export function stampReceived(value: string, via: Via, srcAddress: string, srcPort: number, symmetric = false): string | undefined {
  if (!needsStamp(via, srcAddress, srcPort, symmetric)) return undefined;
  let out = value;
  if (via.rport === null) out = replaceParam(out, 'rport', String(srcPort));
  else if (forcesRport(via, srcPort, symmetric)) out += `;rport=${srcPort}`;
  if (via.received !== undefined) out = replaceParam(out, 'received', srcAddress);
  else out += `;received=${srcAddress}`;
  return out;
}

/** Whether stampReceived() would change the Via (most senders put their own address and port in it). */
export function needsStamp(via: Via, srcAddress: string, srcPort: number, symmetric = false): boolean {
  return (
    via.rport === null ||
    !sameHost(via.host, srcAddress) ||
    // received= is ours to write: a sender's own value could send answers to a third party.
    (via.received !== undefined && via.received !== srcAddress) ||
    forcesRport(via, srcPort, symmetric)
  );
}

/** On UDP, a Via without rport whose port is not the one the request came from gets rport= added. */
function forcesRport(via: Via, srcPort: number, symmetric: boolean): boolean {
  return symmetric && via.rport === undefined && sentByPort(via) !== srcPort;
}

/** §18.2.2: the port a response goes to when the Via names none. */
function sentByPort(via: Via): number {
  return via.port ?? (via.transport === 'TLS' ? 5061 : 5060);
}

function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  return a.toLowerCase() === b.toLowerCase();
}

/** Replaces (or sets a value on a flag) ";name[=old]" inside a Via value. */
function replaceParam(value: string, name: string, newValue: string): string {
  const lower = value.toLowerCase();
  let from = 0;
  for (;;) {
    const idx = lower.indexOf(';' + name, from);
    if (idx < 0) return `${value};${name}=${newValue}`;
    let j = idx + 1 + name.length;
    while (j < value.length && isWs(value.charCodeAt(j))) j++;
    const c = value.charCodeAt(j);
    if (j >= value.length || c === 0x3b || c === 0x3d || c === 0x2c) {
      // the param name ends here; skip "=value" if present
      let end = j;
      if (c === 0x3d) {
        end = j + 1;
        while (end < value.length && value.charCodeAt(end) !== 0x3b) end++;
      }
      return `${value.slice(0, idx)};${name}=${newValue}${value.slice(end)}`;
    }
    from = idx + 1;
  }
}

/**
 * Where a response goes according to a Via value (§18.2.2): received (or sent-by host), and the
 * rport (RFC 3581) or sent-by port, default 5060 (5061 for TLS).
 */
export function viaResponseTarget(via: Via): { address: string; port: number; transport: string } {
  const address = via.received ?? via.host;
  const port = typeof via.rport === 'number' ? via.rport : sentByPort(via);
  return { address, port, transport: via.transport };
}
