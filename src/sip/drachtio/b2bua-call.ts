import type { Logger } from 'winston';
import type { CallEndReason, LiveCall } from '../call-events';
import type { CallTracker, TrackedCall } from './call-tracker';
import { isSipError, type B2buaOptions, type Dialog, type DrachtioRequest, type DrachtioResponse, type Srf } from './srf-types';

/**
 * Headers of the caller's INVITE that stay on the caller's hop. createB2BUA's 'all' already
 * leaves out Via, From, To, Call-ID, CSeq, Contact and the Content-* headers; Route and
 * Record-Route describe the A leg's path (RFC 3261 §16.12, §12.1.1) and would misroute the B leg.
 */
const NOT_PASSED_THROUGH = ['-Route', '-Record-Route'];

export interface B2buaCallOptions {
  srf: Srf;
  req: DrachtioRequest;
  res: DrachtioResponse;
  /** Request-URI of the B-leg INVITE (the core). */
  uri: string;
  info: LiveCall;
  /** Seconds from answer after which both legs get BYE; undefined = no limit. */
  maxCallSeconds?: number;
  tracker: CallTracker;
  logger: Logger;
  /** Called once when the call is completely over (the front end ends an outbound session). */
  onDone?: () => void;
  /** The core's final answer to the B-leg INVITE (for UpstreamAnswerEvent: the defense counts 401/407/403/404). */
  onFinal?: (status: number) => void;
}

/**
 * One call carried as a back-to-back user agent: the guard owns the caller's leg (uas) and the
 * core's leg (uac), so it sees the answer and the end, can cap the duration and can hang up.
 * Headers pass through transparently both ways (createB2BUA proxyRequestHeaders/
 * proxyResponseHeaders 'all'); the SDP is relayed unchanged.
 */
export class B2buaCall implements TrackedCall {
  readonly mode = 'b2bua' as const;
  readonly info: LiveCall;
  private legs?: { uac: Dialog; uas: Dialog };
  private uacReq?: DrachtioRequest;
  private timer?: NodeJS.Timeout;
  /** Set when the guard ends the call, so the B-leg's 487 is reported as ours, not a CANCEL. */
  private endedBy?: { why: 'hangup' | 'timeout'; reason: string };
  private over = false;

  constructor(private readonly o: B2buaCallOptions) {
    this.info = o.info;
  }

  /** Places the B leg; settles when the call is up or has failed (never rejects). */
  async start(): Promise<void> {
    const { srf, req, res, uri, logger } = this.o;
    // Loop protection across the B2BUA: the B leg carries the caller's Max-Forwards less one
    // (as a proxy would, RFC 3261 §16.6 step 3), and a request arriving with 0 gets 483
    // (§16.3 step 3). Without this, 'all' would copy the value unchanged and a routing loop
    // through the guard would never end. Lower-case, so createB2BUA's copy does not add a second.
    const maxForwards = Number(req.get('Max-Forwards') ?? '70');
    const hops = Number.isInteger(maxForwards) && maxForwards >= 0 ? maxForwards : 70;
    if (hops === 0) {
      res.send(483, 'Too Many Hops');
      this.finish('rejected');
      return;
    }
    const opts: B2buaOptions = {
      headers: { 'max-forwards': String(hops - 1) },
      proxyRequestHeaders: ['all', ...NOT_PASSED_THROUGH],
      proxyResponseHeaders: ['all'],
    };
    let legs: { uac: Dialog; uas: Dialog };
    try {
      legs = await srf.createB2BUA(req, res, uri, opts, {
        cbRequest: (err, uacReq) => {
          if (err) return; // createB2BUA answers 500 to the caller and rejects: handled below
          this.uacReq = uacReq;
          // A hang-up asked for before the B-leg INVITE went out is carried out now.
          if (this.endedBy !== undefined) this.cancelBLeg();
        },
      });
    } catch (err) {
      this.failed(err);
      return;
    }
    this.legs = legs;
    // createB2BUA resolves on the core's 2xx, which it relayed to the caller as res.status.
    this.o.onFinal?.(this.o.res.status ?? 200);
    if (this.endedBy !== undefined) {
      // Hung up while the answer was on its way: the 2xx went to the caller, so both legs get BYE.
      await this.tearDown(this.endedBy.why, this.endedBy.reason);
      return;
    }
    this.o.tracker.answered(this.info.callId);
    legs.uas.on('destroy', () => this.farEndHungUp('caller', legs.uac));
    legs.uac.on('destroy', () => this.farEndHungUp('core', legs.uas));
    this.relayInDialog(legs.uas, legs.uac);
    this.relayInDialog(legs.uac, legs.uas);
    const max = this.o.maxCallSeconds;
    if (max !== undefined) {
      this.timer = setTimeout(() => {
        logger.info({ message: 'max call duration reached', callId: this.info.callId, account: this.info.account, seconds: max });
        void this.tearDown('timeout', `max call duration ${max} s`);
      }, max * 1000);
      // The call's sockets keep the process alive while it matters; the timer alone need not.
      this.timer.unref();
    }
  }

  /**
   * Keeps the B2BUA transparent inside the call: a re-INVITE with a new offer (RFC 3261 §14) and
   * INFO (RFC 6086, e.g. DTMF) go to the other leg, and its answer comes back. drachtio-srf would
   * otherwise answer both itself (re-INVITE with the leg's old SDP).
   */
  private relayInDialog(from: Dialog, to: Dialog): void {
    const callId = this.info.callId;
    from.on('modify', (req, res) => {
      to.modify(req.body ?? '').then(
        (sdp) => res.send(200, { body: sdp, headers: { 'Content-Type': 'application/sdp' } }),
        (err: unknown) => {
          this.o.logger.warn({ message: 're-INVITE refused by the other leg', callId, error: errorText(err) });
          res.send(isSipError(err) ? err.status : 488);
        },
      );
    });
    from.on('info', (req, res) => {
      const headers: Record<string, string> = {};
      const type = req.get('Content-Type');
      if (type !== undefined) headers['Content-Type'] = type;
      to.request({ method: 'INFO', headers, body: req.body }).then(
        (answer) => res.send(answer.status),
        (err: unknown) => {
          this.o.logger.warn({ message: 'INFO not relayed', callId, error: errorText(err) });
          res.send(500);
        },
      );
    });
  }

  async hangUp(reason: string, why: 'hangup' | 'timeout'): Promise<boolean> {
    if (this.over || this.endedBy !== undefined) return false;
    this.endedBy = { why, reason };
    if (this.legs !== undefined) {
      await this.tearDown(why, reason);
      return true;
    }
    // Still ringing: CANCEL the core's leg; createB2BUA then answers the caller 487.
    if (this.uacReq !== undefined) this.cancelBLeg();
    return true;
  }

  private cancelBLeg(): void {
    try {
      this.uacReq!.cancel({ headers: { Reason: q850(this.endedBy?.reason ?? 'hangup') } });
    } catch (err) {
      this.o.logger.error({ message: 'could not CANCEL the core leg', callId: this.info.callId, error: errorText(err) });
    }
  }

  /** One side sent BYE: drachtio answered it 200; the other side gets BYE from us. */
  private farEndHungUp(side: 'caller' | 'core', other: Dialog): void {
    if (this.over) return;
    this.o.logger.debug({ message: 'BYE', callId: this.info.callId, from: side });
    this.clearTimer();
    other.destroy().catch((err: unknown) => {
      this.o.logger.warn({ message: 'BYE to the other leg failed', callId: this.info.callId, leg: side === 'caller' ? 'core' : 'caller', error: errorText(err) });
    });
    this.finish('bye');
  }

  /** The guard ends an answered call: BYE on both legs, with the reason (RFC 3326 Reason header). */
  private async tearDown(why: 'hangup' | 'timeout', reason: string): Promise<void> {
    if (this.over || this.legs === undefined) return;
    this.clearTimer();
    const headers = { Reason: q850(reason), 'X-Reason': why === 'timeout' ? 'max_call_duration' : 'hangup' };
    const { uac, uas } = this.legs;
    // Finish first: the slot is free and observers know as soon as we decide, not after the BYEs' 200s.
    this.finish(why);
    const results = await Promise.allSettled([uas.destroy({ headers }), uac.destroy({ headers })]);
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        this.o.logger.warn({ message: 'BYE failed', callId: this.info.callId, leg: i === 0 ? 'caller' : 'core', error: errorText(r.reason) });
      }
    });
  }

  /** createB2BUA rejected: the core refused, the caller cancelled, or something broke. */
  private failed(err: unknown): void {
    const { res, req, logger } = this.o;
    let why: CallEndReason;
    if (this.endedBy !== undefined) why = this.endedBy.why;
    else if (isSipError(err)) why = err.status === 487 || req.canceled === true ? 'cancelled' : 'rejected';
    else {
      why = 'error';
      logger.error({ message: 'b2bua call failed', callId: this.info.callId, account: this.info.account, error: errorText(err) });
    }
    // Only the core's own answers: not a 487 that our hang-up or the caller's CANCEL caused.
    if (isSipError(err) && why === 'rejected') this.o.onFinal?.(err.status);
    // createB2BUA answers the caller itself for failures of the B leg (passFailure); a failure
    // before the B leg existed must still not leave the caller without a final answer.
    if (!res.finalResponseSent) {
      try {
        res.send(isSipError(err) ? err.status : 500);
      } catch (sendErr) {
        logger.error({ message: 'could not answer the caller', callId: this.info.callId, error: errorText(sendErr) });
      }
    }
    this.finish(why);
  }

  private finish(why: CallEndReason): void {
    if (this.over) return;
    this.over = true;
    this.clearTimer();
    this.o.tracker.finish(this.info.callId, why);
    this.o.onDone?.();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * RFC 3326 Reason header for a BYE or CANCEL the guard sends: Q.850 cause 16, "normal call
 * clearing", with the guard's reason as text.
 */
export function q850(text: string): string {
  return `Q.850;cause=16;text="${text.replace(/["\\\r\n]/g, ' ')}"`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
