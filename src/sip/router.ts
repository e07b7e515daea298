/**
 * Where a request goes and how the proxy names itself (RFC 3261 §16.4 route information
 * preprocessing, §16.5/16.6 request targets, §16.6 step 4 Record-Route, RFC 5658 double
 * Record-Route). Knows the bound endpoints; does no I/O except cached dns.lookup.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Peer, TransportName } from './policy';
import type { LocalEndpoint } from './transport';
import { parseNameAddr, parseSipUri, tryParseUri, formatHostPort, SipUri } from './uri';
import { defaultPort, isWildcard } from './address';

export interface NextHop {
  transport: TransportName;
  host: string;
  port: number;
}

const DNS_TTL_MS = 60_000;
const DNS_CACHE_MAX = 1000;
/** Route values answered by isSelfRoute() from memory; the table is emptied when it is full. */
const SELF_ROUTE_CACHE_MAX = 4096;

export class Router {
  private readonly selfKeys = new Set<string>();
  private readonly dns = new Map<string, { address: string; expires: number }>();
  private readonly inflight = new Map<string, Promise<string>>();
  private readonly selfRoutes = new Map<string, boolean>();
  private readonly selfUris = new Map<string, boolean>();
  private readonly names = new WeakMap<LocalEndpoint, { viaHead: string; recordRoute: string }>();

  constructor(
    private readonly endpoints: LocalEndpoint[],
    private readonly advertise?: string,
  ) {
    for (const ep of endpoints) {
      for (const host of this.hostsOf(ep)) this.selfKeys.add(`${host.toLowerCase()}|${ep.port}`);
    }
  }

  private hostsOf(ep: LocalEndpoint): string[] {
    const hosts: string[] = [];
    if (this.advertise) hosts.push(this.advertise);
    if (!isWildcard(ep.address)) hosts.push(ep.address);
    else {
      for (const list of Object.values(networkInterfaces())) {
        for (const i of list ?? []) {
          if ((i.family === 'IPv6') === (ep.family === 6) || ep.address === '::') hosts.push(i.address);
        }
      }
    }
    return hosts;
  }

  /** The host this proxy writes in Via / Record-Route for an endpoint. */
  hostOf(ep: LocalEndpoint): string {
    if (!isWildcard(ep.address)) return ep.address;
    if (this.advertise) return this.advertise;
    for (const list of Object.values(networkInterfaces())) {
      for (const i of list ?? []) if (!i.internal && (i.family === 'IPv6') === (ep.family === 6)) return i.address;
    }
    return ep.family === 6 ? '::1' : '127.0.0.1';
  }

  /** "<sip:host:port;transport=x;lr>" naming this proxy on one endpoint (§16.6 step 4). */
  recordRoute(ep: LocalEndpoint): string {
    return this.namesOf(ep).recordRoute;
  }

  /** Our Via value on an endpoint with a branch (§16.6 step 8), RFC 3581 rport asked for. */
  via(ep: LocalEndpoint, branch: string): string {
    return this.namesOf(ep).viaHead + branch + ';rport';
  }

  /**
   * What the proxy writes to name itself on an endpoint, made once per endpoint: every forwarded
   * request carries a Via and most a Record-Route, and on a wildcard listener hostOf() asks the
   * operating system for the interfaces.
   */
  private namesOf(ep: LocalEndpoint): { viaHead: string; recordRoute: string } {
    let names = this.names.get(ep);
    if (names === undefined) {
      const hostPort = formatHostPort(this.hostOf(ep), ep.port);
      names = {
        viaHead: `SIP/2.0/${ep.transport.toUpperCase()} ${hostPort};branch=`,
        recordRoute: `<sip:${hostPort};transport=${ep.transport};lr>`,
      };
      this.names.set(ep, names);
    }
    return names;
  }

  /** Whether a SIP URI names this proxy (host is one of ours, port is one of our listen ports). */
  isSelfUri(uri: SipUri): boolean {
    const port = uri.port ?? defaultPort(uri.scheme === 'sips' ? 'tls' : (uri.params.transport ?? 'udp'));
    return this.selfKeys.has(`${uri.host}|${port}`);
  }

  /**
   * Whether a Route/Record-Route header value (name-addr) names this proxy.
   *
   * Every in-dialog request and every 2xx carries the same few Route / Record-Route values (our
   * own Record-Route, the core's), so the answer is kept by value text: parsing the name-addr and
   * the URI again was ~3 % of the proxy's CPU per call. The answer depends only on the text and
   * the endpoints, which do not change; the bound keeps values a sender makes up from growing it.
   */
  isSelfRoute(value: string): boolean {
    const known = this.selfRoutes.get(value);
    if (known !== undefined) return known;
    let self: boolean;
    try {
      self = this.isSelfUri(parseSipUri(parseNameAddr(value).uri));
    } catch {
      self = false;
    }
    if (this.selfRoutes.size >= SELF_ROUTE_CACHE_MAX) this.selfRoutes.clear();
    this.selfRoutes.set(value, self);
    return self;
  }

  /**
   * Whether a Request-URI (text) names this proxy, the strict-router case of §16.4. Kept by
   * value text like isSelfRoute(): every in-dialog request asks, with the few Contact URIs of
   * the dialogs' callees.
   */
  isSelfRequestUri(text: string): boolean {
    const known = this.selfUris.get(text);
    if (known !== undefined) return known;
    const uri = tryParseUri(text);
    // Only a URI we could have put in Record-Route names us here: ours carry no user part. An
    // initial request to "sip:095550111@<our address>" with a loose Route to us is not strict
    // routing, and taking its last Route as the target would lose the dialled number.
    const self = uri !== undefined && uri.scheme !== 'tel' && uri.user === undefined && this.isSelfUri(uri);
    if (this.selfUris.size >= SELF_ROUTE_CACHE_MAX) this.selfUris.clear();
    this.selfUris.set(text, self);
    return self;
  }

  /** Whether a destination is one of our own listening sockets (forwarding there would loop). */
  isSelfPeer(p: Peer): boolean {
    const eps = this.endpoints;
    for (let i = 0; i < eps.length; i++) {
      const ep = eps[i];
      if (ep.transport !== p.transport || ep.port !== p.port) continue;
      if (ep.address === p.address || (isWildcard(ep.address) && this.selfKeys.has(`${p.address}|${p.port}`))) return true;
    }
    return false;
  }

  /** Next hop named by a URI (§16.5, RFC 3263 reduced to "IP or A/AAAA, port default 5060"). */
  nextHopOf(uriText: string): NextHop | string {
    let uri: SipUri;
    try {
      uri = parseSipUri(uriText);
    } catch (err) {
      return (err as Error).message;
    }
    let transport: TransportName = uri.scheme === 'sips' ? 'tls' : 'udp';
    const tp = uri.params.transport?.toLowerCase();
    if (tp === 'tcp' || tp === 'udp' || tp === 'tls') transport = uri.scheme === 'sips' ? 'tls' : tp;
    else if (tp) return `unsupported transport "${tp}"`;
    const host = uri.params.maddr ?? uri.host;
    return { transport, host, port: uri.port ?? defaultPort(transport) };
  }

  /** Resolves a host to an address: sync for IP literals and cached names, else a Promise. */
  resolve(host: string): string | Promise<string> {
    if (isIP(host)) return host;
    const now = Date.now();
    const hit = this.dns.get(host);
    if (hit && hit.expires > now) return hit.address;
    const pending = this.inflight.get(host);
    if (pending) return pending;
    const p = lookup(host).then(
      (r) => {
        this.inflight.delete(host);
        if (this.dns.size >= DNS_CACHE_MAX) this.dns.clear();
        this.dns.set(host, { address: r.address, expires: Date.now() + DNS_TTL_MS });
        return r.address;
      },
      (err: unknown) => {
        this.inflight.delete(host);
        throw err;
      },
    );
    this.inflight.set(host, p);
    return p;
  }
}
