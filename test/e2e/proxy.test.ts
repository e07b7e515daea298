/**
 * End-to-end tests of the embedded SIP proxy with real sipp on loopback: the proxy runs in this
 * process with a stub policy, sipp plays the customer (UAC) and the carrier core (UAS).
 * Ports 15000-15999 only; every sipp run is bounded by -m and -timeout.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, transports, format, Logger } from 'winston';
import { SipProxy, ProxyOptions } from '../../src/sip/proxy';
import type { CallEndWhy, ProxyPolicy, Rejection } from '../../src/sip/policy';
import type { SipRequest } from '../../src/sip/message';
import { parseMessage } from '../../src/sip/message';
import { tryParseUri } from '../../src/sip/uri';
import { runSipp, startSippUas, scenarioPath, describeRun, SippProcess, SippResult } from './helpers/sipp';

jest.setTimeout(60_000);

const TEST_TIMERS = { T1: 50, T2: 400, T4: 300, timerC: 20_000 };

class StubPolicy implements ProxyPolicy {
  admitted = new Set<string>();
  ended: Array<[string, string]> = [];
  answered: string[] = [];
  activity = 0;
  admissions = 0;
  banned = new Set<string>();
  answers: Array<[unknown, number]> = [];

  dropSource(address: string): boolean {
    return this.banned.has(address);
  }

  watchAnswer(req: SipRequest): string {
    return req.method;
  }

  requestAnswered(watch: unknown, status: number): void {
    this.answers.push([watch, status]);
  }

  screenRequest(req: SipRequest): Rejection | 'drop' | null {
    if (req.header('X-Test-Drop')) return 'drop';
    return null;
  }

  admitInvite(req: SipRequest): Rejection | null | Promise<Rejection | null> {
    this.admissions++;
    const u = tryParseUri(req.uri);
    const user = u && u.scheme !== 'tel' ? u.user : undefined;
    if (user === 'reject403') {
      return { status: 403, reason: 'Forbidden', headers: [['Warning', '399 tollguard "destination not allowed"'], ['X-Reason', 'high_risk']] };
    }
    if (user === 'throw') throw new Error('policy exploded');
    if (user === 'async') {
      return new Promise((resolve) => setTimeout(() => {
        this.admitted.add(req.callId);
        resolve(null);
      }, 20));
    }
    this.admitted.add(req.callId);
    return null;
  }

  knowsDialog(callId: string): boolean {
    return this.admitted.has(callId);
  }

  callEnded(callId: string, why: CallEndWhy): void {
    this.ended.push([callId, why]);
    this.admitted.delete(callId);
  }

  callAnswered(callId: string): void {
    this.answered.push(callId);
  }

  dialogActivity(): void {
    this.activity++;
  }
}

function testLogger(lines: string[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return createLogger({ level: 'info', format: format.json(), transports: [new transports.Stream({ stream: sink })] });
}

interface Harness {
  proxy: SipProxy;
  policy: StubPolicy;
  logs: string[];
  udp: number;
  tcp?: number;
  udp6?: number;
}

const running: SipProxy[] = [];
const sipps: SippProcess[] = [];

async function startProxy(upstream: string, listen: string[], extra: Partial<ProxyOptions> = {}): Promise<Harness> {
  const policy = new StubPolicy();
  const logs: string[] = [];
  const proxy = new SipProxy({ listen, upstream, policy, logger: testLogger(logs), timers: TEST_TIMERS, ...extra });
  await proxy.start();
  running.push(proxy);
  const addr = proxy.addresses();
  const find = (t: string, v6: boolean): number | undefined => addr.find((a) => a.transport === t && a.address.includes(':') === v6)?.port;
  return { proxy, policy, logs, udp: find('udp', false) ?? 0, tcp: find('tcp', false), udp6: find('udp', true) };
}

async function uas(scenario: string, localPort: number, calls: number, extra: Partial<Parameters<typeof startSippUas>[0]> = {}): Promise<SippProcess> {
  const p = await startSippUas({ scenario: scenarioPath(scenario), localIp: '127.0.0.1', localPort, calls, timeoutMs: 30_000, ...extra });
  sipps.push(p);
  return p;
}

/** Waits until the proxy's transaction tables are empty (linger timers are ~3 s with test T1). */
async function drained(proxy: SipProxy, ms = 8000): Promise<ReturnType<SipProxy['stats']>> {
  const end = Date.now() + ms;
  for (;;) {
    const s = proxy.stats();
    if ((s.serverTransactions === 0 && s.clientTransactions === 0) || Date.now() > end) return s;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Asserts a sipp run's successful/failed counts, with sipp's own story when they are wrong. */
function expectCalls(r: SippResult, successful: number): void {
  if (r.stats.successful !== successful || r.stats.failed !== 0) {
    throw new Error(`expected ${successful} successful calls and 0 failed\n${describeRun(r)}`);
  }
}

afterEach(async () => {
  await Promise.all(sipps.splice(0).map((p) => p.stop(1000)));
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

describe('calls through the proxy (sipp UAC → proxy → sipp UAS)', () => {
  test('a call completes over UDP; headers and body pass untouched; Record-Route added', async () => {
    const h = await startProxy('127.0.0.1:15080', ['udp:127.0.0.1:0']);
    const core = await uas('uas-answer.xml', 15080, 1, { traceMessages: true });
    const r = await runSipp({ scenario: scenarioPath('uac-call.xml'), remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15100, service: '6421555123', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
    expect(r.exitCode).toBe(0);
    const seen = (await core.done).messages;
    expect(seen).toContain('X-TollGuard-Test: must pass untouched');
    expect(seen).toContain(`Record-Route: <sip:127.0.0.1:${h.udp};transport=udp;lr>`);
    expect(seen).toMatch(/Max-Forwards: 69/);
    expect(seen).toContain('a=rtpmap:0 PCMU/8000');
    expect(h.policy.answered).toHaveLength(1);
    expect(h.policy.ended.map((e) => e[1])).toContain('bye');
    const s = await drained(h.proxy);
    expect([s.serverTransactions, s.clientTransactions]).toEqual([0, 0]);
  });

  test('a call completes over TCP', async () => {
    const h = await startProxy('tcp:127.0.0.1:15081', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']);
    await uas('uas-answer.xml', 15081, 1, { transport: 'tcp' });
    const r = await runSipp({ scenario: scenarioPath('uac-call.xml'), remote: `127.0.0.1:${h.tcp}`, transport: 'tcp', localIp: '127.0.0.1', localPort: 15101, service: '100', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
    expect(h.proxy.stats().tcpConnections).toBeGreaterThanOrEqual(1);
    const s = await drained(h.proxy);
    expect([s.serverTransactions, s.clientTransactions]).toEqual([0, 0]);
  });

  test('a call completes UDP in, TCP out (double Record-Route, RFC 5658)', async () => {
    const h = await startProxy('tcp:127.0.0.1:15082', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']);
    const core = await uas('uas-answer.xml', 15082, 1, { transport: 'tcp', traceMessages: true });
    const r = await runSipp({ scenario: scenarioPath('uac-call.xml'), remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15102, service: '100', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
    const seen = (await core.done).messages;
    expect(seen).toContain(`Record-Route: <sip:127.0.0.1:${h.tcp};transport=tcp;lr>`);
    expect(seen).toContain(`Record-Route: <sip:127.0.0.1:${h.udp};transport=udp;lr>`);
  });

  test('a call completes over IPv6 (::1)', async () => {
    const h = await startProxy('[::1]:15083', ['udp:[::1]:0']);
    await uas('uas-answer.xml', 15083, 1, { localIp: '::1' });
    const r = await runSipp({ scenario: scenarioPath('uac-call.xml'), remote: `[::1]:${h.udp6}`, localIp: '::1', localPort: 15103, service: '100', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
  });

  test('the core hangs up: BYE from the UAS reaches the caller by Record-Route', async () => {
    const h = await startProxy('127.0.0.1:15084', ['udp:127.0.0.1:0']);
    const core = await uas('uas-answer-then-bye.xml', 15084, 1);
    const r = await runSipp({ scenario: scenarioPath('uac-call-remote-bye.xml'), remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15104, service: '100', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
    const u = await core.done;
    expect(u.stats.successful).toBe(1);
    expect(h.policy.ended.map((e) => e[1])).toContain('bye');
  });

  test('the guard hangs up an answered call: both sides get a BYE with a Reason, the call is ended', async () => {
    const h = await startProxy('127.0.0.1:15092', ['udp:127.0.0.1:0']);
    const core = await uas('uas-answer.xml', 15092, 1, { traceMessages: true });
    const caller = runSipp({ scenario: scenarioPath('uac-call-remote-bye.xml'), remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15112, service: '100', calls: 1, timeoutMs: 15_000, traceMessages: true });
    const end = Date.now() + 10_000;
    while (h.proxy.dialogCallIds().length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const [callId] = h.proxy.dialogCallIds();
    expect(callId).toBeDefined();
    expect(h.proxy.hangUp(callId, 'SIP;cause=403;text="international toll block"')).toBe(true);
    expect(h.proxy.hangUp(callId)).toBe(false); // already over
    const r = await caller;
    expectCalls(r, 1);
    const u = await core.done;
    expect(u.stats.successful).toBe(1);
    for (const log of [r.messages, u.messages]) {
      const bye = log.split(/-{10,}/).find((m) => /^\s*BYE sip:/m.test(m)) ?? '';
      expect(bye).toMatch(/Reason: SIP;cause=403;text="international toll block"/);
      expect(bye).toContain(`Call-ID: ${callId}`);
    }
    expect(h.policy.ended).toEqual([[callId, 'hangup']]);
    expect(h.policy.answers).toContainEqual(['INVITE', 200]);
    const s = await drained(h.proxy);
    expect([s.serverTransactions, s.clientTransactions, s.admittedDialogs]).toEqual([0, 0, 0]);
  });

  test('the guard hangs up a ringing call: CANCEL to the core, 487 to the caller', async () => {
    const h = await startProxy('127.0.0.1:15093', ['udp:127.0.0.1:0']);
    const core = await uas('uas-ring-no-answer.xml', 15093, 1);
    const caller = runSipp({ scenario: scenarioPath('uac-expect-status.xml'), template: { STATUS: 487 }, remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15113, service: '100', calls: 1, timeoutMs: 15_000 });
    const end = Date.now() + 10_000;
    while (h.policy.admitted.size === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // let the 180 arrive: CANCEL waits for a provisional (§9.1)
    const [callId] = [...h.policy.admitted];
    expect(h.proxy.hangUp(callId)).toBe(true);
    expectCalls(await caller, 1);
    expect((await core.done).stats.successful).toBe(1);
    expect(h.policy.ended).toEqual([[callId, 'cancelled']]);
  });

  test('CANCEL before answer: 200 for the CANCEL, 487 for the INVITE', async () => {
    const h = await startProxy('127.0.0.1:15085', ['udp:127.0.0.1:0']);
    const core = await uas('uas-ring-no-answer.xml', 15085, 1);
    const r = await runSipp({ scenario: scenarioPath('uac-cancel.xml'), remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15105, service: '100', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
    expect((await core.done).stats.successful).toBe(1);
    expect(h.policy.ended).toEqual([[expect.any(String), 'cancelled']]);
    const s = await drained(h.proxy);
    expect([s.serverTransactions, s.clientTransactions]).toEqual([0, 0]);
  });

  test('Max-Forwards: 0 is answered 483 by the proxy', async () => {
    const h = await startProxy('127.0.0.1:15086', ['udp:127.0.0.1:0']);
    const r = await runSipp({ scenario: scenarioPath('uac-expect-status.xml'), template: { STATUS: 483, MAX_FORWARDS: 0 }, remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15106, service: '100', calls: 1, timeoutMs: 10_000 });
    expectCalls(r, 1);
  });

  test('policy rejection: 403 with Warning and X-Reason, the ACK is absorbed', async () => {
    const h = await startProxy('127.0.0.1:15087', ['udp:127.0.0.1:0']);
    const r = await runSipp({ scenario: scenarioPath('uac-expect-status.xml'), template: { STATUS: 403 }, remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15107, service: 'reject403', calls: 1, timeoutMs: 10_000, traceMessages: true });
    expectCalls(r, 1);
    expect(r.messages).toContain('Warning: 399 tollguard "destination not allowed"');
    expect(r.messages).toContain('X-Reason: high_risk');
    expect(h.policy.ended).toEqual([]); // never admitted, so nothing to end
    const s = await drained(h.proxy);
    expect(s.serverTransactions).toBe(0);
  });

  test('admitInvite throwing becomes 500, never a hang', async () => {
    const h = await startProxy('127.0.0.1:15088', ['udp:127.0.0.1:0']);
    const r = await runSipp({ scenario: scenarioPath('uac-expect-status.xml'), template: { STATUS: 500 }, remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15108, service: 'throw', calls: 1, timeoutMs: 10_000 });
    expectCalls(r, 1);
  });

  test('an unreachable upstream gives 408 and callEnded(timeout)', async () => {
    const h = await startProxy('127.0.0.1:15089', ['udp:127.0.0.1:0']);
    const r = await runSipp({ scenario: scenarioPath('uac-expect-status.xml'), template: { STATUS: 408 }, remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15109, service: '100', calls: 1, timeoutMs: 15_000 });
    expectCalls(r, 1);
    expect(h.policy.ended.map((e) => e[1])).toEqual(['timeout']);
  });

  test('a refused TCP connection to the upstream gives 503 and callEnded(error)', async () => {
    const h = await startProxy('tcp:127.0.0.1:15091', ['udp:127.0.0.1:0']);
    const r = await runSipp({ scenario: scenarioPath('uac-expect-status.xml'), template: { STATUS: 503 }, remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15111, service: '100', calls: 1, timeoutMs: 10_000 });
    expectCalls(r, 1);
    expect(h.policy.ended.map((e) => e[1])).toEqual(['error']);
    expect(h.logs.join('')).toMatch(/ECONNREFUSED/);
  });

  test('async admission: a burst of 200 calls at 100 cps completes, then the tables drain to 0', async () => {
    const h = await startProxy('127.0.0.1:15090', ['udp:127.0.0.1:0']);
    const core = await uas('uas-answer.xml', 15090, 200, { timeoutMs: 40_000 });
    const r = await runSipp({ scenario: scenarioPath('uac-call.xml'), remote: `127.0.0.1:${h.udp}`, localIp: '127.0.0.1', localPort: 15110, service: 'async', calls: 200, rate: 100, timeoutMs: 30_000 });
    expect({ ok: r.stats.successful, failed: r.stats.failed }).toEqual({ ok: 200, failed: 0 });
    const u = await core.done;
    expect(u.stats.successful).toBe(200);
    expect(h.policy.answered).toHaveLength(200);
    expect(h.policy.admitted.size).toBe(0); // every admitted call ended
    const s = await drained(h.proxy);
    expect([s.serverTransactions, s.clientTransactions]).toEqual([0, 0]);
  }, 90_000);
});

// ---------------- raw SIP over dgram, for what sipp cannot show ----------------

function invite(opts: { port: number; branch: string; callId: string; maxForwards?: number; extra?: string }): string {
  return [
    `INVITE sip:6421@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${opts.port};branch=${opts.branch};rport`,
    `From: <sip:raw@127.0.0.1>;tag=raw1`,
    `To: <sip:6421@127.0.0.1>`,
    `Call-ID: ${opts.callId}`,
    `CSeq: 1 INVITE`,
    `Contact: <sip:raw@127.0.0.1:${opts.port}>`,
    ...(opts.maxForwards === undefined ? [] : [`Max-Forwards: ${opts.maxForwards}`]),
    ...(opts.extra ? [opts.extra] : []),
    `Content-Length: 0`,
    ``,
    ``,
  ].join('\r\n');
}

class RawUdp {
  readonly socket: dgram.Socket;
  readonly got: string[] = [];
  private waiters: Array<() => void> = [];

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    socket.on('message', (m) => {
      this.got.push(m.toString('latin1'));
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async bind(port: number): Promise<RawUdp> {
    const s = dgram.createSocket('udp4');
    await new Promise<void>((r) => s.bind(port, '127.0.0.1', () => r()));
    return new RawUdp(s);
  }

  send(text: string | Buffer, port: number): void {
    this.socket.send(typeof text === 'string' ? Buffer.from(text, 'latin1') : text, port, '127.0.0.1');
  }

  async waitFor(pred: (msgs: string[]) => boolean, ms = 3000): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred(this.got)) {
      if (Date.now() > end) return false;
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
    return true;
  }

  close(): void {
    this.socket.close();
  }
}

/** A TCP client of the proxy, connected from `from`: `got` collects what it receives, `closed` settles when the connection closes. */
interface TcpClient {
  sock: net.Socket;
  got: Buffer[];
  closed: Promise<void>;
}

async function tcpClient(port: number, from = '127.0.0.1'): Promise<TcpClient> {
  const sock = net.connect({ port, host: '127.0.0.1', localAddress: from });
  sock.on('error', () => undefined);
  const got: Buffer[] = [];
  sock.on('data', (d: Buffer) => got.push(d));
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await new Promise<void>((r) => sock.once('connect', () => r()));
  return { sock, got, closed };
}

/** Whether the proxy closes the connection within `ms`. */
function closesWithin(c: TcpClient, ms: number): Promise<boolean> {
  return Promise.race([c.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
}

/** An OPTIONS to the proxy itself over TCP, which it answers 200 locally. */
function tcpOptions(id: string, tcpPort: number): string {
  return invite({ port: 15300, branch: `z9hG4bK-${id}`, callId: id, maxForwards: 70 })
    .replace(/INVITE/g, 'OPTIONS').replace('SIP/2.0/UDP', 'SIP/2.0/TCP').replace('sip:6421@127.0.0.1 SIP', `sip:127.0.0.1:${tcpPort} SIP`);
}

/** Status code of a response (0 for requests); tolerant, since a 400 may lack the headers it complained about. */
function status(text: string): number {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(text);
  return m ? Number(m[1]) : 0;
}

describe('raw SIP edge cases', () => {
  let uac: RawUdp;
  let core: RawUdp;
  beforeEach(async () => {
    uac = await RawUdp.bind(15300);
    core = await RawUdp.bind(15301);
  });
  afterEach(() => {
    uac.close();
    core.close();
  });

  test('a source the policy drops before parsing gets nothing back; others still do', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    h.policy.banned.add('127.0.0.1');
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-ban1', callId: 'ban1', maxForwards: 70 }), h.udp);
    expect(await uac.waitFor((m) => m.length >= 1, 300)).toBe(false);
    expect(core.got).toHaveLength(0);
    expect(h.proxy.stats().counters.dropped).toBe(1);
    expect(h.proxy.stats().counters.requests).toBe(0);
    h.policy.banned.clear();
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-ban2', callId: 'ban2', maxForwards: 70 }), h.udp);
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 100))).toBe(true);
  });

  test('overload: while the event loop runs late, a new call gets 503 with Retry-After at once; afterwards calls go through', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0'], { overloadLagMs: 50 });
    await new Promise((r) => setTimeout(r, 100)); // the lag meter has ticked
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-ovl1', callId: 'ovl1', maxForwards: 70 }), h.udp);
    const until = Date.now() + 150;
    while (Date.now() < until) {
      /* the proxy's thread is busy: what a burst past capacity does to it */
    }
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 503))).toBe(true);
    const answer = uac.got.find((x) => status(x) === 503)!;
    expect(answer).toMatch(/\r\nRetry-After: 5\r\n/);
    expect(answer).toContain('Call-ID: ovl1');
    expect(core.got).toHaveLength(0);
    expect(h.policy.admissions).toBe(0);
    expect(h.proxy.stats().counters.shed).toBe(1);
    expect(h.proxy.stats().serverTransactions).toBe(0);

    await new Promise((r) => setTimeout(r, 100)); // caught up
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-ovl2', callId: 'ovl2', maxForwards: 70 }), h.udp);
    expect(await core.waitFor((m) => m.some((x) => x.includes('Call-ID: ovl2')))).toBe(true);
    expect(h.policy.admissions).toBe(1);
  });

  test('Max-Forwards: 1 is forwarded as 0; a missing one is added as 70', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-mf1', callId: 'mf1', maxForwards: 1 }), h.udp);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-mfnone', callId: 'mfnone' }), h.udp);
    expect(await core.waitFor((m) => m.length >= 2)).toBe(true);
    const byCall = (id: string): string => core.got.find((m) => m.includes(`Call-ID: ${id}`)) ?? '';
    expect(byCall('mf1')).toMatch(/\r\nMax-Forwards: 0\r\n/);
    expect(byCall('mfnone')).toMatch(/\r\nMax-Forwards: 70\r\n/);
  });

  test('a retransmitted INVITE is absorbed: the core sees it once, the UAC gets 100 again', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const inv = invite({ port: 15300, branch: 'z9hG4bK-retrans', callId: 'retrans', maxForwards: 70 });
    uac.send(inv, h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    // The core answers 100 so that the proxy's own Timer A retransmissions stop.
    const fwd = parseMessage(Buffer.from(core.got[0], 'latin1')) as SipRequest;
    core.send(`SIP/2.0 100 Trying\r\nVia: ${fwd.headers('via').join(', ')}\r\nFrom: ${fwd.header('from')}\r\nTo: ${fwd.header('to')}\r\nCall-ID: retrans\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`, h.udp);
    await new Promise((r) => setTimeout(r, 100));
    core.got.length = 0;
    uac.send(inv, h.udp);
    uac.send(inv, h.udp);
    expect(await uac.waitFor((m) => m.filter((x) => status(x) === 100).length >= 3)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    expect(core.got.filter((m) => m.startsWith('INVITE')).length).toBe(0);
    expect(h.policy.admissions).toBe(1);
  });

  test('garbage and malformed requests: no crash, 400 when answerable (505 for another SIP version), next call still served', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']);
    uac.send(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0xff, 0x0d, 0x0a]), h.udp);
    uac.send('\r\n\r\n', h.udp); // keep-alive, ignored
    uac.send('INVITE sip:x SIP/2.0\r\n\r\n', h.udp); // no Via: dropped
    const noCallId = invite({ port: 15300, branch: 'z9hG4bK-bad', callId: 'x', maxForwards: 70 }).replace(/Call-ID: x\r\n/, '');
    uac.send(noCallId, h.udp);
    const badCseq = invite({ port: 15300, branch: 'z9hG4bK-bad2', callId: 'bad2', maxForwards: 70 }).replace('CSeq: 1 INVITE', 'CSeq: 1 BYE');
    uac.send(badCseq, h.udp);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-v3', callId: 'v3', maxForwards: 70 }).replace(' SIP/2.0\r\n', ' SIP/3.0\r\n'), h.udp);
    expect(await uac.waitFor((m) => m.filter((x) => status(x) === 400).length >= 2 && m.some((x) => status(x) === 505))).toBe(true);
    expect(uac.got.find((x) => status(x) === 505)).toMatch(/^SIP\/2\.0 505 Version Not Supported\r\n[^]*Call-ID: v3\r\n/);
    const four = uac.got.filter((x) => status(x) === 400);
    expect(four.join('\n')).toMatch(/Call-ID/);
    expect(four.join('\n')).toMatch(/CSeq/);

    // A TCP peer that never ends its header block is cut off at the size limit.
    const sock = net.connect(h.tcp!, '127.0.0.1');
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('error', () => undefined);
    sock.write('INVITE sip:x@y SIP/2.0\r\nX-Junk: ' + 'a'.repeat(70 * 1024));
    await closed;

    // Still alive: a well-formed INVITE gets through.
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-good', callId: 'good', maxForwards: 70 }), h.udp);
    expect(await core.waitFor((m) => m.some((x) => x.includes('Call-ID: good')))).toBe(true);
    expect(h.proxy.stats().counters.parseErrors).toBeGreaterThanOrEqual(3);
  });

  test('a fuzz of 1000 corrupted requests and responses causes no internal error, and service continues', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const good = Buffer.from(invite({ port: 15300, branch: 'z9hG4bK-fuzz', callId: 'fuzz', maxForwards: 70, extra: 'Route: <sip:127.0.0.1;lr>' }));
    const resp = Buffer.from(`SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:${h.udp};branch=z9hG4bKtgAAAA, SIP/2.0/UDP 127.0.0.1:15300;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: f\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`);
    let seed = 99;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = Buffer.from(':;,<>"\\\r\n @=[]%\x00\xff0aZ/');
    for (let i = 0; i < 1000; i++) {
      const b = Buffer.from(i % 2 ? good : resp);
      for (let e = 0; e < 1 + rnd(5); e++) b[rnd(b.length)] = alphabet[rnd(alphabet.length)];
      uac.send(b, h.udp);
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 10));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(h.logs.join('\n')).not.toMatch(/internal error|handler failed/);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-afterfuzz', callId: 'afterfuzz', maxForwards: 70 }), h.udp);
    expect(await core.waitFor((m) => m.some((x) => x.includes('Call-ID: afterfuzz')))).toBe(true);
  });

  test('responses: our Via is removed, 100 is not forwarded, a 486 is ACKed downstream and its ACK absorbed', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-busy', callId: 'busy', maxForwards: 70 }), h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    const fwd = parseMessage(Buffer.from(core.got[0], 'latin1')) as SipRequest;
    // Answer like sipp does: all Via values on one line.
    const vias = fwd.headers('via').join(', ');
    const resp = (code: string): string =>
      `SIP/2.0 ${code}\r\nVia: ${vias}\r\nFrom: ${fwd.header('from')}\r\nTo: ${fwd.header('to')};tag=core1\r\nCall-ID: busy\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`;
    core.send(resp('100 Trying'), h.udp);
    core.send(resp('486 Busy Here'), h.udp);
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 486))).toBe(true);
    const busy = uac.got.find((x) => status(x) === 486)!;
    expect(busy).toContain('Via: SIP/2.0/UDP 127.0.0.1:15300;branch=z9hG4bK-busy;rport=15300;received=127.0.0.1');
    expect(busy).not.toContain('z9hG4bKtg');
    expect(uac.got.filter((x) => status(x) === 100)).toHaveLength(1); // ours only
    expect(await core.waitFor((m) => m.some((x) => x.startsWith('ACK ')))).toBe(true);
    const ack = core.got.find((x) => x.startsWith('ACK '))!;
    expect(ack).toContain(`branch=${fwd.topVia.branch}`);
    expect(ack).toContain('tag=core1');
    // The caller's ACK is absorbed, not forwarded a second time.
    uac.send(`ACK sip:6421@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:15300;branch=z9hG4bK-busy;rport\r\nFrom: <sip:raw@127.0.0.1>;tag=raw1\r\nTo: <sip:6421@127.0.0.1>;tag=core1\r\nCall-ID: busy\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`, h.udp);
    await new Promise((r) => setTimeout(r, 200));
    expect(core.got.filter((x) => x.startsWith('ACK '))).toHaveLength(1);
    expect(h.policy.ended).toEqual([['busy', 'rejected']]);
    const s = await drained(h.proxy);
    expect([s.serverTransactions, s.clientTransactions]).toEqual([0, 0]);
  });

  test('requests from customers always go to the upstream, whatever their Route says (no open relay)', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const other = await RawUdp.bind(15302);
    try {
      uac.send(invite({ port: 15300, branch: 'z9hG4bK-relay', callId: 'relay', maxForwards: 70, extra: 'Route: <sip:127.0.0.1:15302;lr>' }), h.udp);
      expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
      await new Promise((r) => setTimeout(r, 100));
      expect(other.got).toHaveLength(0);
    } finally {
      other.close();
    }
  });

  test('screenRequest "drop" gets no answer at all', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-drop', callId: 'drop', maxForwards: 70, extra: 'X-Test-Drop: 1' }), h.udp);
    await new Promise((r) => setTimeout(r, 300));
    expect(uac.got).toHaveLength(0);
    expect(core.got).toHaveLength(0);
    expect(h.proxy.stats().serverTransactions).toBe(0);
  });

  test('Timer C: an INVITE ringing too long is CANCELled downstream and answered 408 upstream', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0'], { timers: { ...TEST_TIMERS, timerC: 300 } });
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-timerc', callId: 'timerc', maxForwards: 70 }), h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    const fwd = parseMessage(Buffer.from(core.got[0], 'latin1')) as SipRequest;
    core.send(`SIP/2.0 180 Ringing\r\nVia: ${fwd.headers('via').join(', ')}\r\nFrom: ${fwd.header('from')}\r\nTo: ${fwd.header('to')};tag=ring\r\nCall-ID: timerc\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`, h.udp);
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 408), 3000)).toBe(true);
    expect(await core.waitFor((m) => m.some((x) => x.startsWith('CANCEL ')))).toBe(true);
    const cancel = parseMessage(Buffer.from(core.got.find((x) => x.startsWith('CANCEL '))!, 'latin1')) as SipRequest;
    expect(cancel.topVia.branch).toBe(fwd.topVia.branch); // §9.1: same branch as the INVITE
    expect(cancel.uri).toBe(fwd.uri);
    expect(cancel.cseq).toEqual({ seq: 1, method: 'CANCEL' });
    expect(h.policy.ended).toEqual([['timerc', 'timeout']]);
  });

  test('TCP: a CRLFCRLF keep-alive gets a CRLF pong, and the connection stays usable', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']);
    const sock = net.connect(h.tcp!, '127.0.0.1');
    sock.on('error', () => undefined);
    await new Promise<void>((r) => sock.once('connect', () => r()));
    const got: Buffer[] = [];
    sock.on('data', (d: Buffer) => got.push(d));
    sock.write('\r\n\r\n');
    const deadline = Date.now() + 2000;
    while (Buffer.concat(got).toString() !== '\r\n' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(got).toString()).toBe('\r\n');
    const opts = invite({ port: 15300, branch: 'z9hG4bK-tcpopt', callId: 'tcpopt', maxForwards: 70 })
      .replace(/INVITE/g, 'OPTIONS').replace('SIP/2.0/UDP', 'SIP/2.0/TCP').replace(`sip:6421@127.0.0.1 SIP`, `sip:127.0.0.1:${h.tcp} SIP`);
    sock.write(opts);
    while (!Buffer.concat(got).toString().includes('200 OK') && Date.now() < deadline + 2000) await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(got).toString()).toContain('SIP/2.0 200 OK'); // OPTIONS to the proxy itself
    sock.destroy();
  });

  test('TCP: a banned source is disconnected at accept, and a source banned while connected loses its connection', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']);

    // Not banned yet: served over a connection that stays open.
    const a = await tcpClient(h.tcp!, '127.0.0.2');
    a.sock.write(tcpOptions('tcpban1', h.tcp!));
    const until = Date.now() + 2000;
    while (!Buffer.concat(a.got).toString().includes('200 OK') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(Buffer.concat(a.got).toString()).toContain('SIP/2.0 200 OK');
    // Banned now: its next message is dropped unanswered and the connection is closed.
    h.policy.banned.add('127.0.0.2');
    a.got.length = 0;
    a.sock.write(tcpOptions('tcpban2', h.tcp!));
    await a.closed;
    expect(Buffer.concat(a.got).length).toBe(0);
    // A new connection from it is closed before it can send anything.
    const b = await tcpClient(h.tcp!, '127.0.0.2');
    await b.closed;
    expect(h.proxy.stats().counters.requests).toBe(1);
  });

  test('TCP: one source holds at most maxConnectionsPerSource connections; other sources and freed slots are unaffected', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'], { maxConnectionsPerSource: 3 });
    const first = [await tcpClient(h.tcp!, '127.0.0.2'), await tcpClient(h.tcp!, '127.0.0.2'), await tcpClient(h.tcp!, '127.0.0.2')];
    const fourth = await tcpClient(h.tcp!, '127.0.0.2');
    const other = await tcpClient(h.tcp!, '127.0.0.3');
    const firstStay = first.map((c) => closesWithin(c, 300));
    expect(await closesWithin(fourth, 300)).toBe(true);
    expect(await closesWithin(other, 300)).toBe(false);
    for (const stays of firstStay) expect(await stays).toBe(false);
    expect(h.logs.join('\n')).toMatch(/refusing a stream connection: the source holds its most/);
    first[0].sock.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await tcpClient(h.tcp!, '127.0.0.2');
    expect(await closesWithin(again, 300)).toBe(false);
    for (const c of [...first, again, other]) c.sock.destroy();
  });

  test('TCP: a message left incomplete (a header dribbled in, slowloris) loses its connection after partialMessageTimeoutMs', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'], { partialMessageTimeoutMs: 300 });
    const { sock, closed: closing } = await tcpClient(h.tcp!);
    const closed = closing.then(() => Date.now());
    const started = Date.now();
    const drip = setInterval(() => sock.write('X'), 50); // every byte would restart an idle timer
    sock.write('OPTIONS sip:127.0.0.1 SIP/2.0\r\nX-Slow: ');
    const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(-1), 3000))]);
    clearInterval(drip);
    sock.destroy();
    expect(at).toBeGreaterThan(0);
    expect(at - started).toBeGreaterThanOrEqual(250);
    expect(h.logs.join('\n')).toMatch(/a message stayed incomplete/);
  });

  test('TCP: a connection that never sends a message is closed after the same bound; one that did stays open', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0'], { partialMessageTimeoutMs: 300 });
    const silent = await tcpClient(h.tcp!);
    const talker = await tcpClient(h.tcp!);
    const silentCloses = closesWithin(silent, 1500);
    const talkerCloses = closesWithin(talker, 1500);
    talker.sock.write(tcpOptions('talk', h.tcp!));
    expect(await silentCloses).toBe(true);
    expect(await talkerCloses).toBe(false);
    expect(h.logs.join('\n')).toMatch(/no message since the connection opened/);
    talker.sock.destroy();
  });

  test('a TCP peer at the core\'s address naming the core\'s port in its Via is not the core when the core is reached over UDP', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0', 'tcp:127.0.0.1:0']);
    const other = await RawUdp.bind(15302);
    try {
      const { sock } = await tcpClient(h.tcp!);
      sock.write(invite({ port: 15301, branch: 'z9hG4bK-fakecore', callId: 'fakecore', maxForwards: 70 })
        .replace('SIP/2.0/UDP', 'SIP/2.0/TCP').replace('INVITE sip:6421@127.0.0.1 SIP', 'INVITE sip:6421@127.0.0.1:15302 SIP'));
      expect(await core.waitFor((m) => m.some((x) => x.includes('Call-ID: fakecore')))).toBe(true);
      expect(h.policy.admissions).toBe(1); // screened and decided as a customer's call
      await new Promise((r) => setTimeout(r, 100));
      expect(other.got).toHaveLength(0); // and never relayed where its Request-URI pointed
      sock.destroy();
    } finally {
      other.close();
    }
  });

  test('CANCEL for an unknown transaction gets 481', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-nocancel', callId: 'nc', maxForwards: 70 }).replace(/INVITE/g, 'CANCEL'), h.udp);
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 481))).toBe(true);
  });

  test('an INVITE to a number at the proxy\'s own address with a loose Route to it keeps its Request-URI (not strict routing)', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const ruri = `sip:6421@127.0.0.1:${h.udp}`;
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-lr', callId: 'lr', maxForwards: 70, extra: `Route: <sip:127.0.0.1:${h.udp};lr>` }).replace('INVITE sip:6421@127.0.0.1 SIP', `INVITE ${ruri} SIP`), h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    expect(core.got[0].startsWith(`INVITE ${ruri} SIP/2.0\r\n`)).toBe(true);
    expect(core.got[0]).not.toMatch(/\r\nRoute:/i);
    expect(h.policy.admitted.has('lr')).toBe(true);
  });

  test('a caller behind NAT (Via port is not its source port, no rport) gets a forked second 2xx at its source port', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const natted = invite({ port: 15300, branch: 'z9hG4bK-nat', callId: 'nat', maxForwards: 70 }).replace('Via: SIP/2.0/UDP 127.0.0.1:15300;branch=z9hG4bK-nat;rport', 'Via: SIP/2.0/UDP 10.20.30.40:5999;branch=z9hG4bK-nat');
    uac.send(natted, h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    const fwd = parseMessage(Buffer.from(core.got[0], 'latin1')) as SipRequest;
    expect(fwd.headers('via')[1]).toBe('SIP/2.0/UDP 10.20.30.40:5999;branch=z9hG4bK-nat;rport=15300;received=127.0.0.1');
    const ok = (tag: string): string =>
      `SIP/2.0 200 OK\r\nVia: ${fwd.headers('via').join(', ')}\r\nFrom: ${fwd.header('from')}\r\nTo: ${fwd.header('to')};tag=${tag}\r\nCall-ID: nat\r\nCSeq: 1 INVITE\r\nContact: <sip:${tag}@127.0.0.1:15301>\r\nContent-Length: 0\r\n\r\n`;
    core.send(ok('fork1'), h.udp);
    expect(await uac.waitFor((m) => m.some((x) => x.includes('tag=fork1')))).toBe(true);
    // §16.7 step 10: every 2xx is forwarded; this one outlives the UDP client transaction.
    core.send(ok('fork2'), h.udp);
    expect(await uac.waitFor((m) => m.some((x) => x.includes('tag=fork2')))).toBe(true);
  });

  test('no relay for forged responses: a stray 2xx from anyone but the core goes nowhere but the core', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const victim = await RawUdp.bind(15302);
    try {
      const forged = (vias: string): string =>
        `SIP/2.0 200 OK\r\nVia: ${vias}\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: forged-stray\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`;
      // From a customer's address (not the core), naming a third party as the next hop.
      uac.send(forged(`SIP/2.0/UDP 127.0.0.1:${h.udp};branch=z9hG4bKtg0000000000000000, SIP/2.0/UDP 127.0.0.1:15302;branch=z9hG4bKv`), h.udp);
      // Our own address over and over: must not bounce inside the proxy.
      const self = Array.from({ length: 50 }, () => `SIP/2.0/UDP 127.0.0.1:${h.udp};branch=z9hG4bKtg0000000000000001`).join(', ');
      core.send(forged(self), h.udp);
      await new Promise((r) => setTimeout(r, 300));
      expect(victim.got).toHaveLength(0);
      expect(h.proxy.stats().counters.responses).toBe(2);
      expect(h.logs.join('\n')).toMatch(/neither from nor to the core/);
      expect(h.logs.join('\n')).toMatch(/Via names this proxy/);
    } finally {
      victim.close();
    }
  });

  test('a received= written by the caller itself is replaced by the address the request came from', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-rcv', callId: 'rcv', maxForwards: 70 }).replace(';rport\r\n', ';received=127.0.0.99\r\n'), h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    const fwd = parseMessage(Buffer.from(core.got[0], 'latin1')) as SipRequest;
    expect(fwd.headers('via')[1]).toBe('SIP/2.0/UDP 127.0.0.1:15300;branch=z9hG4bK-rcv;received=127.0.0.1');
  });

  test('a BYE the core refuses (481 for made-up tags, 500 out of order) does not end the call; the BYE it accepts does', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-byeslot', callId: 'byeslot', maxForwards: 70 }), h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    const inv = parseMessage(Buffer.from(core.got[0], 'latin1')) as SipRequest;
    core.send(`SIP/2.0 200 OK\r\nVia: ${inv.headers('via').join(', ')}\r\nRecord-Route: ${inv.header('record-route')}\r\nFrom: ${inv.header('from')}\r\nTo: ${inv.header('to')};tag=core9\r\nCall-ID: byeslot\r\nCSeq: 1 INVITE\r\nContact: <sip:core@127.0.0.1:15301>\r\nContent-Length: 0\r\n\r\n`, h.udp);
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 200))).toBe(true);
    const bye = (branch: string, toTag: string): string =>
      `BYE sip:core@127.0.0.1:15301 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:15300;branch=${branch};rport\r\nMax-Forwards: 70\r\nRoute: ${inv.header('record-route')}\r\nFrom: <sip:raw@127.0.0.1>;tag=raw1\r\nTo: <sip:6421@127.0.0.1>;tag=${toTag}\r\nCall-ID: byeslot\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`;
    const answerBye = async (n: number, code: string): Promise<void> => {
      expect(await core.waitFor((m) => m.filter((x) => x.startsWith('BYE ')).length >= n)).toBe(true);
      const b = parseMessage(Buffer.from(core.got.filter((x) => x.startsWith('BYE '))[n - 1], 'latin1')) as SipRequest;
      core.send(`SIP/2.0 ${code}\r\nVia: ${b.headers('via').join(', ')}\r\nFrom: ${b.header('from')}\r\nTo: ${b.header('to')}\r\nCall-ID: byeslot\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`, h.udp);
      expect(await uac.waitFor((m) => m.some((x) => x.startsWith(`SIP/2.0 ${code}`) && x.includes('CSeq: 2 BYE')))).toBe(true);
    };
    uac.send(bye('z9hG4bK-bogusbye', 'not-the-core'), h.udp);
    await answerBye(1, '481 Call/Transaction Does Not Exist');
    expect(h.policy.ended).toEqual([]);
    expect(h.policy.admitted.has('byeslot')).toBe(true);
    // The right tags but an old CSeq: the core rejects it out of order (§12.2.2) and the call stays up.
    uac.send(bye('z9hG4bK-oldbye', 'core9'), h.udp);
    await answerBye(2, '500 Server Internal Error');
    expect(h.policy.ended).toEqual([]);
    uac.send(bye('z9hG4bK-realbye', 'core9'), h.udp);
    await answerBye(3, '200 OK');
    expect(h.policy.ended).toEqual([['byeslot', 'bye']]);
  });

  test('Proxy-Require naming an extension gets 420 with Unsupported; the core never sees it', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    uac.send(invite({ port: 15300, branch: 'z9hG4bK-preq', callId: 'preq', maxForwards: 70, extra: 'Proxy-Require: com.example.foo, sec-agree' }), h.udp);
    expect(await uac.waitFor((m) => m.some((x) => status(x) === 420))).toBe(true);
    expect(uac.got.find((x) => status(x) === 420)).toMatch(/\r\nUnsupported: com\.example\.foo, sec-agree\r\n/);
    await new Promise((r) => setTimeout(r, 100));
    expect(core.got).toHaveLength(0);
    expect(h.policy.admissions).toBe(0);
  });

  test('an INVITE with a forged To tag for an unknown dialog still goes through admission', async () => {
    const h = await startProxy('127.0.0.1:15301', ['udp:127.0.0.1:0']);
    const forged = invite({ port: 15300, branch: 'z9hG4bK-forged', callId: 'forged', maxForwards: 70 }).replace('To: <sip:6421@127.0.0.1>', 'To: <sip:6421@127.0.0.1>;tag=whatever');
    uac.send(forged, h.udp);
    expect(await core.waitFor((m) => m.length >= 1)).toBe(true);
    expect(h.policy.admissions).toBe(1);
  });
});

