/**
 * The detectors: each reads an account's activity (already updated with the event) and its
 * thresholds, and returns at most one finding. No I/O, no clock: time comes with the event.
 */
import type { AccountActivity, LiveIntlCall } from './account-activity';
import type { Levels, MonitorThresholds } from './thresholds';
import type { AttemptEvent, Finding, Level, MonitorRule } from './types';

const MINUTE = 60_000;
const HOUR = 3_600_000;

export function levelOf(value: number, l: Levels): Exclude<Level, 'info'> | null {
  if (value >= l.critical) return 'critical';
  if (value >= l.warning) return 'warning';
  return null;
}

/** destinations is filled in by the engine for the findings it keeps (most repeats are dropped). */
function finding(a: AccountActivity, e: { at: number; callId?: string }, rule: MonitorRule, level: Level, value: number, threshold: number, detail: string): Finding {
  return { account: a.id, rule, level, value, threshold, detail, at: e.at, callId: e.callId, destinations: [] };
}

function byCount(a: AccountActivity, e: AttemptEvent, rule: MonitorRule, n: number, l: Levels, what: string): Finding | null {
  const level = levelOf(n, l);
  if (level === null) return null;
  const threshold = level === 'critical' ? l.critical : l.warning;
  return finding(a, e, rule, level, n, threshold, `${n} ${what} (${level} at ${threshold})`);
}

const plural = (n: number, one: string, many = one + 's'): string => (n === 1 ? one : many);

export type AttemptDetector = (a: AccountActivity, e: AttemptEvent, t: MonitorThresholds) => Finding | null;

export const intlPerMinute: AttemptDetector = (a, e, t) =>
  byCount(a, e, 'intl_per_minute', a.intl.countSince(e.at - MINUTE + 1), t.intlPerMinute, 'international call attempts in the last minute');

export const intlPerHour: AttemptDetector = (a, e, t) =>
  byCount(a, e, 'intl_per_hour', a.intl.countSince(e.at - HOUR + 1), t.intlPerHour, 'international call attempts in the last hour');

export const offHours: AttemptDetector = (a, e, t) => {
  const o = t.offHours;
  if (!a.offHoursNow) return null;
  const n = a.offHours.countSince(e.at - o.windowMs + 1);
  return byCount(a, e, 'off_hours', n, o, `international call attempts outside business hours (${t.timezone}) in ${o.windowMs / MINUTE} minutes`);
};

export const highRiskAttempts: AttemptDetector = (a, e, t) => {
  if (!e.highRisk || e.admitted) return null;
  const since = e.at - t.highRiskAttempts.windowMs + 1;
  const n = a.highRisk.filter((h) => h.at >= since).length;
  return byCount(a, e, 'high_risk_attempts', n, t.highRiskAttempts, `attempts to high-risk destinations in ${t.highRiskAttempts.windowMs / MINUTE} minutes`);
};

export const sameDestination: AttemptDetector = (a, e, t) =>
  byCount(
    a,
    e,
    'same_destination',
    a.runCount,
    t.sameDestination,
    `international calls in a row to ${a.runKey}${'x'.repeat(t.sameDestination.ignoreLastDigits)}`,
  );

export const distinctDestinations: AttemptDetector = (a, e, t) => {
  const l = t.distinctDestinations;
  if (l.warning === Infinity && l.critical === Infinity) return null;
  const since = e.at - l.windowMs + 1;
  // Small and bounded (RECENT_MAX): a linear scan beats building a Set per call.
  const recent = a.recent;
  let distinct = 0;
  for (let i = recent.length - 1; i >= 0 && recent[i].at >= since; i--) {
    const n = recent[i].e164;
    let dup = false;
    for (let j = recent.length - 1; j > i; j--) {
      if (recent[j].e164 === n) {
        dup = true;
        break;
      }
    }
    if (!dup) distinct++;
  }
  return byCount(a, e, 'distinct_destinations', distinct, l, `distinct international numbers in ${l.windowMs / MINUTE} minutes`);
};

export const newCountry: AttemptDetector = (a, e, t) => {
  const n = a.newRegions.countSince(e.at - t.newCountry.windowMs + 1);
  if (n === 0) return null;
  return byCount(a, e, 'new_country', n, t.newCountry, `${plural(n, 'country', 'countries')} not called in the last ${t.newCountry.lookbackMs / 86_400_000} days, within ${t.newCountry.windowMs / MINUTE} minutes`);
};

export const concurrentIntl: AttemptDetector = (a, e, t) => {
  if (!e.admitted) return null;
  return byCount(a, e, 'concurrent_intl', a.live.size, t.concurrentIntl, 'international calls up at once');
};

export const rateSpike: AttemptDetector = (a, e, t) => {
  const s = t.rateSpike;
  const samples = a.samples[a.hourSlot];
  if (a.hourCount < s.minCalls || samples === 0) return null;
  // A baseline below one call an hour is treated as one: otherwise any activity is an "infinite" spike.
  const base = Math.max(1, a.baseline[a.hourSlot]);
  const ratio = a.hourCount / base;
  const level = levelOf(ratio, s);
  if (level === null) return null;
  const threshold = level === 'critical' ? s.critical : s.warning;
  return finding(a, e, 'rate_spike', level, Math.round(ratio * 10) / 10, threshold,
    `${a.hourCount} international call attempts this hour against a usual ${base.toFixed(1)} (x${ratio.toFixed(1)}, ${level} at x${threshold})`);
};

/** Run once per attempt, in this order (the first critical decides the block's stated reason). */
export const ATTEMPT_DETECTORS: readonly AttemptDetector[] = [
  highRiskAttempts,
  intlPerMinute,
  sameDestination,
  distinctDestinations,
  newCountry,
  offHours,
  concurrentIntl,
  intlPerHour,
  rateSpike,
];

/** A first international call after a long silence (compromises often sit unused for weeks). */
export function dormant(a: AccountActivity, e: AttemptEvent, t: MonitorThresholds, previousIntlAt: number): Finding | null {
  if (t.dormant.level === 'off' || previousIntlAt === 0 || e.at - previousIntlAt < t.dormant.idleMs) return null;
  const days = Math.floor((e.at - previousIntlAt) / 86_400_000);
  return finding(a, e, 'dormant', t.dormant.level, days, t.dormant.idleMs / 86_400_000,
    `first international call after ${days} days without one (${t.dormant.level} after ${t.dormant.idleMs / 86_400_000})`);
}

/** A call still up past its limit, checked while it is up. */
export function longCall(a: AccountActivity, callId: string, c: LiveIntlCall, t: MonitorThresholds, now: number): Finding | null {
  if (c.answeredAt === undefined) return null;
  const l = c.highRiskAllowed ? t.longCallHighRiskAllowed : t.longCallIntl;
  const up = now - c.answeredAt;
  const level = levelOf(up, l);
  if (level === null) return null;
  const rankOf = level === 'critical' ? 2 : 1;
  if (c.reported >= rankOf) return null;
  c.reported = rankOf;
  const minutes = Math.floor(up / MINUTE);
  const limit = (level === 'critical' ? l.critical : l.warning) / MINUTE;
  const kind = c.highRiskAllowed ? 'call to an allowed high-risk destination' : 'international call';
  return finding(a, { at: now, callId }, 'long_call', level, minutes, limit, `${kind} to ${c.e164} up for ${minutes} minutes (${level} at ${limit})`);
}
