/**
 * `npm run bench:detect`: the fraud monitor's detection engine over a generated week.
 *
 * Traffic: 1,000 NZ accounts for one week (Monday 00:00 to Sunday 24:00, Pacific/Auckland),
 * with daily and weekly rhythms (businesses call abroad on weekday office hours, households in
 * the evenings and at weekends), redials, occasional long calls, one-off misdials (00 typed for
 * 0, read as Somalia +252) and travel-like calls to countries an account has not called before.
 * Accounts start with the regions and number ranges they usually call already known (as the
 * guard's store would hold them after running for a while). Into this go 20 compromises of five shapes (fast burst,
 * slow drip under the per-minute limit, off-hours, sequential number-range pumping, long calls
 * to an allowed high-risk destination), each on an otherwise normal account.
 *
 * Replayed in time order through FraudDetector exactly as the guard feeds it (international
 * attempts as the core decided them, answered / ended, a tick every 5 s); once an account is
 * blocked its international attempts are refused (toll_block) and no longer reach the detector.
 *
 * Prints for each rule set: compromises caught, fraudulent calls and seconds until each block,
 * and false blocks of normal accounts; then detection throughput against a naive detector that
 * rescans each account's whole history per call, measured in the same run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { DialPlan } from '../src/core/dial-plan';
import { FraudDetector } from '../src/monitor/fraud-detector';
import { compileMonitor, type CompiledMonitor } from '../src/monitor/thresholds';
import type { AttemptEvent, Finding } from '../src/monitor/types';
import { compileRules } from '../src/rules/compile';
import { loadRuleSet } from '../src/rules/load';
import type { MonitorFile, MonitorSettings } from '../src/rules/monitor-schema';
import { rng } from './prng';
import { ROOT } from './root';

const ACCOUNTS = 1000;
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** Monday 2026-11-23 00:00 in Auckland (NZDT, UTC+13). */
const WEEK_START = Date.UTC(2026, 10, 22, 11, 0);
const TICK = 5 * SEC;

/** BENCH_SEED=n generates another week (the thresholds must not be tuned to one draw). */
const SEED = Number(process.env.BENCH_SEED ?? 4);
const rand = rng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const digits = (n: number): string => Array.from({ length: n }, () => String(int(0, 9))).join('');
function poisson(mean: number): number {
  let l = Math.exp(-mean), k = 0, p = 1;
  do {
    k++;
    p *= rand();
  } while (p > l);
  return k - 1;
}
/** Local NZ time of day (hours, fractional) on day d of the week -> wall ms. */
const at = (day: number, hour: number): number => WEEK_START + day * DAY + hour * HOUR;

// ---------------------------------------------------------------------------------------------
// Destinations

const rulesDir = path.join(ROOT, 'rules');
const rules = compileRules(loadRuleSet(rulesDir));
const isHighRisk = (e164: string): boolean => rules.highRisk.lookup(e164) !== undefined;

const USUAL_REGIONS: Array<[string, () => string]> = [
  ['+61', () => '+612' + digits(8)],
  ['+44', () => '+4420' + digits(8)],
  ['+1', () => '+1212' + digits(7)],
  ['+86', () => '+8610' + digits(8)],
  ['+91', () => '+9111' + digits(8)],
  ['+63', () => '+632' + digits(8)],
  ['+49', () => '+4930' + digits(8)],
  ['+33', () => '+331' + digits(8)],
  ['+679', () => '+6793' + digits(6)],
  ['+685', () => '+68520' + digits(3)],
];
const TRAVEL: Array<() => string> = [() => '+302' + digits(9), () => '+3906' + digits(8), () => '+3491' + digits(7), () => '+662' + digits(7), () => '+813' + digits(8)];

// ---------------------------------------------------------------------------------------------
// Events

type Ev =
  | { t: number; k: 'attempt'; e: AttemptEvent; fraud: number; up: number }
  | { t: number; k: 'answered'; callId: string; account: string }
  | { t: number; k: 'ended'; callId: string; account: string };

const events: Ev[] = [];
let callNo = 0;

/** One international attempt; admitted calls also get their answered / ended events. */
function attempt(account: string, t: number, e164: string, upMs: number, fraud = -1, allowHighRisk = false, misdial?: string): void {
  const callId = `c${++callNo}`;
  const hr = isHighRisk(e164);
  const admitted = !hr || allowHighRisk;
  const e: AttemptEvent = { callId, account, at: Math.round(t), e164, admitted, rule: admitted ? 'allow' : 'high_risk', highRisk: hr, misdial: admitted ? undefined : misdial };
  events.push({ t: e.at, k: 'attempt', e, fraud, up: upMs });
  if (!admitted) return;
  if (upMs > 0) events.push({ t: e.at + 4 * SEC, k: 'answered', callId, account });
  events.push({ t: e.at + 4 * SEC + Math.max(upMs, 0), k: 'ended', callId, account });
}

const duration = (): number => (rand() < 0.01 ? int(60, 150) * MIN : Math.round(Math.exp(Math.log(3 * MIN) + 0.9 * (rand() * 2 - 1) * 1.5)));

interface Profile {
  id: string;
  business: boolean;
  perDay: number;
  contacts: string[];
  regions: string[];
}

const profiles: Profile[] = [];
const seeds: Array<{ account: string; region: string; lastSeen: number }> = [];
for (let i = 0; i < ACCOUNTS; i++) {
  const business = rand() < 0.7;
  const nRegions = int(1, 3);
  const regions = new Set<number>();
  while (regions.size < nRegions) regions.add(int(0, USUAL_REGIONS.length - 1));
  const contacts: string[] = [];
  const regionNames: string[] = [];
  for (const r of regions) {
    regionNames.push(USUAL_REGIONS[r][0]);
    for (let c = int(1, 4); c > 0; c--) contacts.push(USUAL_REGIONS[r][1]());
  }
  const perDay = business ? Math.min(40, -Math.log(1 - rand()) * 4) : Math.min(6, -Math.log(1 - rand()) * 0.6);
  const id = `acct${i}`;
  profiles.push({ id, business, perDay, contacts, regions: regionNames });
  for (const region of regionNames) seeds.push({ account: id, region, lastSeen: WEEK_START - int(1, perDay < 0.2 ? 40 : 10) * DAY });
  // Its usual contacts' number ranges, first called weeks ago (ignore_last_digits 2, as shipped).
  for (const c of contacts) seeds.push({ account: id, region: '#' + c.slice(0, -2), lastSeen: WEEK_START - int(20, 200) * DAY });
}

// Normal traffic.
for (const p of profiles) {
  for (let day = 0; day < 7; day++) {
    const weekend = day >= 5;
    const mean = p.perDay * (p.business ? (weekend ? 0.08 : 1.2) : weekend ? 1.6 : 0.75);
    for (let n = poisson(mean); n > 0; n--) {
      const hour = p.business ? (weekend ? 10 + rand() * 4 : 8 + (rand() + rand()) * 5) : weekend ? 10 + rand() * 11 : 17 + rand() * 4.8;
      const t = at(day, hour);
      const to = pick(p.contacts);
      attempt(p.id, t, to, duration());
      if (rand() < 0.1) for (let r = int(1, 2), tt = t; r > 0; r--) attempt(p.id, (tt += int(40, 180) * SEC), to, rand() < 0.5 ? 0 : duration());
    }
  }
}
// One-off misdials: 00 typed for 0 before an NZ mobile number, which reads as Somalia.
const misdialers = new Set<string>();
while (misdialers.size < 20) misdialers.add(pick(profiles).id);
for (const id of misdialers) {
  const dialled = '00252' + digits(6);
  attempt(id, at(int(0, 6), 9 + rand() * 10), '+' + dialled.slice(2), 0, -1, false, DialPlan.for('NZ').misdialOf(dialled));
}
// Travel: a day of calls to one or two countries the account never called.
const travellers = new Set<string>();
while (travellers.size < 30) travellers.add(pick(profiles).id);
for (const id of travellers) {
  const day = int(0, 6);
  for (let c = int(1, 2); c > 0; c--) {
    const to = pick(TRAVEL)();
    for (let n = int(1, 3); n > 0; n--) attempt(id, at(day, 9 + rand() * 11), to, duration());
  }
}

// ---------------------------------------------------------------------------------------------
// Compromises

interface Compromise {
  shape: string;
  account: string;
  start: number;
}
const compromises: Compromise[] = [];
const victims = new Set<string>();
while (victims.size < 20) {
  const p = pick(profiles);
  if (!misdialers.has(p.id) && !travellers.has(p.id)) victims.add(p.id);
}
const victimList = [...victims];

const premiumUk = () => '+44909' + digits(7);
const highRiskMix = [() => '+252' + digits(8), () => '+88216' + digits(6), () => '+1876' + digits(7), () => '+881' + digits(8), () => '+2247' + digits(7)];

victimList.forEach((account, i) => {
  const shape = ['fast burst', 'slow drip', 'off-hours', 'sequential pumping', 'long calls'][Math.floor(i / 4)];
  const id = compromises.length;
  const day = int(0, 6);
  let start: number;
  switch (shape) {
    case 'fast burst': {
      start = at(day, rand() * 24);
      for (let n = 0; n < 60; n++) attempt(account, start + n * int(2, 5) * SEC, n % 2 === 0 ? pick(highRiskMix)() : premiumUk(), 20 * MIN, id);
      break;
    }
    case 'slow drip': {
      // Under any per-minute limit: one call every 90-150 s to one premium number, office hours.
      start = at(Math.min(day, 4), 9 + rand() * 6);
      const to = premiumUk();
      for (let n = 0, t = start; n < 40; n++, t += int(90, 150) * SEC) attempt(account, t, to, 60 * SEC, id);
      break;
    }
    case 'off-hours': {
      // 02:00-04:00 local, to premium numbers in a country the account already calls.
      start = at(day, 2 + rand() * 2);
      for (let n = 0, t = start; n < 30; n++, t += int(30, 60) * SEC) attempt(account, t, '+44871' + digits(7), 3 * MIN, id);
      break;
    }
    case 'sequential pumping': {
      // Number-range pumping: +44 70 personal numbers, consecutive, every 10-20 s.
      start = at(day, rand() * 24);
      const base = Number('4470' + digits(6)) * 100;
      for (let n = 0, t = start; n < 40; n++, t += int(10, 20) * SEC) attempt(account, t, '+' + String(base + n), 90 * SEC, id);
      break;
    }
    default: {
      // Two calls to an allowed high-risk destination (Cook Islands), each left up for 5 hours.
      start = at(day, rand() * 20);
      attempt(account, start, '+68221' + digits(3), 5 * HOUR, id, true);
      attempt(account, start + 3 * MIN, '+68221' + digits(3), 5 * HOUR, id, true);
    }
  }
  compromises.push({ shape, account, start: start! });
});

events.sort((a, b) => a.t - b.t);
const attempts = events.filter((e) => e.k === 'attempt').length;

// ---------------------------------------------------------------------------------------------
// Rule sets

const shippedFile = parse(fs.readFileSync(path.join(rulesDir, 'monitor.yaml'), 'utf8')) as MonitorFile;
const accountCountry = new Map(profiles.map((p) => [p.id, 'NZ']));
const noProblems = (p: ReadonlyArray<string | number>, m: string): never => {
  throw new Error(`${p.join('.')}: ${m}`);
};
const OFF = { warning: false as const, critical: false as const };
const fixedOnly: MonitorSettings = {
  intl_per_minute: shippedFile.defaults?.intl_per_minute,
  intl_per_hour: shippedFile.defaults?.intl_per_hour,
  concurrent_intl: shippedFile.defaults?.concurrent_intl,
  rate_spike: OFF, same_destination: OFF, distinct_destinations: OFF, high_risk_attempts: OFF, new_country: OFF,
  dormant: { level: 'off' }, off_hours: OFF, long_call: { international_minutes: OFF, high_risk_allowed_minutes: OFF },
};
const ruleSets: Array<[string, CompiledMonitor]> = [
  ['shipped rules/monitor.yaml', compileMonitor({ defaults: shippedFile.defaults }, accountCountry, 'NZ', noProblems)],
  ['fixed rate limits only (per minute, per hour, concurrent)', compileMonitor({ defaults: fixedOnly }, accountCountry, 'NZ', noProblems)],
];

interface Outcome {
  blocks: Map<string, { at: number; finding: Finding }>;
  findings: number;
  warnings: number;
  attemptMs: number;
  totalMs: number;
}

function replay(monitor: CompiledMonitor): Outcome {
  const d = new FraudDetector({ thresholds: (id) => monitor.forAccount(id) });
  for (const s of seeds) d.seedRegion(s.account, s.region, s.lastSeen);
  const blocks = new Map<string, { at: number; finding: Finding }>();
  let findings = 0;
  let warnings = 0;
  let attemptNs = 0n;
  const act = (fs: Finding[], now: number) => {
    for (const f of fs) {
      findings++;
      if (f.level === 'warning') warnings++;
      if (f.level === 'critical' && !blocks.has(f.account)) {
        blocks.set(f.account, { at: now, finding: f });
        // The guard tears down the account's live international calls.
        const live = d.liveCallsOf(f.account);
        if (live) for (const id of [...live.keys()]) d.ended(id);
      }
    }
  };
  const t0 = process.hrtime.bigint();
  let nextTick = WEEK_START;
  for (const ev of events) {
    while (nextTick <= ev.t) {
      act(d.tick(nextTick), nextTick);
      nextTick += TICK;
    }
    if (ev.k === 'attempt') {
      if (blocks.has(ev.e.account)) continue; // refused as toll_block: not monitored
      const s = process.hrtime.bigint();
      const f = d.attempt(ev.e);
      attemptNs += process.hrtime.bigint() - s;
      act(f, ev.t);
    } else if (ev.k === 'answered') d.answered(ev.callId, ev.t);
    else d.ended(ev.callId);
  }
  const totalNs = process.hrtime.bigint() - t0;
  return { blocks, findings, warnings, attemptMs: Number(attemptNs) / 1e6, totalMs: Number(totalNs) / 1e6 };
}

function report(name: string, o: Outcome): void {
  console.log(`\n== ${name} ==`);
  console.log('shape               account   calls until block  seconds until block  rule');
  let met = 0;
  let caught = 0;
  for (const c of compromises) {
    const b = o.blocks.get(c.account);
    const fraud = events.filter((e): e is Extract<Ev, { k: 'attempt' }> => e.k === 'attempt' && e.e.account === c.account && e.fraud >= 0);
    if (!b || b.at < c.start) {
      console.log(`${c.shape.padEnd(20)}${c.account.padEnd(10)}${b ? 'blocked BEFORE the compromise (false block)' : 'NOT CAUGHT'}`);
      continue;
    }
    caught++;
    const calls = fraud.filter((e) => e.t <= b.at).length;
    const secs = (b.at - c.start) / SEC;
    const ok = calls <= 10 || secs <= 60;
    if (ok) met++;
    console.log(`${c.shape.padEnd(20)}${c.account.padEnd(10)}${String(calls).padStart(17)}  ${secs.toFixed(0).padStart(19)}  ${b.finding.rule}${ok ? '' : '  (outside the target)'}`);
  }
  const victimsSet = new Set(compromises.map((c) => c.account));
  const falseBlocks = [...o.blocks.entries()].filter(([a, b]) => !victimsSet.has(a) || b.at < compromises.find((c) => c.account === a)!.start);
  console.log(`caught ${caught}/20, within 10 calls or 60 s: ${met}/20; false blocks of normal accounts: ${falseBlocks.length}${falseBlocks.length ? ' (' + falseBlocks.map(([a, b]) => `${a} ${b.finding.rule}: ${b.finding.detail}`).join('; ') + ')' : ''}`);
  console.log(`findings: ${o.findings} (warnings ${o.warnings})`);
}

// ---------------------------------------------------------------------------------------------
// Throughput, against a baseline: the straightforward way, every count recomputed from the
// account's whole history on every call (what a query over a calls table per INVITE amounts to).
// Both replay the same attempts in a tight loop (no ticks), timed as a whole.

type Attempt = AttemptEvent;

function detectorLoop(monitor: CompiledMonitor, stream: Attempt[]): number {
  const d = new FraudDetector({ thresholds: (id) => monitor.forAccount(id) });
  let n = 0;
  const t0 = process.hrtime.bigint();
  for (const e of stream) n += d.attempt(e).length;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (n < 0) console.log(n);
  return ms;
}

function naiveLoop(monitor: CompiledMonitor, stream: Attempt[]): number {
  const history = new Map<string, Array<{ at: number; e164: string; highRisk: boolean }>>();
  let flagged = 0;
  const t0 = process.hrtime.bigint();
  for (const e of stream) {
    let h = history.get(e.account);
    if (!h) history.set(e.account, (h = []));
    h.push({ at: e.at, e164: e.e164, highRisk: e.highRisk && !e.admitted });
    const t = monitor.forAccount(e.account);
    const perMinute = h.filter((x) => x.at > e.at - MIN).length;
    const perHour = h.filter((x) => x.at > e.at - HOUR).length;
    const distinct = new Set(h.filter((x) => x.at > e.at - t.distinctDestinations.windowMs).map((x) => x.e164)).size;
    const risky = h.filter((x) => x.highRisk && x.at > e.at - t.highRiskAttempts.windowMs).length;
    if (perMinute >= t.intlPerMinute.critical || perHour >= t.intlPerHour.critical || distinct >= t.distinctDestinations.critical || risky >= t.highRiskAttempts.critical) flagged++;
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (flagged < 0) console.log(flagged);
  return ms;
}

console.log(`TollGuard detection benchmark (seed ${SEED}): ${ACCOUNTS} accounts, one week, ${attempts} international attempts (${events.length} call events), 20 compromises, ${misdialers.size} one-off misdials, ${travellers.size} travellers`);
const outcomes = ruleSets.map(([name, m]) => [name, replay(m)] as const);
for (const [name, o] of outcomes) report(name, o);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const shipped = ruleSets[0][1];
const weekAttempts = events.filter((e): e is Extract<Ev, { k: 'attempt' }> => e.k === 'attempt').map((e) => e.e);
// Busy trunks: 100 accounts with 2,000 international attempts each over the week (call centres).
const busy: Attempt[] = [];
for (let i = 0; i < 100; i++) {
  const contacts = Array.from({ length: 300 }, () => pick(USUAL_REGIONS)[1]());
  for (let n = 0; n < 2000; n++) {
    const to = pick(contacts);
    busy.push({ callId: `b${i}-${n}`, account: `acct${i}`, at: WEEK_START + Math.floor(rand() * 7 * DAY), e164: to, admitted: true, rule: 'allow', highRisk: false });
  }
}
busy.sort((x, y) => x.at - y.at);

const replays = Array.from({ length: 5 }, () => replay(shipped));
console.log('\n== Detection throughput (one core, median of 5 runs, shipped rules) ==');
console.log(`whole week replay incl. answered/ended and a tick every 5 s of simulated time: ${median(replays.map((r) => r.totalMs)).toFixed(0)} ms`);
console.log('stream                                   FraudDetector      naive baseline     ratio');
for (const [name, stream] of [['the week above (' + weekAttempts.length + ' attempts)', weekAttempts], ['busy trunks (100 x 2,000 attempts)', busy]] as const) {
  for (let w = 0; w < 2; w++) {
    detectorLoop(shipped, stream);
    naiveLoop(shipped, stream);
  }
  const dm = median(Array.from({ length: 5 }, () => detectorLoop(shipped, stream)));
  const nm = median(Array.from({ length: 5 }, () => naiveLoop(shipped, stream)));
  const rate = (ms: number) => `${Math.round(stream.length / (ms / 1000)).toLocaleString('en-US')}/s`.padEnd(19);
  console.log(`${name.padEnd(41)}${rate(dm)}${rate(nm)}${(nm / dm).toFixed(2)}x`);
}
console.log("naive baseline: 4 of the 11 rules (per minute, per hour, distinct destinations, high-risk), recounted from each account's full history per call");
