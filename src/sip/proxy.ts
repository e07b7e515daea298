/**
 * The embedded transaction-stateful SIP proxy (RFC 3261 §16, transactions per §17 and RFC 6026).
 *
 * It sits between carrier customers and the carrier's SIP core ("upstream"): every request from
 * a customer goes to the upstream, never anywhere else (no open relay); requests from the
 * upstream are routed by Route / Request-URI. Initial INVITEs from customers must pass the
 * policy before they are forwarded. Messages pass byte-for-byte except for the headers a proxy
 * must change (Via, Route, Record-Route, Max-Forwards).
 *
 * Nothing in the receive path may throw out: every entry point (socket handler, timer, promise
 * continuation) is wrapped by guard().
 */
import { EventEmitter } from 'node:events';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'winston';
import type { CallEndWhy, Peer, ProxyPolicy, Rejection, TransportName } from './policy';
import { parseMessage, SipParseError, SipRequest, SipResponse, SipMessage } from './message';
import { TransportLayer, InboundMessage, LocalEndpoint, peerText, type Connection } from './transport';
import { parseHostPortSpec, familyOf, defaultPort } from './address';
import { Router } from './router';
import { responseTemplate, buildResponse, buildAck, buildCancel } from './build';
import { branchFor, isOurBranch, newTag } from './ids';
import { stampReceived, needsStamp, viaResponseTarget } from './via';
import { parseNameAddr, tryParseUri } from './uri';
import {
  ServerTransaction, ClientTransaction, TimerValues, DEFAULT_TIMERS, LINGER_CAP_MS, serverKey,
} from './transaction';
import { LogThrottle } from './log-throttle';
import type { UdpIo } from './udp-socket';
import { TimerService, type TimerName, type TimerSlot } from './timer-service';
import { EventLoopLag } from './event-loop-lag';
import { buildBye, byeRoutes, dialogRecordOf, type ByeRoutes, type DialogRecord } from './dialog';
import { textToBytes, own } from './syntax';

export interface ProxyOptions {
  /** "udp:127.0.0.1:5060", "tcp:127.0.0.1:5060", "udp:[::1]:5060"; port 0 picks a free port (tests). */
  listen: string[];
  /** "127.0.0.1:5080", "[::1]:5080", "tcp:127.0.0.1:5080", "udp:host:port" (UDP default). Resolved once at start. */
  upstream: string;
  /** Host to put in Via / Record-Route when listening on 0.0.0.0 / ::. */
  advertise?: string;
  /** recvBufferSize/sendBufferSize on UDP sockets (default 8 MiB). */
  udpBufferBytes?: number;
  /** UDP I/O layer (see udp-socket.ts): default 'auto'. */
  udpIo?: UdpIo;
  policy: ProxyPolicy;
  logger: Logger;
  /** RFC 3261 timers in ms; tests shorten them. */
  timers?: Partial<TimerValues>;
  /** Most server transactions held at once; past it new requests get 503 (default 500000). */
  maxTransactions?: number;
  /** Stream connections idle this long are closed (default 5 min). */
  tcpIdleTimeoutMs?: number;
  /** Largest message accepted on a stream (default 64 KiB). */
  maxMessageBytes?: number;
  /** Inbound TCP/TLS connections one source address may hold (default 1000). */
  maxConnectionsPerSource?: number;
  /** A message begun on TCP/TLS, and an inbound connection's first message, must be complete within this long (default 32 s). */
  partialMessageTimeoutMs?: number;
  /**
   * Run admitInvite() for initial INVITEs that come from the upstream too (default false: the
   * upstream is the trusted core and calls it sends towards customers are not toll fraud).
   */
  admitFromUpstream?: boolean;
  /** Answered admitted calls are remembered this long at most, for hangUp() (default 4 h). */
  dialogTtlMs?: number;
  /**
   * Overload shedding: while the proxy is this many ms behind (the event loop runs that late, or
   * datagrams waited that long in a batch UDP socket's queue), new calls (initial INVITEs from
   * customers) are answered 503 with Retry-After statelessly, so the calls already admitted can
   * finish (default 100; 0 turns it off).
   */
  overloadLagMs?: number;
}

export interface ProxyStats {
  serverTransactions: number;
  clientTransactions: number;
  tcpConnections: number;
  /** Call-IDs of answered upstream-originated dialogs (their re-INVITEs are not initial). */
  upstreamDialogs: number;
  /** Answered admitted calls the proxy can end with hangUp(). */
  admittedDialogs: number;
  counters: Record<CounterName, number>;
}

type CounterName =
  | 'requests' | 'responses' | 'parseErrors' | 'dropped' | 'screened' | 'retransmissionsAbsorbed'
  | 'rejected' | 'forwarded' | 'timeouts' | 'sendErrors' | 'shed';

/** Methods whose out-of-dialog request creates a dialog, hence gets Record-Route (§16.6 step 4). */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);
const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, SUBSCRIBE, MESSAGE';
const UPSTREAM_DIALOGS_MAX = 100_000;
const UPSTREAM_DIALOG_TTL_MS = 12 * 3600_000;
const DIALOGS_MAX = 500_000;
/** A request and its response both wait in the queue: 2 x 100 ms stays under T1 = 500 ms, a caller's first retransmission. */
const DEFAULT_OVERLOAD_LAG_MS = 100;
/** Far above any CSeq a UA reaches by counting its own requests, still below 2**31 (§8.1.1.5). */
const BYE_CSEQ_STEP = 1000;

type Hop = Peer | Promise<Peer> | string;

function isThenable<T>(v: unknown): v is PromiseLike<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

export class SipProxy extends EventEmitter {
  private readonly policy: ProxyPolicy;
  private readonly log: Logger;
  private readonly t: TimerValues;
  private readonly linger: number;
  private readonly throttle = new LogThrottle();
  /** router.isSelfRoute as a function value, made once (dialog records take one per answered call). */
  private readonly isSelfRoute = (v: string): boolean => this.router!.isSelfRoute(v);
  private transport: TransportLayer | null = null;
  private router: Router | null = null;
  private upstream: Peer | null = null;
  private readonly server = new Map<string, ServerTransaction>();
  /** Client transactions by our branch, CANCELs apart (they share their INVITE's branch). */
  private readonly client = new Map<string, ClientTransaction>();
  private readonly cancels = new Map<string, ClientTransaction>();
  private readonly upstreamDialogs = new Map<string, number>();
  /** Admitted calls: ringing (server transaction, no final yet) and answered (dialog record), by Call-ID. */
  private readonly ringing = new Map<string, ServerTransaction>();
  private readonly dialogs = new Map<string, { record: DialogRecord; expires: number }>();
  private byeSeq = 0;
  private readonly counters: Record<CounterName, number> = {
    requests: 0, responses: 0, parseErrors: 0, dropped: 0, screened: 0, retransmissionsAbsorbed: 0,
    rejected: 0, forwarded: 0, timeouts: 0, sendErrors: 0, shed: 0,
  };
  private readonly lag = new EventLoopLag();
  private stopped = false;
  /** The server and client transactions' timers; 'end' is D, I, J, K, L or M (see timer-service.ts). */
  private readonly st: TimerService<ServerTransaction>;
  private readonly ct: TimerService<ClientTransaction>;

  constructor(private readonly opts: ProxyOptions) {
    super();
    this.policy = opts.policy;
    this.log = opts.logger;
    this.t = { ...DEFAULT_TIMERS, ...(opts.timers ?? {}) };
    this.linger = Math.min(64 * this.t.T1, LINGER_CAP_MS);
    this.st = new TimerService((tx, name) => this.guard(() => this.serverTimer(tx, name)));
    this.ct = new TimerService((c, name) => this.guard(() => this.clientTimer(c, name)));
  }

  async start(): Promise<void> {
    if (this.transport) throw new Error('SipProxy already started');
    this.stopped = false;
    const listen = this.opts.listen.map((s) => parseHostPortSpec(s, true));
    if (listen.length === 0) throw new Error('SipProxy: no listen address');
    const up = parseHostPortSpec(this.opts.upstream);
    // Resolved once: the upstream is configuration, not something to look up per call.
    const address = isIP(up.host) ? up.host : (await lookup(up.host)).address;
    this.upstream = { transport: up.transport, address, port: up.port };
    const transport = new TransportLayer({
      listen,
      logger: this.log,
      udpBufferBytes: this.opts.udpBufferBytes,
      udpIo: this.opts.udpIo,
      idleTimeoutMs: this.opts.tcpIdleTimeoutMs,
      maxMessageBytes: this.opts.maxMessageBytes,
      maxConnectionsPerSource: this.opts.maxConnectionsPerSource,
      partialMessageTimeoutMs: this.opts.partialMessageTimeoutMs,
    });
    transport.onMessage = (m) => this.guard(() => this.onInbound(m));
    const drop = this.policy.dropSource;
    if (drop !== undefined) {
      // The core may open connections for its own requests; it is never screened.
      transport.acceptStream = (address, t) => address === this.upstream!.address || !drop.call(this.policy, address, t);
    }
    await transport.start();
    this.transport = transport;
    this.router = new Router(transport.endpoints(), this.opts.advertise);
    if (up.transport === 'udp' && !transport.endpointFor('udp', familyOf(address))) {
      this.log.warn({ message: 'no UDP listener of the upstream address family; requests to it will fail', upstream: this.opts.upstream });
    }
    if ((this.opts.overloadLagMs ?? DEFAULT_OVERLOAD_LAG_MS) > 0) this.lag.start();
    this.log.info({ message: 'sip proxy listening', listen: this.addresses().map(peerText), upstream: peerText(this.upstream), udpIo: transport.udpIo() });
    this.emit('listening');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.lag.stop();
    this.st.stop();
    this.ct.stop();
    this.server.clear();
    this.client.clear();
    this.cancels.clear();
    this.upstreamDialogs.clear();
    this.ringing.clear();
    this.dialogs.clear();
    const t = this.transport;
    this.transport = null;
    if (t) await t.stop();
    this.emit('stopped');
  }

  /** Bound listen addresses, with real ports. */
  addresses(): Array<{ transport: TransportName; address: string; port: number }> {
    return (this.transport?.endpoints() ?? []).map((e) => ({ transport: e.transport, address: e.address, port: e.port }));
  }

  stats(): ProxyStats {
    return {
      serverTransactions: this.server.size,
      clientTransactions: this.client.size + this.cancels.size,
      tcpConnections: this.transport?.connectionCount() ?? 0,
      upstreamDialogs: this.upstreamDialogs.size,
      admittedDialogs: this.dialogs.size,
      counters: { ...this.counters },
    };
  }

  // ======================= receive path =======================

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const t = this.throttle.take('internal');
      if (t.ok) this.log.error({ message: 'sip proxy internal error', error: (err as Error).stack ?? String(err) });
    }
  }

  private warn(key: string, fields: Record<string, unknown>, level: 'warn' | 'info' = 'warn'): void {
    const t = this.throttle.take(key);
    if (!t.ok) return;
    this.log.log(level, t.suppressed ? { ...fields, suppressedSinceLast: t.suppressed } : fields);
  }

  private onInbound(m: InboundMessage): void {
    if (this.stopped) return;
    // Banned sources cost one lookup and nothing else: no parse, no answer, no log line.
    const drop = this.policy.dropSource;
    if (drop !== undefined && !this.isFromUpstream(m) && drop.call(this.policy, m.peer.address, m.peer.transport)) {
      this.counters.dropped++;
      // A source banned while connected loses the connection, as it would at accept.
      if (m.conn !== undefined && !m.conn.outbound) this.transport!.closeConnection(m.conn);
      return;
    }
    let msg: SipMessage;
    try {
      msg = parseMessage(m.data, { stream: m.conn !== undefined });
    } catch (err) {
      if (err instanceof SipParseError) return this.onParseError(err, m);
      throw err;
    }
    if (m.framingError) return this.onParseError(new SipParseError(m.framingError, 'Content-Length', msg), m);
    if (msg.isRequest) this.onRequest(msg, m);
    else this.onResponse(msg, m);
  }

  /** RFC 3261 §16.3 step 1 / §8.2: malformed → 400 when a response can be routed, else drop. */
  private onParseError(err: SipParseError, m: InboundMessage): void {
    this.counters.parseErrors++;
    const p = err.partial;
    if (p && p.isRequest && p.method !== 'ACK' && p.topViaOrUndefined) {
      // §21.5.7: another SIP version than 2.0 is 505, everything else malformed is 400.
      const badVersion = err.header === 'start-line' && err.detail.startsWith('unsupported version');
      const status = badVersion ? 505 : 400;
      this.warn(String(status), { message: `malformed request, answering ${status}`, peer: peerText(m.peer), reason: err.message });
      this.stampVia(p, m.peer);
      const reason = badVersion ? 'Version Not Supported' : `Bad Request (${err.message})`.slice(0, 120);
      this.replyStateless(p, m, status, reason, [['Warning', `399 tollguard "${err.message.replace(/["\\]/g, "'")}"`]]);
      return;
    }
    this.warn('malformed', { message: 'dropping malformed message', peer: peerText(m.peer), reason: err.message });
  }

  /** §18.2.1 and RFC 3581 §4: received= / rport= on the sender's Via (rport forced on UDP, see stampReceived). */
  private stampVia(req: SipRequest, peer: Peer): void {
    const via = req.topViaOrUndefined;
    const symmetric = peer.transport === 'udp';
    if (!via || !needsStamp(via, peer.address, peer.port, symmetric)) return;
    const first = req.firstValue('via');
    if (first === undefined) return;
    const edited = stampReceived(first, via, peer.address, peer.port, symmetric);
    if (edited) req.replaceFirstValue('via', edited);
  }

  private onRequest(req: SipRequest, m: InboundMessage): void {
    this.counters.requests++;
    const peer = m.peer;
    this.stampVia(req, peer);

    // Cheap source screening comes before any state is created. The core itself is trusted by
    // configuration: its BYEs and re-INVITEs pass even when its address is not a customer range.
    let screen: Rejection | 'drop' | null = null;
    try {
      if (!this.isFromUpstream(m, req.topViaOrUndefined)) screen = this.policy.screenRequest(req, peer, m.queuedMs ? Date.now() - m.queuedMs : undefined);
    } catch (err) {
      this.log.error({ message: 'policy.screenRequest threw', error: (err as Error).message });
      screen = { status: 500, reason: 'Server Internal Error' };
    }
    if (screen === 'drop') {
      this.counters.dropped++;
      return;
    }
    if (screen) {
      // Stateless on purpose: a flood from unwanted sources must not create transactions. The
      // answer is deterministic (same To tag), so a retransmission gets the same response again
      // and the ACK is screened out like the INVITE was.
      this.counters.screened++;
      const r = this.checkedRejection(screen);
      if (req.method !== 'ACK') this.replyStateless(req, m, r.status, r.reason, r.headers);
      return;
    }

    if (req.method === 'ACK') return this.onAck(req, m);
    if (req.method === 'CANCEL') return this.onCancel(req, m);

    const key = serverKey(req);
    const existing = this.server.get(key);
    if (existing) return this.onRetransmission(existing);

    if (req.method === 'INVITE' && req.toTag === undefined && this.overloaded() && !this.isFromUpstream(m, req.topViaOrUndefined)) {
      // RFC 3261 §21.5.4 / RFC 5390: refuse new work while overloaded; no transaction is created.
      this.counters.shed++;
      this.warn('shed', {
        message: 'overloaded, answering new calls 503', lagMs: Math.round(this.lag.lagMs()),
        queueMs: Math.round(this.transport!.queueDelayMs()), peer: peerText(peer),
      });
      this.replyStateless(req, m, 503, 'Service Unavailable', [['Retry-After', '5'], ['Warning', '399 tollguard "overloaded"']]);
      return;
    }
    if (this.server.size >= (this.opts.maxTransactions ?? 500_000)) {
      this.warn('overload', { message: 'transaction table full, answering 503', peer: peerText(peer) });
      this.replyStateless(req, m, 503, 'Service Unavailable', [['Retry-After', '5']]);
      return;
    }
    const tx = this.newServerTx(key, req, m);
    if (!tx.fromUpstream && this.policy.watchAnswer !== undefined) this.watchAnswer(tx, req, peer);
    // §16.2 / §17.2.1: 100 Trying at once, so the UAC stops retransmitting the INVITE.
    if (tx.isInvite) this.sendProvisional(tx, buildResponse(tx.tpl!, 100, 'Trying'), 100);

    // §16.3 step 3: Max-Forwards.
    const mf = req.header('max-forwards');
    if (mf !== undefined && Number(mf) === 0) {
      this.warn('483', { message: 'Max-Forwards exhausted, answering 483', peer: peerText(peer), method: req.method }, 'info');
      return this.respond(tx, 483, 'Too Many Hops');
    }

    // §16.3 step 5: a proxy must refuse what it cannot do, and this one implements no extension
    // that a Proxy-Require may name (Kamailio's sanity check does the same).
    if (req.has('proxy-require')) {
      const tags = req.headers('proxy-require').join(', ').trim();
      if (tags !== '') return this.respond(tx, 420, 'Bad Extension', [['Unsupported', tags]]);
    }

    this.preprocessRoutes(req);

    // A request addressed to the proxy itself (keep-alive OPTIONS from a peer): answer it here.
    if (req.method === 'OPTIONS' && !req.has('route') && this.isSelfTarget(req.uri)) {
      return this.respond(tx, 200, 'OK', [['Allow', ALLOW]]);
    }

    if (tx.isInvite && (!tx.fromUpstream || this.opts.admitFromUpstream) && this.isInitialInvite(req)) {
      return this.admit(tx, req, peer);
    }
    this.forward(tx, req);
  }

  private newServerTx(key: string, req: SipRequest, m: InboundMessage): ServerTransaction {
    const via = req.topVia;
    const fallback: Peer = m.conn
      ? { transport: m.peer.transport, address: via.received ?? m.peer.address, port: via.port ?? defaultPort(m.peer.transport) }
      : m.peer;
    const tx = new ServerTransaction(own(key), req.method, req.callId, m.peer, m.local, m.conn, fallback, this.isFromUpstream(m, via), responseTemplate(req));
    this.server.set(tx.key, tx); // the transaction's own copy: `key` is a view of the request
    return tx;
  }

  /** §17.2.1 / §17.2.2: a retransmitted request gets the last response again, never a second forward. */
  private onRetransmission(tx: ServerTransaction): void {
    this.counters.retransmissionsAbsorbed++;
    // RFC 6026 §7.1: in Accepted, retransmitted INVITEs are absorbed (the UAS retransmits its 2xx).
    if (tx.state === 'accepted' || tx.state === 'terminated') return;
    if (tx.last) this.sendToPeer(tx, tx.last);
  }

  private onAck(req: SipRequest, m: InboundMessage): void {
    const key = serverKey(req);
    const tx = this.server.get(key);
    if (tx && tx.state !== 'accepted') {
      // §17.2.1: the ACK for a non-2xx final response ends the INVITE server transaction here;
      // the downstream ACK was already sent by our client transaction (§17.1.1.3).
      if (tx.state === 'completed') {
        tx.state = 'confirmed';
        this.clearRetransmit(this.st, tx); // Timer G
        if (tx.reliable) this.terminateServer(tx);
        else this.st.set(tx.dl, 'end', this.t.T4); // Timer I (replaces H)
      }
      this.counters.retransmissionsAbsorbed++;
      return;
    }
    // ACK for a 2xx is a transaction of its own, forwarded statelessly (§16.11 / RFC 6026). Its
    // key (its own branch, matched as INVITE) names it: its branch downstream is derived from it.
    this.forwardStateless(req, m, key);
  }

  /** §16.10 */
  private onCancel(req: SipRequest, m: InboundMessage): void {
    const key = serverKey(req);
    const again = this.server.get(key);
    if (again) return this.onRetransmission(again);
    const invite = this.server.get(serverKey(req, 'INVITE'));
    if (!invite) {
      this.replyStateless(req, m, 481, 'Call/Transaction Does Not Exist');
      return;
    }
    const tx = this.newServerTx(key, req, m);
    tx.toTag = invite.toTag ??= newTag();
    this.respond(tx, 200, 'OK');
    this.cancelInvite(invite);
  }

  private cancelInvite(tx: ServerTransaction): void {
    if (tx.hasFinal || tx.cancelled || tx.state === 'terminated') return;
    tx.cancelled = true;
    const c = tx.client;
    if (!c) {
      // Still being admitted or resolved: nothing went downstream, so answer for it.
      this.respond(tx, 487, 'Request Terminated');
      if (tx.admitted) this.endCall(tx.callId, 'cancelled');
      return;
    }
    // §16.10 / §9.1: a CANCEL may only go once a provisional response has arrived.
    if (c.provisional) this.sendCancel(c);
    else if (c.cancel === 'none') c.cancel = 'pending';
  }

  private isInitialInvite(req: SipRequest): boolean {
    if (req.toTag === undefined) return true;
    const callId = req.callId;
    let known = false;
    try {
      known = this.policy.knowsDialog(callId);
    } catch (err) {
      this.log.error({ message: 'policy.knowsDialog threw', error: (err as Error).message });
    }
    // A To tag alone proves nothing: attackers forge them to skip admission.
    return !(known || this.knowsUpstreamDialog(callId));
  }

  private admit(tx: ServerTransaction, req: SipRequest, peer: Peer): void {
    tx.pending = true;
    let r: Rejection | null | Promise<Rejection | null>;
    try {
      r = this.policy.admitInvite(req, peer);
    } catch (err) {
      return this.admissionFailed(tx, err);
    }
    if (isThenable<Rejection | null>(r)) {
      this.st.set(tx.dl, 'admit', this.linger);
      r.then(
        (v) => this.guard(() => this.admitted(tx, req, v)),
        (err: unknown) => this.guard(() => this.admissionFailed(tx, err)),
      );
      return;
    }
    this.admitted(tx, req, r);
  }

  private admitted(tx: ServerTransaction, req: SipRequest, rej: Rejection | null): void {
    tx.pending = false;
    this.st.clear(tx.dl, 'admit');
    if (this.stopped) return;
    if (tx.hasFinal || tx.state === 'terminated') {
      // Answered meanwhile (CANCEL, admission timeout): a late "yes" must not leak a call slot.
      if (rej === null) this.endCall(tx.callId, tx.cancelled ? 'cancelled' : 'error');
      return;
    }
    if (rej) {
      this.counters.rejected++;
      const r = this.checkedRejection(rej);
      return this.respond(tx, r.status, r.reason, r.headers);
    }
    tx.admitted = true;
    this.ringing.set(tx.callId, tx);
    this.forward(tx, req);
  }

  /** A policy answer must be a final error status; anything else becomes 500 (and is logged). */
  private checkedRejection(rej: Rejection): Rejection {
    if (Number.isInteger(rej.status) && rej.status >= 300 && rej.status <= 699) return rej;
    this.log.error({ message: 'policy rejection with an invalid status, answering 500', status: rej.status });
    return { status: 500, reason: 'Server Internal Error' };
  }

  private admissionFailed(tx: ServerTransaction, err: unknown): void {
    tx.pending = false;
    this.st.clear(tx.dl, 'admit');
    if (this.stopped || tx.hasFinal || tx.state === 'terminated') return;
    this.log.error({ message: 'policy.admitInvite failed, answering 500', callId: tx.callId, error: (err as Error)?.message ?? String(err) });
    this.respond(tx, 500, 'Server Internal Error');
  }

  // ======================= routing and forwarding =======================

  /**
   * UDP: the packet's source is the upstream's address:port. Streams: it came over the connection
   * we opened to the upstream, or over a connection the upstream opened from its IP (§18.2.1: a
   * UAS may open a new one for its requests) whose top Via names the upstream's port; the port
   * test keeps customers that share the upstream's IP (loopback, NAT) on the customer side.
   */
  private isFromUpstream(m: InboundMessage, via?: { port?: number }): boolean {
    const u = this.upstream!;
    if (m.conn) {
      if (m.conn.outbound) return m.conn.remote.address === u.address && m.conn.remote.port === u.port;
      // A connection the core opened itself: only a core we reach over that transport does that,
      // and the Via port is the sender's word, so a UDP core's address alone never makes a TCP
      // peer the core.
      return u.transport === m.peer.transport && m.peer.address === u.address && (via?.port ?? defaultPort(m.peer.transport)) === u.port;
    }
    return m.peer.address === u.address && m.peer.port === u.port;
  }

  /**
   * Behind by more than overloadLagMs: the event loop runs that late, or (batch UDP) the datagrams
   * being read waited that long in the socket queue. The second is what shows when the proxy
   * reads in batches: each turn is short, so timers keep time, while the backlog in the kernel
   * grows until the callers' retransmissions (Timer A, 500 ms) double the load.
   */
  private overloaded(): boolean {
    const max = this.opts.overloadLagMs ?? DEFAULT_OVERLOAD_LAG_MS;
    return max > 0 && (this.lag.lagMs() > max || this.transport!.queueDelayMs() > max);
  }

  private isSelfTarget(uriText: string): boolean {
    const u = tryParseUri(uriText);
    return !!u && u.scheme !== 'tel' && u.user === undefined && this.router!.isSelfUri(u);
  }

  /** §16.4: strict-router compatibility and removal of our own loose Route entries (two with RFC 5658). */
  private preprocessRoutes(req: SipRequest): void {
    const router = this.router!;
    // Route first: it is absent on most initial requests, and then the Request-URI need not be parsed.
    const hasRoute = req.has('route');
    if (hasRoute && router.isSelfRequestUri(req.uri)) {
      // The previous hop is a strict router: the real Request-URI is the last Route value.
      const last = req.removeLastValue('route');
      if (last !== undefined) {
        try {
          req.setUri(parseNameAddr(last).uri);
        } catch {
          /* leave the Request-URI; routing will reject it if it is unusable */
        }
      }
    }
    for (let i = 0; hasRoute && i < 4; i++) {
      const top = req.firstValue('route');
      if (top === undefined || !router.isSelfRoute(top)) break;
      req.removeFirstValue('route');
    }
  }

  /**
   * §16.5/16.6 step 6: requests from customers always go to the upstream (never an open relay);
   * requests from the upstream follow the next Route, else the Request-URI.
   */
  private nextHop(req: SipRequest, fromUpstream: boolean): Hop {
    if (!fromUpstream) return this.upstream!;
    const route = req.firstValue('route');
    let uriText = req.uri;
    if (route !== undefined) {
      try {
        uriText = parseNameAddr(route).uri;
      } catch (err) {
        return `bad Route: ${(err as Error).message}`;
      }
    }
    const hop = this.router!.nextHopOf(uriText);
    if (typeof hop === 'string') return hop;
    const addr = this.router!.resolve(hop.host);
    if (typeof addr === 'string') return { transport: hop.transport, address: addr, port: hop.port };
    return addr.then((a) => ({ transport: hop.transport, address: a, port: hop.port }));
  }

  /** Our address on the transport and IP family of a destination. */
  private endpointToward(dest: Peer): LocalEndpoint | undefined {
    const transport = this.transport!;
    const fam = familyOf(dest.address);
    const ep = transport.endpointFor(dest.transport, fam);
    if (ep || dest.transport === 'udp') return ep;
    // Outbound stream without a listener of that kind: responses come back on the connection;
    // the Via just has to name us.
    const any = transport.endpoints().find((e) => e.family === fam);
    return any ? { ...any, transport: dest.transport } : undefined;
  }

  private forward(tx: ServerTransaction, req: SipRequest): void {
    const hop = this.nextHop(req, tx.fromUpstream);
    if (typeof hop === 'string') {
      this.warn('unroutable', { message: 'cannot route request', method: req.method, reason: hop });
      if (hop.startsWith('unsupported URI scheme')) return this.failServer(tx, 416, 'Unsupported URI Scheme', 'error');
      return this.failServer(tx, 400, 'Bad Request', 'error');
    }
    if (hop instanceof Promise) {
      tx.pending = true;
      hop.then(
        (dest) => this.guard(() => {
          tx.pending = false;
          if (this.stopped) return;
          if (tx.hasFinal || tx.state === 'terminated') return;
          this.sendForward(tx, req, dest);
        }),
        (err: unknown) => this.guard(() => {
          tx.pending = false;
          this.warn('dns', { message: 'DNS lookup failed for next hop', callId: tx.callId, error: (err as Error).message });
          this.failServer(tx, 503, 'Service Unavailable', 'error');
        }),
      );
      return;
    }
    this.sendForward(tx, req, hop);
  }

  /** A final response the proxy makes for a request it could not forward; ends an admitted call. */
  private failServer(tx: ServerTransaction, status: number, reason: string, why: 'error' | 'timeout' | 'cancelled'): void {
    if (tx.hasFinal || tx.state === 'terminated') return;
    this.respond(tx, status, reason);
    if (tx.isInvite && tx.admitted) this.endCall(tx.callId, why);
  }

  private sendForward(tx: ServerTransaction, req: SipRequest, dest: Peer): void {
    if (this.router!.isSelfPeer(dest)) {
      this.warn('loop', { message: 'request would loop back to this proxy', method: req.method, dest: peerText(dest) });
      return this.failServer(tx, 482, 'Loop Detected', 'error');
    }
    const ep = this.endpointToward(dest);
    if (!ep) {
      this.warn('notransport', { message: 'no local transport toward next hop', dest: peerText(dest) });
      return this.failServer(tx, 503, 'Service Unavailable', 'error');
    }
    this.decrementMaxForwards(req);
    if (req.toTag === undefined && DIALOG_CREATING.has(req.method)) this.addRecordRoute(req, tx.local, ep);
    // §16.6 step 8: our Via on top, branch derived from the server transaction (CANCEL reuses it).
    const branch = branchFor(tx.key);
    req.prependHeader('Via', this.router!.via(ep, branch));
    const c = new ClientTransaction(branch, req.method, tx, dest, ep, req.toText());
    if (c.isInvite) c.fwd = req;
    const old = this.client.get(c.branch);
    if (old) this.terminateClient(old);
    this.client.set(c.branch, c);
    tx.client = c;
    this.counters.forwarded++;
    this.transmit(c);

    const callId = tx.callId;
    // The core's BYE ends the call as it passes: the core has hung up. A customer's BYE ends it
    // only once the core accepts it (byeAnswered): one with made-up tags (481) or an old CSeq
    // (500) leaves the call up at the core, and must not free a concurrent slot or hide the call
    // from a toll block's teardown.
    if (req.method === 'BYE') {
      if (tx.fromUpstream) {
        this.upstreamDialogs.delete(callId);
        this.endCall(callId, 'bye');
      }
    } else if (req.toTag !== undefined) {
      this.activity(callId);
      const d = this.dialogs.size === 0 ? undefined : this.dialogs.get(callId);
      if (d !== undefined) {
        const seq = req.cseq.seq;
        if (tx.fromUpstream) d.record.calleeCseq = Math.max(d.record.calleeCseq, seq);
        else d.record.callerCseq = Math.max(d.record.callerCseq, seq);
      }
    }
  }

  /** §16.6 step 3: decrement, or add 70 when absent. */
  private decrementMaxForwards(req: SipRequest): void {
    this.setMaxForwards(req, req.header('max-forwards'));
  }

  /** §16.6 step 3 with the Max-Forwards value already read (`mf`). */
  private setMaxForwards(req: SipRequest, mf: string | undefined): void {
    if (mf === undefined) req.appendHeader('Max-Forwards', '70');
    else req.setHeader('Max-Forwards', String(Math.max(0, Number(mf) - 1)));
  }

  /**
   * §16.6 step 4, RFC 5658: one Record-Route when both sides use the same listener; otherwise two,
   * the top one naming the outbound side (used by the callee) and the next the inbound side (used
   * by the caller, whose route set is reversed), so each side reaches us on its own transport.
   */
  private addRecordRoute(req: SipRequest, inbound: LocalEndpoint, outbound: LocalEndpoint): void {
    const router = this.router!;
    const same = inbound.transport === outbound.transport && inbound.address === outbound.address && inbound.port === outbound.port;
    if (!same) req.prependHeader('Record-Route', router.recordRoute(inbound));
    req.prependHeader('Record-Route', router.recordRoute(outbound));
  }

  /** ACK for a 2xx (and anything else forwarded without a transaction): route and send, no state. */
  private forwardStateless(req: SipRequest, m: InboundMessage, key: string): void {
    const mf = req.header('max-forwards');
    if (mf !== undefined && Number(mf) === 0) {
      this.counters.dropped++;
      return;
    }
    this.preprocessRoutes(req);
    const fromUpstream = this.isFromUpstream(m, req.topViaOrUndefined);
    const callId = req.callId;
    const branch = branchFor(key);
    const send = (dest: Peer): void => {
      if (this.stopped || this.router!.isSelfPeer(dest)) return;
      const ep = this.endpointToward(dest);
      if (!ep) return;
      this.setMaxForwards(req, mf);
      req.prependHeader('Via', this.router!.via(ep, branch));
      this.counters.forwarded++;
      this.transport!.send(dest, req.toText(), { local: ep }, (err) => {
        if (err) this.sendError(dest, err);
      });
    };
    const hop = this.nextHop(req, fromUpstream);
    if (typeof hop === 'string') {
      this.warn('unroutable', { message: 'cannot route request', method: req.method, reason: hop });
      return;
    }
    if (req.toTag !== undefined) this.activity(callId);
    if (hop instanceof Promise) {
      hop.then(
        (dest) => this.guard(() => send(dest)),
        (err: unknown) => this.warn('dns', { message: 'DNS lookup failed for next hop', callId, error: (err as Error).message }),
      );
    } else send(hop);
  }

  // ======================= client transactions (§17.1) =======================

  private transmit(c: ClientTransaction): void {
    this.transport!.send(c.dest, c.buf!, { local: c.local }, (err) => {
      if (err) this.guard(() => this.clientError(c, err));
    });
    if (!c.reliable) {
      c.interval = this.t.T1;
      this.ct.set(c.rt, 'A', c.interval);
    }
    // Timer B (INVITE) / F (non-INVITE): 64*T1; an INVITE also has Timer C, and the earlier of
    // the two is the one that can fire.
    if (c.isInvite && this.t.timerC < 64 * this.t.T1) this.ct.set(c.dl, 'C', this.t.timerC);
    else this.ct.set(c.dl, 'B', 64 * this.t.T1);
  }

  /** Timer A (INVITE, doubling, until a provisional) / Timer E (non-INVITE, doubling up to T2). */
  private retransmitClient(c: ClientTransaction): void {
    if (!c.buf) return;
    if (c.isInvite ? c.state !== 'calling' : c.state !== 'calling' && c.state !== 'proceeding') return;
    this.transport!.send(c.dest, c.buf, { local: c.local }, (err) => {
      if (err) this.guard(() => this.clientError(c, err));
    });
    c.interval = c.isInvite ? c.interval * 2 : c.state === 'proceeding' ? this.t.T2 : Math.min(c.interval * 2, this.t.T2);
    this.ct.set(c.rt, 'A', c.interval);
  }

  /** Timer B/F fired: §16.8, behave as if a 408 had arrived. */
  private clientTimeout(c: ClientTransaction): void {
    if (c.state !== 'calling' && c.state !== 'proceeding') return;
    this.counters.timeouts++;
    this.warn('timeout', { message: 'next hop did not answer', method: c.method, dest: peerText(c.dest) }, 'info');
    this.terminateClient(c);
    const tx = c.server;
    if (!tx) return;
    if (c.method === 'BYE') this.byeAnswered(c, 408);
    if (tx.cancelled) this.failServer(tx, 487, 'Request Terminated', 'cancelled');
    else this.failServer(tx, 408, 'Request Timeout', 'timeout');
  }

  /** §16.8 Timer C: an INVITE that rang too long is cancelled downstream and answered 408 upstream. */
  private timerC(c: ClientTransaction): void {
    if (c.state !== 'calling' && c.state !== 'proceeding') return;
    this.counters.timeouts++;
    this.warn('timerC', { message: 'Timer C fired, cancelling INVITE', dest: peerText(c.dest) }, 'info');
    if (c.provisional) this.sendCancel(c);
    else this.terminateClient(c);
    const tx = c.server;
    if (tx) this.failServer(tx, 408, 'Request Timeout', 'timeout');
  }

  private clientError(c: ClientTransaction, err: Error): void {
    if (c.state !== 'calling' && c.state !== 'proceeding') return;
    this.sendError(c.dest, err);
    this.terminateClient(c);
    if (c.server) this.failServer(c.server, 503, 'Service Unavailable', 'error');
  }

  private sendError(dest: Peer, err: Error): void {
    this.counters.sendErrors++;
    this.warn('senderror', { message: 'send failed', dest: peerText(dest), error: (err as NodeJS.ErrnoException).code ?? err.message });
  }

  /** §9.1 / §16.10: CANCEL on the INVITE's client transaction, same branch. */
  private sendCancel(c: ClientTransaction): void {
    if (c.cancel === 'sent' || !c.echo) return;
    c.cancel = 'sent';
    const cc = new ClientTransaction(c.branch, 'CANCEL', null, c.dest, c.local, buildCancel(c.echo));
    const old = this.cancels.get(cc.branch);
    if (old) this.terminateClient(old);
    this.cancels.set(cc.branch, cc);
    this.transmit(cc);
    // §9.1: without a final response 64*T1 after the CANCEL, give the INVITE up.
    this.ct.set(c.dl, 'cancel', 64 * this.t.T1); // replaces Timer C
  }

  /** §9.1: no final response 64*T1 after our CANCEL: give the INVITE up. */
  private cancelTimeout(c: ClientTransaction): void {
    if (c.state !== 'calling' && c.state !== 'proceeding') return;
    this.terminateClient(c);
    const tx = c.server;
    if (tx && !tx.hasFinal) {
      this.respond(tx, 487, 'Request Terminated');
      if (tx.admitted) this.endCall(tx.callId, 'cancelled');
    }
  }

  /** Disarms both of a transaction's timers. */
  private clearTimers<T extends ServerTransaction | ClientTransaction>(timers: TimerService<T>, t: T): void {
    this.clearRetransmit(timers, t);
    timers.clear(t.dl as TimerSlot<T>);
  }

  /** Disarms the retransmission timer and forgets its slot: the transaction re-sends no more. */
  private clearRetransmit<T extends ServerTransaction | ClientTransaction>(timers: TimerService<T>, t: T): void {
    if (!t.hasRt) return;
    timers.clear(t.rt as TimerSlot<T>);
    t.dropRt();
  }

  private clientTimer(c: ClientTransaction, name: TimerName): void {
    switch (name) {
      case 'A': return this.retransmitClient(c);
      case 'B': return this.clientTimeout(c);
      case 'C': return this.timerC(c);
      case 'cancel': return this.cancelTimeout(c);
      case 'end': return this.terminateClient(c);
      default: throw new Error(`no client transaction timer ${name}`);
    }
  }

  private serverTimer(tx: ServerTransaction, name: TimerName): void {
    switch (name) {
      case 'G': return this.retransmitFinal(tx);
      case 'H': return this.terminateServer(tx);
      case 'admit': return this.admissionFailed(tx, new Error('admitInvite did not settle in time'));
      case 'end': return this.terminateServer(tx);
      default: throw new Error(`no server transaction timer ${name}`);
    }
  }

  private terminateClient(c: ClientTransaction): void {
    c.state = 'terminated';
    this.clearTimers(this.ct, c);
    const table = c.method === 'CANCEL' ? this.cancels : this.client;
    if (table.get(c.branch) === c) table.delete(c.branch);
    // The server transaction may linger longer; it must not keep this one alive.
    if (c.server !== null && c.server.client === c) c.server.client = null;
    c.buf = null;
    c.forgetRequest();
    c.ack = null;
  }

  /**
   * A non-INVITE client transaction got its final response. §17.1.2.2 keeps it T4 longer (Timer
   * K) only to absorb retransmissions of that response; a response that matches no transaction is
   * dropped here anyway (onResponse), so the transaction ends at once, as on reliable transports,
   * and a busy proxy carries one record fewer per call for those seconds.
   */
  private completeNonInvite(c: ClientTransaction): void {
    c.state = 'completed';
    this.terminateClient(c);
  }

  // ======================= responses (§16.7) =======================

  private onResponse(res: SipResponse, m: InboundMessage): void {
    this.counters.responses++;
    const via = res.topVia;
    if (!isOurBranch(via.branch)) {
      // §16.7 step 1 / §18.1.2: a response whose top Via is not ours is discarded.
      this.warn('notours', { message: 'dropping response not addressed to this proxy', peer: peerText(m.peer), status: res.status, callId: res.callId }, 'info');
      this.counters.dropped++;
      return;
    }
    // §17.1.3: our branch and the CSeq method; a CANCEL shares its INVITE's branch.
    const method = res.cseq.method;
    let c = (method === 'CANCEL' ? this.cancels : this.client).get(via.branch!);
    if (c !== undefined && c.method !== method) c = undefined;
    res.removeFirstValue('via');
    if (!c) {
      // 2xx retransmissions to an INVITE outlive the transaction: forward them by Via (§16.7, RFC 6026).
      if (res.status >= 200 && res.status < 300 && res.cseq.method === 'INVITE') this.forwardResponseStateless(res, m);
      else this.counters.dropped++;
      return;
    }
    this.onClientResponse(c, res);
  }

  private onClientResponse(c: ClientTransaction, res: SipResponse): void {
    const status = res.status;
    if (c.method === 'CANCEL') {
      // §16.10: responses to our CANCEL stay here; the caller already got its 200.
      if (status >= 200 && c.state !== 'completed') this.completeNonInvite(c);
      return;
    }
    if (status < 200) {
      if (c.state === 'calling') c.state = 'proceeding';
      if (c.state !== 'proceeding') return;
      c.provisional = true;
      if (c.isInvite) {
        this.clearRetransmit(this.ct, c); // Timer A
        c.buf = null; // only Timer A re-sends an INVITE
        // §16.7 step 2: a provisional response restarts Timer C (and Timer B is over).
        if (c.cancel !== 'sent') this.ct.set(c.dl, 'C', this.t.timerC);
        else this.ct.clear(c.dl, 'B');
        if (c.cancel === 'pending') this.sendCancel(c);
      }
      // §16.7 step 5: 100 Trying is hop-by-hop; we sent our own.
      if (status === 100 || !c.server) return;
      this.relayProvisional(c.server, res);
      return;
    }
    if (!c.isInvite) {
      // §17.1.2.2: any final response completes a non-INVITE transaction; later ones are absorbed.
      if (c.state === 'completed' || c.state === 'terminated') return;
      this.completeNonInvite(c);
      if (c.method === 'BYE') this.byeAnswered(c, status);
      if (c.server) this.relayFinal(c.server, res, status);
      return;
    }
    if (status < 300) {
      if (c.state !== 'accepted') {
        if (c.server?.admitted && c.fwd) this.rememberDialog(c, c.server, c.fwd, res);
        c.state = 'accepted';
        this.clearTimers(this.ct, c);
        c.buf = null;
        c.forgetRequest();
        // RFC 6026 Accepted (Timer M): stay to forward 2xx retransmissions over the right
        // connection. Over UDP there is no connection to keep: a 2xx that matches no
        // transaction is forwarded by its Via anyway (onResponse), so the transaction ends now.
        if (c.reliable) this.ct.set(c.dl, 'end', this.linger); // Timer M
        else this.terminateClient(c);
      }
      if (c.server) this.relayFinal(c.server, res, status);
      return;
    }
    if (c.state === 'completed') {
      // §17.1.1.2: a retransmitted final response gets the ACK again.
      if (c.ack) this.transport!.send(c.dest, c.ack, { local: c.local });
      return;
    }
    if (c.state !== 'calling' && c.state !== 'proceeding') return;
    // §17.1.1.3: the proxy's client transaction ACKs a non-2xx final response itself.
    if (c.echo) {
      c.ack = buildAck(c.echo, res);
      this.transport!.send(c.dest, c.ack, { local: c.local }, (err) => {
        if (err) this.sendError(c.dest, err);
      });
    }
    c.state = 'completed';
    this.clearTimers(this.ct, c);
    c.buf = null;
    c.forgetRequest();
    // Timer D: absorb retransmissions of the final response (0 on reliable transports).
    if (c.reliable) this.terminateClient(c);
    else this.ct.set(c.dl, 'end', this.linger); // Timer D
    if (c.server) this.relayFinal(c.server, res, status);
  }

  /**
   * A customer's BYE ends the call when the core accepts it (2xx): the core is where the call is
   * billed, and it rejects a BYE that names no dialog of its own (481, made-up tags) or comes out
   * of order (500, §12.2.2), while the call stays up there. No answer at all (Timer F,
   * clientTimeout) also ends it, as §15.1.1 says for the UAC: the core is gone.
   */
  private byeAnswered(c: ClientTransaction, status: number): void {
    if (!c.server || c.server.fromUpstream || (status >= 300 && status !== 408)) return;
    this.upstreamDialogs.delete(c.server.callId);
    this.endCall(c.server.callId, 'bye');
  }

  /**
   * A 2xx that matches no transaction any more, forwarded by its next Via. Our branch prefix is
   * easy to forge, so this is no relay for anyone: such a 2xx may only cross between the core and
   * a customer, as real ones do. From the core it goes to the customer's Via (stamped with the
   * address the request really came from); from anyone else only to the core. Never to
   * ourselves (a Via list naming this proxy over and over would bounce it), never to a name.
   */
  private forwardResponseStateless(res: SipResponse, m: InboundMessage): void {
    const next = res.topViaOrUndefined;
    if (!next) return this.strayDropped(res, m, 'no Via left');
    const t = viaResponseTarget(next);
    const transport = t.transport.toLowerCase();
    if (transport !== 'udp' && transport !== 'tcp' && transport !== 'tls') return this.strayDropped(res, m, `transport ${t.transport}`);
    if (isIP(t.address) === 0) return this.strayDropped(res, m, 'Via names a host, not an address');
    const dest: Peer = { transport, address: t.address, port: t.port };
    const up = this.upstream!;
    const toCore = dest.address === up.address && dest.port === up.port;
    if (!toCore && !this.isFromUpstream(m)) return this.strayDropped(res, m, 'neither from nor to the core');
    if (this.router!.isSelfPeer(dest)) return this.strayDropped(res, m, 'Via names this proxy');
    const conn = transport === 'udp' ? undefined : this.transport!.findConnection(transport, t.address, t.port);
    const local = transport === 'udp' ? this.transport!.endpointFor('udp', familyOf(t.address)) : undefined;
    this.transport!.send(dest, res.toText(), { conn, local }, (err) => {
      if (err) this.sendError(dest, err);
    });
  }

  private strayDropped(res: SipResponse, m: InboundMessage, why: string): void {
    this.counters.dropped++;
    this.warn('stray', { message: 'dropping a 2xx that matches no transaction', peer: peerText(m.peer), callId: res.callId, why }, 'info');
  }

  private relayProvisional(tx: ServerTransaction, res: SipResponse): void {
    if (tx.hasFinal || tx.state === 'terminated') return;
    this.sendProvisional(tx, res.toText(), res.status);
  }

  private relayFinal(tx: ServerTransaction, res: SipResponse, status: number): void {
    if (tx.watch !== undefined) this.reportAnswer(tx, status);
    if (status < 300 && tx.isInvite) {
      // §16.7 step 10: every 2xx to an INVITE is forwarded, also after another final response.
      this.sendToPeer(tx, res.toText());
      if (tx.state === 'proceeding') {
        tx.lastStatus = status;
        tx.state = 'accepted';
        this.clearTimers(this.st, tx);
        tx.last = null;
        tx.tpl = null;
        this.st.set(tx.dl, 'end', this.linger); // Timer L
        if (tx.admitted) this.answered(tx.callId);
        else if (tx.fromUpstream) this.rememberUpstreamDialog(tx.callId);
      }
      return;
    }
    if (tx.hasFinal || tx.state === 'terminated') return;
    this.sendFinal(tx, res.toText(), status);
    if (tx.isInvite && tx.admitted) this.endCall(tx.callId, status === 487 || tx.cancelled ? 'cancelled' : 'rejected');
  }

  // ======================= server transactions (§17.2) =======================

  private sendToPeer(tx: ServerTransaction, buf: string): void {
    const cb = (err: Error | null): void => {
      if (err) this.sendError(tx.peer, err);
    };
    const transport = this.transport;
    if (!transport) return;
    if (tx.conn && !tx.conn.closed) transport.send(tx.peer, buf, { conn: tx.conn }, cb);
    else if (tx.reliable) transport.send(tx.fallback, buf, {}, cb); // §18.2.2: new connection to sent-by
    else transport.send(tx.peer, buf, { local: tx.local }); // UDP failures are logged by the transport
  }

  private sendProvisional(tx: ServerTransaction, buf: string, status: number): void {
    tx.last = buf;
    tx.lastStatus = status;
    this.sendToPeer(tx, buf);
  }

  /** A response generated by this proxy for a server transaction. */
  private respond(tx: ServerTransaction, status: number, reason: string, headers?: Array<[string, string]>): void {
    if (tx.hasFinal || !tx.tpl) return;
    tx.toTag ??= newTag();
    this.sendFinal(tx, buildResponse(tx.tpl, status, reason, { toTag: tx.toTag, headers }), status);
  }

  /** Sends a final (non-2xx for INVITE) response and starts Timers G/H or J (§17.2.1, §17.2.2). */
  private sendFinal(tx: ServerTransaction, buf: string, status: number): void {
    // Kept for retransmissions until the transaction ends: flat, so it holds no received message.
    tx.last = own(buf);
    tx.lastStatus = status;
    this.st.clear(tx.dl, 'admit');
    this.sendToPeer(tx, buf);
    tx.state = 'completed';
    tx.tpl = null;
    if (tx.isInvite && status >= 300) {
      if (!tx.reliable) {
        tx.interval = this.t.T1;
        this.st.set(tx.rt, 'G', tx.interval);
      }
      // Timer H: give up waiting for the ACK.
      this.st.set(tx.dl, 'H', 64 * this.t.T1);
    } else if (tx.isInvite) {
      tx.state = 'accepted';
      this.st.set(tx.dl, 'end', this.linger); // Timer L
    } else if (tx.reliable) {
      this.terminateServer(tx);
    } else {
      // Timer J: absorb request retransmissions.
      this.st.set(tx.dl, 'end', this.linger); // Timer J
    }
  }

  /** Timer G: re-send a non-2xx final response until the ACK comes (unreliable transports). */
  private retransmitFinal(tx: ServerTransaction): void {
    if (tx.state !== 'completed' || !tx.last) return;
    this.sendToPeer(tx, tx.last);
    tx.interval = Math.min(tx.interval * 2, this.t.T2);
    this.st.set(tx.rt, 'G', tx.interval);
  }

  private terminateServer(tx: ServerTransaction): void {
    tx.state = 'terminated';
    this.clearTimers(this.st, tx);
    if (this.server.get(tx.key) === tx) this.server.delete(tx.key);
    tx.last = null;
    tx.tpl = null;
    tx.client = null;
  }

  /** A response without a transaction (screening rejections, 481, 503 overload, 400). */
  private replyStateless(req: SipRequest, m: InboundMessage, status: number, reason: string, headers?: Array<[string, string]>): void {
    if (!this.transport) return;
    const tpl = responseTemplate(req);
    // The same request always gets the same tag, so a retransmission's answer matches the first.
    let toTag: string;
    try {
      toTag = branchFor(serverKey(req)).slice(9, 25);
    } catch {
      toTag = newTag();
    }
    const buf = buildResponse(tpl, status, reason, { toTag, headers });
    this.transport.send(m.peer, buf, { conn: m.conn, local: m.local }, (err) => {
      if (err) this.sendError(m.peer, err);
    });
  }

  // ======================= ending calls from this side (dialog teardown) =======================

  /**
   * Ends an admitted call now. Answered: a BYE to each side (Reason header per RFC 3326), as if the
   * other side had hung up. Still ringing: CANCEL to the core (§9.1), whose 487 reaches the caller.
   * Returns false when the call is not one this proxy admitted or it is already over.
   */
  hangUp(callId: string, reason = 'SIP;cause=403;text="ended by tollguard"'): boolean {
    if (this.stopped || !this.transport) return false;
    const entry = this.dialogs.get(callId);
    const routes = entry === undefined ? null : byeRoutes(entry.record, this.isSelfRoute);
    if (entry !== undefined && routes !== null) {
      this.dialogs.delete(callId);
      this.sendByes(entry.record, routes, reason);
      this.endCall(callId, 'hangup');
      return true;
    }
    const tx = this.ringing.get(callId);
    if (tx !== undefined && !tx.hasFinal && tx.state !== 'terminated') {
      this.cancelInvite(tx);
      return true;
    }
    return false;
  }

  /** Call-IDs of answered admitted calls the proxy can end (for tests and the admin API). */
  dialogCallIds(): string[] {
    return [...this.dialogs.keys()];
  }

  private rememberDialog(c: ClientTransaction, tx: ServerTransaction, invite: SipRequest, res: SipResponse): void {
    this.ringing.delete(tx.callId);
    const caller = { contact: invite.firstValue('contact'), from: invite.fieldLines('from')[0] ?? '', cseq: invite.cseq.seq };
    const record = dialogRecordOf(tx, c, caller, res);
    if (record === null) return;
    const now = Date.now();
    // Insertion order is expiry order: drop expired and over-bound records from the front.
    for (const [key, old] of this.dialogs) {
      if (old.expires > now && this.dialogs.size < DIALOGS_MAX) break;
      this.dialogs.delete(key);
    }
    this.dialogs.set(tx.callId, { expires: now + (this.opts.dialogTtlMs ?? 4 * 3600_000), record });
  }

  private sendByes(d: DialogRecord, r: ByeRoutes, reason: string): void {
    const callId = textToBytes(d.callId);
    // Toward the callee we speak as the caller (From = caller), toward the caller as the callee.
    this.sendBye(d.calleeDest, d.calleeLocal, undefined, {
      target: r.calleeTarget, routes: r.calleeRoutes, from: d.from, to: d.to, callId, cseq: d.callerCseq + BYE_CSEQ_STEP, reason,
    });
    this.sendBye(d.callerPeer, d.callerLocal, d.callerConn, {
      target: r.callerTarget, routes: r.callerRoutes, from: d.to, to: d.from, callId, cseq: d.calleeCseq + BYE_CSEQ_STEP, reason,
    });
  }

  private sendBye(
    dest: Peer,
    local: LocalEndpoint | undefined,
    conn: Connection | undefined,
    p: { target: string; routes: string[]; from: string; to: string; callId: string; cseq: number; reason: string },
  ): void {
    const ep = local ?? this.endpointToward(dest);
    if (!ep) return;
    const branch = branchFor(`bye|${p.callId}|${dest.address}|${dest.port}|${++this.byeSeq}`);
    const buf = buildBye({ ...p, via: this.router!.via(ep, branch) });
    const c = new ClientTransaction(branch, 'BYE', null, dest, ep, buf);
    this.client.set(c.branch, c);
    this.counters.forwarded++;
    if (conn && !conn.closed && dest.transport !== 'udp') {
      // The caller's own connection (it may not accept new ones: NAT, §18.2.2).
      this.transport!.send(dest, buf, { conn });
      this.ct.set(c.dl, 'B', 64 * this.t.T1);
      return;
    }
    this.transmit(c);
  }

  // ======================= policy notifications =======================

  private endCall(callId: string, why: CallEndWhy): void {
    this.ringing.delete(callId);
    this.dialogs.delete(callId);
    try {
      this.policy.callEnded(callId, why);
    } catch (err) {
      this.log.error({ message: 'policy.callEnded threw', error: (err as Error).message });
    }
  }

  private watchAnswer(tx: ServerTransaction, req: SipRequest, peer: Peer): void {
    try {
      tx.watch = this.policy.watchAnswer!(req, peer);
    } catch (err) {
      this.log.error({ message: 'policy.watchAnswer threw', error: (err as Error).message });
    }
  }

  private reportAnswer(tx: ServerTransaction, status: number): void {
    const watch = tx.watch;
    tx.watch = undefined;
    try {
      this.policy.requestAnswered?.(watch, status);
    } catch (err) {
      this.log.error({ message: 'policy.requestAnswered threw', error: (err as Error).message });
    }
  }

  private answered(callId: string): void {
    try {
      this.policy.callAnswered?.(callId);
    } catch (err) {
      this.log.error({ message: 'policy.callAnswered threw', error: (err as Error).message });
    }
  }

  private activity(callId: string): void {
    try {
      this.policy.dialogActivity?.(callId);
    } catch (err) {
      this.log.error({ message: 'policy.dialogActivity threw', error: (err as Error).message });
    }
  }

  private rememberUpstreamDialog(callId: string): void {
    if (this.upstreamDialogs.size >= UPSTREAM_DIALOGS_MAX) {
      const oldest = this.upstreamDialogs.keys().next().value;
      if (oldest !== undefined) this.upstreamDialogs.delete(oldest);
    }
    this.upstreamDialogs.set(callId, Date.now() + UPSTREAM_DIALOG_TTL_MS);
  }

  private knowsUpstreamDialog(callId: string): boolean {
    const exp = this.upstreamDialogs.get(callId);
    if (exp === undefined) return false;
    if (exp < Date.now()) {
      this.upstreamDialogs.delete(callId);
      return false;
    }
    return true;
  }
}
