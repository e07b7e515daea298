import { logSink } from '../log-sink';
import { Writable } from 'node:stream';
import { GuardCore } from '../../../src/core/guard-core';
import { createLogger } from '../../../src/log';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import type { CallEndReason, CallObserver, DecisionEvent, UpstreamAnswerEvent } from '../../../src/sip/call-events';
import { DrachtioFrontEnd } from '../../../src/sip/drachtio/front-end';
import { GuardPolicy, rejectionOf } from '../../../src/sip/guard-policy';
import { parseMessage, type SipRequest } from '../../../src/sip/message';
import { makeRulesDir, removeDir } from '../rules/helpers';
import { FakeRequest, FakeResponse, FakeSrf, flush, type InviteSpec } from './fakes';

const GUARD = `
sip:
  listen: [udp:127.0.0.1:5060]
  upstream: 127.0.0.1:5080
home_country: NZ
allowed_sources: [127.0.0.1, 127.0.0.10, 127.0.0.20, 127.0.0.30]
unknown_caller: reject
drachtio:
  host: 127.0.0.1
  secret: cymru
  mode: proxy
  max_call_seconds: { international: 14400, high_risk_allowed: 1800 }
`;

const ACCOUNTS = `
accounts:
  acme:
    sources: [127.0.0.10/32]
  bob:
    users: [bob]
    international: false
  b2b:
    users: [b2b]
    allow_destinations: ["+682"]
    drachtio: { mode: b2bua }
  short:
    users: [short]
    drachtio: { mode: b2bua, max_call_seconds: 2 }
  fenced:
    users: [fenced]
    allowed_sources: [127.0.0.30]
  slow:
    users: [slow]
    limits: { calls_per_second: 1 }
`;

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function rulesFor(guard = GUARD, accounts = ACCOUNTS) {
  const dir = makeRulesDir({ guard, accounts });
  dirs.push(dir);
  return compileRules(loadRuleSet(dir));
}

interface Recorded {
  decided: DecisionEvent[];
  answered: string[];
  ended: Array<[string, CallEndReason]>;
  upstream: UpstreamAnswerEvent[];
}

function setup(guard = GUARD, accounts = ACCOUNTS) {
  const rules = rulesFor(guard, accounts);
  const core = new GuardCore(rules);
  const { lines, logger } = logSink();
  const srf = new FakeSrf();
  const fe = new DrachtioFrontEnd({ srf, core, logger, connection: { style: 'inbound', host: '127.0.0.1', port: 9022, secret: 'cymru' }, upstream: rules.guard.sip.upstream });
  const rec: Recorded = { decided: [], answered: [], ended: [], upstream: [] };
  const observer: CallObserver = {
    decided: (e) => rec.decided.push(e),
    answered: (id) => rec.answered.push(id),
    ended: (id, why) => rec.ended.push([id, why]),
    upstreamAnswered: (e) => rec.upstream.push(e),
  };
  fe.addObserver(observer);
  // Callers named by user come from 127.0.0.20 (127.0.0.10 is acme's peering source, 127.0.0.1 the core).
  const invite = (spec: InviteSpec = {}) => {
    const req = new FakeRequest(spec.from !== undefined && spec.source === undefined ? { ...spec, source: '127.0.0.20' } : spec);
    const res = new FakeResponse();
    srf.handle(req, res);
    return { req, res, callId: req.get('Call-ID')! };
  };
  return { rules, core, srf, fe, rec, lines, invite };
}

describe('the INVITE middleware chain', () => {
  it('is registered as one srf.use("invite", [...]) chain, plus screens for the other out-of-dialog methods', () => {
    const { srf } = setup();
    expect(srf.stacks.get('invite')!.map((f) => f.name)).toEqual([
      'screenSources',
      'answerStrayReInvites',
      'passCoreRequests',
      'readCallAttempt',
      'askTheCore',
      'refuseRejected',
      'chooseForwarding',
      'forwardToCore',
    ]);
    expect([...srf.stacks.keys()].sort()).toEqual(['invite', 'message', 'options', 'publish', 'register', 'subscribe']);
  });
});

describe('a repeated initial INVITE of a carried call', () => {
  it('keeps the call\'s concurrent slot instead of taking a second one', () => {
    const { core, fe, invite } = setup();
    invite({ user: '095550111', callId: 'again@test' });
    invite({ user: '095550111', callId: 'again@test' });
    expect(core.stats().liveCalls).toBe(1);
    expect(fe.isAdmitted('again@test')).toBe(true);
    expect(fe.liveCalls('acme')).toHaveLength(1);
  });
});

describe('allowed calls, proxy mode', () => {
  it('are proxied to the core with Record-Route, counted on admit, released on the CDR of the BYE', async () => {
    const { srf, fe, rec, invite } = setup();
    const { callId, res } = invite({ user: '095550111' });
    expect(res.sent).toEqual([]); // drachtio-server answers from the core, not us
    expect(srf.proxied).toHaveLength(1);
    const p = srf.proxied[0];
    expect(p.destination).toBe('sip:095550111@127.0.0.1:5080');
    expect(p.opts).toEqual({ recordRoute: true, followRedirects: false });
    expect(fe.isAdmitted(callId)).toBe(true);
    expect(fe.liveCalls('acme')).toEqual([expect.objectContaining({ callId, account: 'acme', dialled: '095550111', normalised: '+6495550111', international: false })]);
    expect(rec.decided[0]).toMatchObject({ callId, verdict: { allow: true, account: 'acme' }, peer: { address: '127.0.0.10', transport: 'udp' } });

    p.finish(200);
    await flush();
    expect(rec.answered).toEqual([callId]);
    expect(rec.upstream[0]).toMatchObject({ method: 'INVITE', status: 200, callId });
    expect(fe.liveCalls('acme')[0].answeredAt).toEqual(expect.any(Number));

    // drachtio-server proxies the BYE itself; its cdr:stop is how the guard learns of the end.
    srf.emit('cdr:stop', 'network', '12:00:00.000', 'normal-release', { get: (n: string) => (n === 'Call-ID' ? callId : undefined) });
    expect(rec.ended).toEqual([[callId, 'bye']]);
    expect(fe.isAdmitted(callId)).toBe(false);
    expect(fe.liveCalls()).toEqual([]);
  });

  it.each([
    [486, 'rejected'],
    [487, 'cancelled'],
    [503, 'rejected'],
  ] as const)('a final %i from the core gives the slot back (%s)', async (status, why) => {
    const { srf, fe, rec, invite } = setup();
    const { callId } = invite();
    srf.proxied[0].finish(status);
    await flush();
    expect(fe.isAdmitted(callId)).toBe(false);
    expect(rec.ended).toEqual([[callId, why]]);
    expect(rec.answered).toEqual([]);
  });

  it('a proxy failure (drachtio-server NOK) answers 503 and releases the slot', async () => {
    const { srf, fe, rec, invite, lines } = setup();
    const { callId, res } = invite();
    srf.proxied[0].fail(new Error('no route'));
    await flush();
    expect(res.final?.status).toBe(503);
    expect(fe.isAdmitted(callId)).toBe(false);
    expect(rec.ended).toEqual([[callId, 'error']]);
    expect(lines.some((l) => l.message === 'proxy to the core failed' && l.error === 'no route')).toBe(true);
  });

  it('keeps the user part and its parameters, a tcp: upstream and tel: URIs in the core URI', () => {
    const { fe } = setup(GUARD.replace('upstream: 127.0.0.1:5080', 'upstream: tcp:core.example:5060'));
    expect(fe.coreUri('sip:612345678;phone-context=+252@guard')).toBe('sip:612345678;phone-context=+252@core.example:5060;transport=tcp');
    expect(fe.coreUri('tel:+64-9-555-0111')).toBe('sip:+64-9-555-0111@core.example:5060;transport=tcp;user=phone');
    expect(fe.coreUri('sip:guard.example')).toBe('sip:core.example:5060;transport=tcp');
  });
});

describe('allowed calls, b2bua mode', () => {
  it('per-account override: createB2BUA(req, res, uri, opts) passing headers through; BYE from the caller ends both legs', async () => {
    const { srf, rec, invite, fe } = setup();
    const { callId, req, res } = invite({ from: 'b2b' });
    expect(srf.proxied).toHaveLength(0);
    expect(srf.b2buas).toHaveLength(1);
    const b = srf.b2buas[0];
    expect(b.req).toBe(req);
    expect(b.res).toBe(res);
    expect(b.uri).toBe('sip:095550111@127.0.0.1:5080');
    expect(b.opts).toEqual({ headers: { 'max-forwards': '69' }, proxyRequestHeaders: ['all', '-Route', '-Record-Route'], proxyResponseHeaders: ['all'] });
    expect(fe.liveCalls('b2b')).toHaveLength(1);

    const { uac, uas } = b.answer();
    await flush();
    expect(rec.answered).toEqual([callId]);
    uas.farEndBye();
    await flush();
    expect(uac.destroyed).toHaveLength(1); // the core's leg got our BYE
    expect(rec.ended).toEqual([[callId, 'bye']]);
    expect(fe.isAdmitted(callId)).toBe(false);
    expect(srf.endedSessions).toContain(req);
  });

  it("reports the core's final answer to observers (the defense counts 401/407/403/404), but not a 487 from the caller's CANCEL", async () => {
    const { srf, rec, invite } = setup();
    invite({ from: 'b2b', headers: { 'Proxy-Authorization': 'Digest username="b2b", realm="x"' } });
    srf.b2buas[0].fail(407);
    invite({ from: 'b2b' });
    srf.b2buas[1].answer();
    const cancelled = invite({ from: 'b2b' });
    cancelled.req.emit('cancel', {});
    await flush();
    expect(rec.upstream.map((e) => [e.method, e.status, e.authUser ?? null])).toEqual([
      ['INVITE', 407, 'b2b'],
      ['INVITE', 200, null],
    ]);
  });

  it('Max-Forwards: decremented on the B leg, 483 Too Many Hops at 0', async () => {
    const { srf, fe, rec, invite } = setup();
    invite({ from: 'b2b', headers: { 'Max-Forwards': '5' } });
    expect(srf.b2buas[0].opts?.headers).toEqual({ 'max-forwards': '4' });
    const { res, callId } = invite({ from: 'b2b', headers: { 'Max-Forwards': '0' } });
    expect(res.final).toMatchObject({ status: 483, reason: 'Too Many Hops' });
    expect(srf.b2buas).toHaveLength(1);
    expect(fe.isAdmitted(callId)).toBe(false);
    expect(rec.ended).toContainEqual([callId, 'rejected']);
  });

  it('guard-wide mode b2bua; a BYE from the core ends the caller leg', async () => {
    const { srf, rec, invite } = setup(GUARD.replace('mode: proxy', 'mode: b2bua'));
    const { callId } = invite();
    const { uac, uas } = srf.b2buas[0].answer();
    await flush();
    uac.farEndBye();
    await flush();
    expect(uas.destroyed).toHaveLength(1);
    expect(rec.ended).toEqual([[callId, 'bye']]);
  });

  it('relays a re-INVITE with a new offer and INFO to the other leg, and their answers back', async () => {
    const { srf, invite } = setup();
    invite({ from: 'b2b' });
    const { uac, uas } = srf.b2buas[0].answer();
    await flush();
    const reinvite = new FakeRequest({ from: 'b2b' });
    reinvite.body = 'v=0 new offer';
    const reinviteRes = new FakeResponse();
    uas.emit('modify', reinvite, reinviteRes);
    await flush();
    expect(uac.modifies).toEqual(['v=0 new offer']);
    expect(reinviteRes.final).toEqual({ status: 200, reason: undefined, headers: { 'Content-Type': 'application/sdp' } });

    const info = new FakeRequest({ method: 'INFO', headers: { 'Content-Type': 'application/dtmf-relay' } });
    info.body = 'Signal=5';
    const infoRes = new FakeResponse();
    uac.requestStatus = 200;
    uas.emit('info', info, infoRes);
    await flush();
    expect(uac.requests).toEqual([{ method: 'INFO', headers: { 'Content-Type': 'application/dtmf-relay' }, body: 'Signal=5' }]);
    expect(infoRes.final?.status).toBe(200);

    uas.modifyAnswer = Object.assign(new Error('x'), { name: 'SipError', status: 488 });
    const back = new FakeResponse();
    uac.emit('modify', reinvite, back);
    await flush();
    expect(back.final?.status).toBe(488);
  });

  it('the core refusing the B leg releases the slot (the failure reaches the caller via passFailure)', async () => {
    const { srf, fe, rec, invite } = setup();
    const { callId, res } = invite({ from: 'b2b' });
    srf.b2buas[0].fail(486);
    await flush();
    expect(res.final?.status).toBe(486);
    expect(rec.ended).toEqual([[callId, 'rejected']]);
    expect(fe.isAdmitted(callId)).toBe(false);
  });

  it("the caller's CANCEL while ringing: 487, released as cancelled", async () => {
    const { fe, rec, invite } = setup();
    const { callId, req, res } = invite({ from: 'b2b' });
    req.emit('cancel', {});
    await flush();
    expect(res.final?.status).toBe(487);
    expect(rec.ended).toEqual([[callId, 'cancelled']]);
    expect(fe.isAdmitted(callId)).toBe(false);
  });
});

describe('maximum call duration (b2bua)', () => {
  beforeEach(() => jest.useFakeTimers({ doNotFake: ['setImmediate', 'queueMicrotask', 'nextTick'] }));
  afterEach(() => jest.useRealTimers());

  it("the account's cap (2 s) hangs up both legs with a Reason header", async () => {
    const { srf, rec, invite, fe } = setup();
    const { callId } = invite({ from: 'short' });
    const { uac, uas } = srf.b2buas[0].answer();
    await flush();
    jest.advanceTimersByTime(1999);
    expect(uas.destroyed).toHaveLength(0);
    jest.advanceTimersByTime(1);
    await flush();
    const headers = { Reason: 'Q.850;cause=16;text="max call duration 2 s"', 'X-Reason': 'max_call_duration' };
    expect(uas.destroyed).toEqual([{ headers }]);
    expect(uac.destroyed).toEqual([{ headers }]);
    expect(rec.ended).toEqual([[callId, 'timeout']]);
    expect(fe.isAdmitted(callId)).toBe(false);
  });

  it('the destination class limit applies: high-risk allowed 30 min, international 4 h', async () => {
    const { srf, invite } = setup();
    invite({ from: 'b2b', user: '+68221234' }); // +682 Cook Islands: high-risk, allowed for b2b
    invite({ from: 'b2b', user: '+61212345678' }); // Australia: international
    const hr = srf.b2buas[0].answer();
    const intl = srf.b2buas[1].answer();
    await flush();
    jest.advanceTimersByTime(1800 * 1000);
    await flush();
    expect(hr.uas.destroyed).toHaveLength(1);
    expect(intl.uas.destroyed).toHaveLength(0);
    jest.advanceTimersByTime((14400 - 1800) * 1000);
    await flush();
    expect(intl.uas.destroyed).toHaveLength(1);
  });

  it('no timer outlives a call that ended by BYE', async () => {
    const { srf, rec, invite } = setup();
    invite({ from: 'short' });
    const { uas } = srf.b2buas[0].answer();
    await flush();
    uas.farEndBye();
    jest.advanceTimersByTime(5000);
    await flush();
    expect(rec.ended).toHaveLength(1);
    expect(uas.destroyed).toHaveLength(0);
  });
});

describe('hangUpCalls (CallControl)', () => {
  it("ends an account's live international calls only: BYE on both legs of answered calls, CANCEL towards the core for ringing ones", async () => {
    const { srf, fe, rec, invite } = setup();
    const answered = invite({ from: 'b2b', user: '+61212345678' });
    const ringing = invite({ from: 'b2b', user: '+442071234567' });
    const domestic = invite({ from: 'b2b', user: '095550111' });
    const legs = srf.b2buas[0].answer();
    srf.b2buas[2].answer();
    await flush();

    const ended = await fe.hangUpCalls('b2b', { international: true }, 'account blocked');
    expect(ended).toBe(2);
    const headers = { Reason: 'Q.850;cause=16;text="account blocked"', 'X-Reason': 'hangup' };
    expect(legs.uas.destroyed).toEqual([{ headers }]);
    expect(legs.uac.destroyed).toEqual([{ headers }]);
    expect(srf.b2buas[1].uacReq.cancels).toEqual([{ headers: { Reason: 'Q.850;cause=16;text="account blocked"' } }]);
    // The core answers the CANCEL with 487, which createB2BUA passes to the caller.
    srf.b2buas[1].fail(487);
    await flush();
    expect(ringing.res.final?.status).toBe(487);
    expect(rec.ended).toEqual(expect.arrayContaining([[answered.callId, 'hangup'], [ringing.callId, 'hangup']]));
    expect(fe.isAdmitted(answered.callId)).toBe(false);
    expect(fe.isAdmitted(ringing.callId)).toBe(false);
    expect(fe.liveCalls('b2b').map((c) => c.callId)).toEqual([domestic.callId]);
  });

  it('filters by call id, and counts nothing for proxied calls it cannot end', async () => {
    const { fe, srf, invite, lines } = setup();
    const a = invite({ from: 'b2b', user: '+61212345678' });
    invite({ from: 'b2b', user: '+61212345679' });
    srf.b2buas[0].answer();
    srf.b2buas[1].answer();
    const proxied = invite({ user: '+61212345670' }); // acme, proxy mode
    await flush();
    expect(await fe.hangUpCalls('b2b', { callIds: [a.callId] })).toBe(1);
    expect(fe.liveCalls('b2b')).toHaveLength(1);
    expect(await fe.hangUpCalls('acme')).toBe(0);
    expect(fe.liveCalls('acme').map((c) => c.callId)).toEqual([proxied.callId]);
    expect(lines.some((l) => String(l.message).startsWith('proxied calls cannot be ended'))).toBe(true);
  });

  it('a hang-up racing the answer still ends both legs', async () => {
    const { srf, fe, rec, invite } = setup();
    const { callId } = invite({ from: 'b2b' });
    await flush();
    const pending = fe.hangUpCalls('b2b');
    const legs = srf.b2buas[0].answer(); // the 200 was already on its way
    expect(await pending).toBe(1);
    await flush();
    expect(legs.uas.destroyed).toHaveLength(1);
    expect(legs.uac.destroyed).toHaveLength(1);
    expect(rec.ended).toEqual([[callId, 'hangup']]);
  });
});

describe('every rejection: the embedded proxy\'s status, reason and headers, and the core is never asked to forward', () => {
  const cases: Array<[string, InviteSpec, number, string, (s: ReturnType<typeof setup>) => void]> = [
    ['source', { source: '127.0.0.2' }, 403, 'source', () => {}],
    ['unknown_caller', { source: '127.0.0.20', from: 'nobody' }, 403, 'unknown_caller', () => {}],
    ['account_source', { source: '127.0.0.20', from: 'fenced' }, 403, 'account_source', () => {}],
    ['invalid_destination', { user: '00252abc' }, 484, 'invalid_destination', () => {}],
    ['international', { source: '127.0.0.20', from: 'bob', user: '0061212345678' }, 403, 'international', () => {}],
    ['high_risk', { user: '+252612345678' }, 403, 'high_risk', () => {}],
    ['toll_block', { user: '+61212345678' }, 403, 'toll_block', (s) => s.core.setTollBlocked(new Set(['acme']))],
  ];

  it.each(cases)('%s', (_name, spec, status, rule, prepare) => {
    const s = setup();
    prepare(s);
    const { res, req, callId } = s.invite(spec);
    const verdict = s.rec.decided[0].verdict;
    expect(verdict).toMatchObject({ allow: false, rule, status });
    const expected = rejectionOf(verdict);
    expect(res.sent).toEqual([{ status, reason: expected.reason, headers: Object.fromEntries(expected.headers!) }]);
    expect(res.final!.headers['X-Reason']).toBe(rule);
    expect(res.final!.headers.Warning).toMatch(/^399 tollguard "/);
    expect(s.srf.proxied).toHaveLength(0);
    expect(s.srf.b2buas).toHaveLength(0);
    expect(s.fe.isAdmitted(callId)).toBe(false);
    expect(s.srf.endedSessions).toContain(req);
  });

  it('toll_block answers 403 International Calls Blocked', () => {
    const s = setup();
    s.core.setTollBlocked(new Set(['acme']));
    const { res } = s.invite({ user: '+61212345678' });
    expect(res.final).toMatchObject({ status: 403, reason: 'International Calls Blocked' });
  });

  it('high_risk names the prefix and the country in Warning', () => {
    const { res } = setup().invite({ user: '+252612345678' });
    expect(res.final!.headers.Warning).toBe('399 tollguard "high-risk destination +252 Somalia"');
  });

  it('rate limits: 503 with Retry-After 5 and X-Reason calls_per_second', () => {
    const s = setup();
    s.invite({ source: '127.0.0.20', from: 'slow' });
    const { res } = s.invite({ source: '127.0.0.20', from: 'slow' });
    expect(res.final).toEqual({ status: 503, reason: 'Service Unavailable', headers: expect.objectContaining({ 'Retry-After': '5', 'X-Reason': 'calls_per_second' }) });
  });

  it('an in-dialog INVITE for an unknown dialog gets 481 and no decision', () => {
    const s = setup();
    const { res } = s.invite({ headers: { To: '<sip:095550111@127.0.0.1>;tag=abc' } });
    expect(res.final?.status).toBe(481);
    expect(s.rec.decided).toHaveLength(0);
  });
});

describe('the decision log', () => {
  function invitePair(): SipRequest {
    const text = ['INVITE sip:+252612345678@core SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.10:5061;branch=z9hG4bKx', 'Max-Forwards: 70', 'From: <sip:someone@127.0.0.10>;tag=1', 'To: <sip:+252612345678@core>', 'Call-ID: same', 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n');
    return parseMessage(Buffer.from(text)) as SipRequest;
  }

  it('has one line per INVITE with exactly the fields of the embedded proxy (GuardPolicy)', async () => {
    const s = setup();
    s.invite({ user: '+252612345678', callId: 'same' });
    await new Promise((r) => setImmediate(r)); // decision lines go out once per event-loop turn
    const ours = s.lines.filter((l) => l.message === 'decision');
    expect(ours).toHaveLength(1);

    const theirs: Array<Record<string, unknown>> = [];
    const sink = new Writable({ write: (c, _e, done) => (theirs.push(JSON.parse(String(c))), done()) });
    new GuardPolicy(new GuardCore(s.rules), createLogger('info', sink)).admitInvite(invitePair(), { transport: 'udp', address: '127.0.0.10', port: 5061 });
    await new Promise((r) => setImmediate(r));
    expect(Object.keys(ours[0]).sort()).toEqual(Object.keys(theirs[0]).sort());
    const strip = ({ time: _t, us: _u, ...rest }: Record<string, unknown>) => rest;
    expect(strip(ours[0])).toEqual(strip(theirs[0]));
  });

  it('follows log.decisions: rejects', async () => {
    const s = setup();
    s.fe.setDecisionLog('rejects');
    s.invite();
    s.invite({ user: '+252612345678' });
    await new Promise((r) => setImmediate(r));
    expect(s.lines.filter((l) => l.message === 'decision').map((l) => l.verdict)).toEqual(['reject']);
  });
});

describe('observers', () => {
  it('one that throws is logged and the call goes on', async () => {
    const s = setup();
    s.fe.addObserver({
      decided: () => {
        throw new Error('boom');
      },
    });
    s.invite();
    expect(s.srf.proxied).toHaveLength(1);
    expect(s.lines.some((l) => l.message === 'call observer threw' && l.error === 'boom')).toBe(true);
  });
});

describe('other methods', () => {
  it('REGISTER from outside allowed_sources: 403 with the same headers', () => {
    const s = setup();
    const req = new FakeRequest({ method: 'REGISTER', source: '127.0.0.2', uri: 'sip:guard' });
    const res = new FakeResponse();
    s.srf.handle(req, res);
    expect(res.final).toMatchObject({ status: 403, headers: { 'X-Reason': 'source' } });
    expect(s.srf.proxied).toHaveLength(0);
  });

  it('REGISTER from an allowed source is proxied to the core and its answer reported', async () => {
    const s = setup();
    const req = new FakeRequest({ method: 'REGISTER', uri: 'sip:guard', headers: { Authorization: 'Digest username="bob", realm="x"' } });
    s.srf.handle(req, new FakeResponse());
    expect(s.srf.proxied[0]).toMatchObject({ destination: 'sip:127.0.0.1:5080', opts: { recordRoute: false } });
    s.srf.proxied[0].finish(401);
    await flush();
    expect(s.rec.upstream[0]).toMatchObject({ method: 'REGISTER', status: 401, authUser: 'bob' });
  });

  it('an INVITE from the core itself is forwarded by its Request-URI, unscreened', () => {
    const s = setup();
    const { res } = s.invite({ source: '127.0.0.1', uri: 'sip:alice@127.0.0.99:5060', from: 'core' });
    expect(res.sent).toEqual([]);
    expect(s.rec.decided).toHaveLength(0);
    expect(s.srf.proxied[0]).toMatchObject({ destination: 'sip:alice@127.0.0.99:5060' });
  });
});
