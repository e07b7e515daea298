/**
 * Transaction state (RFC 3261 §17, RFC 6026) and the keys that match requests and responses
 * to it. The state machines' transitions live in proxy.ts, which owns the policy decisions
 * that drive them; this file holds the records, their timers and the matching rules.
 */
import type { Peer } from './policy';
import type { Connection, LocalEndpoint } from './transport';
import type { SipRequest } from './message';
import type { ResponseTemplate, InviteEcho } from './build';
import { BRANCH_COOKIE } from './via';

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
 * RFC 3261/6026 say 64*T1 = 32 s; that would hold ~4 records per call for 32 s, i.e. hundreds of
 * thousands at the target rate. Retransmissions after the first few seconds are vanishingly rare
 * (our 100 Trying stops INVITE retransmissions at once) and a late one is harmless: a late
 * request is forwarded again and the next hop's own transaction absorbs it.
 */
export const LINGER_CAP_MS = 10_000;

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

/** §17.1.3: responses match a client transaction by our branch and the CSeq method. */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/**
 * A set of named timers that can all be cleared at once.
 *
 * A transaction holds at most three or four timers, so they sit in two small arrays created on
 * first use rather than a Map per transaction: four transactions a call each allocated a Map
 * (~1.5 KB a call in the allocation profile of bench/proxy-cpu.ts) and kept it alive for the
 * linger time, which the scavenger then had to copy.
 */
export class Timers {
  private names: string[] | null = null;
  private handles: NodeJS.Timeout[] | null = null;

  set(name: string, ms: number, fn: () => void): void {
    if (this.names === null || this.handles === null) {
      this.names = [];
      this.handles = [];
    }
    const names = this.names;
    const handles = this.handles;
    const i = names.indexOf(name);
    const h = setTimeout(() => {
      this.drop(name, h);
      fn();
    }, ms);
    if (i >= 0) {
      clearTimeout(handles[i]);
      handles[i] = h;
    } else {
      names.push(name);
      handles.push(h);
    }
  }

  /**
   * Restarts a running timer with its own duration and callback (Timeout#refresh: no new timer
   * object, no new closure). Returns false when no timer of that name runs.
   */
  refresh(name: string): boolean {
    const names = this.names;
    if (names === null) return false;
    const i = names.indexOf(name);
    if (i < 0) return false;
    this.handles![i].refresh();
    return true;
  }

  clear(name: string): void {
    const names = this.names;
    if (names === null) return;
    const i = names.indexOf(name);
    if (i < 0) return;
    clearTimeout(this.handles![i]);
    this.removeAt(i);
  }

  has(name: string): boolean {
    return this.names !== null && this.names.includes(name);
  }

  clearAll(): void {
    const handles = this.handles;
    if (handles === null || handles.length === 0) return;
    for (const h of handles) clearTimeout(h);
    this.names!.length = 0;
    handles.length = 0;
  }

  get size(): number {
    return this.names === null ? 0 : this.names.length;
  }

  /** A timer fired: forget it, unless it was already replaced under the same name. */
  private drop(name: string, h: NodeJS.Timeout): void {
    const i = this.names === null ? -1 : this.names.indexOf(name);
    if (i >= 0 && this.handles![i] === h) this.removeAt(i);
  }

  private removeAt(i: number): void {
    const names = this.names!;
    const handles = this.handles!;
    const last = names.length - 1;
    names[i] = names[last];
    handles[i] = handles[last];
    names.length = last;
    handles.length = last;
  }
}

export type ServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

/** The proxy's server side of one request (§17.2): who to answer and what was answered. */
export class ServerTransaction {
  state: ServerState = 'proceeding';
  readonly timers = new Timers();
  /** Last response sent (provisional or final), re-sent when the request is retransmitted. */
  last: Buffer | null = null;
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
  ) {}

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
export class ClientTransaction {
  state: ClientState = 'calling';
  readonly timers = new Timers();
  /** The request as sent, for retransmissions; dropped once a response arrives. */
  buf: Buffer | null;
  /** INVITE only: what its ACK and CANCEL repeat. */
  echo: InviteEcho | null = null;
  provisional = false;
  cancel: 'none' | 'pending' | 'sent' = 'none';
  /** Retransmission interval of Timer A/E. */
  interval = 0;
  /** The ACK sent for a non-2xx final response, re-sent when that response is retransmitted. */
  ack: Buffer | null = null;

  constructor(
    readonly branch: string,
    readonly method: string,
    readonly server: ServerTransaction | null,
    readonly dest: Peer,
    readonly local: LocalEndpoint | undefined,
    buf: Buffer,
  ) {
    this.buf = buf;
  }

  get key(): string {
    return clientKey(this.branch, this.method);
  }

  get isInvite(): boolean {
    return this.method === 'INVITE';
  }

  get reliable(): boolean {
    return this.dest.transport !== 'udp';
  }
}
