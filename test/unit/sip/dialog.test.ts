import { buildBye, fieldValue, routeSetsAround } from '../../../src/sip/dialog';

describe('routeSetsAround (RFC 3261 §12.1.1/§12.1.2 route sets, seen from the proxy)', () => {
  const self = (v: string) => v.includes('guard');

  it('splits the Record-Route list around our own entries: callee side reversed, caller side in order', () => {
    // As the 2xx carries it: nearest the callee first.
    const rr = ['<sip:p3;lr>', '<sip:p2;lr>', '<sip:guard-out;lr>', '<sip:guard-in;lr>', '<sip:p1;lr>'];
    expect(routeSetsAround(rr, self)).toEqual({ toCallee: ['<sip:p2;lr>', '<sip:p3;lr>'], toCaller: ['<sip:p1;lr>'] });
  });

  it('with only us in the path, both sides are direct', () => {
    expect(routeSetsAround(['<sip:guard;lr>'], self)).toEqual({ toCallee: [], toCaller: [] });
  });

  it('null when we are not on the path (a BYE from us would be guesswork)', () => {
    expect(routeSetsAround(['<sip:p1;lr>'], self)).toBeNull();
    expect(routeSetsAround([], self)).toBeNull();
  });
});

describe('buildBye', () => {
  it('writes an in-dialog BYE with routes, CSeq and a Reason, and no CR/LF injection through the reason', () => {
    const text = buildBye({
      target: 'sip:caller@192.0.2.1:5060',
      via: 'SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtgx',
      routes: ['<sip:p1;lr>'],
      from: '<sip:core@127.0.0.1>;tag=b',
      to: '<sip:caller@192.0.2.1>;tag=a',
      callId: 'abc',
      cseq: 1001,
      reason: 'SIP;cause=403;text="toll block"\r\nX-Evil: 1',
    });
    expect(text).toBe(
      'BYE sip:caller@192.0.2.1:5060 SIP/2.0\r\n' +
        'Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKtgx\r\n' +
        'Route: <sip:p1;lr>\r\n' +
        'Max-Forwards: 70\r\n' +
        'From: <sip:core@127.0.0.1>;tag=b\r\n' +
        'To: <sip:caller@192.0.2.1>;tag=a\r\n' +
        'Call-ID: abc\r\n' +
        'CSeq: 1001 BYE\r\n' +
        'Reason: SIP;cause=403;text="toll block" X-Evil: 1\r\n' +
        'Content-Length: 0\r\n\r\n',
    );
  });

  it('fieldValue reads the value of a raw header line', () => {
    expect(fieldValue('From: <sip:a@b>;tag=1')).toBe('<sip:a@b>;tag=1');
    expect(fieldValue('f:<sip:a@b>')).toBe('<sip:a@b>');
  });
});
