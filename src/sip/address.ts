/**
 * Parsing of the address strings in the configuration: listen specs ("udp:127.0.0.1:5060",
 * "tcp:[::1]:5062") and the upstream ("127.0.0.1:5080", "tcp:core.example:5060").
 */
import { isIP } from 'node:net';
import type { TransportName } from './policy';
import { parsePort } from './syntax';
import { parseIPv4 } from '../core/ip';

export interface HostPortSpec {
  transport: TransportName;
  /** IP literal (no brackets) or hostname. */
  host: string;
  port: number;
}

const TRANSPORTS: readonly TransportName[] = ['udp', 'tcp', 'tls'];

export class AddressSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressSpecError';
  }
}

/**
 * "[transport:]host:port" with IPv6 in brackets. `requireTransport` for listen specs, where the
 * transport must be explicit; otherwise UDP is the default (RFC 3261 §18).
 */
export function parseHostPortSpec(spec: string, requireTransport = false): HostPortSpec {
  let rest = spec.trim();
  let transport: TransportName = 'udp';
  const firstColon = rest.indexOf(':');
  const maybeProto = firstColon > 0 ? rest.slice(0, firstColon).toLowerCase() : '';
  if ((TRANSPORTS as readonly string[]).includes(maybeProto)) {
    transport = maybeProto as TransportName;
    rest = rest.slice(firstColon + 1);
  } else if (requireTransport) {
    throw new AddressSpecError(`"${spec}": expected transport:host:port (udp, tcp or tls)`);
  }
  let host: string;
  let portText: string;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw new AddressSpecError(`"${spec}": expected [v6]:port`);
    host = rest.slice(1, close);
    portText = rest.slice(close + 2);
    if (isIP(host) !== 6) throw new AddressSpecError(`"${spec}": "${host}" is not an IPv6 address`);
  } else {
    const colon = rest.lastIndexOf(':');
    if (colon <= 0) throw new AddressSpecError(`"${spec}": missing port`);
    host = rest.slice(0, colon);
    portText = rest.slice(colon + 1);
    if (host.includes(':')) throw new AddressSpecError(`"${spec}": IPv6 addresses must be in brackets`);
  }
  const port = parsePort(portText);
  if (port === undefined) throw new AddressSpecError(`"${spec}": bad port "${portText}"`);
  return { transport, host, port };
}

export function familyOf(address: string): 4 | 6 {
  // Every IPv6 text has a ':' and no IPv4 or host name has one: no need for isIP()'s regexes,
  // which ran several times a message.
  return address.indexOf(':') >= 0 && isIP(address) === 6 ? 6 : 4;
}

/**
 * net.isIP(), with dotted-quad IPv4 read by hand (core/ip.ts, the same grammar): isIP() tries two
 * long regular expressions, and the proxy asks for every address it sends to and every URI host
 * it reads.
 */
export function ipVersion(s: string): 0 | 4 | 6 {
  if (s.indexOf(':') >= 0) return isIP(s) as 0 | 4 | 6;
  return parseIPv4(s) >= 0 ? 4 : 0;
}

/** Dual-stack sockets report IPv4 peers as ::ffff:a.b.c.d; policies and Via want a.b.c.d. */
export function normaliseAddress(address: string): string {
  if (address.length > 7 && address.startsWith('::ffff:') && isIP(address.slice(7)) === 4) return address.slice(7);
  return address;
}

export function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** Default port for a transport (RFC 3261 §19.1.2). */
export function defaultPort(transport: string): number {
  return transport.toLowerCase() === 'tls' ? 5061 : 5060;
}
