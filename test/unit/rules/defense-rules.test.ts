import * as fs from 'fs';
import * as path from 'path';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import { RulesError } from '../../../src/rules/config-types';
import { RuleStore } from '../../../src/rules/rule-store';
import { makeRulesDir, SHIPPED } from './helpers';

function problemsOf(dir: string): string[] {
  try {
    compileRules(loadRuleSet(dir));
  } catch (err) {
    if (err instanceof RulesError) return err.problems.map((p) => `${p.at}: ${p.message}`);
    throw err;
  }
  return [];
}

function withDefense(files: Record<string, string>): string {
  const dir = makeRulesDir();
  for (const name of ['defense.yaml', 'scanner-fingerprints.yaml', 'blocklist.txt']) {
    fs.copyFileSync(path.join(SHIPPED, name), path.join(dir, name));
  }
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

describe('defense rule files', () => {
  it('the shipped rules compile with the defense on, fingerprints loaded and an empty blocklist', () => {
    const rules = compileRules(loadRuleSet(SHIPPED));
    expect(rules.defense.enabled).toBe(true);
    expect(rules.defense.fingerprintCount).toBeGreaterThan(5);
    expect(rules.defense.blocklistSize).toBe(0);
  });

  it('a rules directory without defense.yaml loads as before, with the defense off', () => {
    const rules = compileRules(loadRuleSet(makeRulesDir()));
    expect(rules.defense.enabled).toBe(false);
  });

  it('reports a bad CIDR in blocklist.txt as file:line, and a duplicate with the first line', () => {
    const dir = withDefense({ 'blocklist.txt': '# known bad\n198.51.100.7\n\n203.0.113.0/33  # typo\n198.51.100.7\n10.0.0.1 10.0.0.2\n' });
    const p = problemsOf(dir);
    expect(p).toContainEqual(expect.stringMatching(/blocklist\.txt:4: "203\.0\.113\.0\/33": expected a prefix length of 0-32/));
    expect(p).toContainEqual(expect.stringMatching(/blocklist\.txt:5: duplicate entry 198\.51\.100\.7 \(first at line 2\)/));
    expect(p).toContainEqual(expect.stringMatching(/blocklist\.txt:6: expected one IP or CIDR a line/));
  });

  it('reports defense.yaml and fingerprint mistakes with file:line', () => {
    const dir = withDefense({
      'defense.yaml': 'never_ban: [10.0.0.1/8]\nflood:\n  window_seconds: 0\n  limits: { invite: 5, default: 10 }\n',
      'scanner-fingerprints.yaml': '- { name: a, header: User-Agent }\n- { name: b, header: User-Agent, regex: "(" }\n',
    });
    const p = problemsOf(dir);
    expect(p).toContainEqual(expect.stringMatching(/defense\.yaml:1: .*host bits are set/));
    expect(p).toContainEqual(expect.stringMatching(/defense\.yaml:3: .*positive integer/));
    expect(p).toContainEqual(expect.stringMatching(/defense\.yaml:4: .*"invite" is not a SIP method/));
    expect(p).toContainEqual(expect.stringMatching(/scanner-fingerprints\.yaml:1: .*exactly one of contains or regex/));
    expect(p).toContainEqual(expect.stringMatching(/scanner-fingerprints\.yaml:2: .*not a valid regular expression/));
  });

  it('accepts allowed_sources entries marked trusted, beside plain CIDRs, and exempts them', () => {
    const guard = fs
      .readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8')
      .replace('allowed_sources: [127.0.0.0/8, 27.111.12.0/24]', 'allowed_sources: [127.0.0.0/8, { cidr: 27.111.12.0/24, trusted: true }, { cidr: 192.0.2.9 }]');
    const dir = withDefense({ 'guard.yaml': guard });
    const rules = compileRules(loadRuleSet(dir));
    expect(rules.guard.allowed_sources).toEqual(['127.0.0.0/8', '27.111.12.0/24', '192.0.2.9/32']);
    expect(rules.guard.trusted_sources).toEqual(['27.111.12.0/24']);
    expect(rules.allowedSources.has('192.0.2.9')).toBe(true);
    expect(rules.defense.exempt.has('27.111.12.200')).toBe(true);
    expect(rules.defense.exempt.has('127.0.0.1')).toBe(false);
  });

  it('rejects a malformed trusted entry', () => {
    const guard = fs
      .readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8')
      .replace('allowed_sources: [127.0.0.0/8, 27.111.12.0/24]', 'allowed_sources: [127.0.0.0/8, { cidr: 27.111.12.0/24, trusted: yes please }]');
    expect(problemsOf(withDefense({ 'guard.yaml': guard }))).toContainEqual(
      expect.stringMatching(/guard\.yaml:\d+: allowed_sources\[1\]: expected a CIDR, or a mapping like \{ cidr: 198\.51\.100\.7, trusted: true \}/),
    );
  });

  it('hot-reloads a blocklist edit, and keeps the last good rules on a broken one', () => {
    const dir = withDefense({});
    const store = RuleStore.open(dir);
    expect(store.current.defense.blocklist.lookup('198.51.100.7')).toBeUndefined();
    fs.writeFileSync(path.join(dir, 'blocklist.txt'), '198.51.100.0/24\n');
    expect(store.reload('test').ok).toBe(true);
    expect(store.current.defense.blocklist.lookup('198.51.100.7')).toBe('198.51.100.0/24');
    fs.writeFileSync(path.join(dir, 'blocklist.txt'), '198.51.100.0/24\nnot-an-ip\n');
    expect(store.reload('test').ok).toBe(false);
    expect(store.current.defense.blocklist.lookup('198.51.100.7')).toBe('198.51.100.0/24');
    store.close();
  });
});
