/**
 * What the monitor remembers of one account: timestamps in sliding windows, recent destinations,
 * live international calls, regions called, and an hour-of-week call baseline. Every collection is
 * capped, so a runaway account cannot grow memory without bound.
 */

/** Timestamps in arrival order, trimmed from the front; capped. */
export class TimeWindow {
  private times: number[] = [];
  private start = 0;

  constructor(private readonly cap = 4096) {}

  push(at: number): void {
    this.times.push(at);
    if (this.times.length - this.start > this.cap) this.start++;
    if (this.start > 1024 && this.start * 2 > this.times.length) {
      this.times = this.times.slice(this.start);
      this.start = 0;
    }
  }

  /** Entries at or after `since` (inclusive). */
  countSince(since: number): number {
    const t = this.times;
    let n = 0;
    for (let i = t.length - 1; i >= this.start && t[i] >= since; i--) n++;
    return n;
  }

  dropBefore(cutoff: number): void {
    while (this.start < this.times.length && this.times[this.start] < cutoff) this.start++;
  }

  get size(): number {
    return this.times.length - this.start;
  }

  clear(): void {
    this.times = [];
    this.start = 0;
  }
}

export interface RecentCall {
  at: number;
  e164: string;
}

export interface LiveIntlCall {
  account: string;
  admittedAt: number;
  answeredAt?: number;
  e164: string;
  highRiskAllowed: boolean;
  /** Highest level already reported for this call's duration (0 none, 1 warning, 2 critical), so each fires once. */
  reported: number;
}

export const RECENT_MAX = 64;
export const REGIONS_MAX = 256;
export const RANGES_MAX = 256;
/** Weekday hours 0-23, weekend hours 24-47, in the account's time zone. */
export const BASELINE_SLOTS = 48;

export class AccountActivity {
  readonly intl = new TimeWindow();
  readonly offHours = new TimeWindow();
  readonly newRegions = new TimeWindow(256);
  /** High-risk attempts; misdial marks the ones that looked like a misdialled domestic number. */
  highRisk: Array<{ at: number; misdial: boolean }> = [];
  recent: RecentCall[] = [];
  runKey = '';
  runCount = 0;
  runLastAt = 0;
  /** Region -> last time called (wall ms). Oldest dropped beyond REGIONS_MAX. */
  readonly regions = new Map<string, number>();
  /**
   * Number ranges (the destination without its last ignore_last_digits digits) -> first time
   * called. A run of calls to a range called for the first time within the last day is what
   * pumping looks like; a run to a long-known contact (an office calling its branch all day) is not.
   */
  readonly ranges = new Map<string, number>();
  /** Latest international attempt (0: never seen). */
  lastIntlAt = 0;
  readonly live = new Map<string, LiveIntlCall>();
  /** Calls in the current wall-clock hour and the baseline (EWMA per slot) of earlier hours. */
  hour = -1;
  hourCount = 0;
  hourSlot = 0;
  readonly baseline = new Float32Array(BASELINE_SLOTS);
  readonly samples = new Uint16Array(BASELINE_SLOTS);
  /** Whether the attempt being judged falls outside business hours (set by the engine per attempt). */
  offHoursNow = false;
  /** Rule -> time of its last warning, so a warning is repeated at most every repeat_warning_minutes. */
  readonly warned = new Map<string, number>();
  lastEventAt = 0;

  constructor(readonly id: string) {}

  noteRegion(region: string, at: number): void {
    this.regions.delete(region);
    this.regions.set(region, at);
    if (this.regions.size > REGIONS_MAX) this.regions.delete(this.regions.keys().next().value!);
    if (at > this.lastIntlAt) this.lastIntlAt = at;
  }

  /** Remembers when a range was first called; returns that time. Oldest dropped beyond RANGES_MAX. */
  noteRange(key: string, at: number): number {
    const first = this.ranges.get(key);
    if (first !== undefined) return first;
    this.ranges.set(key, at);
    if (this.ranges.size > RANGES_MAX) this.ranges.delete(this.ranges.keys().next().value!);
    return at;
  }

  noteRecent(e164: string, at: number): void {
    this.recent.push({ at, e164 });
    if (this.recent.length > RECENT_MAX) this.recent.splice(0, this.recent.length - RECENT_MAX);
  }

  /** Newest first, distinct, at most n. */
  destinations(n = 10): string[] {
    const out: string[] = [];
    for (let i = this.recent.length - 1; i >= 0 && out.length < n; i--) {
      if (!out.includes(this.recent[i].e164)) out.push(this.recent[i].e164);
    }
    return out;
  }

  /** After an unblock: the evidence of the old incident must not re-block the account at once. */
  forgetIncident(): void {
    this.intl.clear();
    this.offHours.clear();
    this.newRegions.clear();
    this.highRisk = [];
    this.recent = [];
    this.runKey = '';
    this.runCount = 0;
    this.hourCount = 0;
    this.warned.clear();
  }
}
