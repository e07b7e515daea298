import * as fs from 'fs';
import * as path from 'path';
import { compileRules } from '../../../src/rules/compile';
import { RulesError, type RuleProblem } from '../../../src/rules/config-types';
import { loadRuleSet } from '../../../src/rules/load';
import { SHIPPED, fileOf, lineWith, makeRulesDir, removeDir, type RuleTexts } from './helpers';

/** The guard.yaml `drachtio:` section and accounts.yaml's per-account `drachtio:` overrides. */

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

const BASE_GUARD = fs.readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8');
const BASE_ACCOUNTS = fs.readFileSync(path.join(SHIPPED, 'accounts.yaml'), 'utf8');

function dirWith(texts: RuleTexts): string {
  const d = makeRulesDir(texts);
  dirs.push(d);
  return d;
}

function guardWith(section: string): RuleTexts {
  return { guard: `${BASE_GUARD}\n${section}\n` };
}

function problemsOf(dir: string): RuleProblem[] {
  try {
    compileRules(loadRuleSet(dir));
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError);
    return (err as RulesError).problems;
  }
  throw new Error('expected the rules to be refused');
}

describe('guard.yaml drachtio:', () => {
  it('inbound: host, default port 9022, default mode proxy', () => {
    const rules = compileRules(loadRuleSet(dirWith(guardWith('drachtio:\n  host: 127.0.0.1\n  secret: cymru'))));
    expect(rules.guard.drachtio).toEqual({ host: '127.0.0.1', port: 9022, secret: 'cymru', mode: 'proxy' });
  });

  it('outbound: listen, default address 0.0.0.0, with b2bua and duration limits', () => {
    const text = 'drachtio:\n  listen: 4000\n  secret: cymru\n  mode: b2bua\n  max_call_seconds: { international: 14400, high_risk_allowed: 1800 }';
    const rules = compileRules(loadRuleSet(dirWith(guardWith(text))));
    expect(rules.guard.drachtio).toEqual({
      listen: 4000,
      listen_address: '0.0.0.0',
      secret: 'cymru',
      mode: 'b2bua',
      max_call_seconds: { international: 14400, high_risk_allowed: 1800 },
    });
  });

  it('a compose service name is a valid host', () => {
    const rules = compileRules(loadRuleSet(dirWith(guardWith('drachtio:\n  host: drachtio\n  port: 9023\n  secret: s'))));
    expect(rules.guard.drachtio?.port).toBe(9023);
  });

  it.each([
    ['mode: proxi', 'mode', 'expected proxy or b2bua'],
    ['port: 70000', 'port: 70000', 'expected a port number 1-65535'],
    ['max_call_seconds: { international: -5 }', 'international', 'expected a positive integer'],
    ['max_call_seconds: { internationl: 60 }', 'internationl', 'did you mean "international"'],
    ['secret: "a|b"', 'secret', 'without spaces, line breaks or "|"'],
  ])('%s is reported at its line', (bad, needle, message) => {
    const text = `drachtio:\n  host: 127.0.0.1\n  ${bad.startsWith('secret') ? bad : 'secret: cymru\n  ' + bad}`;
    const dir = dirWith(guardWith(text));
    const problems = problemsOf(dir);
    expect(problems).toHaveLength(1);
    const guardText = fs.readFileSync(fileOf(dir, 'guard'), 'utf8');
    expect(problems[0].at).toBe(`${fileOf(dir, 'guard')}:${lineWith(guardText, needle)}`);
    expect(problems[0].message).toContain(message);
  });

  it('host and listen together are refused at listen', () => {
    const dir = dirWith(guardWith('drachtio:\n  host: 127.0.0.1\n  listen: 4000\n  secret: cymru'));
    const problems = problemsOf(dir);
    expect(problems).toHaveLength(1);
    const guardText = fs.readFileSync(fileOf(dir, 'guard'), 'utf8');
    expect(problems[0].at).toBe(`${fileOf(dir, 'guard')}:${lineWith(guardText, 'listen: 4000')}`);
    expect(problems[0].message).toContain('choose one connection style');
  });

  it('neither host nor listen is refused at the section', () => {
    const dir = dirWith(guardWith('drachtio:\n  secret: cymru'));
    const problems = problemsOf(dir);
    expect(problems.map((p) => p.message).join('\n')).toContain('expected host (and port)');
    const guardText = fs.readFileSync(fileOf(dir, 'guard'), 'utf8');
    expect(problems[0].at).toBe(`${fileOf(dir, 'guard')}:${lineWith(guardText, 'drachtio:')}`);
  });

  it('a missing secret is an error', () => {
    const problems = problemsOf(dirWith(guardWith('drachtio:\n  host: 127.0.0.1')));
    expect(problems.map((p) => p.message).join('\n')).toContain('secret');
  });
});

describe('accounts.yaml drachtio:', () => {
  const accounts = BASE_ACCOUNTS.replace(
    'email: voip-admin@acme.example',
    'email: voip-admin@acme.example\n    drachtio: { mode: b2bua, max_call_seconds: 600 }',
  );

  it('compiles into the account', () => {
    const rules = compileRules(loadRuleSet(dirWith({ accounts })));
    expect(rules.account('acme')?.drachtio).toEqual({ mode: 'b2bua', maxCallSeconds: 600 });
    expect(rules.account('bob')?.drachtio).toBeUndefined();
  });

  it('a bad mode is reported at its line', () => {
    const text = accounts.replace('mode: b2bua', 'mode: b2b');
    const dir = dirWith({ accounts: text });
    const problems = problemsOf(dir);
    expect(problems).toHaveLength(1);
    expect(problems[0].at).toBe(`${fileOf(dir, 'accounts')}:${lineWith(text, 'mode: b2b')}`);
    expect(problems[0].message).toContain('expected proxy or b2bua');
  });
});
