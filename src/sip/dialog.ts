/**
 * What the proxy remembers of an answered call it admitted, so it can end the call itself: the
 * guard tears down a compromised account's live calls the way Kamailio's dialog module does
 * (dlg_end_dlg), with a BYE to each side that looks, to that side, as if the other side sent it.
 *
 * RFC 3261 §12.1.1/§12.1.2: the caller (UAC) uses the reversed Record-Route list as its route set,
 * the callee (UAS) the list as is. This proxy sits in that list (once, or twice per RFC 5658), so
 * the hops between it and the callee are the entries above its own, reversed, and the hops between
 * it and the caller are the entries below its own, in order.
 */
import type { InviteEcho } from './build';
import type { SipResponse } from './message';
import type { Peer } from './policy';
import { splitCommaSpans, textToBytes, own } from './syntax';
import type { ClientTransaction, ServerTransaction } from './transaction';
import type { Connection, LocalEndpoint } from './transport';
import { parseNameAddr } from './uri';

export interface DialogRecord {
  callId: string;
  /** Where the INVITE came from (the previous hop toward the caller) and how we reached it. */
  callerPeer: Peer;
  callerLocal: LocalEndpoint;
  callerConn: Connection | undefined;
  /** The caller's Contact URI (byte string), Request-URI of a BYE to the caller. */
  callerTarget: string;
  /** Route values for a BYE toward the caller. */
  callerRoutes: string[];
  /** The next hop toward the callee (the core) and our endpoint toward it. */
  calleeDest: Peer;
  calleeLocal: LocalEndpoint | undefined;
  /** The callee's Contact URI from the 2xx, Request-URI of a BYE to the callee. */
  calleeTarget: string;
  calleeRoutes: string[];
  /** From of the INVITE (caller, with tag) and To of the 2xx (callee, with tag): header values. */
  from: string;
  to: string;
  /** Highest CSeq seen from each side, so our BYE is in order (§12.2.2). */
  callerCseq: number;
  calleeCseq: number;
}

/** The value of a raw field line "Name: value". */
export function fieldValue(line: string): string {
  const colon = line.indexOf(':');
  return colon < 0 ? line : line.slice(colon + 1).trim();
}

/**
 * Splits a 2xx's Record-Route list around this proxy's own entries. Returns null when the proxy
 * is not in the list (then it is not on the dialog's path and cannot end it cleanly).
 */
export function routeSetsAround(recordRoute: string[], isSelf: (value: string) => boolean): { toCaller: string[]; toCallee: string[] } | null {
  let first = -1;
  let last = -1;
  for (let i = 0; i < recordRoute.length; i++) {
    if (isSelf(recordRoute[i])) {
      if (first < 0) first = i;
      last = i;
    }
  }
  if (first < 0) return null;
  return { toCallee: recordRoute.slice(0, first).reverse(), toCaller: recordRoute.slice(last + 1) };
}

/**
 * The record of an admitted INVITE's dialog, taken from the INVITE as forwarded (echo), the
 * server transaction it came in on, the client transaction it left on, and the 2xx. Null when
 * the dialog cannot be addressed: a Contact missing or unreadable (§12.1.1), or this proxy not in
 * the Record-Route set (then in-dialog requests do not pass here and a BYE would be guesswork).
 */
export function dialogRecordOf(
  tx: ServerTransaction,
  c: ClientTransaction,
  echo: Pick<InviteEcho, 'contact' | 'from' | 'cseq'>,
  res: SipResponse,
  isSelf: (routeValue: string) => boolean,
): DialogRecord | null {
  const calleeContact = res.firstValue('contact');
  if (echo.contact === undefined || calleeContact === undefined) return null;
  let callerTarget: string;
  let calleeTarget: string;
  try {
    callerTarget = textToBytes(parseNameAddr(echo.contact).uri);
    calleeTarget = textToBytes(parseNameAddr(calleeContact).uri);
  } catch {
    return null;
  }
  const rr: string[] = [];
  for (const line of res.fieldLines('record-route')) {
    const v = fieldValue(line);
    for (const sp of splitCommaSpans(v)) rr.push(v.slice(sp.start, sp.end));
  }
  const sets = routeSetsAround(rr, isSelf);
  if (sets === null) return null;
  return {
    callId: tx.callId,
    callerPeer: tx.peer,
    callerLocal: tx.local,
    callerConn: tx.conn,
    // The record lives as long as the call: its strings are made its own, so it does not keep
    // the INVITE and the 2xx alive (see own()).
    callerTarget: own(callerTarget),
    callerRoutes: sets.toCaller.map(own),
    calleeDest: c.dest,
    calleeLocal: c.local,
    calleeTarget: own(calleeTarget),
    calleeRoutes: sets.toCallee.map(own),
    from: own(fieldValue(echo.from)),
    to: own(fieldValue(res.fieldLines('to')[0] ?? '')),
    callerCseq: echo.cseq,
    calleeCseq: 0,
  };
}

export interface ByeParts {
  target: string;
  via: string;
  routes: string[];
  from: string;
  to: string;
  callId: string;
  cseq: number;
  /** RFC 3326 Reason header value. */
  reason?: string;
}

/** §15.1.1: a BYE within the dialog. Values are byte strings except `reason`, which is text. */
export function buildBye(p: ByeParts): string {
  let s = `BYE ${p.target} SIP/2.0\r\nVia: ${p.via}\r\n`;
  for (const r of p.routes) s += `Route: ${r}\r\n`;
  s += `Max-Forwards: 70\r\nFrom: ${p.from}\r\nTo: ${p.to}\r\nCall-ID: ${p.callId}\r\nCSeq: ${p.cseq} BYE\r\n`;
  if (p.reason) s += `Reason: ${textToBytes(p.reason.replace(/[\r\n]+/g, ' '))}\r\n`;
  return s + 'Content-Length: 0\r\n\r\n';
}
