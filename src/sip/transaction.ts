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
 * A transaction holds at most three or four timers at once. They sit in one small array of
 * (name, handle) pairs, created on first use with room for four: four transactions a call each
 * allocated a Map at first (~1.5 KB a call in the allocation profile of bench/proxy-cpu.ts), then
 * two arrays that push() grew to 17 slots each; every one of them stays alive for the linger time,
 * which the scavenger then has to copy.
 */
export class Timers {
  /** name0, handle0, name1, handle1, ...; the first `2 * count` entries are in use. */
  private slots: Array<string | NodeJS.Timeout | undefined> | null = null;
  private count = 0;
  /** Bumped by clearAll(): an ExpiryQueue entry made before it no longer fires. */
  generation = 0;

  set(name: string, ms: number, fn: () => void): void {
    const h = setTimeout(() => {
      this.drop(name, h);
      fn();
    }, ms);
    const i = this.indexOf(name);
    if (i >= 0) {
      clearTimeout(this.slots![i + 1] as NodeJS.Timeout);
      this.slots![i + 1] = h;
      return;
    }
    if (this.slots === null) this.slots = new Array<string | NodeJS.Timeout | undefined>(8);
    const at = 2 * this.count++;
    this.slots[at] = name;
    this.slots[at + 1] = h;
  }

  /**
   * Restarts a running timer with its own duration and callback (Timeout#refresh: no new timer
   * object, no new closure). Returns false when no timer of that name runs.
   */
  refresh(name: string): boolean {
    const i = this.indexOf(name);
    if (i < 0) return false;
    (this.slots![i + 1] as NodeJS.Timeout).refresh();
    return true;
  }

  clear(name: string): void {
    const i = this.indexOf(name);
    if (i < 0) return;
    clearTimeout(this.slots![i + 1] as NodeJS.Timeout);
    this.removeAt(i);
  }

  has(name: string): boolean {
    return this.indexOf(name) >= 0;
  }

  clearAll(): void {
    this.generation++;
    const slots = this.slots;
    if (slots === null) return;
    for (let i = 0; i < 2 * this.count; i += 2) {
      clearTimeout(slots[i + 1] as NodeJS.Timeout);
      slots[i] = undefined;
      slots[i + 1] = undefined;
    }
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }

  /** Slot index of a running timer's name, or -1. */
  private indexOf(name: string): number {
    const slots = this.slots;
    if (slots === null) return -1;
    for (let i = 0; i < 2 * this.count; i += 2) if (slots[i] === name) return i;
    return -1;
  }

  /** A timer fired: forget it, unless it was already replaced under the same name. */
  private drop(name: string, h: NodeJS.Timeout): void {
    const i = this.indexOf(name);
    if (i >= 0 && this.slots![i + 1] === h) this.removeAt(i);
  }

  /** Moves the last pair into slot i (order does not matter). */
  private removeAt(i: number): void {
    const slots = this.slots!;
    const last = 2 * --this.count;
    slots[i] = slots[last];
    slots[i + 1] = slots[last + 1];
    slots[last] = undefined;
    slots[last + 1] = undefined;
  }
}

/**
 * The timers that end a finished transaction after a fixed time (Timers D, I, J, K, L, M: it
 * lingers to absorb retransmissions, §17.1.1.2, §17.1.2.2, §17.2.1, §17.2.2, RFC 6026).
 *
 * All entries of one queue have the same duration, so they expire in the order they were added
 * and one Node timer, armed for the oldest, serves them all. Four of these a call each cost a
 * Timeout object, two closures and a timer-list insert and removal, kept alive for the whole
 * linger time (~7 % of the allocations per call in the proxy's allocation profile).
 *
 * An entry is dropped, not fired, when its transaction's timers were cleared since it was added
 * (Timers.generation), as a Node timer would have been by clearAll().
 */
export class ExpiryQueue<T extends { timers: Timers }> {
  private targets: Array<T | undefined> = [];
  private generations: number[] = [];
  private due: number[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly ms: number,
    private readonly expire: (target: T) => void,
  ) {}

  /** Ends `target` with expire() after the queue's duration, unless its timers are cleared first. */
  add(target: T): void {
    this.targets.push(target);
    this.generations.push(target.timers.generation);
    this.due.push(monotonicMs() + this.ms);
    if (this.timer === null) this.arm(this.ms);
  }

  get size(): number {
    return this.targets.length - this.head;
  }

  /** Drops every entry without firing it (proxy stop). */
  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.targets = [];
    this.generations = [];
    this.due = [];
    this.head = 0;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.run(), ms);
  }

  private run(): void {
    this.timer = null;
    // Node's timers run on the event loop's cached clock, which can be a millisecond behind
    // this one: an entry due within 1 ms is taken now rather than costing another turn.
    const now = monotonicMs() + 1;
    try {
      while (this.head < this.targets.length && this.due[this.head] <= now) {
        const i = this.head++;
        const target = this.targets[i]!;
        this.targets[i] = undefined;
        if (target.timers.generation === this.generations[i]) this.expire(target);
      }
    } finally {
      this.compact();
      if (this.head < this.targets.length && this.timer === null) this.arm(Math.max(1, Math.ceil(this.due[this.head] - monotonicMs())));
    }
  }

  /** Forgets the fired entries once they are the larger part of the arrays. */
  private compact(): void {
    const head = this.head;
    if (head === this.targets.length) {
      this.targets.length = 0;
      this.generations.length = 0;
      this.due.length = 0;
      this.head = 0;
    } else if (head > 1024 && head * 2 > this.targets.length) {
      this.targets = this.targets.slice(head);
      this.generations = this.generations.slice(head);
      this.due = this.due.slice(head);
      this.head = 0;
    }
  }
}

/** The global performance clock, read at call time so that test fake timers, which replace it, stay consistent with setTimeout. */
function monotonicMs(): number {
  return globalThis.performance.now();
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
    this.key = clientKey(branch, method);
  }

  /** clientKey(branch, method), built once: it is looked up and stored several times a transaction. */
  readonly key: string;

  get isInvite(): boolean {
    return this.method === 'INVITE';
  }

  get reliable(): boolean {
    return this.dest.transport !== 'udp';
  }
}
