import type { Logger } from 'winston';
import type { CallEndReason, CallObserver, DecisionEvent, UpstreamAnswerEvent } from '../call-events';

/**
 * Fans call events out to the registered CallObservers. Observers run synchronously on the call
 * path; one that throws is logged and skipped, never allowed to break the call (call-events.ts).
 */
export class ObserverList {
  private readonly observers: CallObserver[] = [];

  constructor(private readonly logger: Logger) {}

  add(o: CallObserver): () => void {
    this.observers.push(o);
    return () => {
      const i = this.observers.indexOf(o);
      if (i >= 0) this.observers.splice(i, 1);
    };
  }

  decided(e: DecisionEvent): void {
    for (const o of this.observers) if (o.decided) this.guard('decided', e.callId, () => o.decided!(e));
  }

  answered(callId: string, at: number): void {
    for (const o of this.observers) if (o.answered) this.guard('answered', callId, () => o.answered!(callId, at));
  }

  ended(callId: string, why: CallEndReason, at: number): void {
    for (const o of this.observers) if (o.ended) this.guard('ended', callId, () => o.ended!(callId, why, at));
  }

  upstreamAnswered(e: UpstreamAnswerEvent): void {
    for (const o of this.observers) if (o.upstreamAnswered) this.guard('upstreamAnswered', e.callId, () => o.upstreamAnswered!(e));
  }

  private guard(event: string, callId: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.logger.error({ message: 'call observer threw', event, callId, error: err instanceof Error ? err.message : String(err) });
    }
  }
}
