/**
 * The seam between the SIP proxy and whatever decides about calls (the guard's decision core,
 * or a stub in tests). The proxy knows nothing about accounts or rules; the policy knows
 * nothing about transactions, retransmissions or transports.
 */
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

export interface ProxyPolicy {
  /** Every request from a customer (not from the upstream core), first thing after parsing (cheap checks: source). 'drop' = silently ignore, no answer. */
  screenRequest(req: SipRequest, from: Peer): Rejection | 'drop' | null;
  /** Initial INVITEs only (no To tag, or a To tag whose Call-ID knowsDialog() says is unknown). May return a Promise; a throw or rejected promise must become a 500 answer, never a hang. */
  admitInvite(req: SipRequest, from: Peer): Rejection | null | Promise<Rejection | null>;
  /** Whether an in-dialog request's Call-ID belongs to a call this guard admitted. */
  knowsDialog(callId: string): boolean;
  /** An admitted INVITE's call is over: final non-2xx (incl. 487 after CANCEL, proxy-made 408/503), or BYE passed. May be called more than once per call; must be idempotent on the policy side. */
  callEnded(callId: string, why: 'rejected' | 'cancelled' | 'bye' | 'timeout' | 'error'): void;
  /** 2xx to an admitted initial INVITE passed through; in-dialog activity refreshes. Optional. */
  callAnswered?(callId: string): void;
  dialogActivity?(callId: string): void;
}
