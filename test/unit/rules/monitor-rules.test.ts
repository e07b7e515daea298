import * as fs from 'node:fs';
import * as path from 'node:path';
import { compileRules } from '../../../src/rules/compile';
import { RulesError } from '../../../src/rules/config-types';
import { loadRuleSet } from '../../../src/rules/load';
import { RuleStore } from '../../../src/rules/rule-store';
import { makeRulesDir, removeDir, SHIPPED } from './helpers';

const writeMonitor = (dir: string, text: string) => fs.writeFileSync(path.join(dir, 'monitor.yaml'), text);
const compile = (dir: string) => compileRules(loadRuleSet(dir));
const problems = (dir: string): string[] => {
  try {
    compile(dir);
  } catch (err) {
    if (err instanceof RulesError) return err.problems.map((p) => `${path.basename(p.at)}: ${p.message}`);
    throw err;
  }
  return [];
};

let dir: string;
beforeEach(() => (dir = makeRulesDir()));
afterEach(() => removeDir(dir));

describe('rules/monitor.yaml', () => {
  it('is optional: without it detection is off and the built-in thresholds are compiled anyway', () => {
    const r = compile(dir);
    expect(r.monitor!.enabled).toBe(false);
    expect(r.monitor!.forAccount('acme').highRiskAttempts.critical).toBe(3);
  });

  it('the shipped file validates, switches detection on, and overrides acme field by field', () => {
    writeMonitor(dir, fs.readFileSync(path.join(SHIPPED, 'monitor.yaml'), 'utf8'));
    const r = compile(dir);
    expect(r.monitor!.enabled).toBe(true);
    const acme = r.monitor!.forAccount('acme');
    expect(acme.intlPerMinute).toEqual({ warning: 10, critical: 20 });
    expect(acme.offHours.weekends).toBe(false);
    expect(acme.offHours.nightFrom).toBe(22 * 60); // inherited from defaults
    expect(r.monitor!.forAccount('bob').intlPerMinute).toEqual({ warning: 4, critical: 8 });
    expect(acme.timezone).toBe('Pacific/Auckland'); // from the account's country (home NZ)
  });

  it('reports mistakes as file:line with the field path', () => {
    writeMonitor(dir, 'defaults:\n  intl_per_minut: { warning: 4 }\n  high_risk_attempts: { warning: 3, critical: 2 }\n  off_hours: { night_from: "25:00" }\n  timezone: Mars/Olympus\n');
    expect(problems(dir)).toEqual([
      'monitor.yaml:2: defaults: unknown key "intl_per_minut" (did you mean "intl_per_minute"?)',
      'monitor.yaml:3: defaults.high_risk_attempts.critical: critical (2) must not be below warning (3)',
      'monitor.yaml:4: defaults.off_hours.night_from: expected a time of day HH:MM such as "22:00", got "25:00"',
      'monitor.yaml:5: defaults.timezone: unknown time zone "Mars/Olympus" (expected an IANA name such as Pacific/Auckland)',
    ]);
  });

  it('a warning inherited above an account\'s lowered critical level is no error (it just never fires)', () => {
    writeMonitor(dir, 'defaults:\n  high_risk_attempts: { warning: 2 }\naccounts:\n  bob:\n    high_risk_attempts: { critical: 1 }\n');
    expect(compile(dir).monitor!.forAccount('bob').highRiskAttempts).toMatchObject({ warning: 2, critical: 1 });
  });

  it('an override for an account that does not exist is an error at its line', () => {
    writeMonitor(dir, 'defaults: {}\naccounts:\n  acme: { timezone: Pacific/Chatham }\n  nobody: { intl_per_minute: { critical: 2 } }\n');
    expect(problems(dir)).toEqual(['monitor.yaml:4: account "nobody" is not in accounts.yaml']);
  });

  it('false switches off a level the defaults set', () => {
    writeMonitor(dir, 'defaults:\n  intl_per_minute: { warning: false }\naccounts:\n  bob: { intl_per_minute: { critical: false } }\n');
    const r = compile(dir);
    expect(r.monitor!.forAccount('acme').intlPerMinute).toEqual({ warning: Infinity, critical: 8 });
    expect(r.monitor!.forAccount('bob').intlPerMinute).toEqual({ warning: Infinity, critical: Infinity });
  });

  it('is hot-reloaded with the other rule files', () => {
    writeMonitor(dir, 'defaults: { intl_per_minute: { critical: 8 } }\n');
    const store = RuleStore.open(dir);
    try {
      writeMonitor(dir, 'defaults: { intl_per_minute: { critical: 3 } }\n');
      expect(store.reload('test')).toEqual({ ok: true });
      expect(store.current.monitor!.forAccount('acme').intlPerMinute.critical).toBe(3);
      writeMonitor(dir, 'defaults: { intl_per_minute: { critical: -1 } }\n');
      expect(store.reload('test').ok).toBe(false);
      expect(store.current.monitor!.forAccount('acme').intlPerMinute.critical).toBe(3); // the last good rules stay
    } finally {
      store.close();
    }
  });
});

describe('guard.yaml notify', () => {
  it('validates the SMTP server, addresses and webhook URL', () => {
    const guard = fs.readFileSync(path.join(dir, 'guard.yaml'), 'utf8');
    fs.writeFileSync(
      path.join(dir, 'guard.yaml'),
      guard + 'notify:\n  smtp: { host: mail.example, port: 587 }\n  from: not-an-address\n  noc: noc@carrier.example\n  webhook_url: ftp://x\n',
    );
    const p = problems(dir);
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^guard\.yaml:\d+: notify\.from: expected the sender address/);
    expect(p[1]).toMatch(/^guard\.yaml:\d+: notify\.webhook_url: expected an http\(s\) URL/);
  });
});
