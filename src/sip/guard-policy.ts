import type { Logger } from 'winston';
import type { GuardCore } from '../core/guard-core';
import type { CallAttempt, Verdict } from '../core/types';
import { monotonicNow } from '../clock';
import { DecisionLog, type DecisionLogMode } from './decision-log';
import { identityOf, toCallAttempt } from './call-attempt';
import { own } from './syntax';
import type { CallEndReason, CallObserver, LiveCall, UpstreamAnswerEvent } from './call-events';
import type { SipRequest } from './message';
import type { Peer, ProxyPolicy, Rejection, TransportName } from './policy';
import type { RequestScreen, ScreenHost } from './request-screen';

export type { RequestScreen } from './request-screen';

export type { DecisionLogMode };

/** A live call as the policy keeps it: what observers see, plus the core's slot handle. */
export interface AdmittedCall extends LiveCall {
  readonly slot: number;
}

/** How often (monotonic ms) admitted calls whose slot the core's backstop expired are forgotten. */
const LIVE_SWEEP_MS = 60_000;

/** What watchAnswer() keeps of a request until the core's final answer comes back. */
type Watched = Omit<UpstreamAnswerEvent, 'status' | 'at'>;

/**
 * The embedded proxy's policy: a thin adapter that turns SIP requests into the core's questions
 * and the core's verdicts into SIP answers. It holds no policy of its own; screens and observers
 * (defense, fraud monitor) are plugged in from outside.
 */
export class GuardPolicy implements ProxyPolicy, ScreenHost {
  private readonly observers: CallObserver[] = [];
  private readonly screens: RequestScreen[] = [];
  private readonly dropScreens: RequestScreen[] = [];
  private watchAnswers = false;
  /** Admitted calls not yet ended, by Call-ID: what the monitor and hangUpCalls() look at. */
  readonly live = new Map<string, AdmittedCall>();
  private lastLiveSweep = monotonicNow();
  private readonly decisionLog: DecisionLog;

  constructor(
    private readonly core: GuardCore,
    private readonly decisions: Logger,
    decisionLog: DecisionLogMode = 'all',
  ) {
    this.decisionLog = new DecisionLog(decisions, decisionLog);
  }

  setDecisionLog(mode: DecisionLogMode): void {
    this.decisionLog.setMode(mode);
  }

  addObserver(o: CallObserver): void {
    this.observers.push(o);
    if (o.upstreamAnswered) this.watchAnswers = true;
  }

  addScreen(s: RequestScreen): void {
    if (s.screen) this.screens.push(s);
    if (s.dropSource) this.dropScreens.push(s);
  }

  dropSource(address: string, transport: TransportName): boolean {
    const list = this.dropScreens;
    for (let i = 0; i < list.length; i++) if (list[i].dropSource!(address, transport)) return true;
    return false;
  }

  screenRequest(req: SipRequest, from: Peer, arrivedAt?: number): Rejection | 'drop' | null {
    const list = this.screens;
    for (let i = 0; i < list.length; i++) {
      const r = list[i].screen!(req, from, arrivedAt);
      if (r !== null) return r;
    }
    const verdict = this.core.checkSource(from.address);
    if (verdict === null) return null;
    // An INVITE gets its decision line here too: the source check is the rule that decided it.
    if (req.method === 'INVITE') {
      const attempt = toCallAttempt(req, from.address, 0);
      this.log(req, from, verdict, 0, attempt.dialled);
      if (this.observers.length !== 0) this.emitDecided(attempt, verdict, from);
    }
    return rejectionOf(verdict);
  }

  admitInvite(req: SipRequest, from: Peer): Rejection | null {
    const started = process.hrtime.bigint();
    const now = monotonicNow();
    if (now - this.lastLiveSweep >= LIVE_SWEEP_MS) this.forgetExpired(now);
    const attempt = toCallAttempt(req, from.address, now);
    // A new initial INVITE for a call already admitted keeps that call's slot.
    const held = this.live.size === 0 ? undefined : this.live.get(attempt.callId);
    if (held !== undefined) attempt.heldSlot = held.slot;
    const verdict = this.core.decide(attempt);
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    this.log(req, from, verdict, micros, attempt.dialled);
    if (verdict.allow) {
      this.live.set(attempt.callId, {
        slot: verdict.slot!,
        callId: attempt.callId,
        account: verdict.account ?? '',
        source: from.address,
        dialled: own(attempt.dialled), // kept for the call: not a view of the INVITE (see own())
        normalised: verdict.normalised,
        international: verdict.international === true,
        admittedAt: Date.now(),
      });
    }
    if (this.observers.length !== 0) this.emitDecided(attempt, verdict, from);
    return verdict.allow ? null : rejectionOf(verdict);
  }

  knowsDialog(callId: string): boolean {
    const call = this.live.get(callId);
    if (call === undefined) return false;
    if (this.core.isAdmitted(call.slot)) return true;
    this.callEnded(callId, 'timeout'); // the core's max_call_seconds backstop took the slot back
    return false;
  }

  callEnded(callId: string, why: CallEndReason): void {
    const call = this.live.get(callId);
    if (call === undefined) return;
    this.core.release(call.slot);
    this.live.delete(callId);
    if (this.observers.length !== 0) {
      const at = Date.now();
      for (const o of this.observers) this.notify(() => o.ended?.(callId, why, at));
    }
  }

  callAnswered(callId: string): void {
    const call = this.live.get(callId);
    if (call === undefined || call.answeredAt !== undefined) return;
    const at = Date.now();
    call.answeredAt = at;
    for (const o of this.observers) this.notify(() => o.answered?.(callId, at));
  }

  dialogActivity(callId: string): void {
    const call = this.live.get(callId);
    if (call !== undefined) this.core.touch(call.slot, monotonicNow());
  }

  /**
   * Calls whose BYE never came: the core's backstop has given their slot back, so they end here
   * too (observers hear 'timeout') instead of staying in `live` for ever.
   */
  private forgetExpired(now: number): void {
    this.lastLiveSweep = now;
    for (const [callId, call] of this.live) if (!this.core.isAdmitted(call.slot)) this.callEnded(callId, 'timeout');
  }

  watchAnswer(req: SipRequest, from: Peer): Watched | undefined {
    if (!this.watchAnswers || !this.answersWanted()) return undefined;
    const w: Watched = { method: req.method, callId: req.callId, peer: from };
    identityOf((name) => req.header(name), w);
    return w;
  }

  private answersWanted(): boolean {
    const list = this.observers;
    for (let i = 0; i < list.length; i++) {
      const o = list[i];
      if (o.upstreamAnswered !== undefined && (o.wantsUpstreamAnswers === undefined || o.wantsUpstreamAnswers())) return true;
    }
    return false;
  }

  requestAnswered(watch: unknown, status: number): void {
    if (watch === undefined) return;
    const e: UpstreamAnswerEvent = { ...(watch as Watched), status, at: Date.now() };
    for (const o of this.observers) this.notify(() => o.upstreamAnswered?.(e));
  }

  private emitDecided(attempt: CallAttempt, verdict: Verdict, peer: Peer): void {
    const e = { callId: attempt.callId, attempt, verdict, peer, at: Date.now() };
    for (const o of this.observers) this.notify(() => o.decided?.(e));
  }

  /** Observers must not break the call path: a throw is logged and the call goes on. */
  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.decisions.error({ message: 'call observer threw', error: (err as Error).stack ?? String(err) });
    }
  }

  private log(req: SipRequest, from: Peer, v: Verdict, micros: number, dialled: string): void {
    this.decisionLog.write(req.method, req.callId, from, dialled, v, micros);
  }
}

/**
 * A rejection carries the rule twice: a standard Warning (RFC 3261 §20.43, code 399
 * "miscellaneous warning") for any SIP peer, and X-Reason with the bare rule id for scripts.
 */
export function rejectionOf(v: Verdict): Rejection {
  const headers: Array<[string, string]> = [
    ['Warning', `399 tollguard "${v.detail.replace(/["\\\r\n]/g, ' ')}"`],
    ['X-Reason', v.rule],
  ];
  if (v.retryAfter !== undefined) headers.push(['Retry-After', String(v.retryAfter)]);
  return { status: v.status, reason: v.reason, headers };
}
