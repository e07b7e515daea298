import { LRUCache } from 'lru-cache';

/**
 * Exact sliding windows per key (account id, or "_unknown:"+ip).
 *
 * A call at t is admitted by a limit of N per W ms iff fewer than N admits of that key fall in
 * (t-W, t]. With the admits kept in time order, that is "the N-th most recent admit is at or
 * before t-W", an O(1) look into a ring of the last K = max(N per second, N per minute) admit
 * times; one ring serves both windows since both count the same admits. Only admitted calls are
 * recorded (check, then commit), so a rejected call consumes nothing.
 *
 * The ring grows only while its oldest entry is still inside the longest window, so memory
 * follows recent traffic rather than the configured limits.
 *
 * States live in an LRU whose ttl runs on call time. Callers may hold a RateState across calls
 * (GuardCore does, per account, to skip the LRU lookup on the hot path); the TTL is then
 * refreshed on admit at most every REFRESH_MS, and ttl = 60 s + REFRESH_MS, so a state can only
 * expire after a full minute without admits, when every admit it holds is outside both windows
 * and forgetting it changes no answer. Expiry or eviction marks the state dead; holders must
 * then fetch a new one with state().
 */

export const RATE_OK = 0;
export const RATE_SECOND = 1;
export const RATE_MINUTE = 2;
export type RateResult = typeof RATE_OK | typeof RATE_SECOND | typeof RATE_MINUTE;

const SECOND_MS = 1000;
const MINUTE_MS = 60_000;
const REFRESH_MS = 10_000;
// Shared option objects: lru-cache's `options = {}` defaults would otherwise allocate per call.
const GET: { status?: undefined } = {};
const SET: { status?: undefined } = {};

export class RateState {
  ts: number[];
  /** Where the next admit goes. */
  head = 0;
  count = 0;
  /** Call time of the last LRU ttl refresh. */
  refreshedAt = 0;
  /** Set when the LRU dropped this state (expired or evicted). */
  dead = false;

  constructor(readonly key: string) {
    this.ts = [0, 0];
  }

  /** Time of the k-th most recent admit (k >= 1, k <= count). */
  recent(k: number): number {
    const cap = this.ts.length;
    let i = this.head - k;
    if (i < 0) i += cap;
    return this.ts[i];
  }

  push(t: number, keep: number, horizon: number): void {
    const cap = this.ts.length;
    if (this.count < cap) {
      this.ts[this.head] = t;
      this.head = this.head + 1 === cap ? 0 : this.head + 1;
      this.count++;
      return;
    }
    // Full: the oldest sits at head. Grow only if it still matters for some window.
    if (cap < keep && this.ts[this.head] > t - horizon) {
      const grown = new Array<number>(Math.min(keep, cap * 2)).fill(0);
      for (let i = 0; i < cap; i++) grown[i] = this.ts[(this.head + i) % cap];
      grown[cap] = t;
      this.ts = grown;
      this.count = cap + 1;
      this.head = this.count === grown.length ? 0 : this.count;
      return;
    }
    this.ts[this.head] = t;
    this.head = this.head + 1 === cap ? 0 : this.head + 1;
  }
}

export interface RateLimiterOptions {
  /** Upper bound on tracked keys (the LRU's max; least recently refreshed go first). */
  maxTracked?: number;
}

export class RateLimiter {
  private readonly states: LRUCache<string, RateState>;
  /** The LRU's clock: call time, so test clocks and windows agree. Starts at 1 (lru-cache reads 0 as "no ttl"). */
  private clock = 0;
  private lastNow = 0;
  private lastPurge = 0;

  constructor(opts: RateLimiterOptions = {}) {
    this.states = new LRUCache<string, RateState>({
      max: opts.maxTracked ?? 262_144,
      ttl: MINUTE_MS + REFRESH_MS,
      updateAgeOnGet: true,
      ttlResolution: 0,
      perf: { now: () => this.clock },
      dispose: (state) => {
        state.dead = true;
      },
    });
  }

  /** Keys with live window state. */
  get size(): number {
    return this.states.size;
  }

  /** The window state of key, created on first use. Hold it while !dead. */
  state(key: string, now: number): RateState {
    this.advance(now);
    let s = this.states.get(key, GET);
    if (s === undefined) {
      s = new RateState(key);
      this.states.set(key, s, SET);
    }
    s.refreshedAt = now;
    return s;
  }

  /**
   * Would a call at now be admitted? perSecond / perMinute are Infinity when unlimited.
   * Records nothing; call commit() if the call is then admitted.
   */
  check(s: RateState, perSecond: number, perMinute: number, now: number): RateResult {
    if (perSecond !== Infinity) {
      if (perSecond <= 0 || (s.count >= perSecond && s.recent(perSecond) > now - SECOND_MS)) return RATE_SECOND;
    }
    if (perMinute !== Infinity) {
      if (perMinute <= 0 || (s.count >= perMinute && s.recent(perMinute) > now - MINUTE_MS)) return RATE_MINUTE;
    }
    return RATE_OK;
  }

  /** Records an admitted call. */
  commit(s: RateState, perSecond: number, perMinute: number, now: number): void {
    const keep = Math.max(perSecond === Infinity ? 0 : perSecond, perMinute === Infinity ? 0 : perMinute);
    if (keep === 0) return;
    s.push(now, keep, perMinute === Infinity ? SECOND_MS : MINUTE_MS);
    if (now - s.refreshedAt >= REFRESH_MS) {
      this.advance(now);
      // get() refreshes the ttl; if the LRU already let the state go, put it back.
      if (this.states.get(s.key, GET) === undefined) {
        s.dead = false;
        this.states.set(s.key, s, SET);
      }
      s.refreshedAt = now;
    }
  }

  /** check() and commit() in one step, by key. */
  admit(key: string, perSecond: number, perMinute: number, now: number): RateResult {
    if (perSecond === Infinity && perMinute === Infinity) return RATE_OK;
    const s = this.state(key, now);
    const r = this.check(s, perSecond, perMinute, now);
    if (r === RATE_OK) this.commit(s, perSecond, perMinute, now);
    return r;
  }

  private advance(now: number): void {
    if (this.clock === 0) {
      this.clock = 1;
      this.lastNow = now;
    } else if (now > this.lastNow) {
      this.clock += now - this.lastNow;
      this.lastNow = now;
    }
    // Expiry is lazy; sweep once a window so idle keys do not pile up until max.
    if (this.clock - this.lastPurge >= MINUTE_MS) {
      this.lastPurge = this.clock;
      this.states.purgeStale();
    }
  }
}
