/**
 * The seam between the SIP proxy and whatever decides about calls (the guard's decision core,
 * or a stub in tests). The proxy knows nothing about accounts or rules; the policy knows
 * nothing about transactions, retransmissions or transports.
 */
import type { CallEndReason } from './call-events';
import type { SipRequest } from './message';

export type TransportName = 'udp' | 'tcp' | 'tls';

/** Where a message came from, as the socket saw it. */
export interface Peer {
  transport: TransportName;
  /** IPv4 dotted or IPv6 text, without brackets. */
  address: string;
  port: number;
}

/** A final answer the proxy sends on the policy's behalf. */
export interface Rejection {
  status: number;
  reason: string;
  /** Extra headers for the response, e.g. ['Warning', '399 tollguard "..."'], ['Retry-After', '5']. */
  headers?: Array<[string, string]>;
}

/** Why an admitted call ended, as the proxy saw it ('hangup': this guard tore it down). */
export type CallEndWhy = CallEndReason;

export interface ProxyPolicy {
  /**
   * Before any parsing, for every message that did not come from the upstream core: true drops it
   * silently (a banned source gets no answer, so nothing is reflected). Must be O(1). Optional.
   */
  dropSource?(address: string, transport: TransportName): boolean;
  /** Every request from a customer (not from the upstream core), first thing after parsing (cheap checks: source). 'drop' = silently ignore, no answer. */
  screenRequest(req: SipRequest, from: Peer, arrivedAt?: number): Rejection | 'drop' | null;
  /** Initial INVITEs only (no To tag, or a To tag whose Call-ID knowsDialog() says is unknown). May return a Promise; a throw or rejected promise must become a 500 answer, never a hang. */
  admitInvite(req: SipRequest, from: Peer): Rejection | null | Promise<Rejection | null>;
  /** Whether an in-dialog request's Call-ID belongs to a call this guard admitted. */
  knowsDialog(callId: string): boolean;
  /** An admitted INVITE's call is over: final non-2xx (incl. 487 after CANCEL, proxy-made 408/503), or BYE passed. May be called more than once per call; must be idempotent on the policy side. */
  callEnded(callId: string, why: CallEndWhy): void;
  /** 2xx to an admitted initial INVITE passed through; in-dialog activity refreshes. Optional. */
  callAnswered?(callId: string): void;
  dialogActivity?(callId: string): void;
  /**
   * A customer's request (any method but ACK/CANCEL) is about to be forwarded to the core. What this
   * returns (undefined = not interested) is handed back to requestAnswered() with the final status the
   * core gave. Lets the defense watch for refused credentials without the proxy keeping requests.
   */
  watchAnswer?(req: SipRequest, from: Peer): unknown;
  requestAnswered?(watch: unknown, status: number): void;
}
