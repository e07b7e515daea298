/**
 * The guard as a carrier runs it: the built CLI (`tollguard serve`) in its own process, real sipp
 * as the trunk customer (UAC) and as the SIP core (UAS). One sipp scenario per expected answer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRulesDir, startGuard, type GuardProcess, type LogLine } from './helpers/guard-process';
import { runSipp, startSippUas, type SippOptions, type SippProcess } from './helpers/sipp';

jest.setTimeout(60_000);

const GUARD = 16060;
const CORE = 16080;
const S = (name: string): string => path.resolve(__dirname, 'scenarios/guard', name);

const GUARD_YAML = `
sip:
  listen: [udp:127.0.0.1:${GUARD}, tcp:127.0.0.1:${GUARD}, "udp:[::1]:${GUARD}"]
  upstream: 127.0.0.1:${CORE}
home_country: NZ
allowed_sources: [127.0.0.1, 127.0.0.10, "::1", 27.111.12.0/24]
unknown_caller: reject
`;
const ACCOUNTS_YAML = `
defaults:
  international: true
  limits: { calls_per_second: 5, calls_per_minute: 60, concurrent_calls: 20 }
accounts:
  acme:
    sources: [127.0.0.10/32]
    email: voip-admin@acme.example
  bob:
    users: [bob, "6495550111"]
    allowed_sources: [127.0.0.0/24]
    international: false
    limits: { calls_per_minute: 10 }
  burst:
    users: [burst]
  v6peer:
    sources: ["::1/128"]
  single:
    users: [single]
    limits: { concurrent_calls: 1 }
`;

let rulesDir: string;
let guard: GuardProcess;
let nextPort = 16100;

beforeAll(async () => {
  rulesDir = makeRulesDir({ guard: GUARD_YAML, accounts: ACCOUNTS_YAML });
  guard = await startGuard(['--rules', rulesDir]);
});

afterAll(async () => {
  const code = await guard?.stop();
  expect(code).toBe(0);
  fs.rmSync(rulesDir, { recursive: true, force: true });
});

/** The SIP core, for one test: answers (or rings) and counts what reached it. */
async function core(scenario = 'uas-core.xml', transport: 'udp' | 'tcp' = 'udp'): Promise<SippProcess> {
  return startSippUas({ scenario: S(scenario), localIp: '127.0.0.1', localPort: CORE, transport, calls: 1000, timeoutMs: 40_000 });
}

interface Call {
  scenario: string;
  dial: string;
  from?: string;
  localIp?: string;
  transport?: 'udp' | 'tcp';
  calls?: number;
  rate?: number;
}

function call(c: Call) {
  const v6 = (c.localIp ?? '').includes(':');
  const host = v6 ? '[::1]' : '127.0.0.1';
  const ruri = c.dial.startsWith('tel:') ? c.dial : `sip:${c.dial}@${host}:${GUARD}`;
  const o: SippOptions = {
    scenario: S(c.scenario),
    remote: `${host}:${GUARD}`,
    localIp: c.localIp ?? '127.0.0.1',
    localPort: nextPort++,
    transport: c.transport ?? 'udp',
    calls: c.calls ?? 1,
    rate: c.rate ?? 10,
    timeoutMs: 20_000,
    keys: { ruri, from_user: c.from ?? 'someone' },
  };
  return runSipp(o);
}

/** The guard's decision lines logged after the first `since` of them, once `count` have arrived. */
function decisionsSince(since: number, count = 1): Promise<LogLine[]> {
  return guard.decisionsAfter(since, count);
}

describe('an allowed call', () => {
  it('completes through the guard: INVITE, 200, ACK, BYE, and is logged with account and E.164 number', async () => {
    const uas = await core();
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-answered.xml', dial: '095550111', localIp: '127.0.0.10' });
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0);
    expect(r.stats.successful).toBe(1);
    expect(coreSide.stats.successful).toBe(1); // the core saw INVITE, ACK and BYE
    const [d] = await decisionsSince(before);
    expect(d).toMatchObject({ account: 'acme', source: '127.0.0.10', dialled: '095550111', normalised: '+6495550111', verdict: 'allow', rule: 'allow' });
    expect(typeof d.us).toBe('number');
  });

  it('completes over TCP', async () => {
    const uas = await core();
    const r = await call({ scenario: 'uac-answered.xml', dial: '095550111', localIp: '127.0.0.10', transport: 'tcp' });
    const coreSide = await uas.stop();
    expect(r.stats.successful).toBe(1);
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.successful).toBe(1);
  });

  it('completes from IPv6 ::1 (attributed by source to a peering account)', async () => {
    const uas = await core();
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-answered.xml', dial: '095550111', localIp: '::1' });
    const coreSide = await uas.stop();
    expect(r.stats.successful).toBe(1);
    expect(coreSide.stats.successful).toBe(1);
    expect((await decisionsSince(before))[0]).toMatchObject({ account: 'v6peer', source: '::1', verdict: 'allow' });
  });
});

describe('source check', () => {
  it('answers 403 to a source outside allowed_sources (sipp bound to 127.0.0.2), and the core never sees it', async () => {
    const uas = await core();
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-expect-403.xml', dial: '095550111', localIp: '127.0.0.2' });
    const coreSide = await uas.stop();
    expect(r.stats.successful).toBe(1);
    expect(r.stats.failed).toBe(0);
    expect(coreSide.stats.created).toBe(0);
    expect((await decisionsSince(before))[0]).toMatchObject({ source: '127.0.0.2', verdict: 'reject', status: 403, rule: 'source' });
  });
});

describe('high-risk destinations', () => {
  it.each([
    ['+252612345678', 'E.164 with +'],
    ['00252612345678', 'NZ international prefix'],
    ['00-252-61-234-5678', 'visual separators'],
    ['tel:+252-61-234-5678', 'a tel: URI'],
    ['612345678;phone-context=+252', 'a local number with a global phone-context'],
    ['+8821234567', 'international networks (+882)'],
    ['0018765550123', 'Jamaica, which needs the +1 area code to tell from the US'],
  ])('rejects %s (%s) with 403 naming the rule', async (dial) => {
    const uas = await core();
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-expect-403.xml', dial, localIp: '127.0.0.10' });
    const coreSide = await uas.stop();
    expect({ ok: r.stats.successful, failed: r.stats.failed }).toEqual({ ok: 1, failed: 0 });
    expect(coreSide.stats.created).toBe(0);
    const d = (await decisionsSince(before))[0];
    expect(d).toMatchObject({ account: 'acme', verdict: 'reject', status: 403, rule: 'high_risk', international: true });
    expect(String(d.normalised)).toMatch(/^\+(252|882|1876)/);
  });

  it('forwards a domestic number dialled in national format', async () => {
    const uas = await core();
    const r = await call({ scenario: 'uac-answered.xml', dial: '021 555 0123'.replace(/ /g, ''), localIp: '127.0.0.10' });
    const coreSide = await uas.stop();
    expect(r.stats.successful).toBe(1);
    expect(coreSide.stats.successful).toBe(1);
  });

  it('answers 484 to a dialled string that is not a number', async () => {
    const r = await call({ scenario: 'uac-expect-484.xml', dial: '00252abc', localIp: '127.0.0.10' });
    expect(r.stats.successful).toBe(1);
  });
});

describe('an account without international calling (bob)', () => {
  it('cannot call abroad: 403 international', async () => {
    const uas = await core();
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-expect-403.xml', dial: '0061212345678', from: 'bob' });
    const coreSide = await uas.stop();
    expect(r.stats.successful).toBe(1);
    expect(coreSide.stats.created).toBe(0);
    expect((await decisionsSince(before))[0]).toMatchObject({ account: 'bob', normalised: '+61212345678', rule: 'international', status: 403 });
  });

  it('still completes a domestic call', async () => {
    const uas = await core();
    const r = await call({ scenario: 'uac-answered.xml', dial: '095550111', from: 'bob' });
    const coreSide = await uas.stop();
    expect(r.stats.successful).toBe(1);
    expect(coreSide.stats.successful).toBe(1);
  });

  it('is recognised by its calling number too', async () => {
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-expect-403.xml', dial: '+61212345678', from: '6495550111' });
    expect(r.stats.successful).toBe(1);
    expect((await decisionsSince(before))[0]).toMatchObject({ account: 'bob', rule: 'international' });
  });

  it('an unknown caller is rejected (unknown_caller: reject)', async () => {
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-expect-403.xml', dial: '095550111', from: 'mallory' });
    expect(r.stats.successful).toBe(1);
    expect((await decisionsSince(before))[0]).toMatchObject({ rule: 'unknown_caller', status: 403 });
  });
});

describe('rate limits', () => {
  it('a burst of 20 calls in one instant against calls_per_second 5 gets exactly 15 answers of 503', async () => {
    const uas = await core();
    const before = guard.decisions().length;
    const r = await call({ scenario: 'uac-answered-or-503.xml', dial: '095550111', from: 'burst', calls: 20, rate: 1000 });
    const coreSide = await uas.stop();
    expect(r.stats.failed).toBe(0);
    expect(r.stats.successful).toBe(20);
    const ds = await decisionsSince(before, 20);
    expect(ds.filter((d) => d.status === 503 && d.rule === 'calls_per_second')).toHaveLength(15);
    expect(ds.filter((d) => d.verdict === 'allow')).toHaveLength(5);
    expect(coreSide.stats.successful).toBe(5);
  });
});

describe('CANCEL before answer', () => {
  it('reaches the core, which ends the INVITE with 487; the concurrent slot is given back', async () => {
    const ringing = await core('uas-core-rings.xml');
    const r = await call({ scenario: 'uac-cancel.xml', dial: '095550111', from: 'single' });
    const coreSide = await ringing.stop();
    expect(r.stats.successful).toBe(1);
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.successful).toBe(1);

    // 'single' may hold one call at a time: had the cancelled call kept its slot, this would get 503.
    const uas = await core();
    const next = await call({ scenario: 'uac-answered.xml', dial: '095550111', from: 'single' });
    await uas.stop();
    expect(next.stats.successful).toBe(1);
  });

  it('a second concurrent call over concurrent_calls gets 503 while the first is up', async () => {
    const ringing = await core('uas-core-rings.xml');
    const first = call({ scenario: 'uac-cancel.xml', dial: '095550111', from: 'single' });
    await new Promise((r) => setTimeout(r, 300));
    const before = guard.decisions().length;
    const second = await call({ scenario: 'uac-expect-503.xml', dial: '095550111', from: 'single' });
    expect(second.stats.successful).toBe(1);
    expect((await first).stats.successful).toBe(1);
    await ringing.stop();
    expect((await decisionsSince(before))[0]).toMatchObject({ account: 'single', rule: 'concurrent_calls', status: 503 });
  });
});

describe('rule reloads', () => {
  it('a broken rule file is rejected with file:line and the previous rules keep working; a good edit takes effect', async () => {
    const accounts = path.join(rulesDir, 'accounts.yaml');
    const good = fs.readFileSync(accounts, 'utf8');
    fs.writeFileSync(accounts, good.replace('calls_per_minute: 10 }', 'calls_per_minute: ten }'));
    const rejected = await guard.waitForLog((l) => /rules rejected/.test(String(l.message)));
    expect(JSON.stringify(rejected)).toMatch(/accounts\.yaml:\d+/);

    // Old rules still in force: high-risk still refused, domestic still forwarded.
    const uas = await core();
    const refused = await call({ scenario: 'uac-expect-403.xml', dial: '00252612345678', localIp: '127.0.0.10' });
    const allowed = await call({ scenario: 'uac-answered.xml', dial: '095550111', localIp: '127.0.0.10' });
    const coreSide = await uas.stop();
    expect(refused.stats.successful).toBe(1);
    expect(allowed.stats.successful).toBe(1);
    expect(coreSide.stats.successful).toBe(1);

    // A good edit: acme may no longer call abroad.
    const reloadsBefore = guard.logs.filter((l) => /rules reloaded/.test(String(l.message))).length;
    fs.writeFileSync(accounts, good.replace('email: voip-admin@acme.example', 'email: voip-admin@acme.example\n    international: false'));
    await guard.waitForLog((l) => /rules reloaded/.test(String(l.message)) && guard.logs.filter((x) => /rules reloaded/.test(String(x.message))).length > reloadsBefore);
    const before = guard.decisions().length;
    const now = await call({ scenario: 'uac-expect-403.xml', dial: '0061212345678', localIp: '127.0.0.10' });
    expect(now.stats.successful).toBe(1);
    expect((await decisionsSince(before))[0]).toMatchObject({ account: 'acme', rule: 'international' });
    fs.writeFileSync(accounts, good);
  });
});

afterAll(() => {
  // Never let a failing test leave a description-less sipp failure: print the guard's stderr.
  if (guard?.stderr()) process.stderr.write(guard.stderr());
});


describe('the SIP core itself', () => {
  it('may hang up a call even though its address is not among the customers\' allowed_sources', async () => {
    const dir = makeRulesDir({
      guard: `
sip:
  listen: [udp:127.0.0.1:16160]
  upstream: 127.0.0.3:16180
home_country: NZ
allowed_sources: [127.0.0.1]
`,
      accounts: 'accounts:\n  caller:\n    users: [caller]\n',
    });
    const g = await startGuard(['--rules', dir]);
    try {
      const uas = await startSippUas({ scenario: path.resolve(__dirname, 'scenarios/uas-answer-then-bye.xml'), localIp: '127.0.0.3', localPort: 16180, calls: 1, timeoutMs: 20_000 });
      const r = await runSipp({
        scenario: path.resolve(__dirname, 'scenarios/uac-call-remote-bye.xml'),
        remote: '127.0.0.1:16160',
        localIp: '127.0.0.1',
        localPort: nextPort++,
        service: '095550111',
        calls: 1,
        timeoutMs: 20_000,
      });
      const coreSide = await uas.stop();
      expect(r.stats.successful).toBe(1);
      expect(coreSide.stats.successful).toBe(1);
      expect(g.decisions().filter((d) => d.rule === 'source')).toHaveLength(0);
    } finally {
      expect(await g.stop()).toBe(0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('UDP I/O layer', () => {
  it('the guard runs its UDP sockets on the native batch addon (Linux, built at install)', async () => {
    const line = await guard.waitForLog((l) => l.message === 'sip proxy listening');
    expect(line.udpIo).toBe('batch');
  });

  it('with sip.udp_io: dgram the same calls work on node:dgram: IPv4 and IPv6 answered, a 403 from outside allowed_sources', async () => {
    const port = 16260;
    const corePort = 16280;
    const dir = makeRulesDir({
      guard: `
sip:
  listen: [udp:127.0.0.1:${port}, "udp:[::1]:${port}"]
  upstream: 127.0.0.1:${corePort}
  udp_io: dgram
home_country: NZ
allowed_sources: [127.0.0.1, "::1"]
`,
      accounts: 'accounts:\n  any:\n    sources: [127.0.0.1/32, "::1/128"]\n',
    });
    const g = await startGuard(['--rules', dir]);
    try {
      expect((await g.waitForLog((l) => l.message === 'sip proxy listening')).udpIo).toBe('dgram');
      const uas = await startSippUas({ scenario: S('uas-core.xml'), localIp: '127.0.0.1', localPort: corePort, calls: 1000, timeoutMs: 30_000 });
      const dial = (localIp: string, scenario: string) => {
        const host = localIp.includes(':') ? '[::1]' : '127.0.0.1';
        return runSipp({
          scenario: S(scenario), remote: `${host}:${port}`, localIp, localPort: nextPort++, calls: 1, rate: 10, timeoutMs: 20_000,
          keys: { ruri: `sip:095550111@${host}:${port}`, from_user: 'someone' },
        });
      };
      const v4 = await dial('127.0.0.1', 'uac-answered.xml');
      const v6 = await dial('::1', 'uac-answered.xml');
      const outside = await dial('127.0.0.2', 'uac-expect-403.xml');
      const coreSide = await uas.stop();
      expect([v4.stats.successful, v6.stats.successful, outside.stats.successful]).toEqual([1, 1, 1]);
      expect(coreSide.stats.successful).toBe(2);
      expect(g.decisions().map((d) => d.verdict)).toEqual(['allow', 'allow', 'reject']);
    } finally {
      expect(await g.stop()).toBe(0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
