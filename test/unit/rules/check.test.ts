import * as path from 'path';
import { checkRules } from '../../../src/rules/check';
import { loadRuleSet } from '../../../src/rules/load';
import { GOOD_ACCOUNTS, SHIPPED, fileOf, lineWith, makeRulesDir, removeDir } from './helpers';

describe('checkRules', () => {
  it('summarises the shipped rules in one line', () => {
    const rel = path.relative(process.cwd(), SHIPPED) + '/';
    const prefixes = loadRuleSet(SHIPPED).highRisk.length;
    const result = checkRules(rel);
    expect(result.ok).toBe(true);
    const summary = (result as { summary: string }).summary;
    expect(summary).toMatch(new RegExp(`^rules OK: 2 accounts, ${prefixes} high-risk prefixes, \\d+ CIDRs? \\(rules/\\)$`));
  });

  it('lists every problem with file:line', () => {
    const accounts = GOOD_ACCOUNTS + '    limits: { calls_per_minute: ten }\n';
    const dir = makeRulesDir({ accounts, highRisk: '- { prefix: "+252", name: Somalia, extra: 1 }\n' });
    try {
      const result = checkRules(dir);
      expect(result.ok).toBe(false);
      const problems = (result as { problems: { at: string }[] }).problems;
      expect(problems.map((p) => p.at)).toEqual([
        `${fileOf(dir, 'accounts')}:${lineWith(accounts, 'ten')}`,
        `${fileOf(dir, 'highRisk')}:1`,
      ]);
    } finally {
      removeDir(dir);
    }
  });
});
