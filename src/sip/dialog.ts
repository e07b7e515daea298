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
  /** The INVITE's Contact value (byte string): its URI is the Request-URI of a BYE to the caller. */
  callerContact: string;
  /** The next hop toward the callee (the core) and our endpoint toward it. */
  calleeDest: Peer;
  calleeLocal: LocalEndpoint | undefined;
  /** The 2xx's Contact value: its URI is the Request-URI of a BYE to the callee. */
  calleeContact: string;
  /** The 2xx's Record-Route field values, in order (a value may list several entries). */
  recordRoute: string[];
  /** From of the INVITE (caller, with tag) and To of the 2xx (callee, with tag): header values. */
  from: string;
  to: string;
  /** Highest CSeq seen from each side, so our BYE is in order (§12.2.2). */
  callerCseq: number;
  calleeCseq: number;
}

/** Where the BYEs of a dialog go: each side's Request-URI and route set (byte strings). */
export interface ByeRoutes {
  callerTarget: string;
  callerRoutes: string[];
  calleeTarget: string;
  calleeRoutes: string[];
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
 * What a BYE to each side needs, kept from the answered INVITE: the server transaction it came in
 * on, the client transaction it left on, the INVITE's Contact, From and CSeq, and the 2xx. Null
 * when either Contact is missing (§12.1.1). Only header values are kept, as strings of their own
 * (see own()); they are read as URIs and route sets when the proxy ends the call (byeRoutes()),
 * which most calls never need.
 */
export function dialogRecordOf(
  tx: ServerTransaction,
  c: ClientTransaction,
  caller: { contact: string | undefined; from: string; cseq: number },
  res: SipResponse,
): DialogRecord | null {
  const calleeContact = res.firstValue('contact');
  if (caller.contact === undefined || calleeContact === undefined) return null;
  const rr = res.fieldLines('record-route');
  for (let i = 0; i < rr.length; i++) rr[i] = own(fieldValue(rr[i]));
  return {
    callId: tx.callId,
    callerPeer: tx.peer,
    callerLocal: tx.local,
    callerConn: tx.conn,
    callerContact: own(textToBytes(caller.contact)),
    calleeDest: c.dest,
    calleeLocal: c.local,
    calleeContact: own(textToBytes(calleeContact)),
    recordRoute: rr,
    from: own(fieldValue(caller.from)),
    to: own(fieldValue(res.fieldLines('to')[0] ?? '')),
    callerCseq: caller.cseq,
    calleeCseq: 0,
  };
}

/**
 * The BYE routes of a dialog: each side's Contact URI and its route set (RFC 3261 §12.1.1/§12.1.2:
 * the caller uses the reversed Record-Route list, the callee the list as is). Null when a Contact
 * is unreadable or this proxy is not in the Record-Route set (then in-dialog requests do not pass
 * here and a BYE would be guesswork).
 */
export function byeRoutes(d: DialogRecord, isSelf: (routeValue: string) => boolean): ByeRoutes | null {
  let callerTarget: string;
  let calleeTarget: string;
  try {
    callerTarget = parseNameAddr(d.callerContact).uri;
    calleeTarget = parseNameAddr(d.calleeContact).uri;
  } catch {
    return null;
  }
  const rr: string[] = [];
  for (const v of d.recordRoute) for (const sp of splitCommaSpans(v)) rr.push(v.slice(sp.start, sp.end));
  const sets = routeSetsAround(rr, isSelf);
  if (sets === null) return null;
  return { callerTarget, callerRoutes: sets.toCaller, calleeTarget, calleeRoutes: sets.toCallee };
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
