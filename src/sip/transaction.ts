/**
 * Transaction state (RFC 3261 §17, RFC 6026) and the keys that match requests and responses
 * to it. The state machines' transitions live in proxy.ts, which owns the policy decisions
 * that drive them; this file holds the records, their timers and the matching rules.
 */
import type { Peer } from './policy';
import type { Connection, LocalEndpoint } from './transport';
import type { SipRequest } from './message';
import { inviteEcho, type ResponseTemplate, type InviteEcho } from './build';
import { BRANCH_COOKIE } from './via';
import { TimerSlot } from './timer-service';

/** RFC 3261 Table 4 timer values, shortened by tests. */
export interface TimerValues {
  T1: number;
  T2: number;
  T4: number;
  /** §16.6 step 11: an INVITE without a final response this long is cancelled. */
  timerC: number;
}

export const DEFAULT_TIMERS: TimerValues = { T1: 500, T2: 4000, T4: 5000, timerC: 180_000 };

/**
 * Longest time a finished transaction lingers to absorb retransmissions (Timers D, J, L, M).
 * RFC 3261/6026 say 64*T1 = 32 s; that would hold ~4 records per call for 32 s, over a million
 * at 10,000 calls a second, all of which the garbage collector has to carry. Retransmissions
 * after the first few seconds are vanishingly rare (our 100 Trying stops INVITE retransmissions at
 * once) and a late one is harmless: a late request is forwarded again and the next hop's own
 * transaction absorbs it. 5 s is Kamailio tm's wait timer (wt_timer) default for the same job.
 */
export const LINGER_CAP_MS = 5_000;

/**
 * §17.2.3: a request matches a server transaction by top Via branch, sent-by and method, where
 * an ACK matches the INVITE's transaction. CANCEL has its own transaction (method CANCEL) and
 * finds the INVITE's with `methodOverride = 'INVITE'`. Requests from RFC 2543 peers (no magic
 * cookie) fall back to Call-ID, From tag, CSeq number and sent-by (§17.2.3 last paragraphs,
 * simplified).
 */
export function serverKey(req: SipRequest, methodOverride?: string): string {
  const via = req.topVia;
  const method = methodOverride ?? (req.method === 'ACK' ? 'INVITE' : req.method);
  const sentBy = `${via.host}:${via.port ?? ''}`;
  if (via.branch && via.branch.startsWith(BRANCH_COOKIE)) return `${via.branch}|${sentBy}|${method}`;
  return `2543|${req.callId}|${req.fromTag ?? ''}|${req.cseq.seq}|${sentBy}|${method}`;
}


/**
 * A transaction's two timers: it is its own deadline slot (B, C, F, H, the admission time-out, the
 * end of lingering: D, I, J, K, L, M) and makes a retransmission slot (A, E, G) when first needed,
 * forgotten once it re-sends no more (most server transactions never need one).
 */
abstract class TransactionTimers<T> extends TimerSlot<T> {
  private rtSlot: TimerSlot<T> | null = null;

  /** The retransmission slot. */
  get rt(): TimerSlot<T> {
    return (this.rtSlot ??= new TimerSlot<T>(this as unknown as T));
  }

  /** The deadline slot: the transaction itself. */
  get dl(): TimerSlot<T> {
    return this;
  }

  /** Forgets the retransmission slot (it must not be armed): a finished transaction needs none. */
  dropRt(): void {
    this.rtSlot = null;
  }

  get hasRt(): boolean {
    return this.rtSlot !== null;
  }
}

export type ServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

/** The proxy's server side of one request (§17.2): who to answer and what was answered. */
export class ServerTransaction extends TransactionTimers<ServerTransaction> {
  state: ServerState = 'proceeding';
  /** Last response sent (provisional or final), re-sent when the request is retransmitted. */
  last: string | null = null;
  lastStatus = 0;
  /** To tag used by responses this proxy generates for this transaction. */
  toTag?: string;
  /** policy.admitInvite() let this INVITE through: callEnded/callAnswered are owed for it. */
  admitted = false;
  /** admitInvite() (or DNS) still running. */
  pending = false;
  cancelled = false;
  client: ClientTransaction | null = null;
  /** Retransmission interval of Timer G. */
  interval = 0;
  /** policy.watchAnswer()'s token, handed back with the core's final status. */
  watch: unknown = undefined;

  constructor(
    readonly key: string,
    readonly method: string,
    readonly callId: string,
    readonly peer: Peer,
    readonly local: LocalEndpoint,
    readonly conn: Connection | undefined,
    /** §18.2.2 fallback when the connection is gone: received address, sent-by port. */
    readonly fallback: Peer,
    readonly fromUpstream: boolean,
    public tpl: ResponseTemplate | null,
  ) {
    super();
  }


  get isInvite(): boolean {
    return this.method === 'INVITE';
  }

  get reliable(): boolean {
    return this.peer.transport !== 'udp';
  }

  get hasFinal(): boolean {
    return this.lastStatus >= 200;
  }
}

export type ClientState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

/** The proxy's client side of one forwarded request (§17.1). */
export class ClientTransaction extends TransactionTimers<ClientTransaction> {
  state: ClientState = 'calling';
  /** The request as sent, for retransmissions; dropped once a response arrives. */
  buf: string | null;
  /** INVITE only: the request as forwarded (after the proxy's edits), while its ACK or CANCEL may be needed. */
  fwd: SipRequest | null = null;
  private echoOf: InviteEcho | null = null;

  /**
   * INVITE only: what its ACK and CANCEL repeat, taken from the request as forwarded when first
   * needed (most calls never need one: no CANCEL, a 2xx answer).
   */
  get echo(): InviteEcho | null {
    if (this.echoOf === null && this.fwd !== null) this.echoOf = inviteEcho(this.fwd, this.fwd.firstValue('via') ?? '');
    return this.echoOf;
  }

  /** Drops the request and its echo once no ACK or CANCEL can be owed any more. */
  forgetRequest(): void {
    this.fwd = null;
    this.echoOf = null;
  }
  provisional = false;
  cancel: 'none' | 'pending' | 'sent' = 'none';
  /** Retransmission interval of Timer A/E. */
  interval = 0;
  /** The ACK sent for a non-2xx final response, re-sent when that response is retransmitted. */
  ack: string | null = null;

  constructor(
    readonly branch: string,
    readonly method: string,
    readonly server: ServerTransaction | null,
    readonly dest: Peer,
    readonly local: LocalEndpoint | undefined,
    buf: string,
  ) {
    super();
    this.buf = buf;
  }


  get isInvite(): boolean {
    return this.method === 'INVITE';
  }

  get reliable(): boolean {
    return this.dest.transport !== 'udp';
  }
}
