import type { Logger } from 'winston';
import type { LiveCall } from '../call-events';
import type { CallTracker, TrackedCall } from './call-tracker';
import type { DrachtioRequest, DrachtioResponse, Srf } from './srf-types';

export interface ProxyCallOptions {
  srf: Srf;
  req: DrachtioRequest;
  res: DrachtioResponse;
  /** Where drachtio-server sends the INVITE (the core). */
  destination: string;
  info: LiveCall;
  tracker: CallTracker;
  logger: Logger;
  /**
   * The table entry of an answered call is dropped after this long even if no CDR said the call
   * ended (the core's slot has the same backstop, sip.max_call_seconds).
   */
  backstopSeconds: number;
  /** The final status came back (for UpstreamAnswerEvent). */
  onFinal?: (status: number) => void;
  /** Called once when drachtio-server is done with the INVITE transaction. */
  onDone?: () => void;
}

/**
 * One call forwarded by drachtio-server as a stateful proxy with Record-Route (RFC 3261 §16.6
 * step 4), so in-dialog requests stay on drachtio-server's path. The lightest mode: the guard
 * sees the INVITE's final answer here and the call's end only through drachtio-server's CDRs
 * (cdr:stop on BYE, see DrachtioFrontEnd), and it cannot end the call itself.
 */
export class ProxyCall implements TrackedCall {
  readonly mode = 'proxy' as const;
  readonly info: LiveCall;

  constructor(private readonly o: ProxyCallOptions) {
    this.info = o.info;
  }

  /** Forwards the INVITE; settles with the transaction (never rejects). */
  async start(): Promise<void> {
    const { srf, req, res, destination, tracker, logger } = this.o;
    const callId = this.info.callId;
    let status: number | undefined;
    try {
      const result = await srf.proxyRequest(req, destination, { recordRoute: true, followRedirects: false });
      status = result.finalStatus;
    } catch (err) {
      // drachtio-server refused to proxy (NOK), e.g. the destination could not be resolved.
      logger.error({ message: 'proxy to the core failed', callId, account: this.info.account, destination, error: err instanceof Error ? err.message : String(err) });
      if (!res.finalResponseSent) {
        try {
          res.send(503, 'Service Unavailable', { headers: { 'X-Reason': 'upstream' } });
        } catch (sendErr) {
          logger.error({ message: 'could not answer the caller', callId, error: String(sendErr) });
        }
      }
      tracker.finish(callId, 'error');
      this.o.onDone?.();
      return;
    }
    if (status !== undefined) this.o.onFinal?.(status);
    if (status !== undefined && status >= 200 && status < 300) {
      tracker.answered(callId);
      // finish() is idempotent, so the backstop needs no cancelling when the CDR comes first.
      setTimeout(() => tracker.finish(callId, 'timeout'), this.o.backstopSeconds * 1000).unref();
    } else {
      // 487 is the answer to the caller's CANCEL (RFC 3261 §9.2); anything else is a refusal.
      tracker.finish(callId, status === 487 ? 'cancelled' : status === undefined ? 'error' : 'rejected');
    }
    this.o.onDone?.();
  }

  /** drachtio-srf offers no way to end a dialog that drachtio-server proxies. */
  async hangUp(): Promise<boolean> {
    return false;
  }
}
