import type { Logger } from 'winston';
import type { CallAttempt, Verdict } from '../../core/types';
import type { DecisionLogMode } from '../guard-policy';
import type { Peer } from '../policy';

/**
 * One line per INVITE decision, with the same fields as the embedded proxy's GuardPolicy writes
 * (a unit test compares the two), so log pipelines need not know which front end ran.
 */
export function logDecision(
  logger: Logger,
  mode: DecisionLogMode,
  attempt: CallAttempt,
  peer: Peer,
  v: Verdict,
  micros: number,
): void {
  if (mode === 'none' || (mode === 'rejects' && v.allow)) return;
  logger.info({
    message: 'decision',
    method: 'INVITE',
    callId: attempt.callId,
    account: v.account ?? null,
    source: peer.address,
    transport: peer.transport,
    dialled: attempt.dialled || null,
    normalised: v.normalised ?? null,
    international: v.international ?? null,
    verdict: v.allow ? 'allow' : 'reject',
    status: v.allow ? null : v.status,
    rule: v.rule,
    detail: v.detail || null,
    us: Math.round(micros * 10) / 10,
  });
}
