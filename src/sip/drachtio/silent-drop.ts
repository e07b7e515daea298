import type { DrachtioRequest } from './srf-types';

/**
 * What a silent drop leaves behind in drachtio-srf 5.x, and how to clear it without answering.
 *
 * drachtio-agent.js _onMsg keeps every incoming INVITE in its connection's pendingNetworkInvites
 * (keyed by Call-ID) until a final response is sent, a CANCEL arrives or the connection goes
 * (sendResponse, proxy, disconnect). An INVITE the guard drops on purpose gets none of these on
 * an inbound connection, so each one would stay in that map for the life of the connection: a
 * scanner's flood of fresh Call-IDs would grow it without bound. drachtio-srf has no public call
 * for "forget this request", so this reaches into the agent (req.agent, agent.mapServer keyed by
 * req.socket, as _onMsg and _initServer set them). Non-INVITE requests are not kept anywhere.
 */
interface AgentInternals {
  mapServer?: Map<unknown, { pendingNetworkInvites?: Map<string, unknown> }>;
}

type WithInternals = DrachtioRequest & { agent?: AgentInternals; socket?: unknown };

/**
 * 'forgotten': the INVITE was in drachtio-srf's table and is not any more. 'not-held': nothing
 * to forget (not an INVITE, no agent: a request not from drachtio-srf's wire, as in unit tests).
 * 'unknown-shape': drachtio-srf's internals are not what this was written against, so the entry
 * (if any) stays: the caller must say so, the leak is real.
 */
export type ForgetResult = 'forgotten' | 'not-held' | 'unknown-shape';

export function forgetUnansweredInvite(req: DrachtioRequest): ForgetResult {
  if (req.method !== 'INVITE') return 'not-held';
  const r = req as WithInternals;
  if (r.agent === undefined) return 'not-held';
  const conn = r.agent.mapServer instanceof Map ? r.agent.mapServer.get(r.socket) : undefined;
  const pending = conn?.pendingNetworkInvites;
  if (!(pending instanceof Map)) {
    // A per-call (outbound) connection that endSession already closed is gone from mapServer;
    // its table went with it, nothing is held.
    if (r.agent.mapServer instanceof Map && conn === undefined) return 'not-held';
    return 'unknown-shape';
  }
  const callId = req.get('Call-ID');
  return callId !== undefined && pending.delete(callId) ? 'forgotten' : 'not-held';
}
