/**
 * `tollguard check`: the same load + compile the running guard does, so "rules OK" means a
 * reload would be accepted, not merely that the YAML parses.
 */
import { compileRules } from './compile';
import { RulesError, type RuleProblem } from './config-types';
import { loadRuleSet } from './load';

export type CheckResult = { ok: true; summary: string } | { ok: false; problems: RuleProblem[] };

export function checkRules(dir: string): CheckResult {
  try {
    const { summary } = compileRules(loadRuleSet(dir));
    const counts = [
      plural(summary.accounts, 'account'),
      plural(summary.prefixes, 'high-risk prefix', 'high-risk prefixes'),
      plural(summary.cidrs, 'CIDR'),
    ];
    return { ok: true, summary: `rules OK: ${counts.join(', ')} (${dir})` };
  } catch (err) {
    if (err instanceof RulesError) return { ok: false, problems: err.problems };
    // A crash in the compiler is still an answer to "are these rules usable?": no, and why.
    return { ok: false, problems: [{ at: dir, message: `internal error while checking the rules: ${errorText(err)}` }] };
  }
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
