/** The command line as an admin uses it: the built dist/cli.js, run as a process. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRulesDir } from './helpers/guard-process';

const ROOT = path.resolve(__dirname, '../..');
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });

describe('tollguard check', () => {
  it('accepts the shipped rules with a one-line summary and exit 0', () => {
    const r = cli('check', '--rules', 'rules/');
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/2 accounts, \d+ high-risk prefixes, \d+ CIDRs/);
  });

  it('lists every error of every file as file:line: message and exits 1', () => {
    const guard = fs.readFileSync(path.join(ROOT, 'rules/guard.yaml'), 'utf8').replace('27.111.12.0/24', '27.111.12.0/33');
    const accounts = fs
      .readFileSync(path.join(ROOT, 'rules/accounts.yaml'), 'utf8')
      .replace('calls_per_minute: 10 }', 'calls_per_minut: 10 }');
    const dir = makeRulesDir({ guard, accounts, highRisk: '- { prefix: "252", name: Somalia }\n' });
    try {
      const r = cli('check', '--rules', dir);
      expect(r.status).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.some((l) => /guard\.yaml:\d+: .*27\.111\.12\.0\/33/.test(l))).toBe(true);
      expect(lines.some((l) => /accounts\.yaml:\d+: .*calls_per_minut/.test(l))).toBe(true);
      expect(lines.some((l) => /high-risk-destinations\.yaml:1: /.test(l))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('tollguard serve', () => {
  it('refuses to start on broken rules, naming the place, with exit 1', () => {
    const dir = makeRulesDir({ guard: 'sip: [\n', accounts: 'accounts: {}\n' });
    try {
      const r = cli('serve', '--rules', dir);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/guard\.yaml:\d+/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
