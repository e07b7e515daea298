import type { Verdict } from '../../../src/core/types';
import { decisionFields, decisionLine, jsonText, LOGGED_TEXT_MAX } from '../../../src/sip/decision-log';
import type { Peer } from '../../../src/sip/policy';

describe('decision log line', () => {
  const peer: Peer = { transport: 'udp', address: '2001:db8::1', port: 5060 };
  const allowed: Verdict = { allow: true, rule: 'allow', status: 0, reason: '', detail: '', account: 'acme', slot: 3, normalised: '+6495550111', international: false };
  const rejected: Verdict = { allow: false, rule: 'high_risk', status: 403, reason: 'Forbidden', detail: 'high-risk destination +252 "Somalia" \\ \u0007', normalised: '+252612345' };

  it.each([
    ['allowed', allowed, 'a84b4c76e66710@pc33.example.com', '095550111', 12.34],
    ['rejected, text that needs escaping', rejected, 'id"with\\quotes\u0000and\ud800lone', '00252\u2028612345', 0],
    ['no dialled number', { ...rejected, account: undefined, normalised: undefined, detail: '' }, 'x', '', 3],
  ] as Array<[string, Verdict, string, string, number]>)('is the JSON of the decision fields: %s', (_label, v, callId, dialled, us) => {
    const time = '2026-12-06T00:00:00.000Z';
    const line = decisionLine(time, 'INVITE', callId, peer, dialled, v, us);
    expect(line).toBe(JSON.stringify({ time, ...decisionFields('INVITE', callId, peer, dialled, v, us), level: 'info' }));
    expect(JSON.parse(line).callId).toBe(callId);
  });

  it('carries at most the first 128 characters of a huge Call-ID or dialled string, and their length', () => {
    const time = '2026-12-06T00:00:00.000Z';
    const huge = '0'.repeat(60_000);
    const line = decisionLine(time, 'INVITE', 'c'.repeat(70_000), peer, huge, rejected, 1);
    expect(line).toBe(JSON.stringify({ time, ...decisionFields('INVITE', 'c'.repeat(70_000), peer, huge, rejected, 1), level: 'info' }));
    expect(line.length).toBeLessThan(1000);
    const parsed = JSON.parse(line);
    expect(parsed.dialled).toBe(`${'0'.repeat(LOGGED_TEXT_MAX)}...(60000 chars)`);
    expect(parsed.callId).toBe(`${'c'.repeat(LOGGED_TEXT_MAX)}...(70000 chars)`);
  });

  it('escapes exactly as JSON.stringify does', () => {
    for (const s of ['plain', '', 'quote"', 'back\\slash', 'nl\n', 'tab\t', '\u001f', 'é ü 中', '😀', '\udc00x', 'x\ud83d']) {
      expect(jsonText(s)).toBe(JSON.stringify(s));
    }
  });
});
