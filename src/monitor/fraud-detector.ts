/**
 * The fraud monitor's detection engine: call events in, findings out. Pure (no I/O, no timers,
 * time comes with each event), so it runs identically in the guard, in unit tests and in the
 * detection benchmark. Per-account state lives in AccountActivity; accounts idle longer than
 * `idleExpiryMs` are dropped on tick(), and at most `maxAccounts` are kept (least recently active
 * first out), so memory stays bounded whatever the traffic.
 */
import { AccountActivity, BASELINE_SLOTS, type LiveIntlCall } from './account-activity';
import { ATTEMPT_DETECTORS, dormant, longCall } from './detectors';
import { isOffHours, localTime } from './local-time';
import { regionOf } from './region';
import type { MonitorThresholds } from './thresholds';
import type { AttemptEvent, Finding } from './types';

const HOUR = 3_600_000;
const DAY = 86_400_000;
/** Weight of the newest hour in the baseline (an EWMA over about a week of samples per slot). */
const BASELINE_ALPHA = 0.3;
/** A region's last-seen date is written back at most this often (keeps store writes rare). */
const REGION_PERSIST_MS = DAY;
/** A number range called for the first time less than this long ago is "new" (see AccountActivity.ranges). */
const NEW_RANGE_MS = DAY;
/** Learned number ranges travel through the regions table with this mark in front. */
export const RANGE_MARK = '#';

export interface FraudDetectorOptions {
  thresholds: (account: string) => MonitorThresholds;
  maxAccounts?: number;
  /** Accounts with no event for this long are forgotten (regions are persisted separately). Default 8 days. */
  idleExpiryMs?: number;
  /** Live calls never reported ended are dropped after this long. Default 4 h. */
  maxCallMs?: number;
}

export interface LearnedRegion {
  account: string;
  region: string;
  lastSeen: number;
}

export class FraudDetector {
  private readonly accounts = new Map<string, AccountActivity>();
  /** Live international call -> its account's activity. */
  private readonly calls = new Map<string, AccountActivity>();
  private thresholds: (account: string) => MonitorThresholds;
  private readonly maxAccounts: number;
  private readonly idleExpiryMs: number;
  private readonly maxCallMs: number;
  private learned: LearnedRegion[] = [];
  /** Regions known before this process started (from the store), per account. */
  private readonly seeded = new Map<string, Map<string, number>>();
  /** Number ranges known before this process started: account -> range -> first called. */
  private readonly seededRanges = new Map<string, Map<string, number>>();

  constructor(opts: FraudDetectorOptions) {
    this.thresholds = opts.thresholds;
    this.maxAccounts = opts.maxAccounts ?? 200_000;
    this.idleExpiryMs = opts.idleExpiryMs ?? 8 * DAY;
    this.maxCallMs = opts.maxCallMs ?? 4 * HOUR;
  }

  setThresholds(fn: (account: string) => MonitorThresholds): void {
    this.thresholds = fn;
  }

  /**
   * Regions (and, marked with RANGE_MARK, number ranges) an account called before this process
   * started: new-country, dormancy and new-range runs survive restarts.
   */
  seedRegion(account: string, region: string, lastSeen: number): void {
    if (region.startsWith(RANGE_MARK)) {
      let r = this.seededRanges.get(account);
      if (!r) this.seededRanges.set(account, (r = new Map()));
      const key = region.slice(1);
      r.set(key, Math.min(lastSeen, r.get(key) ?? Infinity));
      this.accounts.get(account)?.noteRange(key, lastSeen);
      return;
    }
    let m = this.seeded.get(account);
    if (!m) this.seeded.set(account, (m = new Map()));
    m.set(region, Math.max(lastSeen, m.get(region) ?? 0));
    const a = this.accounts.get(account);
    if (a && (a.regions.get(region) ?? 0) < lastSeen) a.noteRegion(region, lastSeen);
  }

  /** Regions first called (or not written back for a day) since the last drain, for the store. */
  drainLearned(): LearnedRegion[] {
    const out = this.learned;
    this.learned = [];
    return out;
  }

  /** An international call attempt as the core decided it; returns what it reveals. */
  attempt(e: AttemptEvent): Finding[] {
    const a = this.activity(e.account, e.at);
    const t = this.thresholds(e.account);
    const findings: Finding[] = [];

    if (e.highRisk && !e.admitted) {
      const since = e.at - t.highRiskAttempts.windowMs + 1;
      a.highRisk = a.highRisk.filter((h) => h.at >= since);
      const forgiven = e.misdial !== undefined && a.highRisk.length === 0;
      a.highRisk.push({ at: e.at, misdial: e.misdial !== undefined });
      if (forgiven) {
        // One misdial is noted, not counted: a customer who types 00 for 0 once is not a fraudster.
        findings.push({
          account: a.id, rule: 'possible_misdial', level: 'info', value: 1, threshold: 1, at: e.at, callId: e.callId,
          detail: `high-risk number ${e.e164} looks like a misdial of the domestic number ${e.misdial}; not counted`,
          destinations: [e.e164],
        });
        return findings;
      }
    }

    const previousIntlAt = a.lastIntlAt;
    this.count(a, e, t);
    const d = dormant(a, e, t, previousIntlAt);
    if (d) findings.push(d);
    for (const detect of ATTEMPT_DETECTORS) {
      const f = detect(a, e, t);
      if (f) findings.push(f);
    }
    return this.filterRepeats(a, findings, t);
  }

  answered(callId: string, at: number): void {
    const a = this.calls.get(callId);
    const c = a?.live.get(callId);
    if (c && c.answeredAt === undefined) c.answeredAt = at;
  }

  ended(callId: string): void {
    const a = this.calls.get(callId);
    if (!a) return;
    this.calls.delete(callId);
    a.live.delete(callId);
  }

  /** Periodic: long calls still up, expiry of idle accounts and lost calls. */
  tick(now: number): Finding[] {
    const findings: Finding[] = [];
    for (const [callId, a] of this.calls) {
      const c = a.live.get(callId)!;
      if (now - c.admittedAt > this.maxCallMs) {
        this.calls.delete(callId);
        a.live.delete(callId);
        continue;
      }
      const f = longCall(a, callId, c, this.thresholds(a.id), now);
      if (f) {
        f.destinations = a.destinations();
        findings.push(f);
      }
    }
    for (const [id, a] of this.accounts) {
      if (now - a.lastEventAt <= this.idleExpiryMs) break; // insertion order = least recently active first
      if (a.live.size === 0) this.accounts.delete(id);
    }
    return findings;
  }

  /** After an unblock: start the account's windows afresh (its regions and baseline stay). */
  forgetIncident(account: string): void {
    this.accounts.get(account)?.forgetIncident();
  }

  liveCallsOf(account: string): ReadonlyMap<string, LiveIntlCall> | undefined {
    return this.accounts.get(account)?.live;
  }

  stats(): { accounts: number; liveCalls: number } {
    return { accounts: this.accounts.size, liveCalls: this.calls.size };
  }

  private activity(id: string, at: number): AccountActivity {
    let a = this.accounts.get(id);
    if (a) {
      // Re-insert: Map order is then least recently active first, for expiry and eviction.
      this.accounts.delete(id);
    } else {
      a = new AccountActivity(id);
      const seeded = this.seeded.get(id);
      if (seeded) for (const [region, last] of seeded) a.noteRegion(region, last);
      const ranges = this.seededRanges.get(id);
      if (ranges) for (const [key, first] of ranges) a.noteRange(key, first);
      if (this.accounts.size >= this.maxAccounts) {
        for (const [oldId, old] of this.accounts) {
          if (old.live.size === 0) {
            this.accounts.delete(oldId);
            break;
          }
        }
      }
    }
    a.lastEventAt = at;
    this.accounts.set(id, a);
    return a;
  }

  /** Updates the account's windows with the attempt, before the detectors read them. */
  private count(a: AccountActivity, e: AttemptEvent, t: MonitorThresholds): void {
    a.intl.push(e.at);
    a.intl.dropBefore(e.at - HOUR);
    a.noteRecent(e.e164, e.at);

    const local = localTime(t.timezone, e.at);
    const o = t.offHours;
    a.offHoursNow = isOffHours(local, o.nightFrom, o.nightTo, o.weekends);
    if (a.offHoursNow) a.offHours.push(e.at);
    a.offHours.dropBefore(e.at - o.windowMs);

    // Runs of calls to one number range first called within the last day, broken by any other
    // destination or 10 minutes of quiet. Calls to long-known ranges do not run up a count.
    const key = t.sameDestination.ignoreLastDigits > 0 ? e.e164.slice(0, -t.sameDestination.ignoreLastDigits) : e.e164;
    const known = a.ranges.has(key);
    const firstCalled = a.noteRange(key, e.at);
    if (!known && this.learned.length < 100_000) this.learned.push({ account: a.id, region: RANGE_MARK + key, lastSeen: e.at });
    const fresh = e.at - firstCalled < NEW_RANGE_MS;
    if (key === a.runKey && e.at - a.runLastAt <= 10 * 60_000) a.runCount += fresh ? 1 : 0;
    else {
      a.runKey = key;
      a.runCount = fresh ? 1 : 0;
    }
    a.runLastAt = e.at;

    const region = regionOf(e.e164);
    const last = a.regions.get(region);
    if (a.regions.size > 0 && (last === undefined || e.at - last > t.newCountry.lookbackMs)) a.newRegions.push(e.at);
    if (last === undefined || e.at - last >= REGION_PERSIST_MS) {
      if (this.learned.length < 100_000) this.learned.push({ account: a.id, region, lastSeen: e.at });
      a.noteRegion(region, e.at);
    } else if (e.at > a.lastIntlAt) {
      a.lastIntlAt = e.at;
    }

    this.countHour(a, e.at, local.weekday === 0 || local.weekday === 6 ? 24 + local.hour : local.hour);

    if (e.admitted) {
      a.live.set(e.callId, { account: a.id, admittedAt: e.at, e164: e.e164, highRiskAllowed: e.highRisk, reported: 0 });
      this.calls.set(e.callId, a);
    }
  }

  /** Hour buckets: when an hour closes, its count (and zeros for silent hours) feed the slot's EWMA. */
  private countHour(a: AccountActivity, at: number, slot: number): void {
    const hour = Math.floor(at / HOUR);
    if (a.hour !== hour) {
      if (a.hour >= 0) {
        this.fold(a, a.hourSlot, a.hourCount);
        // Silent hours in between count as zero calls, up to a week of them.
        const gap = Math.min(hour - a.hour - 1, 168);
        for (let i = 1; i <= gap; i++) this.fold(a, (a.hourSlot + i) % BASELINE_SLOTS, 0);
      }
      a.hour = hour;
      a.hourCount = 0;
      a.hourSlot = slot;
    }
    a.hourCount++;
  }

  private fold(a: AccountActivity, slot: number, count: number): void {
    a.baseline[slot] = a.samples[slot] === 0 ? count : BASELINE_ALPHA * count + (1 - BASELINE_ALPHA) * a.baseline[slot];
    if (a.samples[slot] < 65535) a.samples[slot]++;
  }

  /** A warning for the same rule is repeated at most every repeat_warning_minutes; criticals always pass. */
  private filterRepeats(a: AccountActivity, findings: Finding[], t: MonitorThresholds): Finding[] {
    if (findings.length === 0) return findings;
    const out: Finding[] = [];
    for (const f of findings) {
      if (f.level === 'warning') {
        const last = a.warned.get(f.rule);
        if (last !== undefined && f.at - last < t.repeatWarningMs) continue;
        a.warned.set(f.rule, f.at);
      }
      f.destinations = a.destinations();
      out.push(f);
    }
    // Critical first: the first critical is the block's stated reason.
    return out.sort((x, y) => rank(y.level) - rank(x.level));
  }
}

const rank = (l: Finding['level']): number => (l === 'critical' ? 2 : l === 'warning' ? 1 : 0);
