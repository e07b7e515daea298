import { logSink } from '../log-sink';
import * as path from 'path';
import * as fs from 'fs';
import { createLogger } from '../../../src/log';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import { MemoryBanStore } from '../../../src/store/ban-store';
import { SourceDefense } from '../../../src/defense/source-defense';
import { FloodDetector } from '../../../src/defense/flood-detector';
import { makeRulesDir, SHIPPED } from '../rules/helpers';

function rulesWith(defenseYaml: string, extra: Record<string, string> = {}, guardReplace?: [string, string]) {
  const dir = makeRulesDir();
  fs.copyFileSync(path.join(SHIPPED, 'scanner-fingerprints.yaml'), path.join(dir, 'scanner-fingerprints.yaml'));
  fs.writeFileSync(path.join(dir, 'defense.yaml'), defenseYaml);
  for (const [n, t] of Object.entries(extra)) fs.writeFileSync(path.join(dir, n), t);
  if (guardReplace) {
    const g = fs.readFileSync(path.join(dir, 'guard.yaml'), 'utf8').replace(guardReplace[0], guardReplace[1]);
    fs.writeFileSync(path.join(dir, 'guard.yaml'), g);
  }
  return compileRules(loadRuleSet(dir)).defense;
}

function setup(defenseYaml: string, extra: Record<string, string> = {}, guardReplace?: [string, string]) {
  const { lines, logger } = logSink('info');
  let now = 1_000_000;
  const store = new MemoryBanStore();
  const d = new SourceDefense(rulesWith(defenseYaml, extra, guardReplace), store, logger, () => now);
  return { d, store, lines, advance: (ms: number) => (now += ms), now: () => now };
}

const noHeaders = () => undefined;
const ua = (value: string) => (name: string) => (name.toLowerCase() === 'user-agent' ? value : undefined);

const FLOOD = 'flood: { window_seconds: 2, limits: { default: 10, REGISTER: 5 } }\nbans: { durations_seconds: [300, 3600, 86400] }\n';

describe('scanner fingerprints', () => {
  it("drops svmap's OPTIONS (User-Agent: friendly-scanner) and bans only that address", () => {
    const { d, store } = setup(FLOOD);
    expect(d.screen('OPTIONS', '192.0.2.66', ua('friendly-scanner'))).toBe('drop');
    expect(d.dropSource('192.0.2.66')).toBe(true);
    expect(d.dropSource('192.0.2.67')).toBe(false);
    const [ban] = store.active(0);
    expect(ban).toMatchObject({ address: '192.0.2.66', reason: 'scanner', evidence: { fingerprint: 'sipvicious', userAgent: 'friendly-scanner' } });
    expect(ban.expiresAt - ban.appliedAt).toBe(3600_000);
  });

  it('matches SIPVicious\' From display name even with a changed User-Agent', () => {
    const { d } = setup(FLOOD);
    const headers = (n: string) => (n.toLowerCase() === 'from' ? '"sipvicious"<sip:100@1.1.1.1>;tag=1' : n.toLowerCase() === 'user-agent' ? 'Zoiper' : undefined);
    expect(d.screen('REGISTER', '192.0.2.70', headers)).toBe('drop');
  });

  it('lets an ordinary phone through', () => {
    const { d } = setup(FLOOD);
    expect(d.screen('REGISTER', '192.0.2.71', ua('Yealink SIP-T46S 66.86.0.15'))).toBeNull();
  });
});

describe('floods', () => {
  it('bans a source over its per-method limit within the sliding window, escalating 5 min, 1 h, 24 h', () => {
    const { d, store, advance } = setup(FLOOD);
    const durations: number[] = [];
    for (let round = 0; round < 4; round++) {
      let verdict: 'drop' | null = null;
      let sent = 0;
      while (verdict === null && sent < 100) {
        verdict = d.screen('REGISTER', '192.0.2.10', noHeaders);
        sent++;
      }
      expect(sent).toBe(6); // the 6th REGISTER within 2 s crosses the limit of 5
      const b = store.active(0)[0];
      durations.push((b.expiresAt - b.appliedAt) / 1000);
      store.lift('192.0.2.10', 'test', b.appliedAt);
      advance(b.expiresAt - b.appliedAt + 1);
      expect(d.dropSource('192.0.2.10')).toBe(false); // expired
      advance(5000);
    }
    expect(durations).toEqual([300, 3600, 86400, 86400]);
  });

  it('counts methods apart and forgets old requests (sliding window)', () => {
    const f = new FloodDetector({ windowSeconds: 2, limits: { default: 10, REGISTER: 5 }, maxSources: 10 });
    let t = 0;
    for (let i = 0; i < 5; i++) expect(f.count('a', 'REGISTER', (t += 100))).toBeUndefined();
    for (let i = 0; i < 10; i++) expect(f.count('a', 'INVITE', (t += 10))).toBeUndefined();
    t += 4000; // both buckets stale
    for (let i = 0; i < 5; i++) expect(f.count('a', 'REGISTER', (t += 100))).toBeUndefined();
    expect(f.count('a', 'REGISTER', (t += 100))).toMatchObject({ method: 'REGISTER', limit: 5 });
  });

  it('spreads 4 requests/s evenly: never over a limit of 10 per 2 s', () => {
    const f = new FloodDetector({ windowSeconds: 2, limits: { default: 10 }, maxSources: 10 });
    for (let t = 0; t < 60_000; t += 250) expect(f.count('a', 'REGISTER', t)).toBeUndefined();
  });

  it('keeps memory bounded: only max_sources sources are tracked', () => {
    const f = new FloodDetector({ windowSeconds: 2, limits: { default: 10 }, maxSources: 1000 });
    for (let i = 0; i < 50_000; i++) f.count(`10.0.${i >> 8}.${i & 255}`, 'INVITE', i);
    expect(f.trackedSources).toBe(1000);
  });
});

describe('density counted at arrival', () => {
  it('a steady 4 requests/s read all at once after a 4.5 s stall is no flood when arrival times are given', () => {
    const arrivals = Array.from({ length: 18 }, (_, i) => 1_000_000 - 4500 + i * 250);
    const stalled = setup(FLOOD);
    // Processed in one go at the same instant, each with its arrival time: not over 10 per 2 s.
    for (const at of arrivals) expect(stalled.d.screen('OPTIONS', '192.0.2.30', noHeaders, at)).toBeNull();
    expect(stalled.store.active(stalled.now())).toEqual([]);
    // Without arrival times the same backlog looks like 18 requests in no time, and is banned.
    const blind = setup(FLOOD);
    const verdicts = arrivals.map(() => blind.d.screen('OPTIONS', '192.0.2.30', noHeaders));
    expect(verdicts.indexOf('drop')).toBe(10);
  });

  it('an arrival a little older than the current bucket counts in it, without inflating the count', () => {
    const f = new FloodDetector({ windowSeconds: 2, limits: { default: 3 }, maxSources: 10 });
    expect(f.count('a', 'OPTIONS', 10_000)).toBeUndefined();
    expect(f.count('a', 'OPTIONS', 9_990)).toBeUndefined();
    expect(f.count('a', 'OPTIONS', 9_995)).toBeUndefined();
    expect(f.count('a', 'OPTIONS', 10_001)).toMatchObject({ count: 4, limit: 3 });
  });
});

describe('trusted sources and never_ban', () => {
  it('never bans or counts a trusted allowed_sources entry or a never_ban address', () => {
    const { d, store, lines } = setup(FLOOD + 'never_ban: [192.0.2.200]\n', {}, ['27.111.12.0/24', '{ cidr: 27.111.12.0/24, trusted: true }']);
    for (let i = 0; i < 1000; i++) {
      expect(d.screen('REGISTER', '27.111.12.5', noHeaders)).toBeNull();
      expect(d.screen('INVITE', '192.0.2.200', noHeaders)).toBeNull();
    }
    for (let i = 0; i < 50; i++) d.answered({ method: 'REGISTER', status: 401, address: '27.111.12.5', authUser: 'bob' });
    expect(store.active(0)).toEqual([]);
    expect(d.ban('27.111.12.5', 'flood', 'x', {})).toBeUndefined();
    expect(lines.some((l) => l.message === 'source banned')).toBe(false);
  });
});

describe('an exemption added after the fact', () => {
  it('adding a banned address to never_ban lifts its ban (in the store too) on the rule swap, and its counters restart', () => {
    const { d, store, lines, now } = setup(FLOOD);
    let sent = 0;
    while (d.screen('REGISTER', '192.0.2.201', noHeaders) === null && sent < 100) sent++;
    expect(d.dropSource('192.0.2.201')).toBe(true);
    d.swapRules(rulesWith(FLOOD + 'never_ban: [192.0.2.200/31]\n'));
    expect(d.dropSource('192.0.2.201')).toBe(false);
    expect(store.active(now())).toEqual([]);
    expect(lines.some((l) => l.message === 'ban lifted' && l.address === '192.0.2.201')).toBe(true);
    for (let i = 0; i < 100; i++) expect(d.screen('REGISTER', '192.0.2.201', noHeaders)).toBeNull();
  });

  it('a guard that starts with never_ban covering a stored ban lets the source in', () => {
    const { logger } = logSink('info');
    const store = new MemoryBanStore();
    const first = new SourceDefense(rulesWith(FLOOD), store, logger, () => 1_000_000);
    first.ban('192.0.2.202', 'flood', 'x', {});
    expect(store.active(1_000_000)).toHaveLength(1);
    const restarted = new SourceDefense(rulesWith(FLOOD + 'never_ban: [192.0.2.202]\n'), store, logger, () => 1_000_001);
    expect(restarted.dropSource('192.0.2.202')).toBe(false);
    expect(store.active(1_000_001)).toEqual([]);
  });

  it('blocklist.txt and the APIBAN feed never drop a never_ban or trusted source: exempt wins', () => {
    const { d } = setup(FLOOD + 'never_ban: [198.51.100.7]\n', { 'blocklist.txt': '198.51.100.0/24\n' });
    expect(d.dropSource('198.51.100.7')).toBe(false);
    expect(d.dropSource('198.51.100.8')).toBe(true);
    d.setFeed(new Set(['198.51.100.7', '203.0.113.9']));
    expect(d.dropSource('198.51.100.7')).toBe(false);
    expect(d.dropSource('203.0.113.9')).toBe(true);
  });
});

describe('password cracking and enumeration (the core\'s answers)', () => {
  const AUTH = FLOOD + 'auth_failures:\n  per_source: { max: 5, window_seconds: 60 }\n  not_found: { max: 4, window_seconds: 60 }\n  per_user: { max: 6, window_seconds: 600, sources: 3 }\n';

  it('bans a source after max refused credentials (401 again, 403), not for plain challenges', () => {
    const { d, store } = setup(AUTH);
    for (let i = 0; i < 20; i++) d.answered({ method: 'REGISTER', status: 401, address: '192.0.2.5' }); // challenges: no credentials
    expect(store.active(0)).toEqual([]);
    for (let i = 0; i < 4; i++) d.answered({ method: 'REGISTER', status: i % 2 ? 403 : 401, address: '192.0.2.5', authUser: '1001', userAgent: 'x' });
    expect(d.isBanned('192.0.2.5')).toBe(false);
    d.answered({ method: 'REGISTER', status: 401, address: '192.0.2.5', authUser: '1001' });
    expect(d.isBanned('192.0.2.5')).toBe(true);
    expect(store.active(0)[0]).toMatchObject({ reason: 'auth_failures', evidence: { count: 5, users: ['1001'], userAgent: 'x' } });
  });

  it('bans a source after max 404s (extension enumeration)', () => {
    const { d } = setup(AUTH);
    for (let i = 0; i < 3; i++) d.answered({ method: 'REGISTER', status: 404, address: '192.0.2.6', toUser: String(100 + i) });
    expect(d.isBanned('192.0.2.6')).toBe(false);
    d.answered({ method: 'INVITE', status: 404, address: '192.0.2.6', toUser: '103' });
    expect(d.isBanned('192.0.2.6')).toBe(true);
  });

  it('raises credential stuffing for one username refused from many sources, then a compromise on a new-source login calling abroad', () => {
    const { d } = setup(AUTH);
    const stuffing: unknown[] = [];
    const compromised: unknown[] = [];
    d.on('credential_stuffing', (e) => stuffing.push(e));
    d.on('compromised', (e) => compromised.push(e));
    d.answered({ method: 'REGISTER', status: 200, address: '192.0.2.1', authUser: 'alice' }); // her own phone
    for (let i = 0; i < 6; i++) d.answered({ method: 'REGISTER', status: 401, address: `198.51.100.${i % 3}`, authUser: 'alice' });
    expect(stuffing).toHaveLength(1);
    expect(stuffing[0]).toMatchObject({ user: 'alice', failures: 6, sources: ['198.51.100.0', '198.51.100.1', '198.51.100.2'] });

    d.answered({ method: 'REGISTER', status: 200, address: '192.0.2.1', authUser: 'alice' }); // known source: fine
    d.callDecided({ address: '192.0.2.1', authUser: 'alice', account: 'alice', allowed: true, international: true, dialled: '+447700900123' });
    expect(compromised).toHaveLength(0);

    d.answered({ method: 'REGISTER', status: 200, address: '203.0.113.9', authUser: 'alice' }); // new source
    d.callDecided({ address: '203.0.113.9', authUser: 'alice', account: 'alice', allowed: true, international: false, dialled: '095550111' });
    expect(compromised).toHaveLength(0); // domestic: not yet
    d.callDecided({ address: '203.0.113.9', authUser: 'alice', account: 'alice', allowed: true, international: true, dialled: '+252612345678' });
    expect(compromised).toEqual([expect.objectContaining({ user: 'alice', account: 'alice', source: '203.0.113.9', dialled: '+252612345678' })]);
  });
});

describe('blocklist and feed', () => {
  it('drops blocklisted CIDRs and feed addresses before parsing, without banning them', () => {
    const { d, store } = setup(FLOOD, { 'blocklist.txt': '203.0.113.0/24\n' });
    expect(d.dropSource('203.0.113.77')).toBe(true);
    expect(d.dropSource('203.0.114.1')).toBe(false);
    d.setFeed(new Set(['198.51.100.9']));
    expect(d.dropSource('198.51.100.9')).toBe(true);
    expect(store.active(0)).toEqual([]);
    expect(d.dropped).toBe(2);
  });

  it('does nothing at all when defense.yaml is absent', () => {
    const dir = makeRulesDir();
    fs.writeFileSync(path.join(dir, 'blocklist.txt'), '203.0.113.0/24\n');
    const d = new SourceDefense(compileRules(loadRuleSet(dir)).defense, new MemoryBanStore(), createLogger('error'));
    expect(d.dropSource('203.0.113.1')).toBe(false);
    expect(d.screen('OPTIONS', '203.0.113.1', ua('friendly-scanner'))).toBeNull();
  });
});

describe('bans survive in the store and sync back', () => {
  it('forgets expired bans of sources that never came back', () => {
    const { d, advance } = setup(FLOOD);
    d.ban('192.0.2.20', 'flood', 'x', {});
    expect(d.activeBans()).toHaveLength(1);
    advance(300_001);
    d.syncFromStore();
    expect((d as unknown as { bans: Map<string, unknown> }).bans.size).toBe(0);
  });

  it('loads bans in force at start, and a lift elsewhere clears the counters too', () => {
    const store = new MemoryBanStore();
    const rules = rulesWith(FLOOD);
    const now = Date.now();
    store.add({ address: '192.0.2.9', reason: 'flood', detail: 'x', evidence: {}, appliedAt: now, expiresAt: now + 60_000, offence: 1 });
    const d = new SourceDefense(rules, store, createLogger('error'));
    expect(d.dropSource('192.0.2.9')).toBe(true);
    store.lift('192.0.2.9', 'cli', now);
    (store as unknown as { changedElsewhere: () => boolean }).changedElsewhere = () => true;
    d.syncFromStore();
    expect(d.dropSource('192.0.2.9')).toBe(false);
  });
});
