import type { MonitorSettings } from '../../../src/rules/monitor-schema';
import { FraudDetector } from '../../../src/monitor/fraud-detector';
import { compileMonitor, type MonitorThresholds } from '../../../src/monitor/thresholds';
import type { AttemptEvent } from '../../../src/monitor/types';

const OFF = { warning: false as const, critical: false as const };

/** Every detector off, so a test switches on exactly the one it is about. */
export const ALL_OFF: MonitorSettings = {
  intl_per_minute: OFF,
  intl_per_hour: OFF,
  rate_spike: OFF,
  concurrent_intl: OFF,
  same_destination: OFF,
  distinct_destinations: OFF,
  high_risk_attempts: OFF,
  new_country: OFF,
  dormant: { level: 'off' },
  off_hours: OFF,
  long_call: { international_minutes: OFF, high_risk_allowed_minutes: OFF },
};

/** Thresholds of account "a" (an NZ account), in UTC unless settings.timezone says otherwise. */
export function thresholds(settings: MonitorSettings): MonitorThresholds {
  const { timezone, ...rest } = settings;
  const file = { defaults: { ...ALL_OFF, ...rest }, accounts: { a: { timezone: timezone ?? 'UTC' } } };
  return compileMonitor(file, new Map([['a', 'NZ']]), 'NZ', () => {
    throw new Error('unexpected problem');
  }).forAccount('a');
}

export function detector(settings: MonitorSettings): FraudDetector {
  const t = thresholds(settings);
  return new FraudDetector({ thresholds: () => t });
}

/** Monday 2026-11-23 12:00 UTC: a weekday, midday. */
export const NOON = Date.UTC(2026, 10, 23, 12, 0, 0);
export const MIN = 60_000;

let n = 0;
export function call(at: number, e164 = '+61299990000', more: Partial<AttemptEvent> = {}): AttemptEvent {
  return { callId: `c${++n}`, account: 'a', at, e164, admitted: true, rule: 'allow', highRisk: false, ...more };
}

export function highRisk(at: number, e164: string, misdial?: string): AttemptEvent {
  return call(at, e164, { admitted: false, rule: 'high_risk', highRisk: true, misdial });
}
