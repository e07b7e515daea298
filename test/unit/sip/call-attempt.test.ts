import { toCallAttempt, digestUsername } from '../../../src/sip/call-attempt';
import { parseMessage, SipRequest } from '../../../src/sip/message';

function invite(uri: string, extra: string[] = [], from = '<sip:6495550111@10.0.0.1>;tag=a'): SipRequest {
  const text = [
    `INVITE ${uri} SIP/2.0`,
    'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1',
    'Max-Forwards: 70',
    `From: ${from}`,
    `To: <${uri}>`,
    'Call-ID: c1@10.0.0.1',
    'CSeq: 1 INVITE',
    ...extra,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  return parseMessage(Buffer.from(text)) as SipRequest;
}

describe('what the guard reads from an INVITE', () => {
  it('takes the dialled number from the Request-URI user and the caller from From', () => {
    const a = toCallAttempt(invite('sip:00252612345678@core.example'), '127.0.0.1', 5);
    expect(a).toMatchObject({ source: '127.0.0.1', dialled: '00252612345678', fromUser: '6495550111', callId: 'c1@10.0.0.1', now: 5 });
    expect(a.authUser).toBeUndefined();
  });

  it('reads a tel: Request-URI with its phone-context', () => {
    const a = toCallAttempt(invite('tel:612345678;phone-context=+252'), '127.0.0.1', 0);
    expect(a.dialled).toBe('612345678');
    expect(a.phoneContext).toBe('+252');
  });

  it('reads a sip: user with a phone-context user parameter, percent-escapes decoded', () => {
    const a = toCallAttempt(invite('sip:%2B252-61-234;phone-context=+252@core.example;user=phone'), '127.0.0.1', 0);
    expect(a.dialled).toBe('+252-61-234');
    expect(a.phoneContext).toBe('+252');
  });

  it('prefers the digest username of Proxy-Authorization, and reads P-Asserted-Identity', () => {
    const a = toCallAttempt(
      invite('sip:095550111@core', [
        'Proxy-Authorization: Digest realm="x", username="bob", uri="sip:a,b@c", response="00"',
        'P-Asserted-Identity: "Bob" <sip:+6495550111@carrier>',
      ]),
      '127.0.0.1',
      0,
    );
    expect(a.authUser).toBe('bob');
    expect(a.assertedUser).toBe('+6495550111');
  });

  it('leaves dialled empty for a Request-URI it cannot read, so the core rejects it', () => {
    expect(toCallAttempt(invite('sip:@'), '127.0.0.1', 0).dialled).toBe('');
  });
});

describe('digest username', () => {
  it.each([
    ['Digest username="alice", realm="r"', 'alice'],
    ['digest realm="r",username="al\\"ice"', 'al"ice'],
    ['Digest realm="a,b", nonce="n", username=token', 'token'],
    ['Basic YWxpY2U6cGFzcw==', undefined],
    ['Digest realm="r"', undefined],
  ])('%s', (header, expected) => {
    expect(digestUsername(header)).toBe(expected);
  });
});
