import { AccountActivity, TimeWindow } from '../../../src/monitor/account-activity';
import { FraudDetector } from '../../../src/monitor/fraud-detector';
import type { Finding } from '../../../src/monitor/types';
import { MIN, NOON, call, detector, highRisk, thresholds } from './helpers';

const levels = (fs: Finding[]) => fs.map((f) => `${f.rule}:${f.level}`);

describe('international attempts per minute and per hour', () => {
  it('warns at the warning count and is critical at the critical count within one minute', () => {
    const d = detector({ intl_per_minute: { warning: 3, critical: 5 } });
    const out = [0, 1, 2, 3, 4].map((i) => levels(d.attempt(call(NOON + i * 5000, `+6129999000${i}`))));
    expect(out).toEqual([[], [], ['intl_per_minute:warning'], [], ['intl_per_minute:critical']]);
  });

  it('does not count calls that left the minute', () => {
    const d = detector({ intl_per_minute: { critical: 3 } });
    expect(d.attempt(call(NOON))).toEqual([]);
    expect(d.attempt(call(NOON + 30_000))).toEqual([]);
    expect(d.attempt(call(NOON + 61_000))).toEqual([]); // the first one is out of the window
    expect(levels(d.attempt(call(NOON + 62_000)))).toEqual(['intl_per_minute:critical']);
  });

  it('counts a slow drip per hour', () => {
    const d = detector({ intl_per_hour: { critical: 10 } });
    const found = Array.from({ length: 10 }, (_, i) => d.attempt(call(NOON + i * 5 * MIN)));
    expect(found.findIndex((f) => f.length > 0)).toBe(9);
    expect(found[9][0]).toMatchObject({ rule: 'intl_per_hour', level: 'critical', value: 10, threshold: 10 });
  });

  it('repeats a warning only after repeat_warning_minutes', () => {
    const d = detector({ intl_per_minute: { warning: 1 }, repeat_warning_minutes: 10 });
    expect(d.attempt(call(NOON))).toHaveLength(1);
    expect(d.attempt(call(NOON + MIN))).toHaveLength(0);
    expect(d.attempt(call(NOON + 11 * MIN))).toHaveLength(1);
  });
});

describe('high-risk attempts and misdial tolerance', () => {
  it('forgives one possible misdial: noted as info, not counted', () => {
    const d = detector({ high_risk_attempts: { warning: 1, critical: 2 }, intl_per_minute: { critical: 1 } });
    const f = d.attempt(highRisk(NOON, '+252612345', '0252612345'));
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ rule: 'possible_misdial', level: 'info' });
    expect(f[0].detail).toContain('0252612345');
  });

  it('counts a second misdial, and the first one with it', () => {
    const d = detector({ high_risk_attempts: { warning: 2, critical: 3 } });
    d.attempt(highRisk(NOON, '+252612345', '0252612345'));
    expect(levels(d.attempt(highRisk(NOON + MIN, '+252612345', '0252612345')))).toEqual(['high_risk_attempts:warning']);
  });

  it('counts a misdial that follows other high-risk attempts', () => {
    const d = detector({ high_risk_attempts: { critical: 2 } });
    d.attempt(highRisk(NOON, '+25261234567'));
    expect(levels(d.attempt(highRisk(NOON + MIN, '+252612345', '0252612345')))).toEqual(['high_risk_attempts:critical']);
  });

  it('blocks varied high-risk attempts at the critical count', () => {
    const d = detector({ high_risk_attempts: { critical: 3, window_minutes: 60 } });
    d.attempt(highRisk(NOON, '+25261234567'));
    d.attempt(highRisk(NOON + MIN, '+882161234567'));
    const f = d.attempt(highRisk(NOON + 2 * MIN, '+18765550123'));
    expect(f[0]).toMatchObject({ rule: 'high_risk_attempts', level: 'critical', value: 3 });
    expect(f[0].destinations).toEqual(['+18765550123', '+882161234567', '+25261234567']);
  });

  it('forgets high-risk attempts older than the window', () => {
    const d = detector({ high_risk_attempts: { critical: 2, window_minutes: 10 } });
    d.attempt(highRisk(NOON, '+25261234567'));
    expect(d.attempt(highRisk(NOON + 11 * MIN, '+25261234568'))).toEqual([]);
  });
});

describe('destinations', () => {
  it('catches a run of calls into one number range (sequential pumping)', () => {
    const d = detector({ same_destination: { ignore_last_digits: 2, critical: 4 } });
    const found = ['+447012345601', '+447012345602', '+447012345603', '+447012345604'].map((n, i) => d.attempt(call(NOON + i * MIN, n)));
    expect(levels(found[3])).toEqual(['same_destination:critical']);
    expect(found[3][0].detail).toContain('+4470123456xx');
  });

  it('does not count a run to a number range the account has called for more than a day (an office calling its branch)', () => {
    const d = detector({ same_destination: { ignore_last_digits: 2, critical: 3 } });
    d.seedRegion('a', '#+4470123456', NOON - 3 * 86_400_000);
    for (let i = 0; i < 10; i++) expect(d.attempt(call(NOON + i * MIN, '+447012345601'))).toEqual([]);
  });

  it('a different destination breaks the run', () => {
    const d = detector({ same_destination: { ignore_last_digits: 2, critical: 3 } });
    d.attempt(call(NOON, '+447012345601'));
    d.attempt(call(NOON + MIN, '+447012345602'));
    d.attempt(call(NOON + 2 * MIN, '+61299990000'));
    expect(d.attempt(call(NOON + 3 * MIN, '+447012345603'))).toEqual([]);
  });

  it('counts distinct numbers in the window', () => {
    const d = detector({ distinct_destinations: { window_minutes: 10, critical: 3 } });
    d.attempt(call(NOON, '+61299990000'));
    d.attempt(call(NOON + MIN, '+61299990000')); // the same number again is not distinct
    d.attempt(call(NOON + 2 * MIN, '+61299990001'));
    expect(levels(d.attempt(call(NOON + 3 * MIN, '+61299990002')))).toEqual(['distinct_destinations:critical']);
  });

  it('counts countries not called in the lookback period, once the account has a history', () => {
    const d = detector({ new_country: { lookback_days: 30, window_minutes: 60, warning: 1, critical: 3 } });
    d.seedRegion('a', '+61', NOON - 5 * 86_400_000);
    d.seedRegion('a', '+44', NOON - 40 * 86_400_000); // too long ago to count as known
    expect(d.attempt(call(NOON, '+61299990000'))).toEqual([]);
    expect(levels(d.attempt(call(NOON + MIN, '+442071234567')))).toEqual(['new_country:warning']);
    d.attempt(call(NOON + 2 * MIN, '+33123456789'));
    expect(levels(d.attempt(call(NOON + 3 * MIN, '+4930123456')))).toEqual(['new_country:critical']);
  });

  it('does not call the very first international call of an account without history a new country', () => {
    const d = detector({ new_country: { warning: 1 } });
    expect(d.attempt(call(NOON, '+61299990000'))).toEqual([]);
  });

  it('reports regions it learns, for the store', () => {
    const d = detector({});
    d.attempt(call(NOON, '+61299990000'));
    d.attempt(call(NOON + 1, '+61299990001'));
    d.attempt(call(NOON + 2, '+18765550123'));
    expect(d.drainLearned()).toEqual([
      { account: 'a', region: '#+612999900', lastSeen: NOON }, // number range (default ignore_last_digits 2), first called
      { account: 'a', region: '+61', lastSeen: NOON },
      { account: 'a', region: '#+187655501', lastSeen: NOON + 2 },
      { account: 'a', region: '+1876', lastSeen: NOON + 2 },
    ]);
    expect(d.drainLearned()).toEqual([]);
  });
});

describe('time', () => {
  it('flags the first international call after a dormant period', () => {
    const d = detector({ dormant: { idle_days: 21, level: 'warning' } });
    d.seedRegion('a', '+61', NOON - 30 * 86_400_000);
    const [f] = d.attempt(call(NOON));
    expect(f).toMatchObject({ rule: 'dormant', level: 'warning', value: 30 });
    expect(d.attempt(call(NOON + MIN))).toEqual([]);
  });

  it('counts off-hours attempts in the account time zone: night in Auckland is midday in UTC', () => {
    const settings = { off_hours: { night_from: '22:00', night_to: '07:00', weekends: false, critical: 2 } };
    const auckland = new FraudDetector({ thresholds: () => thresholds({ ...settings, timezone: 'Pacific/Auckland' }) });
    const utc = detector(settings);
    // 2026-11-23 14:00 UTC is 03:00 on the 24th in Auckland (NZDT, UTC+13).
    const at = Date.UTC(2026, 10, 23, 14, 0);
    auckland.attempt(call(at));
    expect(levels(auckland.attempt(call(at + MIN)))).toEqual(['off_hours:critical']);
    utc.attempt(call(at));
    expect(utc.attempt(call(at + MIN))).toEqual([]);
  });

  it('counts weekend attempts when weekends are off-hours', () => {
    const d = detector({ off_hours: { weekends: true, night_from: '23:00', night_to: '05:00', critical: 1 } });
    const saturdayNoon = Date.UTC(2026, 10, 28, 12, 0);
    expect(levels(d.attempt(call(saturdayNoon)))).toEqual(['off_hours:critical']);
  });
});

describe('rate spike against the account baseline', () => {
  it('learns the usual rate for the hour and flags a multiple of it', () => {
    const d = detector({ rate_spike: { min_calls: 6, warning: 3, critical: 5 } });
    // Two calls an hour every weekday hour for two weeks.
    for (let day = -14; day < 0; day++) {
      for (let h = 0; h < 24; h++) {
        const at = NOON + day * 86_400_000 + h * 3_600_000;
        d.attempt(call(at));
        d.attempt(call(at + 20 * MIN));
      }
    }
    const found: Finding[][] = [];
    for (let i = 0; i < 10; i++) found.push(d.attempt(call(NOON + i * 3 * MIN + 1000)));
    const first = found.findIndex((f) => f.some((x) => x.rule === 'rate_spike'));
    expect(levels(found[first])).toEqual(['rate_spike:warning']);
    expect(first).toBe(5); // 6 calls (min_calls) against a baseline of 2: x3
    expect(levels(found[9])).toEqual(['rate_spike:critical']); // 10 calls: x5
  });

  it('says nothing before it has a baseline for the hour', () => {
    const d = detector({ rate_spike: { min_calls: 2, warning: 1.5, critical: 2 } });
    for (let i = 0; i < 10; i++) expect(d.attempt(call(NOON + i * 1000))).toEqual([]);
  });
});

describe('live calls', () => {
  it('counts concurrent international calls and frees them when they end', () => {
    const d = detector({ concurrent_intl: { critical: 3 } });
    const a = call(NOON);
    d.attempt(a);
    d.attempt(call(NOON + 1000));
    d.ended(a.callId);
    expect(d.attempt(call(NOON + 2000))).toEqual([]);
    expect(levels(d.attempt(call(NOON + 3000)))).toEqual(['concurrent_intl:critical']);
  });

  it('finds a long call while it is up, each level once', () => {
    const d = detector({ long_call: { international_minutes: { warning: 60, critical: 120 }, high_risk_allowed_minutes: { critical: 20 } } });
    const c = call(NOON);
    d.attempt(c);
    d.answered(c.callId, NOON + 5000);
    expect(d.tick(NOON + 59 * MIN)).toEqual([]);
    expect(levels(d.tick(NOON + 61 * MIN))).toEqual(['long_call:warning']);
    expect(d.tick(NOON + 62 * MIN)).toEqual([]);
    const [f] = d.tick(NOON + 121 * MIN);
    expect(f).toMatchObject({ rule: 'long_call', level: 'critical', callId: c.callId });
    expect(d.tick(NOON + 122 * MIN)).toEqual([]);
  });

  it('uses the shorter limit for an allowed high-risk destination', () => {
    const d = detector({ long_call: { international_minutes: { critical: 120 }, high_risk_allowed_minutes: { critical: 20 } } });
    const c = call(NOON, '+68212345', { highRisk: true });
    d.attempt(c);
    d.answered(c.callId, NOON);
    expect(levels(d.tick(NOON + 21 * MIN))).toEqual(['long_call:critical']);
  });

  it('does not time calls that were never answered', () => {
    const d = detector({ long_call: { international_minutes: { critical: 1 } } });
    d.attempt(call(NOON));
    expect(d.tick(NOON + 10 * MIN)).toEqual([]);
  });
});

describe('bounded memory', () => {
  it('keeps at most maxAccounts accounts, dropping the least recently active', () => {
    const t = thresholds({});
    const d = new FraudDetector({ thresholds: () => t, maxAccounts: 100 });
    for (let i = 0; i < 1000; i++) {
      const c = call(NOON + i, '+61299990000', { account: `acct${i}` });
      d.attempt(c);
      d.ended(c.callId);
    }
    expect(d.stats().accounts).toBe(100);
  });

  it('forgets accounts idle longer than idleExpiryMs', () => {
    const t = thresholds({});
    const d = new FraudDetector({ thresholds: () => t, idleExpiryMs: 60 * MIN });
    const c = call(NOON);
    d.attempt(c);
    d.ended(c.callId);
    d.tick(NOON + 30 * MIN);
    expect(d.stats().accounts).toBe(1);
    d.tick(NOON + 61 * MIN);
    expect(d.stats().accounts).toBe(0);
  });

  it('drops calls never reported ended after maxCallMs', () => {
    const t = thresholds({});
    const d = new FraudDetector({ thresholds: () => t, maxCallMs: 10 * MIN });
    d.attempt(call(NOON));
    d.tick(NOON + 11 * MIN);
    expect(d.stats().liveCalls).toBe(0);
  });

  it('TimeWindow stays within its cap', () => {
    const w = new TimeWindow(10);
    for (let i = 0; i < 5000; i++) w.push(i);
    expect(w.size).toBe(10);
    expect(w.countSince(4995)).toBe(5);
  });

  it('AccountActivity keeps at most 256 regions', () => {
    const a = new AccountActivity('a');
    for (let i = 0; i < 300; i++) a.noteRegion(`+${1000 + i}`, i);
    expect(a.regions.size).toBe(256);
  });
});

describe('after an unblock', () => {
  it('forgetIncident starts the windows afresh, so the old evidence does not block again at once', () => {
    const d = detector({ high_risk_attempts: { critical: 2 } });
    d.attempt(highRisk(NOON, '+25261234567'));
    expect(d.attempt(highRisk(NOON + MIN, '+25261234568'))).toHaveLength(1);
    d.forgetIncident('a');
    expect(d.attempt(highRisk(NOON + 2 * MIN, '+25261234569'))).toEqual([]);
  });
});
