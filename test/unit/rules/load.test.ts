import * as fs from 'fs';
import * as path from 'path';
import { RulesError, type RuleProblem } from '../../../src/rules/config-types';
import { loadRuleSet } from '../../../src/rules/load';
import { GOOD_ACCOUNTS, SHIPPED, fileOf, lineWith, makeRulesDir, removeDir, type RuleTexts } from './helpers';

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function dirWith(texts: RuleTexts): string {
  const d = makeRulesDir(texts);
  dirs.push(d);
  return d;
}

/** Loads and returns the problems; fails the test if the load succeeds. */
function problemsOf(dir: string): RuleProblem[] {
  try {
    loadRuleSet(dir);
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError);
    return (err as RulesError).problems;
  }
  throw new Error('expected loadRuleSet to throw RulesError');
}

/** The one problem reported for the given file; fails if there are none or several. */
function onlyProblem(dir: string): RuleProblem {
  const problems = problemsOf(dir);
  expect(problems).toHaveLength(1);
  return problems[0];
}

describe('the shipped rules/ directory', () => {
  const set = loadRuleSet(SHIPPED);

  it('loads with the documented guard settings', () => {
    expect(set.guard).toEqual({
      sip: { listen: ['udp:127.0.0.1:5060', 'tcp:127.0.0.1:5060'], upstream: '127.0.0.1:5080' },
      home_country: 'NZ',
      allowed_sources: ['127.0.0.0/8', '27.111.12.0/24'],
      unknown_caller: 'reject',
    });
  });

  it('loads both accounts and the defaults', () => {
    expect(set.accounts.defaults).toEqual({
      international: true,
      limits: { calls_per_second: 5, calls_per_minute: 60, concurrent_calls: 20 },
    });
    expect(set.accounts.accounts.acme).toEqual({ sources: ['127.0.0.10/32'], email: 'voip-admin@acme.example' });
    expect(set.accounts.accounts.bob).toEqual({
      users: ['bob', '6495550111'],
      allowed_sources: ['127.0.0.0/24'],
      international: false,
      limits: { calls_per_minute: 10 },
    });
  });

  it('has about 40 unique, well-formed high-risk prefixes including the classics', () => {
    expect(set.highRisk.length).toBeGreaterThanOrEqual(35);
    expect(set.highRisk.length).toBeLessThanOrEqual(60);
    expect(new Set(set.highRisk.map((e) => e.prefix)).size).toBe(set.highRisk.length);
    const byPrefix = new Map(set.highRisk.map((e) => [e.prefix, e.name]));
    expect(byPrefix.get('+252')).toBe('Somalia');
    expect(byPrefix.get('+53')).toBe('Cuba');
    expect(byPrefix.get('+882')).toBe('International Networks');
    expect(byPrefix.get('+1876')).toBe('Jamaica');
  });

  it('where() gives file:line of a value, falling back to the nearest parent', () => {
    const text = fs.readFileSync(path.join(SHIPPED, 'accounts.yaml'), 'utf8');
    const file = path.join(SHIPPED, 'accounts.yaml');
    expect(set.where('accounts', ['accounts', 'bob', 'users', 1])).toBe(`${file}:${lineWith(text, 'users: [bob')}`);
    expect(set.where('accounts', ['accounts', 'bob', 'no_such_key'])).toBe(`${file}:${lineWith(text, '  bob:')}`);
    const guardText = fs.readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8');
    expect(set.where('guard', ['home_country'])).toBe(`${path.join(SHIPPED, 'guard.yaml')}:${lineWith(guardText, 'home_country: NZ')}`);
  });

  it('keeps the directory as given in file names ("rules/accounts.yaml:N")', () => {
    const rel = path.relative(process.cwd(), SHIPPED) + '/';
    const s = loadRuleSet(rel);
    expect(s.where('accounts', ['accounts', 'acme'])).toMatch(/^rules\/accounts\.yaml:\d+$/);
  });
});

describe('each kind of error names file:line', () => {
  it('YAML syntax error', () => {
    const guard = 'sip:\n  listen: [udp:127.0.0.1:5060\n  upstream: 127.0.0.1:5080\nhome_country: NZ\n';
    const dir = dirWith({ guard });
    const problems = problemsOf(dir);
    expect(problems.length).toBeGreaterThanOrEqual(1);
    expect(problems.every((p) => p.at.startsWith(`${fileOf(dir, 'guard')}:`))).toBe(true);
    expect(problems[0].message).toMatch(/^YAML syntax error: /);
    // The error is inside the unterminated flow list, not at line 1.
    expect(Number(problems[0].at.split(':').pop())).toBeGreaterThanOrEqual(2);
  });

  it('an unquoted bracketed IPv6 address gets a hint to quote it', () => {
    const guard = 'sip:\n  listen: [tcp:[::1]:5060]\n  upstream: 127.0.0.1:5080\nhome_country: NZ\nallowed_sources: [::1/128]\n';
    const p = problemsOf(dirWith({ guard }))[0];
    expect(p.message).toContain('must be quoted');
  });

  it('wrong type', () => {
    const accounts = GOOD_ACCOUNTS + '    limits: { calls_per_minute: ten }\n';
    const dir = dirWith({ accounts });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'accounts')}:${lineWith(accounts, 'ten')}`,
      message: 'accounts.bob.limits.calls_per_minute: expected a positive integer, got "ten"',
    });
  });

  it('a negative overload threshold', () => {
    const guard = fs.readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8').replace('  upstream: 127.0.0.1:5080', '  upstream: 127.0.0.1:5080\n  overload_lag_ms: -5');
    const dir = dirWith({ guard });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'guard')}:${lineWith(guard, 'overload_lag_ms')}`,
      message: 'sip.overload_lag_ms: expected 0 or more milliseconds, got -5',
    });
    const fine = dirWith({ guard: guard.replace('overload_lag_ms: -5', 'overload_lag_ms: 0') });
    expect(loadRuleSet(fine).guard.sip.overload_lag_ms).toBe(0);
  });

  it('an unknown UDP I/O layer', () => {
    const guard = fs.readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8').replace('  upstream: 127.0.0.1:5080', '  upstream: 127.0.0.1:5080\n  udp_io: uring');
    const dir = dirWith({ guard });
    const p = onlyProblem(dir);
    expect(p.at).toBe(`${fileOf(dir, 'guard')}:${lineWith(guard, 'udp_io')}`);
    expect(p.message).toMatch(/^sip\.udp_io: expected auto, batch or dgram/);
    const fine = dirWith({ guard: guard.replace('udp_io: uring', 'udp_io: dgram') });
    expect(loadRuleSet(fine).guard.sip.udp_io).toBe('dgram');
  });

  it('unknown key, with a suggestion, on the line of the key', () => {
    const accounts = GOOD_ACCOUNTS + '    limits:\n      calls_per_second: 2\n      calls_per_minut: 10\n';
    const dir = dirWith({ accounts });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'accounts')}:${lineWith(accounts, 'calls_per_minut:')}`,
      message: 'accounts.bob.limits: unknown key "calls_per_minut" (did you mean "calls_per_minute"?)',
    });
  });

  it('bad CIDR', () => {
    const guard =
      'sip:\n  listen: [udp:127.0.0.1:5060]\n  upstream: 127.0.0.1:5080\nhome_country: NZ\n' +
      'allowed_sources:\n  - 127.0.0.0/8\n  - 10.0.0.0/33\n';
    const dir = dirWith({ guard });
    const p = onlyProblem(dir);
    expect(p.at).toBe(`${fileOf(dir, 'guard')}:${lineWith(guard, '10.0.0.0/33')}`);
    expect(p.message).toBe('allowed_sources[1]: expected a prefix length of 0-32 for an IPv4 CIDR, got "10.0.0.0/33"');
  });

  it('CIDR with host bits set suggests both readings', () => {
    const accounts = GOOD_ACCOUNTS + '    allowed_sources: [10.1.2.3/24]\n';
    const p = onlyProblem(dirWith({ accounts }));
    expect(p.message).toContain('write 10.1.2.0/24 for the network, or 10.1.2.3/32');
  });

  it('bad country', () => {
    const guard = fs.readFileSync(path.join(SHIPPED, 'guard.yaml'), 'utf8').replace('home_country: NZ', 'home_country: XX');
    const dir = dirWith({ guard });
    const p = onlyProblem(dir);
    expect(p.at).toBe(`${fileOf(dir, 'guard')}:${lineWith(guard, 'home_country: XX')}`);
    expect(p.message).toMatch(/^home_country: expected a two-letter ISO 3166 country code.*, got "XX"$/);
  });

  it('bad high-risk prefix', () => {
    const highRisk = '- { prefix: "+252", name: Somalia }\n- { prefix: "252", name: Somalia again }\n';
    const dir = dirWith({ highRisk });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'highRisk')}:2`,
      message: '[1].prefix: expected an E.164 prefix: "+" then 1 to 15 digits, in quotes, such as "+252", got "252"',
    });
  });

  it('unquoted high-risk prefix (YAML drops the +)', () => {
    const highRisk = '- { prefix: "+252", name: Somalia }\n- prefix: +53\n  name: Cuba\n';
    const dir = dirWith({ highRisk });
    const p = onlyProblem(dir);
    expect(p.at).toBe(`${fileOf(dir, 'highRisk')}:2`);
    expect(p.message).toContain('write the prefix in quotes with its plus sign, e.g. "+53"');
  });

  it('duplicate key', () => {
    const accounts = GOOD_ACCOUNTS + '  bob:\n    users: [robert]\n';
    const dir = dirWith({ accounts });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'accounts')}:${accounts.split('\n').lastIndexOf('  bob:') + 1}`,
      message: 'duplicate key bob: each key may appear only once in a mapping',
    });
  });

  it('unquoted number with a leading zero', () => {
    const accounts = GOOD_ACCOUNTS + '  carol:\n    users:\n      - carol\n      - 0211234567\n';
    const dir = dirWith({ accounts });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'accounts')}:${lineWith(accounts, '0211234567')}`,
      message:
        'accounts.carol.users[1]: write "0211234567" in quotes: unquoted, YAML reads it as the number 211234567, dropping the leading 0',
    });
  });

  it('unquoted number with a plus sign', () => {
    const accounts = GOOD_ACCOUNTS + '  carol:\n    users: [+6495550123]\n';
    expect(onlyProblem(dirWith({ accounts })).message).toContain('write "+6495550123" in quotes');
  });

  it('missing required key points at its parent mapping', () => {
    const guard = 'sip:\n  listen: [udp:127.0.0.1:5060]\nhome_country: NZ\nallowed_sources: [127.0.0.0/8]\n';
    const dir = dirWith({ guard });
    const p = onlyProblem(dir);
    expect(p.at).toBe(`${fileOf(dir, 'guard')}:1`);
    expect(p.message).toMatch(/^sip: missing required key "upstream"/);
  });

  it('tls listener is reserved', () => {
    const guard = 'sip:\n  listen: [udp:127.0.0.1:5060, tls:127.0.0.1:5061]\n  upstream: 127.0.0.1:5080\nhome_country: NZ\nallowed_sources: [127.0.0.0/8]\n';
    const p = onlyProblem(dirWith({ guard }));
    expect(p.message).toMatch(/^sip\.listen\[1\]: tls: listeners are not supported yet/);
    expect(p.at).toMatch(/guard\.yaml:2$/);
  });

  it('reserved account id', () => {
    const accounts = GOOD_ACCOUNTS + '  _guard:\n    users: [x]\n';
    const dir = dirWith({ accounts });
    expect(onlyProblem(dir)).toEqual({
      at: `${fileOf(dir, 'accounts')}:${lineWith(accounts, '_guard:')}`,
      message: 'accounts._guard: account id "_guard" is reserved: ids starting with "_" are for the guard\'s own use',
    });
  });

  it('missing file, including the high-risk list', () => {
    const dir = dirWith({});
    fs.unlinkSync(fileOf(dir, 'highRisk'));
    const p = onlyProblem(dir);
    expect(p.at).toBe(fileOf(dir, 'highRisk'));
    expect(p.message).toMatch(/^file not found/);
  });

  it('an empty high-risk file is an error that says how to switch the check off', () => {
    const p = onlyProblem(dirWith({ highRisk: '# nothing here\n' }));
    expect(p.message).toContain('the file is empty');
    expect(p.message).toContain('write []');
  });
});

describe('accepted forms', () => {
  it('a bare IP is one host: /32 or /128', () => {
    const accounts = GOOD_ACCOUNTS + '    allowed_sources: [192.0.2.7, "2001:db8::7"]\n';
    const set = loadRuleSet(dirWith({ accounts }));
    expect(set.accounts.accounts.bob.allowed_sources).toEqual(['192.0.2.7/32', '2001:db8::7/128']);
  });

  it('an unquoted number YAML reads losslessly becomes the same digits as a string', () => {
    const accounts = GOOD_ACCOUNTS + '  carol:\n    users: [6495550123]\n';
    const set = loadRuleSet(dirWith({ accounts }));
    expect(set.accounts.accounts.carol.users).toEqual(['6495550123']);
  });

  it('unknown_caller defaults to reject; an explicit empty high-risk list is allowed', () => {
    const guard = 'sip:\n  listen: ["tcp:[::1]:5060"]\n  upstream: tcp:sip-core.example:5060\nhome_country: AU\nallowed_sources: [::/0]\n';
    const set = loadRuleSet(dirWith({ guard, highRisk: '[]\n' }));
    expect(set.guard.unknown_caller).toBe('reject');
    expect(set.guard.sip.listen).toEqual(['tcp:[::1]:5060']);
    expect(set.highRisk).toEqual([]);
  });
});

describe('every problem of every file at once', () => {
  it('reports errors from all three files in one RulesError, sorted by file and line', () => {
    const guard =
      'sip:\n  listen: [udp:127.0.0.1:5060]\n  upstream: 127.0.0.1:99999\nhome_country: nz\nallowed_sources: [127.0.0.0/8]\nunknown_caller: maybe\n';
    const accounts = GOOD_ACCOUNTS + '    limits: { calls_per_minute: 0 }\n    email: nope\n';
    const highRisk = '- { prefix: "+252" }\n';
    const dir = dirWith({ guard, accounts, highRisk });
    let error: RulesError | undefined;
    try {
      loadRuleSet(dir);
    } catch (err) {
      error = err as RulesError;
    }
    expect(error).toBeInstanceOf(RulesError);
    const ats = error!.problems.map((p) => p.at);
    expect(ats).toEqual([
      `${fileOf(dir, 'guard')}:3`,
      `${fileOf(dir, 'guard')}:4`,
      `${fileOf(dir, 'guard')}:6`,
      `${fileOf(dir, 'accounts')}:${lineWith(accounts, 'calls_per_minute: 0')}`,
      `${fileOf(dir, 'accounts')}:${lineWith(accounts, 'email: nope')}`,
      `${fileOf(dir, 'highRisk')}:1`,
    ]);
    expect(error!.problems[1].message).toBe('home_country: write the country code in capitals: NZ, got "nz"');
    expect(error!.problems[5].message).toMatch(/^\[0\]: missing required key "name"/);
    // The thrown message lists every problem, one per line, for logs and the CLI.
    expect(error!.message.split('\n')).toHaveLength(6);
  });

  it('reports a syntax error in one file and schema errors in another together', () => {
    const dir = dirWith({ guard: 'sip: {\n', accounts: GOOD_ACCOUNTS.replace('international: true', 'international: yes') });
    const problems = problemsOf(dir);
    expect(problems.some((p) => p.at.startsWith(fileOf(dir, 'guard')))).toBe(true);
    expect(problems).toContainEqual({
      at: `${fileOf(dir, 'accounts')}:2`,
      message: 'defaults.international: expected true or false, got "yes"',
    });
  });

  it('a missing directory is one clear problem', () => {
    const problems = problemsOf(path.join(SHIPPED, 'no-such-dir'));
    expect(problems).toEqual([{ at: path.join(SHIPPED, 'no-such-dir'), message: 'rules directory not found' }]);
  });
});
