import { logSink } from '../log-sink';
/**
 * The attack-source defense behind the drachtio front end: the real SourceDefense (startDefense)
 * plugged into DrachtioFrontEnd, driven through the drachtio-srf fakes. "Dropped" here means what
 * the README's drachtio section says: no answer at all (res.send never called, the middleware
 * chain stops so drachtio-srf's own 404 never fires either), nothing proxied, the session ended.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { GuardCore } from '../../../src/core/guard-core';
import { startDefense, type DefenseHandle } from '../../../src/defense/start';
import { RuleStore } from '../../../src/rules/rule-store';
import type { UpstreamAnswerEvent } from '../../../src/sip/call-events';
import { DrachtioFrontEnd } from '../../../src/sip/drachtio/front-end';
import { makeRulesDir, removeDir, SHIPPED } from '../rules/helpers';
import { FakeRequest, FakeResponse, FakeSrf, flush, type InviteSpec } from './fakes';

const GUARD = `
sip:
  listen: [udp:127.0.0.1:5060]
  upstream: 127.0.0.1:5080
home_country: NZ
allowed_sources: [127.0.0.0/24]
unknown_caller: allow
drachtio:
  host: 127.0.0.1
  secret: cymru
  mode: proxy
`;

const DEFENSE = `
scanners: { ban_seconds: 3600 }
auth_failures:
  per_source: { max: 3, window_seconds: 300 }
  not_found: { max: 3, window_seconds: 300 }
`;

const dirs: string[] = [];
const handles: Array<{ stop(): void }> = [];
afterEach(() => handles.splice(0).forEach((h) => h.stop()));
afterAll(() => dirs.forEach(removeDir));

function setup() {
  const dir = makeRulesDir({ guard: GUARD });
  dirs.push(dir);
  fs.copyFileSync(path.join(SHIPPED, 'scanner-fingerprints.yaml'), path.join(dir, 'scanner-fingerprints.yaml'));
  fs.writeFileSync(path.join(dir, 'defense.yaml'), DEFENSE);
  fs.writeFileSync(path.join(dir, 'blocklist.txt'), '127.0.0.66   # a listed source\n');
  const { lines, logger } = logSink();
  const store = RuleStore.open(dir, logger);
  handles.push({ stop: () => store.close() });
  const core = new GuardCore(store.current);
  const srf = new FakeSrf();
  const fe = new DrachtioFrontEnd({ srf, core, logger, connection: { style: 'inbound', host: '127.0.0.1', port: 9022, secret: 'cymru' }, upstream: '127.0.0.1:5080' });
  const upstream: UpstreamAnswerEvent[] = [];
  fe.addObserver({ upstreamAnswered: (e) => upstream.push(e) });
  const stateFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'drachtio-defense-')), 'state.db');
  const defense: DefenseHandle = startDefense({ frontEnd: fe, rules: store, logger, stateFile });
  handles.push(defense);
  const send = (spec: InviteSpec) => {
    const req = new FakeRequest(spec);
    const res = new FakeResponse();
    srf.handle(req, res);
    return { req, res };
  };
  return { srf, fe, defense, lines, upstream, send };
}

const SCANNER = { 'User-Agent': 'friendly-scanner' };

describe.each(['INVITE', 'REGISTER'])('%s through the drachtio front end with the defense on', (method) => {
  const uri = method === 'INVITE' ? 'sip:095550111@127.0.0.1:5060' : 'sip:127.0.0.1';

  it('a scanner User-Agent is dropped without any answer and its source banned; the source stays dropped', () => {
    const s = setup();
    const { req, res } = s.send({ method, uri, source: '127.0.0.40', headers: SCANNER });
    expect(res.sent).toEqual([]);
    expect(s.srf.proxied).toHaveLength(0);
    expect(s.srf.endedSessions).toContain(req);
    expect(s.defense.defense.isBanned('127.0.0.40')).toBe(true);
    expect(s.lines.find((l) => l.message === 'source banned')).toMatchObject({ address: '127.0.0.40', reason: 'scanner' });
    expect(s.fe.droppedRequests).toBe(1);

    // The same source without the fingerprint: still dropped, by the ban (dropSource).
    const again = s.send({ method, uri, source: '127.0.0.40' });
    expect(again.res.sent).toEqual([]);
    expect(s.srf.proxied).toHaveLength(0);
    expect(s.fe.droppedRequests).toBe(2);

    // Another source is not affected.
    const other = s.send({ method, uri, source: '127.0.0.41' });
    expect(other.res.sent).toEqual([]); // proxied: drachtio-server answers, not the app
    expect(s.srf.proxied.map((p) => p.req)).toEqual([other.req]);
  });

  it('a source in blocklist.txt is dropped without an answer and without a ban record', () => {
    const s = setup();
    const { res } = s.send({ method, uri, source: '127.0.0.66' });
    expect(res.sent).toEqual([]);
    expect(s.srf.proxied).toHaveLength(0);
    expect(s.defense.defense.isBanned('127.0.0.66')).toBe(false);
    expect(s.fe.droppedRequests).toBe(1);
  });
});

describe('the core\'s answers reach the defense', () => {
  it.each([401, 403])('REGISTERs with credentials refused %i by the core ban the source at auth_failures.per_source.max', async (status) => {
    const s = setup();
    const register = () => s.send({ method: 'REGISTER', uri: 'sip:127.0.0.1', source: '127.0.0.50', headers: { Authorization: 'Digest username="bob", realm="x", nonce="n", uri="sip:127.0.0.1", response="0"' } });
    for (let i = 0; i < 3; i++) {
      register();
      s.srf.proxied[i].finish(status);
      await flush();
    }
    expect(s.upstream.map((e) => [e.method, e.status, e.authUser, e.peer.address])).toEqual(Array(3).fill(['REGISTER', status, 'bob', '127.0.0.50']));
    expect(s.defense.defense.isBanned('127.0.0.50')).toBe(true);
    expect(s.lines.find((l) => l.message === 'source banned')).toMatchObject({ address: '127.0.0.50', reason: 'auth_failures' });
    const { res } = register();
    expect(res.sent).toEqual([]);
    expect(s.srf.proxied).toHaveLength(3);
  });

  it('404s to an enumerating REGISTER source ban it (not_found)', async () => {
    const s = setup();
    for (let i = 0; i < 3; i++) {
      s.send({ method: 'REGISTER', uri: 'sip:127.0.0.1', source: '127.0.0.51', from: `10${i}` });
      s.srf.proxied[i].finish(404);
      await flush();
    }
    expect(s.defense.defense.isBanned('127.0.0.51')).toBe(true);
  });
});

describe('screens on the drachtio front end', () => {
  it('the core itself is never screened', () => {
    const s = setup();
    const { res } = s.send({ method: 'INVITE', uri: 'sip:alice@127.0.0.99:5060', source: '127.0.0.1', headers: SCANNER });
    expect(res.sent).toEqual([]);
    expect(s.srf.proxied[0]).toMatchObject({ destination: 'sip:alice@127.0.0.99:5060' });
    expect(s.defense.defense.isBanned('127.0.0.1')).toBe(false);
  });

  it('a screen\'s rejection is answered with its headers; a throwing screen gets 500 and an error line, never a pass', () => {
    const s = setup();
    s.fe.addScreen({ screen: (_req, from) => (from.address === '127.0.0.70' ? { status: 503, reason: 'Service Unavailable', headers: [['Retry-After', '9']] } : null) });
    s.fe.addScreen({ screen: (req) => { if (req.header('X-Boom') !== undefined) throw new Error('boom'); return null; } });
    const refused = s.send({ method: 'OPTIONS', uri: 'sip:127.0.0.1', source: '127.0.0.70' });
    expect(refused.res.final).toMatchObject({ status: 503, headers: { 'Retry-After': '9' } });
    const broken = s.send({ method: 'INVITE', source: '127.0.0.71', headers: { 'X-Boom': '1' } });
    expect(broken.res.final).toMatchObject({ status: 500 });
    expect(s.srf.proxied).toHaveLength(0);
    expect(s.lines.find((l) => l.message === 'request screen threw')).toMatchObject({ method: 'INVITE' });
  });
});
