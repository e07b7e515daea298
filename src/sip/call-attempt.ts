import type { CallAttempt } from '../core/types';
import type { SipRequest } from './message';
import { dialledOf, tryParseNameAddr, tryParseUri } from './uri';

/**
 * What the extraction reads of a request. The embedded proxy's SipRequest has exactly this
 * shape; the drachtio front end wraps a drachtio-srf request in it, so both front ends read
 * callers and destinations with the same code.
 */
export type InviteView = Pick<SipRequest, 'uri' | 'callId' | 'header'>;

/**
 * Reads from an initial INVITE what the decision core needs, and nothing more: who is calling
 * (digest username, P-Asserted-Identity, From) and what was dialled (Request-URI user or tel:
 * number with its phone-context). An unreadable Request-URI yields an empty dialled string,
 * which the core rejects as an invalid destination rather than letting it through unchecked.
 */
export function toCallAttempt(req: InviteView, source: string, now: number): CallAttempt {
  const target = tryParseUri(req.uri);
  const dialled = target ? dialledOf(target) : undefined;
  const attempt: CallAttempt = {
    source,
    dialled: dialled?.dialled ?? '',
    callId: req.callId,
    now,
  };
  if (dialled?.phoneContext !== undefined) attempt.phoneContext = dialled.phoneContext;
  const authUser = digestUsername(req.header('proxy-authorization')) ?? digestUsername(req.header('authorization'));
  if (authUser !== undefined) attempt.authUser = authUser;
  const asserted = userOf(req.header('p-asserted-identity'));
  if (asserted !== undefined) attempt.assertedUser = asserted;
  const from = userOf(req.header('from'));
  if (from !== undefined) attempt.fromUser = from;
  return attempt;
}

/** Who a request says it is, as the defense counts refused credentials and unknown users. */
export interface RequestIdentity {
  /** Digest username of Proxy-Authorization / Authorization, when the request carried credentials. */
  authUser?: string;
  /** User of the To URI (the username a REGISTER is for, the extension an INVITE is for). */
  toUser?: string;
  fromUser?: string;
  userAgent?: string;
}

/** Reads RequestIdentity through a header lookup, so both front ends read it with the same code. */
export function identityOf(header: (name: string) => string | undefined, into: RequestIdentity = {}): RequestIdentity {
  const authUser = digestUsername(header('proxy-authorization')) ?? digestUsername(header('authorization'));
  if (authUser !== undefined) into.authUser = authUser;
  const toUser = userOf(header('to'));
  if (toUser !== undefined) into.toUser = toUser;
  const fromUser = userOf(header('from'));
  if (fromUser !== undefined) into.fromUser = fromUser;
  const ua = header('user-agent');
  if (ua !== undefined) into.userAgent = ua;
  return into;
}

/** The user of a name-addr header (From, To, P-Asserted-Identity): sip: user or tel: number. */
export function userOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // P-Asserted-Identity may carry a sip: and a tel: identity (RFC 3325 §9.1); the first one serves.
  const addr = tryParseNameAddr(value);
  const uri = addr ? tryParseUri(addr.uri) : undefined;
  if (!uri) return undefined;
  return uri.scheme === 'tel' ? uri.number : uri.user;
}

/**
 * The username parameter of a Digest credentials header (RFC 3261 §25.1 dig-resp:
 * username = "username" EQUAL username-value, a quoted-string). Scans rather than splits on
 * commas, because quoted values (uri="sip:a,b") may contain them.
 */
export function digestUsername(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const s = value.trim();
  if (s.slice(0, 6).toLowerCase() !== 'digest') return undefined;
  let i = 6;
  const n = s.length;
  while (i < n) {
    while (i < n && (s[i] === ' ' || s[i] === '\t' || s[i] === ',')) i++;
    const eq = s.indexOf('=', i);
    if (eq < 0) return undefined;
    const name = s.slice(i, eq).trim().toLowerCase();
    i = eq + 1;
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
    let val = '';
    if (s[i] === '"') {
      i++;
      while (i < n && s[i] !== '"') {
        if (s[i] === '\\' && i + 1 < n) i++;
        val += s[i++];
      }
      i++;
    } else {
      const end = s.indexOf(',', i);
      val = (end < 0 ? s.slice(i) : s.slice(i, end)).trim();
      i = end < 0 ? n : end;
    }
    if (name === 'username') return val;
  }
  return undefined;
}
