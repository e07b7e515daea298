import { compileRules } from '../../../src/rules/compile';
import { RulesError, type AccountsFile, type GuardConfig, type HighRiskEntry, type RuleSet } from '../../../src/rules/config-types';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { loadRuleSet } from '../../../src/rules/load';

function ruleSet(over: { guard?: Partial<GuardConfig>; accounts?: AccountsFile; highRisk?: HighRiskEntry[] } = {}): RuleSet {
  return {
    dir: 'rules',
    guard: {
      sip: { listen: ['udp:127.0.0.1:5060'], upstream: '127.0.0.1:5070' },
      home_country: 'NZ',
      allowed_sources: ['10.0.0.0/8', '2001:db8::/32'],
      unknown_caller: 'reject',
      ...over.guard,
    },
    accounts: over.accounts ?? { accounts: {} },
    highRisk: over.highRisk ?? [],
    where: (f, p) => f + ':' + p.join('.'),
  };
}

function problemsOf(set: RuleSet): { at: string; message: string }[] {
  try {
    compileRules(set);
  } catch (e) {
    expect(e).toBeInstanceOf(RulesError);
    return (e as RulesError).problems;
  }
  throw new Error('compileRules did not throw');
}

describe('compileRules', () => {
  const accounts: AccountsFile = {
    defaults: { international: false, limits: { calls_per_second: 5, calls_per_minute: 60 }, country: 'AU' },
    accounts: {
      peer: { sources: ['27.111.12.0/24', '2001:db8:7::/48'], limits: { calls_per_second: 50 }, email: 'noc@peer.example' },
      alice: { users: ['alice', '6495550100'], allowed_sources: ['10.1.0.0/16'], international: true, country: 'nz' },
      bob: { users: ['bob'], allowed_sources: ['10.1.0.0/16'], allow_destinations: ['+252', '+882'] },
    },
  };
  const rules = compileRules(
    ruleSet({
      accounts,
      highRisk: [
        { prefix: '+252', name: 'Somalia' },
        { prefix: '+882', name: 'International Networks' },
      ],
    }),
  );

  it('summarises what it loaded', () => {
    expect(rules.summary).toEqual({ accounts: 3, prefixes: 2, cidrs: 2 + 2 + 1 + 1 });
    expect(rules.accountIds().sort()).toEqual(['alice', 'bob', 'peer']);
  });

  it('fills guard defaults and passes the rest through', () => {
    expect(rules.guard.sip).toEqual({ listen: ['udp:127.0.0.1:5060'], upstream: '127.0.0.1:5070', max_call_seconds: 14_400 });
    expect(rules.guard.log).toEqual({ level: 'info', decisions: 'all' });
    expect(rules.guard.unknown_caller).toBe('reject');
    expect(rules.guard.responses).toEqual({
      source: { status: 403, reason: 'Forbidden' },
      unknown_caller: { status: 403, reason: 'Forbidden' },
      international: { status: 403, reason: 'Forbidden' },
      high_risk: { status: 403, reason: 'Forbidden' },
      invalid_destination: { status: 484, reason: 'Address Incomplete' },
      rate_limit: { status: 503, reason: 'Service Unavailable', retry_after: 5 },
      toll_block: { status: 403, reason: 'International Calls Blocked' },
    });
    expect(rules.responses.rate_limit).toEqual({ status: 503, reason: 'Service Unavailable', retryAfter: 5 });
  });

  it('merges limits field by field over the defaults (missing = unlimited)', () => {
    expect(rules.account('peer')).toMatchObject({ callsPerSecond: 50, callsPerMinute: 60, concurrentCalls: Infinity });
    expect(rules.account('alice')).toMatchObject({ callsPerSecond: 5, callsPerMinute: 60, concurrentCalls: Infinity });
  });

  it('resolves international, country and email per account', () => {
    expect(rules.account('alice')!.international).toBe(true);
    expect(rules.account('bob')!.international).toBe(false);
    expect(rules.account('alice')!.dialPlan.country).toBe('NZ');
    expect(rules.account('bob')!.dialPlan.country).toBe('AU');
    expect(rules.account('peer')!.email).toBe('noc@peer.example');
    expect(rules.unknownAccount).toMatchObject({ id: '_unknown', international: false, allowedSources: null });
    expect(rules.unknownAccount.dialPlan.country).toBe('AU');
  });

  it('falls back to home_country when neither account nor defaults name a country', () => {
    const r = compileRules(ruleSet({ accounts: { accounts: { x: { users: ['x'] } } } }));
    expect(r.account('x')!.dialPlan.country).toBe('NZ');
    expect(r.account('x')!.international).toBe(true);
  });

  it('builds the lookup structures', () => {
    expect(rules.allowedSources.has('10.9.9.9')).toBe(true);
    expect(rules.allowedSources.has('192.0.2.1')).toBe(false);
    expect(rules.accountBySource.lookup('27.111.12.200')?.id).toBe('peer');
    expect(rules.accountBySource.lookup('2001:db8:7::1')?.id).toBe('peer');
    expect(rules.accountBySource.lookup('10.1.1.1')).toBeUndefined();
    expect(rules.accountByUser.get('6495550100')?.id).toBe('alice');
    expect(rules.accountByUser.get('bob')?.id).toBe('bob');
    expect(rules.account('alice')!.allowedSources!.has('10.1.200.1')).toBe(true);
    expect(rules.account('alice')!.allowedSources!.has('10.2.0.1')).toBe(false);
    expect(rules.account('peer')!.allowedSources).toBeNull();
    expect(rules.account('bob')!.allowDestinations!.matches('+882123')).toBe(true);
    expect(rules.account('alice')!.allowDestinations).toBeNull();
    expect(rules.highRisk.lookup('+252612345678')).toEqual({ prefix: '+252', name: 'Somalia', detail: 'high-risk destination +252 Somalia' });
  });

  it('shares identical allowed_sources sets between accounts', () => {
    expect(rules.account('alice')!.allowedSources).toBe(rules.account('bob')!.allowedSources);
  });

  it('applies guard.responses overrides, with standard phrases when no reason is given', () => {
    const r = compileRules(ruleSet({ guard: { responses: { high_risk: { status: 603 }, rate_limit: { status: 480 }, international: { status: 403, reason: 'No International' } } } }));
    expect(r.responses.high_risk).toEqual({ status: 603, reason: 'Decline' });
    expect(r.responses.rate_limit).toEqual({ status: 480, reason: 'Temporarily Unavailable', retryAfter: 5 });
    expect(r.responses.international).toEqual({ status: 403, reason: 'No International' });
    expect(r.responses.source).toEqual({ status: 403, reason: 'Forbidden' });
  });

  it('lists every problem at once, each with where it came from', () => {
    const problems = problemsOf(
      ruleSet({
        guard: { home_country: 'XX', allowed_sources: ['10.0.0.0/8', '10.0.0.0/33'] },
        accounts: {
          defaults: { country: 'ZZ' },
          accounts: {
            a: { users: ['shared'], sources: ['192.0.2.0/24'], country: 'QQ' },
            b: { users: ['own', 'shared'], sources: ['192.0.2.9/24', 'not-a-cidr'], allowed_sources: ['1.2.3.4/40'], allow_destinations: ['252'] },
            _unknown: {},
          },
        },
        highRisk: [
          { prefix: '+252', name: 'Somalia' },
          { prefix: '+8x2', name: 'Bad' },
          { prefix: '+252', name: 'Somalia again' },
        ],
      }),
    );
    const at = problems.map((p) => p.at);
    expect(at).toEqual(
      expect.arrayContaining([
        'guard:home_country',
        'guard:allowed_sources.1',
        'accounts:defaults.country',
        'accounts:accounts.a.country',
        'accounts:accounts.b.users.1',
        'accounts:accounts.b.sources.0',
        'accounts:accounts.b.sources.1',
        'accounts:accounts.b.allowed_sources.0',
        'accounts:accounts.b.allow_destinations.0',
        'accounts:accounts._unknown',
        'high-risk:1.prefix',
        'high-risk:2.prefix',
      ]),
    );
    expect(problems).toHaveLength(12);
    const message = (where: string): string => problems.find((p) => p.at === where)!.message;
    expect(message('guard:home_country')).toMatch(/unknown country "XX"/);
    expect(message('accounts:accounts.b.users.1')).toBe('user "shared" is already claimed by account "a"');
    expect(message('accounts:accounts.b.sources.0')).toBe('source 192.0.2.9/24 is already given to account "a" (accounts:accounts.a.sources.0)');
    expect(message('high-risk:2.prefix')).toBe('duplicate high-risk prefix +252 (first at high-risk:0.prefix)');
    expect(message('accounts:accounts.b.sources.1')).toMatch(/not a valid IP address or CIDR/);
  });

  it('puts every problem in the RulesError message', () => {
    try {
      compileRules(ruleSet({ guard: { home_country: 'XX', allowed_sources: ['bad'] } }));
      throw new Error('no throw');
    } catch (e) {
      expect(e).toBeInstanceOf(RulesError);
      expect((e as Error).message).toContain('guard:home_country: unknown country "XX"');
      expect((e as Error).message).toContain('guard:allowed_sources.0: "bad" is not a valid IP address or CIDR');
    }
  });

  it('lets one account repeat its own user or source', () => {
    const r = compileRules(ruleSet({ accounts: { accounts: { a: { users: ['u', 'u'], sources: ['192.0.2.0/24', '192.0.2.0/24'] } } } }));
    expect(r.accountByUser.get('u')?.id).toBe('a');
    expect(r.accountBySource.lookup('192.0.2.1')?.id).toBe('a');
  });
});

describe('compiled rules and memory', () => {
  it('do not keep the rule set, and so its parsed YAML documents, alive', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    let set: RuleSet | null = loadRuleSet(path.join(__dirname, '../../../rules'));
    const ref = new WeakRef(set);
    const compiled = compileRules(set);
    set = null;
    await new Promise((r) => setTimeout(r, 0));
    gc();
    gc();
    expect(ref.deref()).toBeUndefined();
    expect(compiled.accountIds().length).toBeGreaterThan(0);
  });
});
