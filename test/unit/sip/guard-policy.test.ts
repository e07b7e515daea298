import { logSink } from '../log-sink';
import { performance } from 'node:perf_hooks';
import { monotonicNow } from '../../../src/clock';
import * as path from 'node:path';
import { GuardCore } from '../../../src/core/guard-core';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import { GuardPolicy, rejectionOf } from '../../../src/sip/guard-policy';
import { parseMessage, type SipRequest } from '../../../src/sip/message';
import type { Peer } from '../../../src/sip/policy';

const rules = compileRules(loadRuleSet(path.resolve(__dirname, '../../../rules')));

function invite(user: string, from: string, callId = 'c-' + Math.random()): SipRequest {
  const text = [
    `INVITE sip:${user}@core SIP/2.0`,
    'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKx',
    'Max-Forwards: 70',
    `From: <sip:${from}@127.0.0.1>;tag=1`,
    `To: <sip:${user}@core>`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

function setup(mode: 'all' | 'rejects' | 'none' = 'all') {
  const { lines, logger } = logSink('info');
  const core = new GuardCore(rules);
  return { core, lines, policy: new GuardPolicy(core, logger, mode) };
}

const peer = (address: string): Peer => ({ transport: 'udp', address, port: 5061 });
const tick = () => new Promise((r) => setImmediate(r));

describe('GuardPolicy: verdicts become SIP answers', () => {
  it("admits bob's domestic call and logs one decision line with the normalised number", async () => {
    const { policy, lines } = setup();
    expect(policy.admitInvite(invite('095550111', 'bob'), peer('127.0.0.1'))).toBeNull();
    await tick();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ message: 'decision', account: 'bob', dialled: '095550111', normalised: '+6495550111', verdict: 'allow', rule: 'allow' });
    expect(typeof lines[0].time).toBe('string');
  });

  it("refuses bob's international call with 403, a Warning and X-Reason naming the rule", () => {
    const { policy } = setup();
    const r = policy.admitInvite(invite('0061212345678', 'bob'), peer('127.0.0.1'));
    expect(r).not.toBeNull();
    expect(r!.status).toBe(403);
    expect(r!.headers).toContainEqual(['X-Reason', 'international']);
    expect(r!.headers!.find(([n]) => n === 'Warning')![1]).toMatch(/^399 tollguard ".*\+61212345678.*"$/);
  });

  it('screens every request by source: outside allowed_sources is refused, inside passes', () => {
    const { policy } = setup();
    expect(policy.screenRequest(invite('095550111', 'bob'), peer('127.0.0.1'))).toBeNull();
    const r = policy.screenRequest(invite('095550111', 'bob'), peer('192.0.2.1'));
    expect(r).toMatchObject({ status: 403 });
  });

  it('knows admitted calls by Call-ID until they end', () => {
    const { policy } = setup();
    policy.admitInvite(invite('095550111', 'bob', 'call-1'), peer('127.0.0.1'));
    expect(policy.knowsDialog('call-1')).toBe(true);
    policy.callEnded('call-1', 'bye');
    expect(policy.knowsDialog('call-1')).toBe(false);
  });

  it('logs only rejections with decisions: rejects, nothing with none', async () => {
    const rejects = setup('rejects');
    rejects.policy.admitInvite(invite('095550111', 'bob'), peer('127.0.0.1'));
    rejects.policy.admitInvite(invite('+252612345678', 'bob'), peer('127.0.0.1'));
    const none = setup('none');
    none.policy.admitInvite(invite('+252612345678', 'bob'), peer('127.0.0.1'));
    await tick();
    expect(rejects.lines.map((l) => l.verdict)).toEqual(['reject']);
    expect(none.lines).toHaveLength(0);
  });
});

describe('rejectionOf', () => {
  it('adds Retry-After for rate limits and keeps quotes out of the Warning text', () => {
    const r = rejectionOf({ allow: false, rule: 'calls_per_second', status: 503, reason: 'Service Unavailable', detail: 'say "hi"', retryAfter: 5 });
    expect(r.headers).toContainEqual(['Retry-After', '5']);
    expect(r.headers).toContainEqual(['Warning', '399 tollguard "say  hi "']);
  });
});

describe('GuardPolicy: screens, observers and live calls', () => {
  it('runs screens before the source check and honours their drop', () => {
    const { policy } = setup();
    const seen: string[] = [];
    policy.addScreen({
      dropSource: (a) => a === '127.0.0.66',
      screen: (req, from) => {
        seen.push(req.method + ' ' + from.address);
        return from.address === '127.0.0.77' ? 'drop' : null;
      },
    });
    expect(policy.dropSource('127.0.0.66', 'udp')).toBe(true);
    expect(policy.dropSource('127.0.0.1', 'udp')).toBe(false);
    expect(policy.screenRequest(invite('095550111', 'bob'), peer('127.0.0.77'))).toBe('drop');
    expect(policy.screenRequest(invite('095550111', 'bob'), peer('127.0.0.1'))).toBeNull();
    expect(seen).toEqual(['INVITE 127.0.0.77', 'INVITE 127.0.0.1']);
  });

  it('a repeated initial INVITE of an admitted call keeps its slot instead of taking a second one', () => {
    const { policy, core } = setup('none');
    expect(policy.admitInvite(invite('095550111', 'bob', 'twice'), peer('127.0.0.1'))).toBeNull();
    const slot = policy.live.get('twice')!.slot;
    expect(policy.admitInvite(invite('095550111', 'bob', 'twice'), peer('127.0.0.1'))).toBeNull();
    expect(policy.live.get('twice')!.slot).toBe(slot);
    expect(core.stats().liveCalls).toBe(1);
    policy.callEnded('twice', 'bye');
    expect(core.stats().liveCalls).toBe(0);
    expect(policy.knowsDialog('twice')).toBe(false);
  });

  it('a call whose slot the core timed out (lost BYE) ends as timeout, on sight or by the minute sweep', () => {
    const { lines, logger } = logSink('info');
    const core = new GuardCore(rules, { maxCallSeconds: 1 });
    const policy = new GuardPolicy(core, logger, 'none');
    const ended: string[] = [];
    policy.addObserver({ ended: (id, why) => ended.push(`${id} ${why}`) });
    expect(policy.admitInvite(invite('095550111', 'bob', 'lost-bye'), peer('127.0.0.1'))).toBeNull();
    expect(policy.admitInvite(invite('095550111', 'bob', 'lost-too'), peer('127.0.0.1'))).toBeNull();
    expect(policy.knowsDialog('lost-bye')).toBe(true);
    core.touch(-1, monotonicNow() + 2000); // the core's clock passes max_call_seconds
    expect(policy.knowsDialog('lost-bye')).toBe(false);
    expect(ended).toEqual(['lost-bye timeout']);
    expect([...policy.live.keys()]).toEqual(['lost-too']);
    // A minute later the next INVITE sweeps the other one out of live.
    const later = monotonicNow() + 61_000;
    const spy = jest.spyOn(performance, 'now').mockReturnValue(later - performance.timeOrigin);
    try {
      policy.admitInvite(invite('095550111', 'bob', 'next'), peer('127.0.0.1'));
    } finally {
      spy.mockRestore();
    }
    expect(ended).toEqual(['lost-bye timeout', 'lost-too timeout']);
    expect([...policy.live.keys()]).toEqual(['next']);
    expect(lines).toEqual([]);
  });

  it('tells observers every decision, answer and end, and tracks live calls by account', () => {
    const { policy } = setup();
    const events: string[] = [];
    policy.addObserver({
      decided: (e) => events.push(`decided ${e.verdict.rule} ${e.verdict.account} ${e.attempt.dialled}`),
      answered: (id) => events.push(`answered ${id}`),
      ended: (id, why) => events.push(`ended ${id} ${why}`),
    });
    policy.admitInvite(invite('0015551234567', 'bob', 'intl'), peer('127.0.0.1'));
    policy.admitInvite(invite('095550111', 'bob', 'dom'), peer('127.0.0.1'));
    expect([...policy.live.keys()]).toEqual(['dom']);
    expect(policy.live.get('dom')).toMatchObject({ account: 'bob', normalised: '+6495550111', international: false });
    policy.callAnswered('dom');
    expect(policy.live.get('dom')!.answeredAt).toEqual(expect.any(Number));
    policy.callEnded('dom', 'bye');
    policy.callEnded('dom', 'bye'); // reported twice, told once
    expect(policy.live.size).toBe(0);
    expect(events).toEqual(['decided international bob 0015551234567', 'decided allow bob 095550111', 'answered dom', 'ended dom bye']);
  });

  it('a throwing observer is logged and the call goes on', async () => {
    const { policy, lines } = setup('none');
    policy.addObserver({ decided: () => { throw new Error('boom'); } });
    expect(policy.admitInvite(invite('095550111', 'bob'), peer('127.0.0.1'))).toBeNull();
    await tick();
    expect(lines[0]).toMatchObject({ level: 'error', message: 'call observer threw' });
  });

  it("watches the core's answers only when an observer wants them", () => {
    const { policy } = setup();
    const req = parseMessage(Buffer.from([
      'REGISTER sip:core SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bKr',
      'From: <sip:200@core>;tag=1',
      'To: <sip:200@core>',
      'Call-ID: reg-1',
      'CSeq: 2 REGISTER',
      'User-Agent: friendly-scanner',
      'Authorization: Digest username="200", realm="core", nonce="n", uri="sip:core", response="x"',
      'Content-Length: 0',
      '', '',
    ].join('\r\n'))) as SipRequest;
    expect(policy.watchAnswer(req, peer('127.0.0.9'))).toBeUndefined();
    const answers: unknown[] = [];
    let wanted = false;
    policy.addObserver({ upstreamAnswered: (e) => answers.push(e), wantsUpstreamAnswers: () => wanted });
    // Switched off (the defense without defense.yaml): nothing is read or kept for it.
    expect(policy.watchAnswer(req, peer('127.0.0.9'))).toBeUndefined();
    wanted = true;
    const w = policy.watchAnswer(req, peer('127.0.0.9'));
    policy.requestAnswered(w, 403);
    expect(answers).toEqual([expect.objectContaining({ method: 'REGISTER', status: 403, authUser: '200', toUser: '200', fromUser: '200', userAgent: 'friendly-scanner', callId: 'reg-1' })]);
  });
});
