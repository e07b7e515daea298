import { LRUCache } from 'lru-cache';

/**
 * Exact sliding windows: calls per second and calls per minute.
 *
 * A call at t is admitted by a limit of N per W ms iff fewer than N admits fall in (t-W, t].
 * With the admits kept in time order, that is "the N-th most recent admit is at or before t-W",
 * an O(1) look into a ring of the last K = max(N per second, N per minute) admit times; one ring
 * serves both windows since both count the same admits. Only admitted calls are recorded (check,
 * then commit), so a rejected call consumes nothing. The ring grows only while its oldest entry is
 * still inside the longest window, so memory follows recent traffic rather than the configured
 * limits.
 *
 * Two owners hold windows:
 *  - GuardCore, for configured accounts, in an array indexed by CompiledAccount.index (no key
 *    lookup on the hot path; see guard-core.ts), sweeping idle windows itself with isIdle();
 *  - KeyedRateLimiter, for callers without an account index (unknown callers, one key per source
 *    address when unknown_caller is allow): an lru-cache with a ttl of one minute of call time,
 *    because those keys are unbounded and come from the network.
 * A window idle for a minute holds no admit inside either window, so forgetting it changes no
 * answer.
 */

export const RATE_OK = 0;
export const RATE_SECOND = 1;
export const RATE_MINUTE = 2;
export type RateResult = typeof RATE_OK | typeof RATE_SECOND | typeof RATE_MINUTE;

const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;

export class RateWindow {
  ts: number[] = [0, 0];
  /** Where the next admit goes. */
  head = 0;
  count = 0;
  /**
   * Admits per aligned second and per aligned minute: the current bucket and the one before it.
   * prev + cur counts every admit since the previous bucket began, a superset of any window
   * ending now, so while it stays under a limit the call passes without reading the ring. Only a
   * caller near its limit pays for the exact look into the ring, whose reads are cache misses
   * with 100 000 accounts while these counters sit in the object itself.
   */
  secStart = 0;
  secCur = 0;
  secPrev = 0;
  minStart = 0;
  minCur = 0;
  minPrev = 0;

  /** Moves the buckets to now's second and minute (a pure function of time: checkRate may call it). */
  roll(now: number): void {
    if (now >= this.secStart + SECOND_MS) {
      this.secPrev = now < this.secStart + 2 * SECOND_MS ? this.secCur : 0;
      this.secCur = 0;
      this.secStart = now - (now % SECOND_MS);
    }
    if (now >= this.minStart + MINUTE_MS) {
      this.minPrev = now < this.minStart + 2 * MINUTE_MS ? this.minCur : 0;
      this.minCur = 0;
      this.minStart = now - (now % MINUTE_MS);
    }
  }

  /** Time of the k-th most recent admit (k >= 1, k <= count). */
  recent(k: number): number {
    const cap = this.ts.length;
    let i = this.head - k;
    if (i < 0) i += cap;
    return this.ts[i];
  }

  /** Forgets every admit and gives the ring's memory back (for an idle window that must stay). */
  clearAdmits(): void {
    this.ts = [0, 0];
    this.head = 0;
    this.count = 0;
    this.secCur = this.secPrev = this.minCur = this.minPrev = 0;
  }

  /** True when no admit is inside the last minute at now: the window can be dropped. */
  isIdle(now: number): boolean {
    return this.count === 0 || this.recent(1) <= now - MINUTE_MS;
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

/**
 * Would a call at now be admitted? perSecond / perMinute are Infinity when unlimited.
 * Records nothing; call commitAdmit() if the call is then admitted.
 */
export function checkRate(w: RateWindow, perSecond: number, perMinute: number, now: number): RateResult {
  w.roll(now);
  if (perSecond !== Infinity && w.secPrev + w.secCur >= perSecond) {
    if (perSecond <= 0 || (w.count >= perSecond && w.recent(perSecond) > now - SECOND_MS)) return RATE_SECOND;
  }
  if (perMinute !== Infinity && w.minPrev + w.minCur >= perMinute) {
    if (perMinute <= 0 || (w.count >= perMinute && w.recent(perMinute) > now - MINUTE_MS)) return RATE_MINUTE;
  }
  return RATE_OK;
}

/** Records an admitted call. */
export function commitAdmit(w: RateWindow, perSecond: number, perMinute: number, now: number): void {
  const keep = Math.max(perSecond === Infinity ? 0 : perSecond, perMinute === Infinity ? 0 : perMinute);
  if (keep === 0) return;
  w.roll(now);
  w.secCur++;
  w.minCur++;
  w.push(now, keep, perMinute === Infinity ? SECOND_MS : MINUTE_MS);
}

/** checkRate() then, when it passes, commitAdmit(). */
export function admitRate(w: RateWindow, perSecond: number, perMinute: number, now: number): RateResult {
  const r = checkRate(w, perSecond, perMinute, now);
  if (r === RATE_OK) commitAdmit(w, perSecond, perMinute, now);
  return r;
}

export interface KeyedRateLimiterOptions {
  /** Upper bound on tracked keys (the LRU's max; least recently used go first). */
  maxTracked?: number;
}

// Shared option objects: lru-cache's `options = {}` defaults would otherwise allocate per call.
const GET: { status?: undefined } = {};
const SET: { status?: undefined } = {};

/** Windows by key, for callers with no account index; idle keys expire after a minute of call time. */
export class KeyedRateLimiter {
  private readonly windows: LRUCache<string, RateWindow>;
  /** The LRU's clock: call time, so test clocks and windows agree. Starts at 1 (lru-cache reads 0 as "no ttl"). */
  private clock = 0;
  private lastNow = 0;
  private lastPurge = 0;

  constructor(opts: KeyedRateLimiterOptions = {}) {
    this.windows = new LRUCache<string, RateWindow>({
      max: opts.maxTracked ?? 262_144,
      ttl: MINUTE_MS,
      updateAgeOnGet: true,
      ttlResolution: 0,
      perf: { now: () => this.clock },
    });
  }

  /** Keys with live window state. */
  get size(): number {
    return this.windows.size;
  }

  /** The window of key, created on first use; every use restarts its minute. */
  window(key: string, now: number): RateWindow {
    this.advance(now);
    let w = this.windows.get(key, GET);
    if (w === undefined) {
      w = new RateWindow();
      this.windows.set(key, w, SET);
    }
    return w;
  }

  /** checkRate() and commitAdmit() in one step, by key. */
  admit(key: string, perSecond: number, perMinute: number, now: number): RateResult {
    if (perSecond === Infinity && perMinute === Infinity) return RATE_OK;
    return admitRate(this.window(key, now), perSecond, perMinute, now);
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
      this.windows.purgeStale();
    }
  }
}
