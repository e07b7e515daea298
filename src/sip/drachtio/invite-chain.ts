import type { GuardCore } from '../../core/guard-core';
import { forwardingFor, type Forwarding } from '../../core/forwarding';
import type { CallAttempt, Verdict } from '../../core/types';
import type { Peer } from '../policy';
import { sendRejection } from './answer';
import { callAttemptOf, peerOf } from './request-view';
import type { DrachtioRequest, DrachtioResponse, Middleware } from './srf-types';

/**
 * The INVITE policy as a drachtio-srf middleware chain, in the style of jambonz sbc-inbound's
 * `srf.use('invite', [...])`; read top to bottom it is what happens to a call:
 *
 *   srf.use('invite', [
 *     screenSources,          // banned / listed sources, scanners, floods: dropped or refused
 *     answerStrayReInvites,   // in-dialog INVITE for a dialog nobody here knows: 481
 *     passCoreRequests,       // the core calling a customer: forwarded, not screened
 *     readCallAttempt,        // who calls what (the embedded proxy's extraction rules)
 *     askTheCore,             // the decision core's verdict, one decision log line
 *     refuseRejected,         // 403/484/503 with Warning, X-Reason, Retry-After
 *     chooseForwarding,       // proxy or b2bua, max call duration
 *     forwardToCore,          // srf.proxyRequest or srf.createB2BUA
 *   ]);
 *
 * Every rule lives in the core and the rule files; the chain only moves data between drachtio
 * and the core. State travels on the request in a typed field (req.tollguard), not in untyped
 * srf.locals.
 */

/** What the chain has learnt about one INVITE so far. */
export interface InviteState {
  attempt: CallAttempt;
  peer: Peer;
  verdict?: Verdict;
  forwarding?: Forwarding;
}

export type GuardedRequest = DrachtioRequest & { tollguard?: InviteState };

export interface InviteChainHooks {
  core: Pick<GuardCore, 'decide' | 'rules'>;
  /**
   * The request screens (attack-source defense) ahead of everything else; true when they dealt
   * with the request (dropped it silently or answered it), so the chain stops.
   */
  screen(req: DrachtioRequest, res: DrachtioResponse): boolean;
  /** The clock of the core's rate windows (monotonicNow in production). */
  now(): number;
  /** The slot a call with this Call-ID already holds (a repeated initial INVITE keeps it). */
  heldSlot(callId: string): number | undefined;
  /** Whether this request comes from the SIP core itself (trusted by configuration). */
  fromCore(req: DrachtioRequest): boolean;
  /** Forwards a request of the core towards the customer its Request-URI names. */
  passFromCore(req: DrachtioRequest, res: DrachtioResponse): void;
  /** After the verdict: the decision log line and the observers' decided event. */
  decided(state: InviteState, verdict: Verdict, micros: number): void;
  /** A refused INVITE got its answer (the front end ends an outbound session). */
  refused(req: DrachtioRequest): void;
  /** Carries an admitted call to the core in the chosen mode. */
  forward(req: GuardedRequest, res: DrachtioResponse, state: Required<InviteState>): void;
}

export function inviteChain(h: InviteChainHooks): Middleware<GuardedRequest>[] {
  // Not calling next() is what keeps a dropped INVITE unanswered: at the end of the chain
  // drachtio-srf's proto.js would answer 404 itself.
  const screenSources: Middleware<GuardedRequest> = (req, res, next) => {
    if (h.screen(req, res)) return;
    next();
  };


  /** RFC 3261 §12.2.2: a request inside a dialog the UAS does not know gets 481. */
  const answerStrayReInvites: Middleware<GuardedRequest> = (req, res, next) => {
    if (hasToTag(req)) {
      res.send(481, 'Call/Transaction Does Not Exist');
      return;
    }
    next();
  };

  const passCoreRequests: Middleware<GuardedRequest> = (req, res, next) => {
    if (h.fromCore(req)) {
      h.passFromCore(req, res);
      return;
    }
    next();
  };

  const readCallAttempt: Middleware<GuardedRequest> = (req, _res, next) => {
    const attempt = callAttemptOf(req, h.now());
    const held = h.heldSlot(attempt.callId);
    if (held !== undefined) attempt.heldSlot = held;
    req.tollguard = { attempt, peer: peerOf(req) };
    next();
  };

  const askTheCore: Middleware<GuardedRequest> = (req, _res, next) => {
    const state = req.tollguard!;
    const started = process.hrtime.bigint();
    state.verdict = h.core.decide(state.attempt);
    h.decided(state, state.verdict, Number(process.hrtime.bigint() - started) / 1000);
    next();
  };

  const refuseRejected: Middleware<GuardedRequest> = (req, res, next) => {
    const verdict = req.tollguard!.verdict!;
    if (verdict.allow) {
      next();
      return;
    }
    sendRejection(res, verdict);
    h.refused(req);
  };

  const chooseForwarding: Middleware<GuardedRequest> = (req, _res, next) => {
    const state = req.tollguard!;
    state.forwarding = forwardingFor(h.core.rules, state.verdict!);
    next();
  };

  const forwardToCore: Middleware<GuardedRequest> = (req, res) => {
    h.forward(req, res, req.tollguard as Required<InviteState>);
  };

  return [screenSources, answerStrayReInvites, passCoreRequests, readCallAttempt, askTheCore, refuseRejected, chooseForwarding, forwardToCore];
}

function hasToTag(req: DrachtioRequest): boolean {
  const to = req.get('To') ?? '';
  // The tag is a To header parameter (after the name-addr's closing '>', if any).
  const params = to.slice(to.lastIndexOf('>') + 1);
  return /;\s*tag\s*=/i.test(params);
}
