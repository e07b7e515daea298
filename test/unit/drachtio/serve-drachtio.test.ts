import { logSink } from '../log-sink';
import { forwardingFor } from '../../../src/core/forwarding';
import type { Verdict } from '../../../src/core/types';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDefense } from '../../../src/defense/start';
import { silentLogger } from '../../../src/log';
import { RuleStore } from '../../../src/rules/rule-store';
import { connectionSpec, serveDrachtio } from '../../../src/serve-drachtio';
import { makeRulesDir, removeDir, SHIPPED } from '../rules/helpers';
import { FakeRequest, FakeResponse, FakeSrf } from './fakes';


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

describe('serveDrachtio starts the attack-source defense on the drachtio front end', () => {
  const GUARD_YAML = `sip: { listen: [udp:127.0.0.1:5060], upstream: 127.0.0.1:5080 }
home_country: NZ
allowed_sources: [127.0.0.0/24]
drachtio: { host: 127.0.0.1, port: 9022, secret: cymru, mode: proxy }
`;
  const ACCOUNTS_YAML = `accounts:
  bob: { users: [bob] }
`;

  async function running() {
    const dir = makeRulesDir({ guard: GUARD_YAML, accounts: ACCOUNTS_YAML });
    fs.copyFileSync(path.join(SHIPPED, 'defense.yaml'), path.join(dir, 'defense.yaml'));
    fs.copyFileSync(path.join(SHIPPED, 'scanner-fingerprints.yaml'), path.join(dir, 'scanner-fingerprints.yaml'));
    const stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'serve-drachtio-')), 'state.db');
    const { lines, logger } = logSink();
    const srf = new FakeSrf();
    const store = RuleStore.open(dir, logger);
    const spec = connectionSpec({}, store.current.guard.drachtio)!;
    const guard = await serveDrachtio({ rulesDir: dir, logger, srf, watch: false, stateFile }, store, spec);
    return { dir, stateFile, lines, srf, guard };
  }

  it('before connecting, on the front end and the --state file; a scanner INVITE is dropped and banned; stop() closes it', async () => {
    const { dir, stateFile, lines, srf, guard } = await running();
    try {
      const started = lines.findIndex((l) => l.message === 'defense started');
      expect(started).toBeGreaterThanOrEqual(0);
      expect(lines[started]).toMatchObject({ store: stateFile });
      expect(started).toBeLessThan(lines.findIndex((l) => l.message === 'connecting to drachtio-server'));

      const req = new FakeRequest({ source: '127.0.0.40', headers: { 'User-Agent': 'friendly-scanner' } });
      const res = new FakeResponse();
      srf.handle(req, res);
      expect(res.sent).toEqual([]);
      expect(srf.proxied).toHaveLength(0);
      expect(guard.defense.defense.isBanned('127.0.0.40')).toBe(true);
    } finally {
      await guard.stop();
      removeDir(dir);
    }
    // The ban is in the state file: a second defense on it starts with it in force.
    const again = await running2(stateFile);
    expect(again).toBe(true);
  });

  it('hands a compromised account to the monitor: the account is toll-blocked', async () => {
    const { dir, guard } = await running();
    try {
      guard.defense.defense.emit('compromised', { user: 'bob', account: 'bob', source: '127.0.0.9', dialled: '0061299990000', evidence: { failures: 20, failingSources: ['127.0.0.7', '127.0.0.8', '127.0.0.6'], flaggedAt: Date.now() }, at: Date.now() });
      expect(guard.core.isTollBlocked('bob')).toBe(true);
    } finally {
      await guard.stop();
      removeDir(dir);
    }
  });

  /** Whether 127.0.0.40 is banned according to the state file alone. */
  async function running2(stateFile: string): Promise<boolean> {
    const dir = makeRulesDir({ guard: GUARD_YAML, accounts: ACCOUNTS_YAML });
    fs.copyFileSync(path.join(SHIPPED, 'defense.yaml'), path.join(dir, 'defense.yaml'));
    const store = RuleStore.open(dir);
    const h = startDefense({ frontEnd: { addScreen: () => undefined, addObserver: () => undefined }, rules: store, logger: silentLogger(), stateFile });
    try {
      return h.defense.isBanned('127.0.0.40');
    } finally {
      h.stop();
      store.close();
      removeDir(dir);
    }
  }
});
