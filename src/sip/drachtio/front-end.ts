import type { Logger } from 'winston';
import { monotonicNow } from '../../clock';
import type { GuardCore } from '../../core/guard-core';
import type { Verdict } from '../../core/types';
import { parseHostPortSpec, type HostPortSpec } from '../address';
import { identityOf } from '../call-attempt';
import type { CallControl, CallObserver, HangUpFilter, LiveCall, UpstreamAnswerEvent } from '../call-events';
import { DecisionLog, type DecisionLogMode } from '../decision-log';
import type { Rejection } from '../policy';
import type { RequestScreen, ScreenedRequest, ScreenHost } from '../request-screen';
import { formatHostPort, tryParseUri } from '../uri';
import { headersObject, sendRejection } from './answer';
import { B2buaCall } from './b2bua-call';
import { CallTracker } from './call-tracker';
import { DrachtioConnection, type ConnectionOptions, type DrachtioConnectionSpec } from './connection';
import { inviteChain, type GuardedRequest, type InviteState } from './invite-chain';
import { ObserverList } from './observers';
import { ProxyCall } from './proxy-call';
import { peerOf } from './request-view';
import { forgetUnansweredInvite } from './silent-drop';
import type { DrachtioRequest, DrachtioResponse, Middleware, Srf } from './srf-types';

export interface DrachtioFrontEndOptions {
  srf: Srf;
  core: GuardCore;
  logger: Logger;
  connection: DrachtioConnectionSpec;
  /** sip.upstream: the SIP core, "[udp:|tcp:]host:port". */
  upstream: string;
  decisionLog?: DecisionLogMode;
  /** Backstop for the live-call entry of a proxied call whose end no CDR reported (seconds). */
  maxCallSeconds?: number;
  connectionOptions?: ConnectionOptions;
  /** Wall clock for events (Date.now). */
  wallClock?: () => number;
}

/**
 * Methods besides INVITE that customers send outside a dialog; drachtio-server hands them to the
 * app only when it routes them, so they are routed here, screened against allowed_sources, and
 * proxied to the core (SUBSCRIBE with Record-Route: it makes a dialog, RFC 6665 §4.1.2).
 */
const OTHER_METHODS = ['register', 'options', 'message', 'subscribe', 'publish'] as const;

/**
 * The guard as a drachtio-srf application: drachtio-server does the SIP, the decision core
 * decides, and this class only moves data between the two. It implements CallControl, reports
 * CallObserver events and runs RequestScreens, like the embedded proxy, so the fraud monitor and
 * the attack-source defense work with either.
 */
export class DrachtioFrontEnd implements CallControl, ScreenHost {
  readonly connection: DrachtioConnection;
  private readonly srf: Srf;
  private readonly core: GuardCore;
  private readonly logger: Logger;
  private readonly observers: ObserverList;
  private readonly tracker: CallTracker;
  private readonly wallClock: () => number;
  private readonly decisionLog: DecisionLog;
  private upstream: HostPortSpec;
  private maxCallSeconds: number;
  private readonly screens: RequestScreen[] = [];
  private warnedUnknownSrf = false;
  /** Requests a screen dropped without an answer (see dropSilently). */
  droppedRequests = 0;

  constructor(o: DrachtioFrontEndOptions) {
    this.srf = o.srf;
    this.core = o.core;
    this.logger = o.logger;
    this.wallClock = o.wallClock ?? Date.now;
    this.decisionLog = new DecisionLog(o.logger, o.decisionLog ?? 'all');
    this.upstream = parseHostPortSpec(o.upstream);
    this.maxCallSeconds = o.maxCallSeconds ?? o.core.rules.guard.sip.max_call_seconds ?? 14_400;
    this.observers = new ObserverList(o.logger);
    this.tracker = new CallTracker(o.core, this.observers, o.logger, this.wallClock);
    this.connection = new DrachtioConnection(o.srf, o.connection, o.logger, o.connectionOptions);
    this.install();
  }

  async start(): Promise<void> {
    await this.connection.start();
  }

  async stop(): Promise<void> {
    await this.connection.stop();
  }

  addObserver(o: CallObserver): () => void {
    return this.observers.add(o);
  }

  /**
   * Screens run first for every request the app is handed (INVITE and OTHER_METHODS), except the
   * core's own: dropSource, then screen, then the guard's allowed_sources check.
   */
  addScreen(s: RequestScreen): void {
    this.screens.push(s);
  }

  setDecisionLog(mode: DecisionLogMode): void {
    this.decisionLog.setMode(mode);
  }

  liveCalls(accountId?: string): LiveCall[] {
    return this.tracker.liveCalls(accountId);
  }

  /** True while a call with this Call-ID is carried and holds its concurrent-call slot in the core. */
  isAdmitted(callId: string): boolean {
    return this.tracker.isAdmitted(callId);
  }

  async hangUpCalls(accountId: string, filter?: HangUpFilter, reason = 'hangup'): Promise<number> {
    const calls = this.tracker.matching(accountId, filter);
    const results = await Promise.all(calls.map((c) => c.hangUp(reason, 'hangup')));
    const ended = results.filter(Boolean).length;
    const proxied = calls.filter((c) => c.mode === 'proxy').length;
    this.logger.info({ message: 'hang up calls', account: accountId, international: filter?.international ?? null, reason, matched: calls.length, ended });
    if (proxied > 0) {
      this.logger.warn({ message: 'proxied calls cannot be ended by the guard (use mode: b2bua for this account)', account: accountId, calls: proxied });
    }
    return ended;
  }

  /** The middleware chains and CDR listeners; subscribed before connecting, as drachtio-srf requires for CDRs. */
  private install(): void {
    const srf = this.srf;
    srf.use('invite', inviteChain({
      core: this.core,
      screen: (req, res) => this.screened(req, res),
      now: monotonicNow,
      heldSlot: (callId) => this.tracker.heldSlot(callId),
      fromCore: (req) => this.fromCore(req),
      passFromCore: (req, res) => this.passFromCore(req, res),
      decided: (state, verdict, micros) => this.decided(state, verdict, micros),
      refused: (req) => this.srf.endSession(req),
      forward: (req, res, state) => this.forward(req, res, state),
    }));
    for (const method of OTHER_METHODS) srf.use(method, [this.screenAndProxy(method === 'subscribe')]);

    // Proxied calls end without the app seeing the BYE: drachtio-server's CDRs tell (cdr:stop
    // on BYE, and on failures and CANCELs, which the proxy result already reported).
    srf.on('cdr:stop', (_source, _time, _reason, msg) => {
      const callId = msg.get('Call-ID');
      if (callId === undefined) return;
      const call = this.tracker.get(callId);
      if (call?.mode === 'proxy' && call.info.answeredAt !== undefined) {
        this.tracker.finish(callId, 'bye');
      }
    });
  }

  private decided(state: InviteState, verdict: Verdict, micros: number): void {
    this.decisionLog.write('INVITE', state.attempt.callId, state.peer, state.attempt.dialled, verdict, micros);
    this.observers.decided({ callId: state.attempt.callId, attempt: state.attempt, verdict, peer: state.peer, at: this.wallClock() });
  }

  private forward(req: GuardedRequest, res: DrachtioResponse, state: Required<InviteState>): void {
    const { attempt, verdict, forwarding } = state;
    const info: LiveCall = {
      callId: attempt.callId,
      account: verdict.account ?? '',
      source: attempt.source,
      dialled: attempt.dialled,
      international: verdict.international ?? false,
      admittedAt: this.wallClock(),
    };
    if (verdict.normalised !== undefined) info.normalised = verdict.normalised;
    const target = this.coreUri(req.uri);
    const onFinal = (status: number): void => this.observers.upstreamAnswered(this.answerEvent(req, status));
    const onDone = (): void => this.srf.endSession(req);
    if (forwarding.mode === 'b2bua') {
      const call = new B2buaCall({ srf: this.srf, req, res, uri: target, info, maxCallSeconds: forwarding.maxCallSeconds, tracker: this.tracker, logger: this.logger, onFinal, onDone });
      this.tracker.admit(call, verdict.slot!);
      void call.start();
    } else {
      const call = new ProxyCall({ srf: this.srf, req, res, destination: target, info, tracker: this.tracker, logger: this.logger, backstopSeconds: this.maxCallSeconds, onFinal, onDone });
      this.tracker.admit(call, verdict.slot!);
      void call.start();
    }
  }

  /** Non-INVITE requests: the guard-wide source check, then on to the core unchanged. */
  private screenAndProxy(recordRoute: boolean): Middleware {
    return (req, res) => {
      if (!this.fromCore(req)) {
        if (this.screened(req, res)) return;
        const refused = this.core.checkSource(req.source_address);
        if (refused !== null) {
          const peer = peerOf(req);
          this.logger.info({ message: 'refused', method: req.method, callId: req.get('Call-ID') ?? null, source: peer.address, transport: peer.transport, rule: refused.rule, detail: refused.detail });
          sendRejection(res, refused); // the same answer as the INVITE path and the embedded proxy's screen
          this.srf.endSession(req);
          return;
        }
      }
      const destination = this.fromCore(req) ? req.uri : this.coreUri(req.uri);
      this.srf.proxyRequest(req, destination, { recordRoute }).then(
        (result) => {
          if (result.finalStatus !== undefined && !this.fromCore(req)) this.observers.upstreamAnswered(this.answerEvent(req, result.finalStatus));
          this.srf.endSession(req);
        },
        (err: unknown) => {
          this.logger.error({ message: 'proxy to the core failed', method: req.method, callId: req.get('Call-ID') ?? null, error: err instanceof Error ? err.message : String(err) });
          this.srf.endSession(req);
        },
      );
    };
  }

  /**
   * Runs the screens; true when one of them dealt with the request (dropped or refused it), so
   * the caller does nothing more. Requests from the core are not screened (fromCore), as in the
   * embedded proxy.
   */
  private screened(req: DrachtioRequest, res: DrachtioResponse): boolean {
    if (this.screens.length === 0 || this.fromCore(req)) return false;
    const peer = peerOf(req);
    let outcome: Rejection | 'drop' | null = null;
    try {
      for (const s of this.screens) {
        if (s.dropSource?.(peer.address, peer.transport) === true) {
          outcome = 'drop';
          break;
        }
      }
      if (outcome === null) {
        const view: ScreenedRequest = { method: req.method, header: (name) => req.get(name) };
        for (const s of this.screens) {
          outcome = s.screen?.(view, peer) ?? null;
          if (outcome !== null) break;
        }
      }
    } catch (err) {
      // As the embedded proxy does: a broken screen must not let the request through unscreened.
      this.logger.error({ message: 'request screen threw', method: req.method, callId: req.get('Call-ID') ?? null, error: err instanceof Error ? err.stack ?? err.message : String(err) });
      outcome = { status: 500, reason: 'Server Internal Error' };
    }
    if (outcome === null) return false;
    if (outcome === 'drop') {
      this.dropSilently(req);
      return true;
    }
    res.send(outcome.status, outcome.reason, { headers: headersObject(outcome.headers ?? []) });
    this.srf.endSession(req);
    return true;
  }

  /**
   * "Dropped silently" behind drachtio-server: the app sends nothing. drachtio-server has then
   * already received and parsed the request (and sent an INVITE its 100 Trying before handing it
   * over); it holds its pending-request entry for 64 s (CLIENT_TIMEOUT in
   * pending-request-controller.cpp), absorbs retransmissions, and lets it go without answering the
   * caller. What the app itself would keep is cleared here: drachtio-srf's table of unanswered
   * INVITEs (silent-drop.ts), and an outbound connection's per-request socket (endSession).
   */
  private dropSilently(req: DrachtioRequest): void {
    this.droppedRequests++;
    if (forgetUnansweredInvite(req) === 'unknown-shape' && !this.warnedUnknownSrf) {
      this.warnedUnknownSrf = true;
      this.logger.error({ message: 'drachtio-srf internals are not as expected: INVITEs dropped by the defense stay in its pending-invite table until the connection closes (check src/sip/drachtio/silent-drop.ts against this drachtio-srf version)' });
    }
    this.srf.endSession(req);
  }

  /**
   * Requests from the configured core (its calls to customers) are trusted by configuration and
   * are not screened, as in the embedded proxy; they follow their own Request-URI.
   */
  private fromCore(req: DrachtioRequest): boolean {
    return req.source_address === this.upstream.host;
  }

  private passFromCore(req: DrachtioRequest, res: DrachtioResponse): void {
    this.srf.proxyRequest(req, req.uri, { recordRoute: true }).then(
      () => this.srf.endSession(req),
      (err: unknown) => {
        this.logger.error({ message: 'proxy from the core failed', callId: req.get('Call-ID') ?? null, error: err instanceof Error ? err.message : String(err) });
        if (!res.finalResponseSent) res.send(503);
        this.srf.endSession(req);
      },
    );
  }

  /**
   * The Request-URI towards the core: the caller's user part (params such as phone-context kept)
   * at the core's address, so drachtio-server sends it there (RFC 3261 §16.5: a proxy may
   * retarget). A tel: URI becomes sip:NUMBER@core;user=phone (RFC 3261 §19.1.6).
   */
  coreUri(requestUri: string): string {
    const u = this.upstream;
    const hostPort = formatHostPort(u.host, u.port);
    const transport = u.transport === 'udp' ? '' : `;transport=${u.transport}`;
    const parsed = tryParseUri(requestUri);
    if (parsed?.scheme === 'tel') return `sip:${telNumber(requestUri)}@${hostPort}${transport};user=phone`;
    const user = parsed?.userRaw;
    return user !== undefined && user !== '' ? `sip:${user}@${hostPort}${transport}` : `sip:${hostPort}${transport}`;
  }

  private answerEvent(req: DrachtioRequest, status: number): UpstreamAnswerEvent {
    const e: UpstreamAnswerEvent = { method: req.method, status, callId: req.get('Call-ID') ?? '', peer: peerOf(req), at: this.wallClock() };
    identityOf((name) => req.get(name), e);
    return e;
  }
}

/** The tel: number as written, with its parameters (phone-context) kept as SIP user parameters. */
function telNumber(uri: string): string {
  return uri.trim().slice(4);
}
