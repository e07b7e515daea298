/**
 * The drachtio front end against a real drachtio-server, with real sipp as caller and core.
 *
 * drachtio-server is not on npm or Debian, so CI cannot run this suite and `npm test` does not
 * include it (no skipped tests there). Run it by hand with a drachtio binary built from
 * drachtio-server's public source outside this repository; without one it fails and says so.
 * Ports: loopback 19200-19399 only.
 *
 *   npm run build && TOLLGUARD_DRACHTIO_SERVER=/path/to/drachtio npm run test:drachtio
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as dgram from 'node:dgram';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { makeRulesDir, startGuard, type GuardProcess, type LogLine } from '../e2e/helpers/guard-process';
import { runSipp, startSippUas, type SippProcess } from '../e2e/helpers/sipp';

const DRACHTIO = process.env.TOLLGUARD_DRACHTIO_SERVER;
if (!DRACHTIO) {
  throw new Error('TOLLGUARD_DRACHTIO_SERVER must name a drachtio-server binary (see the comment at the top of this file)');
}
const maybe = describe;

jest.setTimeout(90_000);

const ADMIN = 19322;
const SIP = 19360;
const CORE = 19380;
const OUTBOUND = 19340;
const HOOK = 19330;
const ROOT = path.resolve(__dirname, '../..');
const S = (name: string): string => path.resolve(__dirname, '../e2e/scenarios/guard', name);

let nextPort = 19300;
let nextMedia = 19200; // sipp binds 4 media ports from here; 19200-19299 stays free of the rest

function guardYaml(connection: string, mode: 'proxy' | 'b2bua'): string {
  return `
sip:
  listen: [udp:127.0.0.1:19399]
  upstream: 127.0.0.1:${CORE}
home_country: NZ
allowed_sources: [127.0.0.1, 127.0.0.10, 127.0.0.20, 127.0.0.30]
unknown_caller: reject
drachtio:
${connection}
  secret: cymru
  mode: ${mode}
log: { level: debug }
`;
}

const ACCOUNTS = `
accounts:
  acme:
    sources: [127.0.0.10/32]
  bob:
    users: [bob]
    international: false
  b2b:
    users: [b2b]
    drachtio: { mode: b2bua }
  short:
    users: [short]
    drachtio: { mode: b2bua, max_call_seconds: 2 }
`;

class DrachtioServer {
  private child?: ChildProcess;
  log = '';
  constructor(private readonly confPath: string) {}

  async start(): Promise<void> {
    this.child = spawn(DRACHTIO!, ['-f', this.confPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (c) => (this.log += String(c)));
    this.child.stderr!.on('data', (c) => (this.log += String(c)));
    await waitForPort(ADMIN);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  }
}

function drachtioConf(dir: string, hook?: string): string {
  const file = path.join(dir, `drachtio-${hook ? 'outbound' : 'inbound'}.conf.xml`);
  fs.writeFileSync(
    file,
    `<drachtio>
  <admin port="${ADMIN}" secret="cymru">127.0.0.1</admin>
  ${hook ? `<request-handlers><request-handler sip-method="INVITE" http-method="GET">${hook}</request-handler></request-handlers>` : ''}
  <sip><contacts><contact>sip:127.0.0.1:${SIP};transport=udp,tcp</contact></contacts></sip>
  <cdrs>true</cdrs>
  <logging><console/><sofia-loglevel>3</sofia-loglevel><loglevel>info</loglevel></logging>
</drachtio>
`,
  );
  return file;
}

async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function core(scenario = 'uas-core.xml'): Promise<SippProcess> {
  const mediaPort = (nextMedia += 4);
  return startSippUas({ scenario: S(scenario), localIp: '127.0.0.1', localPort: CORE, calls: 100, timeoutMs: 40_000, mediaPort });
}

function call(scenario: string, dial: string, opts: { from?: string; localIp?: string } = {}) {
  const mediaPort = (nextMedia += 4);
  return runSipp({
    scenario: S(scenario),
    remote: `127.0.0.1:${SIP}`,
    localIp: opts.localIp ?? (opts.from ? '127.0.0.20' : '127.0.0.10'),
    localPort: nextPort++,
    calls: 1,
    timeoutMs: 25_000,
    mediaPort,
    keys: { ruri: `sip:${dial}@127.0.0.1:${SIP}`, from_user: opts.from ?? 'someone' },
  });
}

/** A raw UDP SIP peer (a scanner needs nothing more) that records what comes back. */
async function udpPeer(address: string, port: number): Promise<{ port: number; received: string[]; send(text: string): void; close(): void }> {
  const sock = dgram.createSocket('udp4');
  const received: string[] = [];
  sock.on('message', (m) => received.push(m.toString('utf8')));
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, address, () => resolve());
  });
  return {
    port,
    received,
    send: (text) => sock.send(text, SIP, '127.0.0.1'),
    close: () => sock.close(),
  };
}

function sipRequest(method: 'INVITE' | 'REGISTER', user: string, fromUser: string, address: string, port: number, callId: string, userAgent: string): string {
  const uri = `sip:${user}@127.0.0.1:${SIP}`;
  return [
    `${method} ${uri} SIP/2.0`,
    `Via: SIP/2.0/UDP ${address}:${port};branch=z9hG4bK-${callId};rport`,
    'Max-Forwards: 70',
    `From: <sip:${fromUser}@${address}>;tag=t-${callId}`,
    `To: <${uri}>`,
    `Call-ID: ${callId}`,
    `CSeq: 1 ${method}`,
    `Contact: <sip:${fromUser}@${address}:${port}>`,
    `User-Agent: ${userAgent}`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function linesSince(g: GuardProcess, n: number, message: string): LogLine[] {
  return g.logs.slice(n).filter((l) => l.message === message);
}

maybe('through a real drachtio-server, inbound connection', () => {
  let tmp: string;
  let rulesDir: string;
  let server: DrachtioServer;
  let guard: GuardProcess;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-drachtio-'));
    server = new DrachtioServer(drachtioConf(tmp));
    await server.start();
    rulesDir = makeRulesDir({ guard: guardYaml(`  host: 127.0.0.1\n  port: ${ADMIN}`, 'proxy'), accounts: ACCOUNTS });
    // The attack-source defense on, with the shipped thresholds and fingerprints; its bans go to
    // a state file of this run only, so a ban never outlives the suite.
    for (const f of ['defense.yaml', 'scanner-fingerprints.yaml', 'blocklist.txt']) fs.copyFileSync(path.join(ROOT, 'rules', f), path.join(rulesDir, f));
    guard = await startGuard(['--rules', rulesDir, '--state', path.join(tmp, 'state.db')]);
    await guard.waitForLog((l) => l.message === 'connected to drachtio-server');
  });

  afterAll(async () => {
    await guard?.stop();
    await server?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(rulesDir, { recursive: true, force: true });
  });

  it('proxy mode: an allowed call completes, the core sees INVITE, ACK and BYE, and the CDR of the BYE ends it', async () => {
    const uas = await core();
    const n = guard.logs.length;
    const r = await call('uac-answered.xml', '095550111');
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.successful).toBe(1);
    expect(linesSince(guard, n, 'decision')[0]).toMatchObject({ account: 'acme', verdict: 'allow', normalised: '+6495550111' });
    await guard.waitForLog((l) => l.message === 'call ended' && l.mode === 'proxy' && l.why === 'bye');
  });

  it.each([
    ['uac-expect-403.xml', '+252612345678', {}, 'high_risk'],
    ['uac-expect-403.xml', '0061212345678', { from: 'bob' }, 'international'],
    ['uac-expect-403.xml', '095550111', { localIp: '127.0.0.2' }, 'source'],
    ['uac-expect-403.xml', '095550111', { from: 'nobody' }, 'unknown_caller'],
    ['uac-expect-484.xml', '00252abc', {}, 'invalid_destination'],
  ] as const)('%s for %s: the same answer as the embedded proxy (%s)', async (scenario, dial, opts, rule) => {
    const uas = await core();
    const n = guard.logs.length;
    const r = await call(scenario, dial, opts);
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.created).toBe(0);
    expect(linesSince(guard, n, 'decision')[0]).toMatchObject({ verdict: 'reject', rule });
  });

  it('b2bua (account override): an allowed call completes end to end', async () => {
    const uas = await core();
    const r = await call('uac-answered.xml', '095550111', { from: 'b2b' });
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.successful).toBe(1);
    await guard.waitForLog((l) => l.message === 'call ended' && l.mode === 'b2bua' && l.why === 'bye');
  });

  it('b2bua: max_call_seconds 2 ends the call with BYE to both legs', async () => {
    const uas = await core();
    const r = await call('uac-answered-guard-hangs-up.xml', '095550111', { from: 'short' });
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0); // the caller got our BYE and answered it
    expect(coreSide.stats.successful).toBe(1); // so did the core
    expect(r.durationMs).toBeGreaterThanOrEqual(1900);
    await guard.waitForLog((l) => l.message === 'call ended' && l.why === 'timeout');
  });

  it("b2bua: the caller's CANCEL reaches the core and the call ends cancelled", async () => {
    const uas = await core('uas-core-rings.xml');
    const r = await call('uac-cancel.xml', '095550111', { from: 'b2b' });
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.successful).toBe(1);
    await guard.waitForLog((l) => l.message === 'call ended' && l.why === 'cancelled');
  });

  it('defense: a friendly-scanner INVITE is not forwarded to the core and gets no final answer; its source is banned, and a normal call from another address completes', async () => {
    const uas = await core();
    const n = guard.logs.length;
    const scanner = await udpPeer('127.0.0.30', nextPort++);
    try {
      // From bob to a domestic number from an allowed source: without the fingerprint, forwarded.
      scanner.send(sipRequest('INVITE', '095550111', 'bob', '127.0.0.30', scanner.port, 'scan-1', 'friendly-scanner'));
      const ban = await guard.waitForLog((l) => guard.logs.indexOf(l) >= n && l.message === 'source banned');
      expect(ban).toMatchObject({ address: '127.0.0.30', reason: 'scanner' });
      // Same source, no fingerprint: dropped by the ban before the core decides anything.
      scanner.send(sipRequest('REGISTER', 'bob', 'bob', '127.0.0.30', scanner.port, 'scan-2', 'Linphone/5.2'));
      const r = await call('uac-answered.xml', '095550111');
      expect(r.exitCode).toBe(0);
      const coreSide = await uas.stop();
      expect(coreSide.stats.created).toBe(1); // only the normal call reached the core
      expect(coreSide.stats.successful).toBe(1);
      expect(linesSince(guard, n, 'decision').map((l) => l.source)).toEqual(['127.0.0.10']);
      await new Promise((res) => setTimeout(res, 1500));
      // drachtio-server answers an INVITE 100 Trying itself before the app sees it; nothing else
      // comes back: no final answer to the INVITE, nothing at all to the REGISTER.
      expect(scanner.received.map((m) => `${m.split('\r\n')[0]} (${/^Call-ID:\s*(.*)$/im.exec(m)?.[1]})`)).toEqual(['SIP/2.0 100 Trying (scan-1)']);
    } finally {
      scanner.close();
    }
  });

  it('drachtio-server restarting: the loss and every reconnect attempt are logged, and calls flow again', async () => {
    const n = guard.logs.length;
    await server.stop();
    await guard.waitForLog((l) => l.message === 'connection to drachtio-server lost');
    await guard.waitForLog((l) => l.message === 'reconnecting to drachtio-server' && Number(l.attempt) >= 3);
    await server.start();
    await guard.waitForLog((l) => guard.logs.indexOf(l) > n && l.message === 'connected to drachtio-server', 20_000);
    const uas = await core();
    const r = await call('uac-answered.xml', '095550111');
    expect((await uas.stop()).stats.successful).toBe(1);
    expect(r.exitCode).toBe(0);
  });
});

maybe('through a real drachtio-server, outbound connections', () => {
  let tmp: string;
  let rulesDir: string;
  let server: DrachtioServer;
  let guard: GuardProcess;
  let hook: http.Server;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-drachtio-'));
    // drachtio-server asks this webhook where to send each new INVITE.
    hook = http.createServer((_req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ action: 'route', data: { uri: `127.0.0.1:${OUTBOUND}` } }));
    });
    await new Promise<void>((r) => hook.listen(HOOK, '127.0.0.1', () => r()));
    server = new DrachtioServer(drachtioConf(tmp, `http://127.0.0.1:${HOOK}`));
    await server.start();
    rulesDir = makeRulesDir({ guard: guardYaml(`  listen: ${OUTBOUND}\n  listen_address: 127.0.0.1`, 'b2bua'), accounts: ACCOUNTS });
    guard = await startGuard(['--rules', rulesDir]);
  });

  afterAll(async () => {
    await guard?.stop();
    await server?.stop();
    await new Promise((r) => hook?.close(r));
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.rmSync(rulesDir, { recursive: true, force: true });
  });

  it('b2bua: an allowed call completes and ends by BYE', async () => {
    const uas = await core();
    const r = await call('uac-answered.xml', '095550111');
    const coreSide = await uas.stop();
    expect(r.exitCode).toBe(0);
    expect(coreSide.stats.successful).toBe(1);
    await guard.waitForLog((l) => l.message === 'call ended' && l.why === 'bye');
  });

  it('a high-risk call is refused 403', async () => {
    const n = guard.logs.length;
    const r = await call('uac-expect-403.xml', '+252612345678');
    expect(r.exitCode).toBe(0);
    expect(linesSince(guard, n, 'decision')[0]).toMatchObject({ verdict: 'reject', rule: 'high_risk' });
  });
});
