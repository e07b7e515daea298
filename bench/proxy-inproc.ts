import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { GuardCore } from '../src/core/guard-core';
import { createLogger } from '../src/log';
import { RuleStore } from '../src/rules/rule-store';
import { GuardPolicy } from '../src/sip/guard-policy';
import type { Peer } from '../src/sip/policy';
import { SipProxy } from '../src/sip/proxy';
import type { InboundMessage, LocalEndpoint } from '../src/sip/transport';
import { writeBenchRules } from './bench-rules';

/**
 * The embedded proxy's own work per call, without sockets: the guard is started as `serve` starts
 * it (same rules as proxy-bench, every decision logged to a discarding stream), then the sipp
 * built-in uac/uas call flow (INVITE, 100, 180, 200, ACK, BYE, 200) is fed straight into the
 * transport's message handler and the datagrams the proxy would send are captured instead.
 *
 * Timers are shortened (T1 = 2 ms, so finished transactions linger 128 ms instead of 10 s) and the
 * loop yields between batches of 500 calls, so transactions expire as they do in production and
 * the tables stay at a steady size; that expiry work is counted. What this leaves out: the kernel
 * (recvmsg/sendmsg, ~7 sends a call) and Node's dgram layer. What it buys: a per-call CPU figure that other tenants
 * of a shared machine disturb far less than sipp runs, so two builds can be compared.
 *
 *   npm run build && npx tsx bench/proxy-inproc.ts
 */

const IP = '127.0.0.1';
const UAC: Peer = { transport: 'udp', address: IP, port: 17201 };
const UAS: Peer = { transport: 'udp', address: IP, port: 17080 };

interface Internals {
  transport: { onMessage: (m: InboundMessage) => void; send: (dest: Peer, data: string) => void; endpoints(): LocalEndpoint[] };
}

const sdp = 'v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

function fieldLines(msg: string, name: string): string[] {
  const re = new RegExp(`^${name}:.*$`, 'gim');
  return msg.split('\r\n\r\n')[0].match(re) ?? [];
}

export async function runProxyInproc(calls = 10_000, rounds = 5): Promise<{ usPerCall: number; sendsPerCall: number }> {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tollguard-inproc-'));
  writeBenchRules(work, 5000, 'all');
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const logger = createLogger('info', sink);
  const store = RuleStore.open(work, logger);
  const core = new GuardCore(store.current);
  // Port 0: the socket is bound but never used.
  const proxy = new SipProxy({
    listen: [`udp:${IP}:0`],
    upstream: `${IP}:${UAS.port}`,
    policy: new GuardPolicy(core, logger, 'all'),
    logger,
    timers: { T1: 2, T2: 8, T4: 10, timerC: 180_000 },
  });
  await proxy.start();
  const t = (proxy as unknown as Internals).transport;
  const local = t.endpoints()[0];
  const sent: Array<[Peer, string]> = [];
  t.send = (dest, data) => void sent.push([dest, data]);
  // With `split` set, each message's handling is timed on its own (wall clock around the
  // synchronous call: what it costs until the proxy returns, timers and GC that land elsewhere
  // not counted), for the per-message breakdown of one extra round.
  const MESSAGES = ['INVITE', '180', '200', 'ACK', 'BYE', '200 (BYE)'];
  const split = new Float64Array(MESSAGES.length);
  let timing = false;
  let k = 0;
  const deliver = (peer: Peer, text: string): void => {
    if (!timing) return t.onMessage({ data: text, peer, local });
    const t0 = performance.now();
    t.onMessage({ data: text, peer, local });
    split[k++ % MESSAGES.length] += performance.now() - t0;
  };
  const proxyAt = `${IP}:${local.port}`;
  let seq = 0;

  const oneCall = (): void => {
    const n = seq++;
    const callId = `${n}-4242@${IP}`;
    const from = `From: sipp <sip:sipp@${IP}:${UAC.port}>;tag=${n}SIPpTag00${n}`;
    const to = `To: 095550111 <sip:095550111@${proxyAt}>`;
    deliver(UAC, [
      `INVITE sip:095550111@${proxyAt} SIP/2.0`, `Via: SIP/2.0/UDP ${IP}:${UAC.port};branch=z9hG4bK-4242-${n}-0`, from, to,
      `Call-ID: ${callId}`, 'CSeq: 1 INVITE', `Contact: sip:sipp@${IP}:${UAC.port}`, 'Max-Forwards: 70', 'Subject: Performance Test',
      'Content-Type: application/sdp', `Content-Length: ${sdp.length}`, '', sdp,
    ].join('\r\n'));
    const fwd = sent[sent.length - 1][1];
    const vias = fieldLines(fwd, 'Via');
    const rr = fieldLines(fwd, 'Record-Route');
    const toTagged = `${to};tag=${n}SIPpTag01${n}`;
    const response = (status: string, cseq: string, body = ''): string =>
      [`SIP/2.0 ${status}`, ...vias, ...rr, from, toTagged, `Call-ID: ${callId}`, `CSeq: ${cseq}`, `Contact: <sip:${IP}:${UAS.port};transport=UDP>`,
        ...(body ? ['Content-Type: application/sdp'] : []), `Content-Length: ${body.length}`, '', body].join('\r\n');
    deliver(UAS, response('180 Ringing', '1 INVITE'));
    deliver(UAS, response('200 OK', '1 INVITE', sdp));
    const route = rr.map((l) => l.replace(/^Record-Route/i, 'Route'));
    const inDialog = (method: string, cseq: number, branch: string): string =>
      [`${method} sip:${IP}:${UAS.port};transport=UDP SIP/2.0`, `Via: SIP/2.0/UDP ${IP}:${UAC.port};branch=z9hG4bK-4242-${n}-${branch}`, ...route, from, toTagged,
        `Call-ID: ${callId}`, `CSeq: ${cseq} ${method}`, `Contact: sip:sipp@${IP}:${UAC.port}`, 'Max-Forwards: 70', 'Subject: Performance Test', 'Content-Length: 0', '', ''].join('\r\n');
    deliver(UAC, inDialog('ACK', 1, '5'));
    deliver(UAC, inDialog('BYE', 2, '7'));
    const bye = sent[sent.length - 1][1];
    const byeVias = fieldLines(bye, 'Via');
    deliver(UAS, [`SIP/2.0 200 OK`, ...byeVias, from, toTagged, `Call-ID: ${callId}`, 'CSeq: 2 BYE', 'Content-Length: 0', '', ''].join('\r\n'));
  };

  // Building the test messages is part of each call here; measure it alone and take it off.
  const driverOnly = (): void => {
    const n = seq;
    const text = [`INVITE sip:095550111@${proxyAt} SIP/2.0`, `Via: SIP/2.0/UDP ${IP}:${UAC.port};branch=z9hG4bK-4242-${n}-0`, `Call-ID: ${n}`, '', sdp].join('\r\n');
    for (let k = 0; k < 6; k++) void (text + k).length;
    fieldLines(text, 'Via');
    fieldLines(text, 'Record-Route');
  };

  const BATCH = 500;
  const pause = (): Promise<void> => new Promise((r) => setTimeout(r, 140));
  try {
    for (let i = 0; i < 5000; i++) {
      oneCall(); // warm-up
      if (i % BATCH === BATCH - 1) await pause();
    }
    sent.length = 0;
    const per: number[] = [];
    const driver: number[] = [];
    let sends = 0;
    for (let r = 0; r < rounds; r++) {
      await pause();
      const c0 = process.cpuUsage();
      for (let i = 0; i < calls; i++) {
        oneCall();
        if (sent.length > 64) {
          sends += sent.length;
          sent.length = 0;
        }
        if (i % BATCH === BATCH - 1) await pause();
      }
      await pause();
      const c1 = process.cpuUsage(c0);
      sends += sent.length;
      per.push((c1.user + c1.system) / calls);
      const d0 = process.cpuUsage();
      for (let i = 0; i < calls; i++) driverOnly();
      const d1 = process.cpuUsage(d0);
      driver.push((d1.user + d1.system) / calls);
    }
    await pause();
    timing = true;
    for (let i = 0; i < calls; i++) {
      oneCall();
      sent.length = 0;
      if (i % BATCH === BATCH - 1) await pause();
    }
    timing = false;
    await pause();
    per.sort((a, b) => a - b);
    driver.sort((a, b) => a - b);
    const usPerCall = per[per.length >> 1] - driver[driver.length >> 1];
    const sendsPerCall = sends / (calls * rounds);
    console.log(
      `\nProxy work per call, in process (no sockets; sipp uac/uas flow, decisions logged): ${usPerCall.toFixed(1)} µs CPU` +
        ` (median of ${rounds} x ${calls} calls, min ${(per[0] - driver[0]).toFixed(1)}; message building ${driver[driver.length >> 1].toFixed(1)} µs taken off); ${sendsPerCall.toFixed(1)} datagrams out a call`,
    );
    const perMessage = MESSAGES.map((m, i) => `${m} ${((split[i] * 1000) / calls).toFixed(1)}`).join(', ');
    console.log(`Per message, µs until the proxy returns (one more round of ${calls} calls): ${perMessage}`);
    return { usPerCall, sendsPerCall };
  } finally {
    await proxy.stop();
    store.close();
  }
}

if (require.main === module) {
  runProxyInproc(Number(process.env.CALLS ?? 10_000)).then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
}
