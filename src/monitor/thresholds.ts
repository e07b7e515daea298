/**
 * monitor.yaml compiled into one resolved MonitorThresholds per account: built-in defaults, then
 * the file's `defaults`, then the account's own overrides, field by field. A level left out
 * everywhere is Infinity (never fires). Thresholds are what the detectors read per event, so
 * they are plain numbers with no lookups left to do.
 */
import type { MonitorFile, MonitorSettings } from '../rules/monitor-schema';
import { timezoneOfCountry } from './local-time';

export interface Levels {
  readonly warning: number;
  readonly critical: number;
}

export interface MonitorThresholds {
  readonly timezone: string;
  readonly intlPerMinute: Levels;
  readonly intlPerHour: Levels;
  /** Calls in the current hour as multiples of the account's baseline for that hour. */
  readonly rateSpike: Levels & { readonly minCalls: number };
  readonly concurrentIntl: Levels;
  readonly sameDestination: Levels & { readonly ignoreLastDigits: number };
  readonly distinctDestinations: Levels & { readonly windowMs: number };
  readonly highRiskAttempts: Levels & { readonly windowMs: number };
  readonly newCountry: Levels & { readonly lookbackMs: number; readonly windowMs: number };
  readonly dormant: { readonly idleMs: number; readonly level: 'warning' | 'critical' | 'off' };
  readonly offHours: Levels & { readonly nightFrom: number; readonly nightTo: number; readonly weekends: boolean; readonly windowMs: number };
  /** Milliseconds a call may be up. */
  readonly longCallIntl: Levels;
  readonly longCallHighRiskAllowed: Levels;
  readonly repeatWarningMs: number;
}

/** Built in, so a guard without monitor.yaml still watches; the shipped monitor.yaml repeats them. */
export const BUILT_IN: Required<Omit<MonitorSettings, 'timezone'>> = {
  intl_per_minute: { warning: 4, critical: 8 },
  intl_per_hour: { warning: 30, critical: 60 },
  rate_spike: { min_calls: 15, warning: 4, critical: 12 },
  concurrent_intl: { warning: 4, critical: 8 },
  same_destination: { ignore_last_digits: 2, warning: 4, critical: 6 },
  distinct_destinations: { window_minutes: 10, warning: 5, critical: 8 },
  high_risk_attempts: { window_minutes: 60, warning: 2, critical: 3 },
  new_country: { lookback_days: 30, window_minutes: 60, warning: 2, critical: 4 },
  dormant: { idle_days: 21, level: 'warning' },
  off_hours: { night_from: '22:00', night_to: '07:00', weekends: true, window_minutes: 60, warning: 4, critical: 8 },
  long_call: { international_minutes: { warning: 90, critical: 240 }, high_risk_allowed_minutes: { warning: 30, critical: 90 } },
  repeat_warning_minutes: 60,
};

type Settings = MonitorSettings;
const MIN = 60_000;
const DAY = 86_400_000;

/** Field-by-field overlay: nested mappings are merged, not replaced. */
function overlay(base: Settings, top: Settings | undefined): Settings {
  if (!top) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(top)) {
    if (v === undefined) continue;
    const b = (base as Record<string, unknown>)[k];
    out[k] = typeof v === 'object' && v !== null && typeof b === 'object' && b !== null ? overlay(b as Settings, v as Settings) : v;
  }
  return out as Settings;
}

/** A level left out everywhere, or set to false, never fires. */
const lv = (l: { warning?: number | false; critical?: number | false } | undefined, scale = 1): Levels => ({
  warning: typeof l?.warning === 'number' ? l.warning * scale : Infinity,
  critical: typeof l?.critical === 'number' ? l.critical * scale : Infinity,
});

const minutesOfDay = (hhmm: string): number => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

function resolve(s: Settings, timezone: string): MonitorThresholds {
  const b = BUILT_IN;
  const sd = s.same_destination ?? {};
  const dd = s.distinct_destinations ?? {};
  const hr = s.high_risk_attempts ?? {};
  const nc = s.new_country ?? {};
  const oh = s.off_hours ?? {};
  const rs = s.rate_spike ?? {};
  return {
    timezone,
    intlPerMinute: lv(s.intl_per_minute),
    intlPerHour: lv(s.intl_per_hour),
    rateSpike: { ...lv(rs), minCalls: rs.min_calls ?? b.rate_spike.min_calls! },
    concurrentIntl: lv(s.concurrent_intl),
    sameDestination: { ...lv(sd), ignoreLastDigits: sd.ignore_last_digits ?? b.same_destination.ignore_last_digits! },
    distinctDestinations: { ...lv(dd), windowMs: (dd.window_minutes ?? b.distinct_destinations.window_minutes!) * MIN },
    highRiskAttempts: { ...lv(hr), windowMs: (hr.window_minutes ?? b.high_risk_attempts.window_minutes!) * MIN },
    newCountry: {
      ...lv(nc),
      lookbackMs: (nc.lookback_days ?? b.new_country.lookback_days!) * DAY,
      windowMs: (nc.window_minutes ?? b.new_country.window_minutes!) * MIN,
    },
    dormant: { idleMs: (s.dormant?.idle_days ?? b.dormant.idle_days!) * DAY, level: s.dormant?.level ?? b.dormant.level! },
    offHours: {
      ...lv(oh),
      nightFrom: minutesOfDay(oh.night_from ?? b.off_hours.night_from!),
      nightTo: minutesOfDay(oh.night_to ?? b.off_hours.night_to!),
      weekends: oh.weekends ?? b.off_hours.weekends!,
      windowMs: (oh.window_minutes ?? b.off_hours.window_minutes!) * MIN,
    },
    longCallIntl: lv(s.long_call?.international_minutes, MIN),
    longCallHighRiskAllowed: lv(s.long_call?.high_risk_allowed_minutes, MIN),
    repeatWarningMs: (s.repeat_warning_minutes ?? b.repeat_warning_minutes) * MIN,
  };
}

export interface CompiledMonitor {
  /**
   * Detection runs only when the rules directory has a monitor.yaml (the shipped rules do). Without
   * one, blocks already in the store are still enforced and the admin commands work, but no new
   * block is applied automatically: rule sets written before the monitor existed keep behaving as before.
   */
  readonly enabled: boolean;
  /** For calls attributed to no configured account (unknown_caller: allow). */
  readonly defaults: MonitorThresholds;
  forAccount(id: string): MonitorThresholds;
}

/**
 * @param accountCountry the dial-plan country of each configured account (for its time zone)
 * @param problem reports a cross-file problem at monitor.yaml's path (an override for an unknown account)
 */
export function compileMonitor(
  file: MonitorFile | undefined,
  accountCountry: ReadonlyMap<string, string>,
  homeCountry: string,
  problem: (path: ReadonlyArray<string | number>, message: string) => void,
): CompiledMonitor {
  const base = overlay(BUILT_IN as Settings, file?.defaults);
  const tzFor = (own: string | undefined, country: string): string => own ?? timezoneOfCountry(country) ?? file?.defaults?.timezone ?? 'UTC';
  const defaults = resolve(base, tzFor(undefined, homeCountry));
  const byAccount = new Map<string, MonitorThresholds>();
  const overrides = file?.accounts ?? {};
  for (const id of Object.keys(overrides)) {
    if (!accountCountry.has(id)) problem(['accounts', id], `account "${id}" is not in accounts.yaml`);
  }
  for (const [id, country] of accountCountry) {
    const own = overrides[id];
    const tz = tzFor(own?.timezone, country);
    const s = overlay(base, own);
    byAccount.set(id, own === undefined && tz === defaults.timezone ? defaults : resolve(s, tz));
  }
  return { enabled: file !== undefined, defaults, forAccount: (id) => byAccount.get(id) ?? defaults };
}

/** Built-in thresholds with detection off: what a CompiledRules without `monitor` means. */
export const MONITOR_OFF: CompiledMonitor = (() => {
  const m = compileMonitor(undefined, new Map(), 'NZ', () => undefined);
  return { enabled: false, defaults: m.defaults, forAccount: () => m.defaults };
})();
