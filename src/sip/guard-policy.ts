import type { Logger } from 'winston';
import type { GuardCore } from '../core/guard-core';
import type { Verdict } from '../core/types';
import { monotonicNow } from '../clock';
import { lineSinkOf, type LineSink } from '../log';
import { toCallAttempt } from './call-attempt';
import type { SipRequest } from './message';
import type { Peer, ProxyPolicy, Rejection } from './policy';

export type DecisionLogMode = 'all' | 'rejects' | 'none';

/**
 * The embedded proxy's policy: a thin adapter that turns SIP requests into the core's questions
 * and the core's verdicts into SIP answers. It holds no policy of its own.
 */
export class GuardPolicy implements ProxyPolicy {
  /** Set when decisions is a createLogger() logger: lines skip winston's pipeline (see LineSink). */
  private readonly sink: LineSink | undefined;

  constructor(
    private readonly core: GuardCore,
    private readonly decisions: Logger,
    private decisionLog: DecisionLogMode = 'all',
  ) {
    this.sink = lineSinkOf(decisions);
  }

  setDecisionLog(mode: DecisionLogMode): void {
    this.decisionLog = mode;
  }

  screenRequest(req: SipRequest, from: Peer): Rejection | 'drop' | null {
    const verdict = this.core.checkSource(from.address);
    if (verdict === null) return null;
    // An INVITE gets its decision line here too: the source check is the rule that decided it.
    const dialled = req.method === 'INVITE' ? toCallAttempt(req, from.address, 0).dialled : '';
    this.log(req, from, verdict, 0, dialled);
    return rejectionOf(verdict);
  }

  admitInvite(req: SipRequest, from: Peer): Rejection | null {
    const started = process.hrtime.bigint();
    const attempt = toCallAttempt(req, from.address, monotonicNow());
    const verdict = this.core.decide(attempt);
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    this.log(req, from, verdict, micros, attempt.dialled);
    return verdict.allow ? null : rejectionOf(verdict);
  }

  knowsDialog(callId: string): boolean {
    return this.core.isAdmitted(callId);
  }

  callEnded(callId: string): void {
    this.core.release(callId);
  }

  dialogActivity(callId: string): void {
    this.core.touch(callId, monotonicNow());
  }

  private log(req: SipRequest, from: Peer, v: Verdict, micros: number, dialled: string): void {
    if (this.decisionLog === 'none' || (this.decisionLog === 'rejects' && v.allow)) return;
    const line = {
      message: 'decision',
      method: req.method,
      callId: req.callId,
      account: v.account ?? null,
      source: from.address,
      transport: from.transport,
      dialled: dialled || null,
      normalised: v.normalised ?? null,
      international: v.international ?? null,
      verdict: v.allow ? 'allow' : 'reject',
      status: v.allow ? null : v.status,
      rule: v.rule,
      detail: v.detail || null,
      us: Math.round(micros * 10) / 10,
    };
    if (this.sink === undefined) {
      this.decisions.info(line);
      return;
    }
    if (!this.decisions.isInfoEnabled() || this.decisions.silent) return;
    // The line log.ts's lean format writes ({"time":..., fields..., "level":"info"}), built here
    // without winston's pipeline; an ISO time needs no JSON escaping.
    this.sink.write(`{"time":"${new Date().toISOString()}",${JSON.stringify(line).slice(1, -1)},"level":"info"}`);
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
