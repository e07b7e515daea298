import { GuardCore } from '../../../src/core/guard-core';
import type { CallAttempt } from '../../../src/core/types';
import { compileRules } from '../../../src/rules/compile';
import type { AccountsFile, GuardConfig, HighRiskEntry, RuleSet } from '../../../src/rules/config-types';

const T0 = 1_700_000_000_000;

function ruleSet(over: { guard?: Partial<GuardConfig>; accounts?: AccountsFile; highRisk?: HighRiskEntry[] } = {}): RuleSet {
  return {
    dir: 'rules',
    guard: {
      sip: { listen: ['udp:127.0.0.1:5060'], upstream: '127.0.0.1:5070' },
      home_country: 'NZ',
      allowed_sources: ['10.0.0.0/8', '27.111.12.0/24', '2001:db8::/32'],
      unknown_caller: 'reject',
      ...over.guard,
    },
    accounts: over.accounts ?? {
      defaults: { international: true, limits: { calls_per_second: 100, calls_per_minute: 1000, concurrent_calls: 100 } },
      accounts: {
        peer: { sources: ['27.111.12.0/24'] },
        alice: { users: ['alice', '6495550100'], allowed_sources: ['10.1.0.0/16', '2001:db8:1::/48'] },
        bob: { users: ['bob'], international: false },
        carol: { users: ['carol'], allow_destinations: ['+252'] },
        dave: { users: ['dave'], country: 'US' },
        slow: { users: ['slow'], limits: { calls_per_second: 2, calls_per_minute: 3, concurrent_calls: 2 } },
      },
    },
    highRisk: over.highRisk ?? [
      { prefix: '+252', name: 'Somalia' },
      { prefix: '+25261', name: 'Somalia mobile' },
      { prefix: '+882', name: 'International Networks' },
      { prefix: '+64900', name: 'NZ premium rate' },
    ],
    where: (f, p) => f + ':' + p.join('.'),
  };
}

let seq = 0;
function attempt(a: Partial<CallAttempt>): CallAttempt {
  return { source: '10.1.2.3', dialled: '095550111', callId: `call-${++seq}`, now: T0, ...a };
}

describe('GuardCore.checkSource', () => {
  const core = new GuardCore(compileRules(ruleSet()));

  it('allows guard-wide sources, including mapped IPv4 and IPv6', () => {
    expect(core.checkSource('10.200.0.1')).toBeNull();
    expect(core.checkSource('::ffff:27.111.12.9')).toBeNull();
    expect(core.checkSource('2001:db8:5::1')).toBeNull();
  });

  it('rejects anything else with 403 and says why', () => {
    expect(core.checkSource('192.0.2.1')).toMatchObject({
      allow: false,
      rule: 'source',
      status: 403,
      reason: 'Forbidden',
      detail: 'source 192.0.2.1 is outside allowed_sources',
    });
    expect(core.checkSource('garbage')).toMatchObject({ rule: 'source', detail: 'source is not an IP address' });
  });
});

describe('GuardCore.decide rules', () => {
  let core: GuardCore;
  beforeEach(() => {
    core = new GuardCore(compileRules(ruleSet()));
  });

  it('1 source: outside the guard-wide allowed_sources', () => {
    const v = core.decide(attempt({ source: '192.0.2.1', authUser: 'alice' }));
    expect(v).toMatchObject({ allow: false, rule: 'source', status: 403, reason: 'Forbidden' });
    expect(v.account).toBeUndefined();
    expect(core.stats().liveCalls).toBe(0);
  });

  it('2 attribution: SIP peering source wins over users', () => {
    const v = core.decide(attempt({ source: '27.111.12.40', authUser: 'alice' }));
    expect(v).toMatchObject({ allow: true, rule: 'allow', status: 0, account: 'peer', normalised: '+6495550111', international: false });
  });

  it('2 attribution: digest user, then PAI, then From', () => {
    expect(core.decide(attempt({ authUser: 'bob', assertedUser: 'carol', fromUser: 'dave' })).account).toBe('bob');
    expect(core.decide(attempt({ authUser: 'nobody', assertedUser: 'carol', fromUser: 'dave' })).account).toBe('carol');
    expect(core.decide(attempt({ assertedUser: 'nobody', fromUser: 'dave' })).account).toBe('dave');
    expect(core.decide(attempt({ fromUser: '6495550100' })).account).toBe('alice');
  });

  it('2 unknown_caller reject: 403 when no account matches', () => {
    const v = core.decide(attempt({ fromUser: 'mallory' }));
    expect(v).toMatchObject({ allow: false, rule: 'unknown_caller', status: 403, reason: 'Forbidden' });
    expect(v.detail).toContain('10.1.2.3');
  });

  it('2 unknown_caller allow: the defaults, rate-limited per source IP', () => {
    const accounts: AccountsFile = { defaults: { limits: { calls_per_second: 1 } }, accounts: {} };
    const c = new GuardCore(compileRules(ruleSet({ guard: { unknown_caller: 'allow' }, accounts })));
    expect(c.decide(attempt({ source: '10.0.0.1' }))).toMatchObject({ allow: true, account: '_unknown' });
    expect(c.decide(attempt({ source: '10.0.0.1' }))).toMatchObject({ allow: false, rule: 'calls_per_second', account: '_unknown' });
    expect(c.decide(attempt({ source: '10.0.0.2' }))).toMatchObject({ allow: true, account: '_unknown' });
  });

  it("2 account_source: outside the account's own allowed_sources", () => {
    const v = core.decide(attempt({ source: '10.2.0.1', authUser: 'alice' }));
    expect(v).toMatchObject({ allow: false, rule: 'account_source', status: 403, reason: 'Forbidden', account: 'alice' });
    expect(v.detail).toBe('source 10.2.0.1 is outside the allowed_sources of account alice');
    expect(core.decide(attempt({ source: '2001:db8:1::9', authUser: 'alice' })).allow).toBe(true);
    expect(core.decide(attempt({ source: '2001:db8:2::9', authUser: 'alice' })).rule).toBe('account_source');
  });

  it('3 invalid_destination: 484 Address Incomplete', () => {
    const v = core.decide(attempt({ authUser: 'alice', dialled: '09x5550111' }));
    expect(v).toMatchObject({ allow: false, rule: 'invalid_destination', status: 484, reason: 'Address Incomplete', account: 'alice' });
    expect(v.detail).toBe('unreadable destination: letters mixed with digits');
  });

  it('4 international: barred for an account with international: false, domestic still fine', () => {
    const v = core.decide(attempt({ authUser: 'bob', dialled: '0061298765432' }));
    expect(v).toMatchObject({ allow: false, rule: 'international', status: 403, account: 'bob', normalised: '+61298765432', international: true });
    expect(v.detail).toContain('+61298765432');
    expect(core.decide(attempt({ authUser: 'bob', dialled: '021 123 4567' }))).toMatchObject({ allow: true, international: false });
  });

  it('toll_block: an account under an international toll block keeps its domestic calls', () => {
    const blocked = new GuardCore(compileRules(ruleSet()));
    blocked.setTollBlocked(new Set(['alice']));
    expect(blocked.isTollBlocked('alice')).toBe(true);
    expect(blocked.decide(attempt({ authUser: 'alice', dialled: '0015551234567' }))).toMatchObject({
      allow: false,
      rule: 'toll_block',
      status: 403,
      reason: 'International Calls Blocked',
      account: 'alice',
      normalised: '+15551234567',
      international: true,
    });
    expect(blocked.decide(attempt({ authUser: 'alice', dialled: '095550111' }))).toMatchObject({ allow: true, international: false });
    expect(blocked.decide(attempt({ authUser: 'carol', dialled: '0015551234567' }))).toMatchObject({ allow: true });
    blocked.setTollBlocked(new Set());
    expect(blocked.decide(attempt({ authUser: 'alice', dialled: '0015551234567' }))).toMatchObject({ allow: true });
  });

  it('5 high_risk: longest prefix names the destination', () => {
    expect(core.decide(attempt({ authUser: 'alice', dialled: '00252612345678' }))).toMatchObject({
      allow: false,
      rule: 'high_risk',
      status: 403,
      detail: 'high-risk destination +25261 Somalia mobile',
      normalised: '+252612345678',
      international: true,
    });
    expect(core.decide(attempt({ authUser: 'alice', dialled: '+252 71 234 5678' })).detail).toBe('high-risk destination +252 Somalia');
  });

  it('5 high_risk applies to domestic premium numbers too', () => {
    expect(core.decide(attempt({ authUser: 'alice', dialled: '0900 12345' }))).toMatchObject({ rule: 'high_risk', international: false });
  });

  it("5 high_risk: the account's allow_destinations lets it through", () => {
    expect(core.decide(attempt({ authUser: 'carol', dialled: '00252612345678' }))).toMatchObject({ allow: true, normalised: '+252612345678' });
    expect(core.decide(attempt({ authUser: 'carol', dialled: '+882 1234 5678' })).rule).toBe('high_risk');
  });

  it("reads numbers with the account's country", () => {
    expect(core.decide(attempt({ authUser: 'dave', dialled: '2125551234' }))).toMatchObject({ allow: true, normalised: '+12125551234', international: false });
    expect(core.decide(attempt({ authUser: 'dave', dialled: '011252612345678' })).rule).toBe('high_risk');
  });

  it('service codes and on-net names are allowed without a number', () => {
    expect(core.decide(attempt({ authUser: 'bob', dialled: '*98' }))).toMatchObject({ allow: true, normalised: undefined, international: false });
    expect(core.decide(attempt({ authUser: 'bob', dialled: 'reception' }))).toMatchObject({ allow: true, international: false });
  });

  it('6 calls_per_second: 503 with Retry-After', () => {
    expect(core.decide(attempt({ authUser: 'slow' })).allow).toBe(true);
    expect(core.decide(attempt({ authUser: 'slow' })).allow).toBe(true);
    const v = core.decide(attempt({ authUser: 'slow' }));
    expect(v).toMatchObject({ allow: false, rule: 'calls_per_second', status: 503, reason: 'Service Unavailable', retryAfter: 5, account: 'slow' });
    expect(v.detail).toBe('calls_per_second 2 exceeded');
  });

  it('6 calls_per_minute', () => {
    for (const s of [0, 1, 2]) {
      const v = core.decide(attempt({ authUser: 'slow', now: T0 + s * 1000 }));
      expect(v.allow).toBe(true);
      core.release(v.slot!);
    }
    const v = core.decide(attempt({ authUser: 'slow', now: T0 + 3000 }));
    expect(v).toMatchObject({ rule: 'calls_per_minute', status: 503, retryAfter: 5, detail: 'calls_per_minute 3 exceeded' });
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 60_000 })).allow).toBe(true);
  });

  it('6 concurrent_calls: slots are held until release', () => {
    const a = core.decide(attempt({ authUser: 'slow', now: T0 }));
    const b = attempt({ authUser: 'slow', now: T0 + 1000 });
    expect(a.allow).toBe(true);
    expect(core.decide(b).allow).toBe(true);
    const c = core.decide(attempt({ authUser: 'slow', now: T0 + 2000 }));
    expect(c).toMatchObject({ allow: false, rule: 'concurrent_calls', status: 503, retryAfter: 5, detail: 'concurrent_calls 2 exceeded' });
    core.release(a.slot!);
    core.release(a.slot!);
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2500 })).allow).toBe(true);
  });

  it('a rejected call consumes no rate budget', () => {
    // Concurrency rejects the third call; the rate windows must not have counted it.
    const a = core.decide(attempt({ authUser: 'slow', now: T0 }));
    core.decide(attempt({ authUser: 'slow', now: T0 + 1000 }));
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2000 })).rule).toBe('concurrent_calls');
    core.release(a.slot!);
    // Two admits in the last minute, limit 3: admitted.
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2001 })).allow).toBe(true);
  });

  it('7 allow: takes a slot whose handle touch/release/isAdmitted follow', () => {
    const a = attempt({ authUser: 'alice' });
    const v = core.decide(a);
    expect(v).toEqual({
      allow: true,
      rule: 'allow',
      status: 0,
      reason: '',
      detail: '',
      retryAfter: undefined,
      account: 'alice',
      normalised: '+6495550111',
      international: false,
      slot: expect.any(Number),
    });
    expect(core.isAdmitted(v.slot!)).toBe(true);
    core.touch(v.slot!, T0 + 1000);
    expect(core.isAdmitted(v.slot!)).toBe(true);
    expect(core.stats()).toEqual({ liveCalls: 1, trackedAccounts: 1 });
    core.release(v.slot!);
    expect(core.isAdmitted(v.slot!)).toBe(false);
    expect(core.stats().liveCalls).toBe(0);
  });

  it('a rejected call takes no slot', () => {
    const v = core.decide(attempt({ authUser: 'bob', dialled: '0061298765432' }));
    expect(v.slot).toBeUndefined();
    expect(core.stats().liveCalls).toBe(0);
  });

  it('a released handle stays dead after its slot goes to another call', () => {
    const first = core.decide(attempt({ authUser: 'alice' }));
    core.release(first.slot!);
    const second = core.decide(attempt({ authUser: 'alice' }));
    expect(core.isAdmitted(first.slot!)).toBe(false);
    core.release(first.slot!); // a late second release of the first call
    expect(core.isAdmitted(second.slot!)).toBe(true);
    expect(core.stats().liveCalls).toBe(1);
  });

  it('a repeated INVITE for a call that holds a slot is not blocked by its own slot', () => {
    const a = attempt({ authUser: 'slow', now: T0 });
    const first = core.decide(a);
    core.decide(attempt({ authUser: 'slow', now: T0 + 1000 }));
    const again = core.decide({ ...a, now: T0 + 2000, heldSlot: first.slot });
    expect(again).toMatchObject({ allow: true, slot: first.slot });
    expect(core.stats().liveCalls).toBe(2);
    // Without the held slot it is a third concurrent call (and over the minute's budget).
    expect(core.decide({ ...a, now: T0 + 2001 }).allow).toBe(false);
  });

  it('the max_call_seconds backstop frees a slot whose BYE was lost', () => {
    const c = new GuardCore(compileRules(ruleSet()), { maxCallSeconds: 10 });
    const a = c.decide(attempt({ authUser: 'slow', now: T0 }));
    c.decide(attempt({ authUser: 'slow', now: T0 + 1 }));
    expect(c.decide(attempt({ authUser: 'slow', now: T0 + 2000 })).rule).toBe('concurrent_calls');
    expect(c.decide(attempt({ authUser: 'slow', now: T0 + 70_000 })).allow).toBe(true);
    expect(c.isAdmitted(a.slot!)).toBe(false);
  });

  it('uses guard.sip.max_call_seconds when no option is given', () => {
    const c = new GuardCore(compileRules(ruleSet({ guard: { sip: { listen: [], upstream: 'x:1', max_call_seconds: 5 } } })));
    const a = c.decide(attempt({ authUser: 'alice', now: T0 }));
    c.touch(-1, T0 + 6000);
    expect(c.isAdmitted(a.slot!)).toBe(false);
  });
});

describe('GuardCore responses and swaps', () => {
  it('uses guard.responses overrides', () => {
    const core = new GuardCore(
      compileRules(
        ruleSet({
          guard: {
            responses: {
              high_risk: { status: 603 },
              rate_limit: { status: 486, reason: 'Slow Down', retry_after: 30 },
              source: { status: 404, reason: 'Go Away' },
            },
          },
        }),
      ),
    );
    expect(core.decide(attempt({ authUser: 'alice', dialled: '+252 71 234 5678' }))).toMatchObject({ status: 603, reason: 'Decline' });
    expect(core.checkSource('192.0.2.1')).toMatchObject({ status: 404, reason: 'Go Away' });
    core.decide(attempt({ authUser: 'slow' }));
    core.decide(attempt({ authUser: 'slow' }));
    expect(core.decide(attempt({ authUser: 'slow' }))).toMatchObject({ status: 486, reason: 'Slow Down', retryAfter: 30 });
  });

  it('swapRules keeps rate windows and live slots by account id', () => {
    const core = new GuardCore(compileRules(ruleSet()));
    const first = core.decide(attempt({ authUser: 'slow', now: T0 }));
    core.decide(attempt({ authUser: 'slow', now: T0 + 1 }));
    const next = compileRules(ruleSet());
    core.swapRules(next);
    expect(core.rules).toBe(next);
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2 })).rule).toBe('calls_per_second');
    expect(core.isAdmitted(first.slot!)).toBe(true);
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 1500 })).rule).toBe('concurrent_calls');
  });

  it('swapRules applies new limits and attributions at once', () => {
    const core = new GuardCore(compileRules(ruleSet()));
    core.decide(attempt({ authUser: 'slow', now: T0 }));
    core.decide(attempt({ authUser: 'slow', now: T0 + 1 }));
    const accounts: AccountsFile = {
      accounts: { slow: { users: ['slow'], limits: { calls_per_second: 3, concurrent_calls: 3 } }, erin: { users: ['erin'], international: false } },
    };
    core.swapRules(compileRules(ruleSet({ accounts })));
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2 })).allow).toBe(true);
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 3 })).rule).toBe('calls_per_second');
    expect(core.decide(attempt({ authUser: 'alice' })).rule).toBe('unknown_caller');
    expect(core.decide(attempt({ authUser: 'erin', dialled: '+61298765432' })).rule).toBe('international');
  });

  it('two cores sharing one compiled rule set keep separate state', () => {
    const rules = compileRules(ruleSet());
    const a = new GuardCore(rules);
    const b = new GuardCore(rules);
    a.decide(attempt({ authUser: 'slow', now: T0 }));
    a.decide(attempt({ authUser: 'slow', now: T0 + 1 }));
    expect(a.decide(attempt({ authUser: 'slow', now: T0 + 2 })).rule).toBe('calls_per_second');
    expect(b.decide(attempt({ authUser: 'slow', now: T0 + 2 })).allow).toBe(true);
    expect(b.stats().liveCalls).toBe(1);
  });

  it('an account removed by an edit while its calls go on keeps their count when it comes back', () => {
    const core = new GuardCore(compileRules(ruleSet()));
    const first = core.decide(attempt({ authUser: 'slow', now: T0 }));
    core.decide(attempt({ authUser: 'slow', now: T0 + 1 }));
    const accounts: AccountsFile = { accounts: { alice: { users: ['alice'] } } };
    core.swapRules(compileRules(ruleSet({ accounts })));
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2000 })).rule).toBe('unknown_caller');
    core.swapRules(compileRules(ruleSet()));
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2001 })).rule).toBe('concurrent_calls');
    core.release(first.slot!);
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 2002 })).allow).toBe(true);
  });

  it('an idle account with a live call forgets its admits but keeps counting the call', () => {
    const core = new GuardCore(compileRules(ruleSet()));
    core.decide(attempt({ authUser: 'slow', now: T0 }));
    core.decide(attempt({ authUser: 'slow', now: T0 + 1 }));
    // Three minutes on (another account's call runs the sweep): the minute window is empty again,
    // but both calls still hold their slots.
    core.decide(attempt({ authUser: 'alice', now: T0 + 180_000 }));
    expect(core.stats()).toEqual({ liveCalls: 3, trackedAccounts: 2 });
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 180_001 })).rule).toBe('concurrent_calls');
  });

  it('idle accounts are forgotten and start afresh', () => {
    const core = new GuardCore(compileRules(ruleSet()));
    const first = core.decide(attempt({ authUser: 'slow', now: T0 }));
    core.release(first.slot!);
    expect(core.stats().trackedAccounts).toBe(1);
    // Another account's call three minutes later sweeps the idle state away.
    core.decide(attempt({ authUser: 'alice', now: T0 + 180_000 }));
    expect(core.stats().trackedAccounts).toBe(1);
    for (let i = 0; i < 2; i++) expect(core.decide(attempt({ authUser: 'slow', now: T0 + 180_001 + i })).allow).toBe(true);
    expect(core.decide(attempt({ authUser: 'slow', now: T0 + 180_003 })).rule).toBe('calls_per_second');
  });
});
