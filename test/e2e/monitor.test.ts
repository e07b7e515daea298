/**
 * The fraud monitor as a carrier runs it: the built guard in its own process, sipp as the
 * compromised customer's PBX and as the SIP core, a real SMTP server (npm smtp-server) receiving
 * the notification emails, a local HTTP server receiving the webhook, and the CLI on the same
 * SQLite file. The tests run in order: they follow one incident from the first fraudulent call
 * to the unblock.
 *
 * Only loopback ports 18000-18499 are used (sipp's media ports included).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { makeRulesDir, startGuard, type GuardProcess, type LogLine } from './helpers/guard-process';
import { runSipp, startSippUas, type SippOptions, type SippProcess, type SippResult } from './helpers/sipp';

jest.setTimeout(90_000);

const ROOT = path.resolve(__dirname, '../..');
const GUARD = 18060;
const CORE = 18080;
const SMTP = 18025;
const HOOK = 18090;
const ADMIN = 18070;
let nextPort = 18100;
let nextMedia = 18300;
const S = (name: string): string => path.resolve(__dirname, 'scenarios', name);

/** An Etc/GMT zone in which it is now about 03:00, so the attack happens "at night" for the account. */
function nightZone(): string {
  let offset = (3 - new Date().getUTCHours() + 24) % 24;
  if (offset > 14) offset -= 24;
  return offset === 0 ? 'Etc/GMT' : offset > 0 ? `Etc/GMT-${offset}` : `Etc/GMT+${-offset}`;
}

const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-monitor-'));
const GUARD_YAML = `
sip:
  listen: [udp:127.0.0.1:${GUARD}]
  upstream: 127.0.0.1:${CORE}
home_country: NZ
allowed_sources: [127.0.0.1]
unknown_caller: reject
store: { path: ${path.join(stateDir, 'tollguard.db')} }
notify:
  smtp: { host: 127.0.0.1, port: ${SMTP} }
  from: tollguard@carrier.example
  noc: noc@carrier.example
  webhook_url: http://127.0.0.1:${HOOK}/tickets
  support: support@carrier.example
admin_api: { listen: 127.0.0.1:${ADMIN} }
`;
const ACCOUNTS_YAML = `
defaults:
  international: true
accounts:
  victim:
    users: [victim]
    email: pbx-admin@victim.example
  misdialer:
    users: [misdialer]
    email: office@misdialer.example
`;
// The block must come from the third high-risk attempt; the other rules are set out of its way.
const MONITOR_YAML = `
defaults:
  intl_per_minute: { warning: 6, critical: 10 }
  high_risk_attempts: { window_minutes: 60, warning: 2, critical: 3 }
  new_country: { warning: 3, critical: 8 }
  distinct_destinations: { warning: 6, critical: 10 }
  off_hours: { warning: 2, critical: 6 }
accounts:
  victim:
    timezone: ${nightZone()}
`;

interface Mail {
  from: string;
  to: string[];
  data: string;
}
const mails: Mail[] = [];
const hooks: Array<Record<string, unknown>> = [];
let smtp: SMTPServer;
let hookServer: http.Server;
let rulesDir: string;
let guard: GuardProcess;
let core: SippProcess;

function media(): number {
  const p = nextMedia;
  nextMedia += 4;
  return p;
}

function sippCall(scenario: string, from: string, dial: string, extra: Partial<SippOptions> = {}): SippOptions {
  return {
    scenario: S(scenario),
    remote: `127.0.0.1:${GUARD}`,
    localIp: '127.0.0.1',
    localPort: nextPort++,
    mediaPort: media(),
    calls: 1,
    rate: 10,
    timeoutMs: 20_000,
    keys: { ruri: `sip:${dial}@127.0.0.1:${GUARD}`, from_user: from },
    ...extra,
  };
}

const cli = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), ...args, '--rules', rulesDir], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });

const decisionsOf = (account: string): LogLine[] => guard.decisions().filter((d) => d.account === account);

/** The guard's next decision line after a call (lines go out after the SIP answer: wait for it). */
async function nextDecision(since: number): Promise<LogLine> {
  return (await guard.decisionsAfter(since)).at(-1)!;
}

async function until<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const blockMails = (): Mail[] => mails.filter((m) => /^Subject: International toll block applied to account victim/m.test(m.data));

beforeAll(async () => {
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      let data = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => (data += c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
        mails.push({ from, to: session.envelope.rcptTo.map((r) => r.address), data });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(SMTP, '127.0.0.1', resolve));
  hookServer = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      hooks.push({ path: req.url, contentType: req.headers['content-type'], ...(JSON.parse(body) as Record<string, unknown>) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(HOOK, '127.0.0.1', resolve));

  rulesDir = makeRulesDir({ guard: GUARD_YAML, accounts: ACCOUNTS_YAML });
  fs.writeFileSync(path.join(rulesDir, 'monitor.yaml'), MONITOR_YAML);
  guard = await startGuard(['--rules', rulesDir]);
  core = await startSippUas({ scenario: S('guard/uas-core.xml'), localIp: '127.0.0.1', localPort: CORE, mediaPort: media(), calls: 1000, timeoutMs: 85_000, traceMessages: true });
});

afterAll(async () => {
  await guard?.stop();
  await core?.stop();
  await new Promise<void>((resolve) => (smtp ? smtp.close(() => resolve()) : resolve()));
  await new Promise<void>((resolve) => (hookServer ? hookServer.close(() => resolve()) : resolve()));
  fs.rmSync(rulesDir, { recursive: true, force: true });
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('a single misdial', () => {
  it('is refused as a possible misdial and does not block the account', async () => {
    const since = guard.decisions().length;
    const r = await runSipp(sippCall('guard/uac-expect-403.xml', 'misdialer', '00252612345'));
    expect(r.stats.successful).toBe(1);
    await guard.decisionsAfter(since);
    const [d] = decisionsOf('misdialer');
    expect(d).toMatchObject({ rule: 'high_risk', status: 403, normalised: '+252612345' });
    expect(String(d.detail)).toMatch(/^possible misdial of 0252612345: high-risk destination \+252 Somalia/);
    await guard.waitForLog((l) => l.message === 'fraud finding' && l.account === 'misdialer' && l.rule === 'possible_misdial');
    // The same kind of call a second later is still judged as a fresh, unblocked account would be.
    await new Promise((r) => setTimeout(r, 500));
    expect(guard.logs.some((l) => l.message === 'toll block applied' && l.account === 'misdialer')).toBe(false);
    expect(cli('status', 'misdialer').stdout).toMatch(/^misdialer: not blocked/);
  });
});

describe('a compromised account pumping international calls at night', () => {
  let liveCall: SippProcess;
  let liveCallId = '';
  let pump: SippResult;

  it('is blocked at its third high-risk attempt (its fifth international call); later international calls get the toll-block answer', async () => {
    // A long call to Australia is up when the attack starts.
    liveCall = await startSippUas(sippCall('monitor/uac-wait-bye.xml', 'victim', '0061299990000', { timeoutMs: 40_000, traceMessages: true }));
    await until('the live call to be answered', () => (guard.logs.some((l) => l.message === 'decision' && l.account === 'victim') ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));

    const inf = path.join(stateDir, 'pump.csv');
    const burst = ['00449098790123', '0025261234567', '00882161234567', '0018765550123', '00449098790124', '0061299990001'];
    fs.writeFileSync(inf, ['SEQUENTIAL', ...burst.map((n) => `${n};`)].join('\n') + '\n');
    const beforePump = guard.decisions().length;
    pump = await runSipp(
      sippCall('monitor/uac-pump.xml', 'victim', '', { calls: burst.length, rate: 5, limit: 1, args: ['-inf', inf], traceMessages: true }),
    );
    expect(pump.stats.successful).toBe(burst.length);
    await guard.decisionsAfter(beforePump, burst.length);

    const d = decisionsOf('victim');
    liveCallId = String(d[0].callId);
    expect(d.map((x) => [x.normalised, x.rule])).toEqual([
      ['+61299990000', 'allow'], // the live call
      ['+449098790123', 'allow'], // premium rate, not on the high-risk list
      ['+25261234567', 'high_risk'],
      ['+882161234567', 'high_risk'],
      ['+18765550123', 'high_risk'], // third high-risk attempt: critical
      ['+449098790124', 'toll_block'],
      ['+61299990001', 'toll_block'],
    ]);
    const block = await guard.waitForLog((l) => l.message === 'toll block applied' && l.account === 'victim');
    expect(block).toMatchObject({ by: 'monitor', rule: 'high_risk_attempts', value: 3, threshold: 3, callId: d[4].callId });
    expect(guard.logs.filter((l) => l.message === 'toll block applied' && l.account === 'victim')).toHaveLength(1);
    // The answer a blocked account gets: 403 International Calls Blocked, X-Reason toll_block.
    expect(pump.messages).toMatch(/SIP\/2\.0 403 International Calls Blocked[\s\S]*X-Reason: toll_block/);
  });

  it('tears down the live international call: both sides get a BYE', async () => {
    const caller = await liveCall.done;
    expect(caller.stats.successful).toBe(1);
    const bye = caller.messages.split(/-{10,}/).find((m) => /^\s*BYE sip:/m.test(m)) ?? '';
    expect(bye).toMatch(/Reason: SIP;cause=403;text="international toll block"/);
    expect(bye).toContain(`Call-ID: ${liveCallId}`);
    await guard.waitForLog((l) => l.message === 'live international calls ended' && l.account === 'victim' && l.calls === 1);
    // The core's side of the same call is checked at the end, once its sipp has stopped.
  });

  it('sends exactly one email for the block, to the holder and the NOC, saying what happened and what to do', async () => {
    const [mail] = await until('the block email', () => (blockMails().length > 0 ? blockMails() : undefined));
    await new Promise((r) => setTimeout(r, 1500)); // later calls and retries must not send another
    expect(blockMails()).toHaveLength(1);
    expect(mail.from).toBe('tollguard@carrier.example');
    expect(mail.to.sort()).toEqual(['noc@carrier.example', 'pbx-admin@victim.example']);
    const text = mail.data.replace(/=\r?\n/g, '');
    expect(text).toMatch(/^To: pbx-admin@victim\.example/m);
    expect(text).toMatch(/^Cc: noc@carrier\.example/m);
    expect(text).toContain('An international toll block has been applied to account victim.');
    expect(text).toMatch(/Rule: +high_risk_attempts \(3 against a critical level of 3\)/);
    for (const n of ['+18765550123', '+882161234567', '+25261234567', '+449098790123']) expect(text).toContain(n);
    expect(text).toContain('Reset the SIP password');
    expect(text).toContain('Secure your network');
    expect(text).toContain('support@carrier.example');
    // Warnings before the block went to the NOC only.
    expect(mails.some((m) => /^Subject: Fraud warning: account victim/m.test(m.data) && m.to.join() === 'noc@carrier.example')).toBe(true);
  });

  it('posts the block to the webhook as JSON', async () => {
    const hook = await until('the webhook', () => hooks.find((h) => h.event === 'toll_block'));
    expect(hook).toMatchObject({ path: '/tickets', contentType: 'application/json', account: 'victim', rule: 'high_risk_attempts', by: 'monitor', value: 3 });
    expect(hook.destinations).toEqual(expect.arrayContaining(['+18765550123', '+25261234567']));
    expect(hooks.filter((h) => h.event === 'toll_block')).toHaveLength(1);
  });

  it('still completes domestic calls from the blocked account', async () => {
    const since = guard.decisions().length;
    const r = await runSipp(sippCall('guard/uac-answered.xml', 'victim', '095550111'));
    expect(r.stats.successful).toBe(1);
    expect(await nextDecision(since)).toMatchObject({ normalised: '+6495550111', rule: 'allow' });
  });

  it('keeps the block after kill -9 and a restart', async () => {
    guard.child.kill('SIGKILL');
    await new Promise((r) => guard.child.once('exit', r));
    guard = await startGuard(['--rules', rulesDir]);
    expect(guard.logs.find((l) => l.message === 'toll blocks loaded')).toMatchObject({ count: 1, accounts: ['victim'] });
    const since = guard.decisions().length;
    const r = await runSipp(sippCall('guard/uac-expect-403.xml', 'victim', '0061299990002'));
    expect(r.stats.successful).toBe(1);
    expect(await nextDecision(since)).toMatchObject({ rule: 'toll_block', status: 403 });
    expect(cli('status', 'victim').stdout).toMatch(/^victim: BLOCKED \(international\) since .* by monitor, rule high_risk_attempts/);
  });

  it('refuses to unblock before a password reset, and unblocks after one; the guard follows within a second', async () => {
    const refused = cli('unblock', 'victim', '--by', 'alice');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/Refused: account victim was blocked at .* no SIP password reset has been recorded since/);

    const reset = cli('password-reset', 'victim', '--by', 'helpdesk');
    expect(reset.status).toBe(0);
    const ok = cli('unblock', 'victim', '--by', 'alice');
    const committed = Date.now(); // the CLI has exited: its change is in the database
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    await guard.waitForLog((l) => l.message === 'toll block lifted' && l.account === 'victim', 3000);
    expect(Date.now() - committed).toBeLessThan(1000); // the guard polls every 250 ms

    const since = guard.decisions().length;
    const r = await runSipp(sippCall('guard/uac-answered.xml', 'victim', '0061299990003'));
    expect(r.stats.successful).toBe(1);
    expect(await nextDecision(since)).toMatchObject({ normalised: '+61299990003', rule: 'allow' });

    const status = cli('status', 'victim').stdout;
    expect(status).toMatch(/^victim: not blocked/);
    expect(status).toMatch(/unblock by alice/);
    expect(status).toMatch(/password_reset by cli:helpdesk/);
  });

  it('a block by hand (CLI) reaches the running guard within a second and is emailed; the admin API records a password reset and unblocks', async () => {
    const blocked = cli('block', 'victim', '--reason', 'customer reported a stolen desk phone', '--by', 'ops');
    const committed = Date.now();
    expect(blocked.status).toBe(0);
    await guard.waitForLog((l) => l.message === 'toll block applied' && l.account === 'victim' && l.by === 'ops', 3000);
    expect(Date.now() - committed).toBeLessThan(1000);
    const since = guard.decisions().length;
    const r = await runSipp(sippCall('guard/uac-expect-403.xml', 'victim', '0061299990004'));
    expect(r.stats.successful).toBe(1);
    expect(await nextDecision(since)).toMatchObject({ rule: 'toll_block' });
    const mail = await until('the email for the block by hand', () => mails.find((m) => m.data.includes('customer reported a stolen desk phone')));
    expect(mail.to.sort()).toEqual(['noc@carrier.example', 'pbx-admin@victim.example']);

    const api = (method: string, p: string, body?: unknown) =>
      fetch(`http://127.0.0.1:${ADMIN}${p}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const refused = await api('POST', '/accounts/victim/unblock', { by: 'portal' });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error: string }).error).toMatch(/^Refused: account victim was blocked at/);
    expect((await api('POST', '/accounts/victim/password-reset', { by: 'portal' })).status).toBe(200);
    expect((await api('POST', '/accounts/victim/unblock', { by: 'portal' })).status).toBe(200);
    await guard.waitForLog((l) => l.message === 'toll block lifted' && l.account === 'victim' && guard.logs.indexOf(l) > guard.logs.findIndex((x) => x.by === 'ops'), 3000);
    const state = (await (await api('GET', '/accounts/victim')).json()) as { block: unknown; audit: Array<{ action: string; actor: string }> };
    expect(state.block).toBeNull();
    expect(state.audit.slice(0, 3).map((a) => `${a.action} ${a.actor}`)).toEqual(['unblock api:portal', 'password_reset api:portal', 'block cli:ops']);
    expect((await api('GET', '/accounts/nobody')).status).toBe(404);
  });

  it('ended the core\'s side of the live international call with a BYE as well', async () => {
    const r = await core.stop();
    const byes = r.messages.split(/-{10,}/).filter((m) => /^\s*BYE sip:/m.test(m) && m.includes(`Call-ID: ${liveCallId}`));
    expect(byes).toHaveLength(1);
    expect(byes[0]).toMatch(/Reason: SIP;cause=403;text="international toll block"/);
  });
});
