import { forwardingFor } from '../../../src/core/forwarding';
import type { Verdict } from '../../../src/core/types';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import { connectionSpec } from '../../../src/serve-drachtio';
import { makeRulesDir, removeDir } from '../rules/helpers';

describe('connectionSpec: flags over guard.yaml', () => {
  const inbound = { host: '10.0.0.5', port: 9022, secret: 'y', mode: 'proxy' as const };

  it('no flags and no drachtio section: the embedded proxy', () => {
    expect(connectionSpec({}, undefined)).toBeUndefined();
  });

  it('--drachtio HOST:PORT --secret S', () => {
    expect(connectionSpec({ connect: '127.0.0.1:9022', secret: 'cymru' }, undefined)).toEqual({ style: 'inbound', host: '127.0.0.1', port: 9022, secret: 'cymru' });
    expect(connectionSpec({ connect: '[::1]:9022', secret: 'cymru' }, undefined)).toEqual({ style: 'inbound', host: '::1', port: 9022, secret: 'cymru' });
  });

  it('--drachtio-listen PORT or IP:PORT', () => {
    expect(connectionSpec({ listen: '4000', secret: 's' }, undefined)).toEqual({ style: 'outbound', address: '0.0.0.0', port: 4000, secret: 's' });
    expect(connectionSpec({ listen: '127.0.0.1:4000', secret: 's' }, undefined)).toEqual({ style: 'outbound', address: '127.0.0.1', port: 4000, secret: 's' });
  });

  it('the flag takes the secret from guard.yaml when --secret is absent', () => {
    expect(connectionSpec({ connect: 'drachtio:9023' }, inbound)).toEqual({ style: 'inbound', host: 'drachtio', port: 9023, secret: 'y' });
  });

  it('guard.yaml alone', () => {
    expect(connectionSpec({}, inbound)).toEqual({ style: 'inbound', host: '10.0.0.5', port: 9022, secret: 'y' });
    expect(connectionSpec({}, { listen: 4000, listen_address: '0.0.0.0', secret: 'z' })).toEqual({ style: 'outbound', address: '0.0.0.0', port: 4000, secret: 'z' });
  });

  it.each([
    [{ connect: '127.0.0.1:9022' }, /--secret is required/],
    [{ connect: '127.0.0.1', secret: 's' }, /expected HOST:PORT/],
    [{ connect: '127.0.0.1:99999', secret: 's' }, /expected HOST:PORT/],
    [{ connect: 'a:1', listen: '2', secret: 's' }, /not both/],
    [{ secret: 's' }, /--secret needs --drachtio/],
  ])('refuses %p', (flags, message) => {
    expect(() => connectionSpec(flags, undefined)).toThrow(message);
  });
});

describe('forwardingFor: mode and duration from the rules, not the adapter', () => {
  const dir = makeRulesDir({
    guard: `sip: { listen: [udp:127.0.0.1:5060], upstream: 127.0.0.1:5080 }
home_country: NZ
allowed_sources: [127.0.0.0/8]
drachtio:
  host: 127.0.0.1
  secret: s
  mode: proxy
  max_call_seconds: { domestic: 7200, international: 14400, high_risk_allowed: 1800 }
`,
    accounts: `accounts:
  plain: { users: [plain] }
  capped: { users: [capped], allow_destinations: ["+252"], drachtio: { mode: b2bua, max_call_seconds: 600 } }
  long: { users: [long], drachtio: { max_call_seconds: 99999 } }
`,
  });
  afterAll(() => removeDir(dir));
  const rules = compileRules(loadRuleSet(dir));
  const allowed = (account: string, normalised: string, international: boolean): Verdict => ({ allow: true, rule: 'allow', status: 0, reason: '', detail: '', account, normalised, international });

  it('guard-wide mode and class limits', () => {
    expect(forwardingFor(rules, allowed('plain', '+6495550111', false))).toEqual({ mode: 'proxy', destinationClass: 'domestic', maxCallSeconds: 7200 });
    expect(forwardingFor(rules, allowed('plain', '+61212345678', true))).toEqual({ mode: 'proxy', destinationClass: 'international', maxCallSeconds: 14400 });
  });

  it("the account's mode, and the tighter of its cap and the class limit", () => {
    expect(forwardingFor(rules, allowed('capped', '+252612345678', true))).toEqual({ mode: 'b2bua', destinationClass: 'high_risk_allowed', maxCallSeconds: 600 });
    expect(forwardingFor(rules, allowed('long', '+61212345678', true))).toEqual({ mode: 'proxy', destinationClass: 'international', maxCallSeconds: 14400 });
  });
});
