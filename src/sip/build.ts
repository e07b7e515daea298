/**
 * Messages the proxy writes itself: responses to requests (RFC 3261 §8.2.6, §16.7 for 408/483/
 * 487/503, §16.10 for the 200 to CANCEL), the ACK for a non-2xx final response (§17.1.1.3) and
 * the CANCEL of a forwarded INVITE (§9.1). All strings here are latin1 byte strings.
 */
import type { SipRequest, SipResponse } from './message';
import { textToBytes } from './syntax';

/**
 * What a response needs from its request, captured once (§8.2.6.2: Via values, From, To, Call-ID,
 * CSeq copied). Taken before the proxy edits the request for forwarding.
 */
export interface ResponseTemplate {
  /** Via field lines (with received/rport stamped), From, Call-ID, CSeq lines, CRLF-joined. */
  head: string;
  /** To field value; a tag is appended when it has none. */
  to: string;
  toHasTag: boolean;
}

export function responseTemplate(req: SipRequest): ResponseTemplate {
  const parts = req.responseParts();
  return { head: parts.lines, to: parts.to, toHasTag: req.toTag !== undefined };
}

export interface ResponseExtras {
  /** To tag for a final response (§8.2.6.2). Omitted for 100 Trying (§16.2). */
  toTag?: string;
  headers?: Array<[string, string]>;
}

export function buildResponse(tpl: ResponseTemplate, status: number, reason: string, extras: ResponseExtras = {}): string {
  const to = tpl.toHasTag || !extras.toTag ? tpl.to : `${tpl.to};tag=${extras.toTag}`;
  let s = `SIP/2.0 ${status} ${sanitise(reason)}\r\n${tpl.head}\r\nTo: ${to}\r\n`;
  if (extras.headers) for (const [name, value] of extras.headers) s += `${sanitise(name)}: ${sanitise(value)}\r\n`;
  return s + 'Content-Length: 0\r\n\r\n';
}

/** Header text from a policy or an error message: no CR/LF injection, UTF-8 as bytes. */
function sanitise(s: string): string {
  return textToBytes(s.replace(/[\r\n]+/g, ' '));
}

/**
 * The parts of a forwarded INVITE that its ACK (for a non-2xx) and its CANCEL must repeat
 * (§9.1, §17.1.1.3): Request-URI, our Via, Route set, From, To, Call-ID, CSeq number,
 * Max-Forwards. Captured after the proxy's edits, i.e. as sent.
 */
export interface InviteEcho {
  uri: string;
  via: string;
  routes: string[];
  from: string;
  to: string;
  callId: string;
  cseq: number;
  maxForwards: string;
  /** Contact of the INVITE (text), for a BYE this proxy may have to send the caller. */
  contact: string | undefined;
}

export function inviteEcho(fwd: SipRequest, ourVia: string): InviteEcho {
  return {
    uri: fwd.uri,
    via: textToBytes(ourVia),
    routes: fwd.fieldLines('route'),
    from: fwd.fieldLines('from')[0] ?? '',
    to: fwd.fieldLines('to')[0] ?? '',
    callId: fwd.fieldLines('call-id')[0] ?? '',
    cseq: fwd.cseq.seq,
    maxForwards: fwd.header('max-forwards') ?? '70',
    contact: fwd.firstValue('contact'),
  };
}

/** §9.1: CANCEL with the INVITE's Request-URI, top Via (same branch), Route, From, To, Call-ID, CSeq number. */
export function buildCancel(e: InviteEcho, reasonHeader?: string): string {
  let s = `CANCEL ${textToBytes(e.uri)} SIP/2.0\r\nVia: ${e.via}\r\n`;
  for (const r of e.routes) s += r + '\r\n';
  s += `Max-Forwards: ${e.maxForwards}\r\n${e.from}\r\n${e.to}\r\n${e.callId}\r\nCSeq: ${e.cseq} CANCEL\r\n`;
  if (reasonHeader) s += `Reason: ${reasonHeader}\r\n`;
  return s + 'Content-Length: 0\r\n\r\n';
}

/** §17.1.1.3: ACK for a non-2xx final response, To taken from the response (it carries the tag). */
export function buildAck(e: InviteEcho, res: SipResponse): string {
  const toLine = res.fieldLines('to')[0] ?? e.to;
  let s = `ACK ${textToBytes(e.uri)} SIP/2.0\r\nVia: ${e.via}\r\n`;
  for (const r of e.routes) s += r + '\r\n';
  s += `Max-Forwards: 70\r\n${e.from}\r\n${toLine}\r\n${e.callId}\r\nCSeq: ${e.cseq} ACK\r\nContent-Length: 0\r\n\r\n`;
  return s;
}
