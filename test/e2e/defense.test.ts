/**
 * The attack-source defense against real attack tools: the built guard (`tollguard serve`) in its
 * own process, Debian's sipvicious (svmap, svwar, svcrack) and sipp as attackers and customers,
 * Kamailio as a registrar that really checks digest passwords, and a local HTTP server as the
 * APIBAN feed. Every attacker sits on a loopback address of its own (127.0.0.x), so each test
 * also shows that a ban covers only the offending address.
 *
 * Ports: 18500-18999 only (guard 18500, registrar/core 18590-18591, feed 18550, clients 18600+).
 */
import { spawn, spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRulesDir, startGuard, type GuardProcess, type LogLine } from './helpers/guard-process';
import { runSipp, startSippUas, describeRun, type SippProcess } from './helpers/sipp';

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '../..');
const GUARD = 18500;
const FEED = 18550;
const REGISTRAR = 18590;
const CORE = 18591;
const SV_BIND = path.join(__dirname, 'fixtures/sv-bind.py');
/** The interpreter Debian's sipvicious is installed for (its scripts' #! line), not whatever python3 is first on PATH. */
const SV_PYTHON = (() => {
  const tool = spawnSync('sh', ['-c', 'command -v svwar'], { encoding: 'utf8' }).stdout.trim();
  const shebang = tool ? fs.readFileSync(tool, 'utf8').split('\n')[0] : '';
  return shebang.startsWith('#!') ? shebang.slice(2).trim() : 'python3';
})();
const SHIPPED_FINGERPRINTS = fs.readFileSync(path.join(ROOT, 'rules/scanner-fingerprints.yaml'), 'utf8');
let nextPort = 18600;
const port = (): number => nextPort++;

// ---------------------------------------------------------------------------------------------
// Harness

interface DefenseRules {
  upstream: number;
  allowed?: string;
  accounts?: string;
  defense: string;
  fingerprints?: string;
  blocklist?: string;
}

function rulesDir(r: DefenseRules): { dir: string; db: string } {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-state-'));
  const db = path.join(state, 'tollguard.db');
  const dir = makeRulesDir({
    guard: `
sip:
  listen: [udp:127.0.0.1:${GUARD}]
  upstream: 127.0.0.1:${r.upstream}
home_country: NZ
allowed_sources: ${r.allowed ?? '[127.0.0.0/24]'}
unknown_caller: reject
log: { decisions: rejects }
store: { path: ${db} }
`,
    accounts: r.accounts ?? 'accounts:\n  legit:\n    sources: [127.0.0.41/32]\n',
  });
  fs.writeFileSync(path.join(dir, 'defense.yaml'), r.defense);
  fs.writeFileSync(path.join(dir, 'scanner-fingerprints.yaml'), r.fingerprints ?? SHIPPED_FINGERPRINTS);
  if (r.blocklist !== undefined) fs.writeFileSync(path.join(dir, 'blocklist.txt'), r.blocklist);
  return { dir, db };
}

const bansOf = (g: GuardProcess, address?: string): LogLine[] =>
  g.logs.filter((l) => l.message === 'source banned' && (address === undefined || l.address === address));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
}

/** Runs a command to completion with a hard time limit; returns its exit code and all output. */
function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const kill = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(kill);
      resolve({ code, out });
    });
  });
}

function udpBound(p: number): boolean {
  const hex = p.toString(16).toUpperCase().padStart(4, '0');
  return fs.readFileSync('/proc/net/udp', 'utf8').split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`));
}

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Kamailio as a registrar: user 1001, password s3cret; unknown users get 404. */
async function startRegistrar(): Promise<{ lines: () => string[]; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kamailio-'));
  const cfg = fs
    .readFileSync(path.join(__dirname, 'fixtures/kamailio-registrar.cfg'), 'utf8')
    .replace(/\{\{PORT\}\}/g, String(REGISTRAR))
    .replace(/\{\{USER\}\}/g, '1001')
    .replace(/\{\{PASSWORD\}\}/g, 's3cret');
  fs.writeFileSync(path.join(dir, 'kamailio.cfg'), cfg);
  const child = spawn('kamailio', ['-f', path.join(dir, 'kamailio.cfg'), '-DD', '-E', '-Y', dir, '-P', path.join(dir, 'pid'), '-w', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  await until('kamailio to bind its port', () => udpBound(REGISTRAR) || child.exitCode !== null, 10_000);
  if (child.exitCode !== null) throw new Error(`kamailio exited: ${log}`);
  return {
    lines: () => log.split('\n').filter((l) => l.includes('REGISTRAR ')),
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * One OPTIONS to the guard itself from `fromIp` (answered 200 locally when let in). Resolves with
 * the status line, or null when nothing came back within `waitMs`: the silent drop.
 */
function probe(fromIp: string, userAgent = 'Yealink SIP-T46S', waitMs = 700): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const p = port();
    const done = (v: string | null): void => {
      clearTimeout(timer);
      sock.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), waitMs);
    sock.on('error', reject);
    sock.on('message', (m) => done(m.toString().split('\r\n')[0]));
    sock.bind(p, fromIp, () => {
      const msg = [
        `OPTIONS sip:127.0.0.1:${GUARD} SIP/2.0`,
        `Via: SIP/2.0/UDP ${fromIp}:${p};branch=z9hG4bK-${Math.random().toString(36).slice(2)}`,
        'Max-Forwards: 70',
        `From: <sip:probe@${fromIp}>;tag=${Math.random().toString(36).slice(2)}`,
        `To: <sip:127.0.0.1:${GUARD}>`,
        `Call-ID: probe-${Math.random().toString(36).slice(2)}`,
        'CSeq: 1 OPTIONS',
        `User-Agent: ${userAgent}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      sock.send(msg, GUARD, '127.0.0.1');
    });
  });
}

const DEFENSE = `
flood:
  window_seconds: 2
  limits: { default: 100, INVITE: 40, REGISTER: 40 }
auth_failures:
  per_source: { max: 5, window_seconds: 300 }
  not_found: { max: 5, window_seconds: 300 }
  per_user: { max: 20, window_seconds: 3600, sources: 3 }
scanners: { ban_seconds: 3600 }
bans: { durations_seconds: [300, 3600, 86400] }
`;

// ---------------------------------------------------------------------------------------------

describe('SIPVicious against the guard, Kamailio checking passwords behind it', () => {
  let registrar: Awaited<ReturnType<typeof startRegistrar>>;
  let guard: GuardProcess;
  let guardNoFingerprints: GuardProcess | undefined;

  beforeAll(async () => {
    registrar = await startRegistrar();
  });
  afterAll(async () => {
    await guard?.stop();
    await guardNoFingerprints?.stop();
    await registrar?.stop();
  });

  it('the registrar alone gives svcrack the password and svwar the extension (the tools work)', async () => {
    const crack = await run(SV_PYTHON, [SV_BIND, '127.0.0.30', 'svcrack', '-u', '1001', '-d', wordlist(3), '-p', String(REGISTRAR), '-P', String(port()), '-x', '127.0.0.30', '127.0.0.1'], 30_000);
    expect(crack.out).toMatch(/1001\s*\|\s*s3cret/);
    const war = await run(SV_PYTHON, [SV_BIND, '127.0.0.30', 'svwar', '-e', '1000-1002', '-p', String(REGISTRAR), '-P', String(port()), '-x', '127.0.0.30', '127.0.0.1'], 30_000);
    expect(war.out).toMatch(/1001\s*\|\s*reqauth/);
  });

  describe('with the shipped scanner fingerprints', () => {
    beforeAll(async () => {
      guard = await startGuard(['--rules', rulesDir({ upstream: REGISTRAR, defense: DEFENSE }).dir]);
    });

    it("svmap's scan (OPTIONS, User-Agent friendly-scanner) gets no answer and its source is banned", async () => {
      const r = await run('svmap', ['-p', String(GUARD), '-b', '127.0.0.31', '-P', String(port()), '127.0.0.1'], 30_000);
      expect(r.out).toMatch(/found nothing/);
      expect(r.out).not.toMatch(new RegExp(`127\\.0\\.0\\.1:${GUARD}`));
      const [ban] = bansOf(guard, '127.0.0.31');
      expect(ban).toMatchObject({ reason: 'scanner', evidence: { fingerprint: 'sipvicious', userAgent: 'friendly-scanner', method: 'OPTIONS' } });
      expect(await probe('127.0.0.31')).toBeNull(); // even a polite request from there is dropped now
      expect(await probe('127.0.0.39')).toMatch(/^SIP\/2\.0 200/); // and only that address is
    });

    it('svwar enumerates no extension: its first REGISTER is dropped and the registrar never sees it', async () => {
      const before = registrar.lines().length;
      const r = await run(SV_PYTHON, [SV_BIND, '127.0.0.32', 'svwar', '-e', '1000-1010', '-p', String(GUARD), '-P', String(port()), '-x', '127.0.0.32', '127.0.0.1'], 30_000);
      expect(r.out).not.toMatch(/1001/);
      expect(r.out).toMatch(/found nothing|no server response/i);
      expect(registrar.lines().length).toBe(before);
      expect(bansOf(guard, '127.0.0.32')[0]).toMatchObject({ reason: 'scanner' });
    });

    it('svcrack is banned at its first request and never learns the password', async () => {
      const before = registrar.lines().length;
      const r = await run(SV_PYTHON, [SV_BIND, '127.0.0.33', 'svcrack', '-u', '1001', '-d', wordlist(3), '-p', String(GUARD), '-P', String(port()), '-x', '127.0.0.33', '--maximumtime', '3', '127.0.0.1'], 30_000);
      expect(r.out).not.toMatch(/s3cret/);
      expect(registrar.lines().length).toBe(before);
      expect(bansOf(guard, '127.0.0.33')[0]).toMatchObject({ reason: 'scanner' });
    });
  });

  describe('with no fingerprints (a tool that hides its User-Agent): the core\'s answers give it away', () => {
    beforeAll(async () => {
      await guard?.stop();
      guardNoFingerprints = await startGuard(['--rules', rulesDir({ upstream: REGISTRAR, defense: DEFENSE, fingerprints: '[]\n' }).dir]);
    });

    it('svcrack is banned after 5 refused passwords (the configured max) and never reaches the right one, 12th in its list', async () => {
      const g = guardNoFingerprints!;
      const before = registrar.lines().length;
      const r = await run(SV_PYTHON, [SV_BIND, '127.0.0.34', 'svcrack', '-u', '1001', '-d', wordlist(11), '-p', String(GUARD), '-P', String(port()), '-x', '127.0.0.34', '--maximumtime', '3', '127.0.0.1'], 40_000);
      expect(r.out).not.toMatch(/s3cret/);
      const seen = registrar.lines().slice(before);
      expect(seen.filter((l) => l.includes('REGISTRAR ok'))).toEqual([]);
      // Refused attempts that reached the registrar: the 5 that earned the ban; none after it.
      expect(seen.filter((l) => l.includes('REGISTRAR refused')).length).toBe(5);
      const [ban] = bansOf(g, '127.0.0.34');
      expect(ban).toMatchObject({ reason: 'auth_failures', evidence: { count: 5, users: ['1001'], userAgent: 'friendly-scanner' } });
    });

    it('svwar is banned after 5 unknown extensions (404) and never reaches extension 1001', async () => {
      const g = guardNoFingerprints!;
      const r = await run(SV_PYTHON, [SV_BIND, '127.0.0.35', 'svwar', '-e', '990-1010', '-p', String(GUARD), '-P', String(port()), '-x', '127.0.0.35', '--maximumtime', '3', '127.0.0.1'], 40_000);
      expect(r.out).not.toMatch(/1001/);
      expect(bansOf(g, '127.0.0.35')[0]).toMatchObject({ reason: 'not_found', evidence: { count: 5 } });
    });
  });
});

describe('credential stuffing on one account, then a login from a new source calling abroad', () => {
  let registrar: Awaited<ReturnType<typeof startRegistrar>>;
  let guard: GuardProcess;
  const S = (name: string): string => path.join(__dirname, 'scenarios/defense', name);

  beforeAll(async () => {
    registrar = await startRegistrar();
    const defense = DEFENSE.replace('per_user: { max: 20, window_seconds: 3600, sources: 3 }', 'per_user: { max: 9, window_seconds: 3600, sources: 3 }');
    guard = await startGuard([
      '--rules',
      rulesDir({ upstream: REGISTRAR, accounts: 'accounts:\n  alice:\n    users: ["1001"]\n', defense }).dir,
    ]);
  });
  afterAll(async () => {
    await guard?.stop();
    await registrar?.stop();
  });

  const register = (ip: string, password: string, final: 200 | 401, calls = 1) =>
    runSipp({
      scenario: S('uac-register-auth.xml'),
      template: { FINAL: final },
      remote: `127.0.0.1:${GUARD}`,
      localIp: ip,
      localPort: port(),
      calls,
      rate: 20,
      timeoutMs: 15_000,
      keys: { user: '1001' },
      args: ['-au', '1001', '-ap', password],
    });
  const callAbroad = (ip: string) =>
    runSipp({ scenario: S('uac-invite-as-user.xml'), remote: `127.0.0.1:${GUARD}`, localIp: ip, localPort: port(), calls: 1, timeoutMs: 15_000, keys: { user: '1001', dial: '+447700900123' } });

  it('raises credential stuffing without banning any one source, and calls the new-source login compromised when it calls abroad', async () => {
    // Alice's own phone registers before the attack.
    expect((await register('127.0.0.84', 's3cret', 200)).stats.successful).toBe(1);
    // Three sources, three wrong passwords each: under the per-source limit of 5, over 9 for the username.
    for (const ip of ['127.0.0.80', '127.0.0.81', '127.0.0.82']) {
      const r = await register(ip, 'wrong', 401, 3);
      expect(r.stats.successful).toBe(3);
    }
    const stuffing = await guard.waitForLog((l) => String(l.message).startsWith('credential stuffing'), 3000);
    expect(stuffing).toMatchObject({ user: '1001', failures: 9 });
    expect((stuffing.sources as string[]).sort()).toEqual(['127.0.0.80', '127.0.0.81', '127.0.0.82']);
    expect(bansOf(guard)).toEqual([]);
    expect(registrar.lines().filter((l) => l.includes('REGISTRAR refused'))).toHaveLength(9);

    // Her own phone, from a source she used before, calling abroad: not suspicious.
    expect((await register('127.0.0.84', 's3cret', 200)).stats.successful).toBe(1);
    expect((await callAbroad('127.0.0.84')).stats.successful).toBe(1);
    // The password found, used from a new source, and a call abroad straight away.
    expect((await register('127.0.0.83', 's3cret', 200)).stats.successful).toBe(1);
    expect((await callAbroad('127.0.0.83')).stats.successful).toBe(1);
    const compromised = await guard.waitForLog((l) => String(l.message).startsWith('account compromised'), 3000);
    expect(compromised).toMatchObject({ user: '1001', account: 'alice', source: '127.0.0.83', dialled: '+447700900123' });
    expect(guard.logs.filter((l) => String(l.message).startsWith('account compromised'))).toHaveLength(1);

    // Handed to the fraud monitor: an international toll block on the account, with its reason.
    const block = await guard.waitForLog((l) => l.message === 'toll block applied' && l.account === 'alice', 3000);
    expect(block).toMatchObject({ by: 'monitor', rule: 'credential_stuffing' });
    const since = guard.decisions().length;
    const refused = await runSipp({
      scenario: path.join(__dirname, 'scenarios/guard/uac-expect-403.xml'),
      remote: `127.0.0.1:${GUARD}`,
      localIp: '127.0.0.84',
      localPort: port(),
      calls: 1,
      timeoutMs: 15_000,
      keys: { ruri: `sip:+447700900123@127.0.0.1:${GUARD}`, from_user: '1001' },
    });
    expect(refused.stats.successful).toBe(1);
    expect((await guard.decisionsAfter(since)).at(-1)).toMatchObject({ account: 'alice', rule: 'toll_block', status: 403 });
  });
});

/** n wrong passwords, then the right one. */
function wordlist(wrong: number): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'words-')), 'words.txt');
  const words = Array.from({ length: wrong }, (_, i) => `guess${i}`);
  fs.writeFileSync(file, [...words, 's3cret', 'after'].join('\n') + '\n');
  return file;
}

// ---------------------------------------------------------------------------------------------

describe('a REGISTER and INVITE flood beside a legitimate customer', () => {
  let guard: GuardProcess;
  let core: SippProcess;

  beforeAll(async () => {
    guard = await startGuard(['--rules', rulesDir({ upstream: CORE, defense: DEFENSE }).dir]);
  });
  afterAll(async () => {
    await core?.stop();
    await guard?.stop();
  });

  it('bans the flood source; at least 99% of the customer\'s calls complete meanwhile', async () => {
    core = await startSippUas({ scenario: path.join(__dirname, 'scenarios/guard/uas-core.xml'), localIp: '127.0.0.1', localPort: CORE, calls: 1000, timeoutMs: 60_000 });
    const customer = runSipp({
      scenario: path.join(__dirname, 'scenarios/guard/uac-answered.xml'),
      remote: `127.0.0.1:${GUARD}`,
      localIp: '127.0.0.41',
      localPort: port(),
      calls: 100,
      rate: 10,
      timeoutMs: 40_000,
      keys: { ruri: `sip:095550111@127.0.0.1:${GUARD}`, from_user: 'legit' },
    });
    await new Promise((r) => setTimeout(r, 1000));
    // 3,000 REGISTERs and 3,000 INVITEs at 1,000 each a second: bounded in count and in time.
    const flood = await runSipp({
      scenario: path.join(__dirname, 'scenarios/defense/flood-register-invite.xml'),
      remote: `127.0.0.1:${GUARD}`,
      localIp: '127.0.0.40',
      localPort: port(),
      calls: 3000,
      rate: 1000,
      timeoutMs: 15_000,
    });
    const c = await customer;
    expect(flood.stats.created).toBe(3000);
    const bans = bansOf(guard, '127.0.0.40');
    expect(bans).toHaveLength(1);
    expect(bans[0]).toMatchObject({ reason: 'flood', offence: 1, seconds: 300 });
    expect((bans[0].evidence as { limit: number }).limit).toBe(40);
    expect(c.stats.successful / 100).toBeGreaterThanOrEqual(0.99);
    expect(bansOf(guard, '127.0.0.41')).toEqual([]);
    // One ban line, not one line per flood packet.
    expect(guard.logs.filter((l) => l.address === '127.0.0.40').length).toBeLessThanOrEqual(2);
    if (c.stats.successful < 99) throw new Error(describeRun(c));
  });
});

// ---------------------------------------------------------------------------------------------

describe('a shared NAT: many devices behind one trusted address', () => {
  let guard: GuardProcess;
  let core: SippProcess;

  beforeAll(async () => {
    guard = await startGuard([
      '--rules',
      rulesDir({
        upstream: CORE,
        allowed: '[127.0.0.0/24, { cidr: 127.0.0.50, trusted: true }]',
        accounts: 'accounts:\n  natco:\n    sources: [127.0.0.50/32]\n  other:\n    sources: [127.0.0.51/32]\n',
        defense: DEFENSE,
      }).dir,
    ]);
  });
  afterAll(async () => {
    await core?.stop();
    await guard?.stop();
  });

  /** `devices` phones (one sipp each, own port) behind one address, each calling at `cps`. */
  async function devices(ip: string, count: number, cps: number, calls: number, timeoutMs = 30_000) {
    return Promise.all(
      Array.from({ length: count }, () =>
        runSipp({
          scenario: path.join(__dirname, 'scenarios/guard/uac-answered.xml'),
          remote: `127.0.0.1:${GUARD}`,
          localIp: ip,
          localPort: port(),
          calls,
          rate: cps,
          timeoutMs,
          keys: { ruri: `sip:095550111@127.0.0.1:${GUARD}`, from_user: 'phone' },
        }),
      ),
    );
  }

  it('is never banned, though together its 10 phones send more than an untrusted address may', async () => {
    core = await startSippUas({ scenario: path.join(__dirname, 'scenarios/guard/uas-core.xml'), localIp: '127.0.0.1', localPort: CORE, calls: 1000, timeoutMs: 60_000 });
    // 10 phones × 3 calls/s = 30 INVITEs/s: 60 in the 2 s window, over the INVITE limit of 40.
    const nat = await devices('127.0.0.50', 10, 3, 15);
    const ok = nat.reduce((n, r) => n + r.stats.successful, 0);
    expect(ok).toBe(150);
    expect(bansOf(guard, '127.0.0.50')).toEqual([]);
    expect(await probe('127.0.0.50')).toMatch(/^SIP\/2\.0 200/);

    // The same traffic from an untrusted address is a flood: the test can tell the difference.
    await devices('127.0.0.51', 10, 3, 15, 8000);
    expect(bansOf(guard, '127.0.0.51')[0]).toMatchObject({ reason: 'flood' });
  });
});

// ---------------------------------------------------------------------------------------------

describe('blocklist.txt and the APIBAN feed', () => {
  let guard: GuardProcess;
  let server: http.Server;
  let mode: 'good' | 'down' | 'garbage' = 'good';
  const listed = ['127.0.0.60'];
  /** Bans the feed announces after the first poll: served only to a client asking from the last ID. */
  const later: string[] = [];
  const asked: string[] = [];
  let dir: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const id = req.url!.split('/').pop()!;
      asked.push(id);
      if (mode === 'down') {
        res.writeHead(503).end('maintenance');
        return;
      }
      if (mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>captive portal</html>');
        return;
      }
      // Each poll serves the whole list once (from ID 100) then "no new bans" for the next ID.
      if (id === '100') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ipaddress: listed, ID: '1700000000' }));
      } else if (id === '1700000000' && later.length > 0) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ipaddress: later, ID: '1700000100' }));
      } else {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ ipaddress: ['no new bans'], ID: 'none' }));
      }
    });
    await new Promise<void>((r) => server.listen(FEED, '127.0.0.1', () => r()));
    const defense = `${DEFENSE}
apiban:
  url: http://127.0.0.1:${FEED}/api/TESTKEY/banned
  interval_seconds: 1
  timeout_seconds: 1
`;
    dir = rulesDir({ upstream: CORE, defense, blocklist: '# test\n127.0.0.64/30   # a small range\n' }).dir;
    guard = await startGuard(['--rules', dir]);
    await guard.waitForLog((l) => l.message === 'apiban feed updated');
  });
  afterAll(async () => {
    await guard?.stop();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('drops blocklisted ranges silently, and only them', async () => {
    expect(await probe('127.0.0.65')).toBeNull();
    expect(await probe('127.0.0.67')).toBeNull();
    expect(await probe('127.0.0.68')).toMatch(/^SIP\/2\.0 200/);
  });

  it('applies a blocklist edit while running, and keeps the last good list on a broken edit', async () => {
    fs.writeFileSync(path.join(dir, 'blocklist.txt'), '127.0.0.64/30\n127.0.0.68\n');
    await guard.waitForLog((l) => String(l.message).startsWith('rules reloaded'), 5000);
    expect(await probe('127.0.0.68')).toBeNull();
    fs.writeFileSync(path.join(dir, 'blocklist.txt'), '127.0.0.64/30\n127.0.0.68\n127.0.0.300\n');
    const rejected = await guard.waitForLog((l) => String(l.message).startsWith('rules rejected'), 5000);
    expect(rejected.problems).toEqual([expect.stringMatching(/blocklist\.txt:3: "127\.0\.0\.300"/)]);
    expect(await probe('127.0.0.68')).toBeNull();
  });

  it('drops what the feed lists, and keeps the last good list through an outage and a malformed answer', async () => {
    expect(asked.slice(0, 2)).toEqual(['100', '1700000000']); // whole list first, then changes since its ID
    expect(await probe('127.0.0.60')).toBeNull();
    expect(await probe('127.0.0.61')).toMatch(/^SIP\/2\.0 200/);

    const failures = () => guard.logs.filter((l) => String(l.message).startsWith('apiban feed poll failed')).length;
    mode = 'down';
    let before = failures();
    await until('a failed poll (outage)', () => failures() > before, 5000);
    expect(await probe('127.0.0.60')).toBeNull();

    mode = 'garbage';
    before = failures();
    await until('a failed poll (malformed)', () => failures() > before, 5000);
    expect(guard.logs.filter((l) => String(l.message).startsWith('apiban feed poll failed')).map((l) => String(l.error))).toContainEqual(expect.stringMatching(/not JSON/));
    expect(await probe('127.0.0.60')).toBeNull();
    // The API key never reaches the logs.
    expect(JSON.stringify(guard.logs)).not.toContain('TESTKEY');

    // Back up, with one new ban since the last good ID: fetched incrementally and applied.
    later.push('127.0.0.62');
    mode = 'good';
    await guard.waitForLog((l) => l.message === 'apiban feed updated' && l.id === '1700000100', 5000);
    expect(await probe('127.0.0.62')).toBeNull();
    expect(await probe('127.0.0.60')).toBeNull();
    expect(asked.filter((id) => id === '100')).toHaveLength(1); // never the whole list again
  });
});

// ---------------------------------------------------------------------------------------------

describe('tollguard bans / unban, across a restart', () => {
  it('lists a ban with its reason and evidence, keeps it over a restart, and unban lets the address in within a second', async () => {
    const { dir } = rulesDir({ upstream: CORE, defense: DEFENSE });
    let guard = await startGuard(['--rules', dir]);
    try {
      expect(await probe('127.0.0.70', 'friendly-scanner')).toBeNull();
      await guard.waitForLog((l) => l.message === 'source banned' && l.address === '127.0.0.70');

      const listed = cli('bans', '--rules', dir);
      expect(listed.status).toBe(0);
      const line = listed.stdout.split('\n').find((l) => l.startsWith('127.0.0.70\t'));
      expect(line).toMatch(/^127\.0\.0\.70\tscanner\t\S+Z\t\S+Z \(\d+ s left\)\toffence 1\tscanner fingerprint "sipvicious" in User-Agent ua="friendly-scanner"$/);
      const json = cli('bans', '--rules', dir, '--json').stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(json).toEqual([expect.objectContaining({ address: '127.0.0.70', reason: 'scanner', evidence: expect.objectContaining({ method: 'OPTIONS' }) })]);

      expect(await guard.stop()).toBe(0);
      guard = await startGuard(['--rules', dir]);
      expect(await guard.waitForLog((l) => l.message === 'defense started')).toMatchObject({ activeBans: 1 });
      expect(await probe('127.0.0.70')).toBeNull(); // still banned after the restart

      const un = cli('unban', '127.0.0.70', '--rules', dir, '--by', 'e2e');
      expect(un.status).toBe(0);
      expect(un.stdout).toBe('ban on 127.0.0.70 lifted\n');
      const lifted = Date.now();
      let answer: string | null = null;
      while (answer === null && Date.now() - lifted < 1000) answer = await probe('127.0.0.70', 'Yealink', 100);
      expect(answer).toMatch(/^SIP\/2\.0 200/);
      expect(cli('bans', '--rules', dir).stdout).toBe('no bans in force\n');
      const again = cli('unban', '127.0.0.70', '--rules', dir);
      expect(again.status).toBe(1);
      expect(again.stderr).toBe('no ban in force for 127.0.0.70\n');
    } finally {
      await guard.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('a stall (GC, a paused VM) is not a flood', () => {
  /**
   * A customer sends OPTIONS at a steady 30/s, under the limit of 100 in 2 s. The guard is stopped
   * (SIGSTOP) for 4 s, so ~120 of them wait in its socket and are read in one go on SIGCONT.
   */
  async function steadyThroughStall(udpIo: 'batch' | 'dgram', from: string): Promise<{ bans: LogLine[]; answered: number; sent: number }> {
    const { dir } = rulesDir({ upstream: CORE, defense: DEFENSE });
    const guardYaml = path.join(dir, 'guard.yaml');
    fs.writeFileSync(guardYaml, fs.readFileSync(guardYaml, 'utf8').replace('sip:\n', `sip:\n  udp_io: ${udpIo}\n`));
    const guard = await startGuard(['--rules', dir]);
    const sock = dgram.createSocket('udp4');
    let answered = 0;
    let sent = 0;
    sock.on('message', (m) => {
      if (m.toString('latin1').startsWith('SIP/2.0 200')) answered++;
    });
    try {
      const p = port();
      await new Promise<void>((r) => sock.bind(p, from, () => r()));
      const send = (): void => {
        const msg = [
          `OPTIONS sip:127.0.0.1:${GUARD} SIP/2.0`,
          `Via: SIP/2.0/UDP ${from}:${p};branch=z9hG4bK-stall${sent}`,
          'Max-Forwards: 70',
          `From: <sip:pbx@${from}>;tag=s${sent}`,
          `To: <sip:127.0.0.1:${GUARD}>`,
          `Call-ID: stall-${udpIo}-${sent}`,
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        sent++;
        sock.send(msg, GUARD, '127.0.0.1');
      };
      const pace = setInterval(send, 33);
      await new Promise((r) => setTimeout(r, 1000));
      guard.child.kill('SIGSTOP');
      await new Promise((r) => setTimeout(r, 4000));
      guard.child.kill('SIGCONT');
      await new Promise((r) => setTimeout(r, 1000));
      clearInterval(pace);
      await new Promise((r) => setTimeout(r, 500));
      return { bans: bansOf(guard, from), answered, sent };
    } finally {
      sock.close();
      guard.child.kill('SIGCONT');
      await guard.stop();
    }
  }

  it('on the batch UDP layer the backlog is counted at its kernel arrival times: no ban, every request answered', async () => {
    const r = await steadyThroughStall('batch', '127.0.0.46');
    expect(r.bans).toEqual([]);
    expect(r.answered).toBe(r.sent);
  });

  it('on node:dgram (no arrival times) the same backlog looks like a flood: the test can tell', async () => {
    const r = await steadyThroughStall('dgram', '127.0.0.47');
    expect(r.bans[0]).toMatchObject({ reason: 'flood' });
  });
});
