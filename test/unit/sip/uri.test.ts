import { parseUri, parseSipUri, parseNameAddr, tryParseUri, dialledOf, UriError, formatHostPort } from '../../../src/sip/uri';
import { parseParams } from '../../../src/sip/syntax';

describe('SIP URIs (RFC 3261 §19.1)', () => {
  it('sip: with user, port and parameters', () => {
    const u = parseSipUri('sip:alice@Example.COM:5070;transport=TCP;lr;maddr=10.0.0.1?subject=hi%20there&priority=urgent');
    expect(u).toMatchObject({ scheme: 'sip', user: 'alice', host: 'example.com', port: 5070, hostIsIp: false });
    expect(u.params).toMatchObject({ transport: 'TCP', lr: null, maddr: '10.0.0.1' });
    expect(u.headers).toEqual({ subject: 'hi there', priority: 'urgent' });
  });

  it('sips: without user, default port left undefined', () => {
    const u = parseSipUri('sips:proxy.example.com');
    expect(u).toMatchObject({ scheme: 'sips', host: 'proxy.example.com' });
    expect(u.user).toBeUndefined();
    expect(u.port).toBeUndefined();
  });

  it('percent-decodes the user; invalid escapes stay literal instead of throwing', () => {
    expect(parseSipUri('sip:%2B64%2021@h').user).toBe('+64 21');
    expect(parseSipUri('sip:J%C3%BCrgen@h').user).toBe('Jürgen');
    expect(parseSipUri('sip:bad%zz%@h').user).toBe('bad%zz%');
  });

  it('user with telephone-subscriber params: phone-context split off', () => {
    const u = parseSipUri('sip:021555123;phone-context=+64@gw.example.com;user=phone');
    expect(u.user).toBe('021555123');
    expect(u.phoneContext).toBe('+64');
    expect(u.userRaw).toBe('021555123;phone-context=+64');
    expect(u.params.user).toBe('phone');
    expect(dialledOf(u)).toEqual({ dialled: '021555123', phoneContext: '+64' });
  });

  it('password', () => {
    expect(parseSipUri('sip:alice:secret@h')).toMatchObject({ user: 'alice', password: 'secret' });
  });

  it('IPv6 hosts in brackets', () => {
    const u = parseSipUri('sip:bob@[2001:DB8::10]:5062;transport=udp');
    expect(u).toMatchObject({ host: '2001:db8::10', port: 5062, hostIsIp: true });
    expect(parseSipUri('sip:[::1]').host).toBe('::1');
    expect(formatHostPort('::1', 5060)).toBe('[::1]:5060');
    expect(formatHostPort('10.0.0.1')).toBe('10.0.0.1');
  });

  it('rejects what is not a SIP URI', () => {
    expect(() => parseUri('mailto:a@b')).toThrow(UriError);
    expect(() => parseUri('nocolon')).toThrow(UriError);
    expect(() => parseUri('sip:a@[::1')).toThrow(UriError);
    expect(() => parseUri('sip:a@[nothex]')).toThrow(UriError);
    expect(() => parseUri('sip:a@host:99999')).toThrow(UriError);
    expect(() => parseUri('sip:a@ho st')).toThrow(UriError);
    expect(tryParseUri('sip:')).toBeUndefined();
  });
});

describe('tel: URIs (RFC 3966)', () => {
  it('global number', () => {
    const u = parseUri('tel:+1-201-555-0123');
    expect(u).toMatchObject({ scheme: 'tel', number: '+1-201-555-0123' });
    expect(u.phoneContext).toBeUndefined();
  });

  it('local number with phone-context', () => {
    const u = parseUri('tel:7042;phone-context=example.com;ext=1');
    expect(u).toMatchObject({ scheme: 'tel', number: '7042', phoneContext: 'example.com' });
    expect(u.params.ext).toBe('1');
    expect(dialledOf(u)).toEqual({ dialled: '7042', phoneContext: 'example.com' });
    expect(parseUri('TEL:0211234567;phone-context=+64').phoneContext).toBe('+64');
  });
});

describe('name-addr / addr-spec (RFC 3261 §20.10)', () => {
  it('quoted display name with escapes and header params', () => {
    const na = parseNameAddr('"Alice \\"A\\" <x>" <sip:alice@example.com;transport=tcp>;tag=abc;expires=60');
    expect(na.displayName).toBe('Alice "A" <x>');
    expect(na.uri).toBe('sip:alice@example.com;transport=tcp');
    expect(na.params).toMatchObject({ tag: 'abc', expires: '60' });
  });

  it('token display name', () => {
    expect(parseNameAddr('Bob <sip:bob@b>').displayName).toBe('Bob');
  });

  it('bare addr-spec: params belong to the header', () => {
    const na = parseNameAddr('sip:alice@example.com;tag=xyz');
    expect(na.uri).toBe('sip:alice@example.com');
    expect(na.params.tag).toBe('xyz');
  });

  it('errors', () => {
    expect(() => parseNameAddr('"unterminated <sip:a@b>')).toThrow(UriError);
    expect(() => parseNameAddr('<sip:a@b')).toThrow(UriError);
    expect(() => parseNameAddr('<sip:a@b> junk')).toThrow(UriError);
  });
});

describe('parameter tables', () => {
  it('inherit no keys, and names such as __proto__ or constructor from the wire are plain entries', () => {
    const p = parseParams(';__proto__=x;constructor;toString=y;lr');
    expect(p.__proto__).toBe('x');
    expect(p.constructor).toBeNull();
    expect(p.tostring).toBe('y'); // names are lower-cased
    expect(Object.keys(p)).toEqual(['__proto__', 'constructor', 'tostring', 'lr']);
    const empty = parseParams('');
    expect('toString' in empty).toBe(false);
    expect('hasOwnProperty' in empty).toBe(false);
    expect(({} as Record<string, unknown>).x).toBeUndefined(); // Object.prototype untouched
  });
});
