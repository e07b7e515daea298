import type { CallAttempt } from '../../core/types';
import { toCallAttempt, type InviteView } from '../call-attempt';
import type { Peer, TransportName } from '../policy';
import type { DrachtioRequest } from './srf-types';

/**
 * A drachtio-srf request seen through the same narrow view as the embedded proxy's SipRequest,
 * so toCallAttempt applies the very same extraction rules (Request-URI user or tel: number with
 * phone-context, digest username, P-Asserted-Identity, From).
 */
export function inviteView(req: DrachtioRequest): InviteView {
  return {
    uri: req.uri,
    callId: req.get('Call-ID') ?? '',
    header: (name: string) => req.get(name),
  };
}

/** The core's question for one drachtio INVITE; the source is drachtio-server's view of the peer. */
export function callAttemptOf(req: DrachtioRequest, now: number): CallAttempt {
  return toCallAttempt(inviteView(req), req.source_address, now);
}

/** drachtio reports ws/wss too; the events' Peer knows udp, tcp and tls (ws rides on TCP, wss on TLS). */
export function peerOf(req: DrachtioRequest): Peer {
  const p = (req.protocol ?? '').toLowerCase();
  const transport: TransportName = p === 'udp' ? 'udp' : p === 'tls' || p === 'wss' ? 'tls' : 'tcp';
  return { transport, address: req.source_address, port: req.source_port };
}
