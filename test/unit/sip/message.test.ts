import { parseMessage, SipParseError, SipRequest, SipResponse, headerKey } from '../../../src/sip/message';

const CRLF = '\r\n';

function req(lines: string[], body = ''): string {
  return lines.join(CRLF) + CRLF + CRLF + body;
}

const BASE = [
  'INVITE sip:+6421555123@core.example;user=phone SIP/2.0',
  'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@example.com>',
  'From: "Alice, the caller" <sip:alice@example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.example.com>',
];

function parseReq(text: string | Buffer): SipRequest {
  const m = parseMessage(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  if (!m.isRequest) throw new Error('expected a request');
  return m;
}

function parseError(text: string, opts = {}): SipParseError {
  try {
    parseMessage(Buffer.from(text, 'latin1'), opts);
  } catch (err) {
    expect(err).toBeInstanceOf(SipParseError);
    return err as SipParseError;
  }
  throw new Error('parsed without error');
}

describe('parseMessage: requests', () => {
  it('reads the start line and the core headers', () => {
    const r = parseReq(req([...BASE, 'Content-Length: 0']));
    expect(r.method).toBe('INVITE');
    expect(r.uri).toBe('sip:+6421555123@core.example;user=phone');
    expect(r.callId).toBe('a84b4c76e66710@pc33.example.com');
    expect(r.cseq).toEqual({ seq: 314159, method: 'INVITE' });
    expect(r.fromTag).toBe('1928301774');
    expect(r.toTag).toBeUndefined();
    expect(r.topVia).toMatchObject({ transport: 'UDP', host: '10.0.0.1', port: 5060, branch: 'z9hG4bK776asdhds', rport: null });
  });

  it('understands compact header names (RFC 3261 §7.3.3)', () => {
    const text = req([
      'BYE sip:bob@example.com SIP/2.0',
      'v: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bKabc;received=192.0.2.1;rport=4000',
      'f: <sip:alice@example.com>;tag=a',
      't: <sip:bob@example.com>;tag=b',
      'i: compact@id',
      'CSeq: 2 BYE',
      'm: <sip:alice@[2001:db8::1]:5070;transport=tcp>',
      'k: timer',
      'x: 1800',
      'l: 0',
    ]);
    const r = parseReq(text);
    expect(r.callId).toBe('compact@id');
    expect(r.header('Call-ID')).toBe('compact@id');
    expect(r.header('i')).toBe('compact@id');
    expect(r.toTag).toBe('b');
    expect(r.header('contact')).toBe('<sip:alice@[2001:db8::1]:5070;transport=tcp>');
    expect(r.header('supported')).toBe('timer');
    expect(r.header('session-expires')).toBe('1800');
    expect(r.topVia).toMatchObject({ transport: 'TCP', host: '2001:db8::1', port: 5070, received: '192.0.2.1', rport: 4000 });
    expect(headerKey('V')).toBe('via');
    expect(headerKey('b')).toBe('referred-by');
  });

  it('splits comma-separated and repeated list headers, but not others', () => {
    const r = parseReq(req([
      ...BASE.slice(0, 1),
      'Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1, SIP/2.0/UDP p2.example.com;branch=z9hG4bK2',
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK3',
      ...BASE.slice(2),
      'Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
      'Authorization: Digest username="alice", realm="example.com", nonce="a,b"',
      'Content-Length: 0',
    ]));
    expect(r.headers('via')).toHaveLength(3);
    expect(r.topVia.host).toBe('p1.example.com');
    expect(r.headers('route')).toEqual(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    expect(r.headers('authorization')).toHaveLength(1);
    // the From display name contains a comma inside quotes: From is not a list header anyway
    expect(r.header('from')).toBe('"Alice, the caller" <sip:alice@example.com>;tag=1928301774');
  });

  it('unfolds folded header lines (RFC 3261 §7.3.1) and keeps them verbatim on output', () => {
    const text = req([
      ...BASE.slice(0, 1),
      'Via: SIP/2.0/UDP 10.0.0.1:5060',
      '  ;branch=z9hG4bKfold',
      ...BASE.slice(2),
      'Subject: I know you\'re there,',
      '         pick up the phone',
      'Content-Length: 0',
    ]);
    const r = parseReq(text);
    expect(r.topVia.branch).toBe('z9hG4bKfold');
    expect(r.header('subject')).toBe("I know you're there, pick up the phone");
    r.setHeader('Max-Forwards', '69');
    expect(r.toBuffer().toString('latin1')).toContain("Subject: I know you're there,\r\n         pick up the phone\r\n");
  });

  it('gives %-escapes and UTF-8 back as text', () => {
    const r = parseReq(req([...BASE.slice(0, 3), 'To: "Zoë" <sip:bob%40home@example.com>', ...BASE.slice(4), 'Content-Length: 0']));
    expect(r.header('to')).toBe('"Zoë" <sip:bob%40home@example.com>');
  });

  it('ignores CRLFs before the start line (§7.5) and takes the body by Content-Length', () => {
    const body = 'v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n';
    const r = parseReq('\r\n\r\n' + req([...BASE, `Content-Length: ${body.length}`], body));
    expect(r.body.toString()).toBe(body);
  });

  it('UDP: bytes past Content-Length are discarded; no Content-Length means the rest of the datagram (§18.3)', () => {
    const r = parseReq(req([...BASE, 'Content-Length: 3'], 'abcdef'));
    expect(r.body.toString()).toBe('abc');
    const r2 = parseReq(req([...BASE], 'xyz'));
    expect(r2.body.toString()).toBe('xyz');
  });
});

describe('parseMessage: responses', () => {
  it('reads status and reason', () => {
    const m = parseMessage(Buffer.from(req([
      'SIP/2.0 486 Busy Here',
      'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx',
      'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: r1', 'CSeq: 1 INVITE', 'Content-Length: 0',
    ])));
    expect(m.isRequest).toBe(false);
    expect((m as SipResponse).status).toBe(486);
    expect((m as SipResponse).reason).toBe('Busy Here');
    expect(m.toTag).toBe('2');
  });
});

describe('parseMessage: malformed input gives a typed error naming the header', () => {
  const without = (name: string): string => req([...BASE.filter((l) => !l.startsWith(name)), 'Content-Length: 0']);
  it.each([
    ['Via'], ['From'], ['To'], ['Call-ID'], ['CSeq'],
  ])('missing %s', (name) => {
    const e = parseError(without(name));
    expect(e.header).toBe(name);
    expect(e.message).toContain(name);
  });

  it('CSeq method mismatch', () => {
    const e = parseError(req([...BASE.map((l) => (l.startsWith('CSeq') ? 'CSeq: 1 BYE' : l)), 'Content-Length: 0']));
    expect(e.header).toBe('CSeq');
    expect(e.detail).toMatch(/does not match/);
    expect(e.partial?.isRequest).toBe(true); // still answerable with a 400
  });

  it('bad CSeq number', () => {
    expect(parseError(req([...BASE.map((l) => (l.startsWith('CSeq') ? 'CSeq: abc INVITE' : l))])).header).toBe('CSeq');
  });

  it('bad Content-Length, or one longer than the body', () => {
    expect(parseError(req([...BASE, 'Content-Length: x1'])).header).toBe('Content-Length');
    expect(parseError(req([...BASE, 'Content-Length: 50'], 'short')).header).toBe('Content-Length');
  });

  it('missing Content-Length on a stream', () => {
    expect(parseError(req([...BASE]), { stream: true }).header).toBe('Content-Length');
  });

  it('bad Max-Forwards', () => {
    expect(parseError(req([...BASE.map((l) => (l.startsWith('Max-Forwards') ? 'Max-Forwards: lots' : l))])).header).toBe('Max-Forwards');
  });

  it('an unparseable Via', () => {
    const e = parseError(req([...BASE.map((l) => (l.startsWith('Via') ? 'Via: SIP/3.0/UDP host' : l)), 'Content-Length: 0']));
    expect(e.header).toBe('Via');
  });

  it('bad start lines', () => {
    expect(parseError('HELLO\r\n\r\n').header).toBe('start-line');
    expect(parseError(req(['INVITE sip:a@b SIP/1.0', ...BASE.slice(1)])).header).toBe('start-line');
    expect(parseError(req(['INV ITE sip:a@b SIP/2.0', ...BASE.slice(1)])).header).toBe('start-line');
    expect(parseError(req(['SIP/2.0 99 Odd', ...BASE.slice(1)])).header).toBe('start-line');
  });

  it('garbage bytes and empty input', () => {
    expect(() => parseMessage(Buffer.from([0xde, 0xad, 0xbe, 0xef]))).toThrow(SipParseError);
    expect(() => parseMessage(Buffer.alloc(0))).toThrow(SipParseError);
    expect(() => parseMessage(Buffer.from('\r\n\r\n'))).toThrow(SipParseError);
  });

  it('a header line without a colon', () => {
    expect(parseError(req([...BASE, 'NoColonHere', 'Content-Length: 0'])).header).toBe('header');
    // The colon of the next line must not be taken for this one's.
    expect(parseError(req([...BASE, 'NoColonHere', 'X-A: 1', 'Content-Length: 0'])).detail).toBe('malformed header line "NoColonHere"');
    expect(parseError(req([BASE[0], ':starts with a colon', ...BASE.slice(1)])).header).toBe('header');
  });

  it('many colon-less lines are rejected in linear time', () => {
    const lines = Array.from({ length: 20000 }, () => 'x');
    const t0 = Date.now();
    expect(parseError(req([...BASE, ...lines])).header).toBe('header');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('header names in any spelling get the same keys, and are written back as received', () => {
    const r = parseReq(req([...BASE.filter((l) => !l.startsWith('Call-ID') && !l.startsWith('CSeq')), 'call-id: lower@x', 'CSEQ: 314159 INVITE', 'Content-length: 0']));
    expect(r.callId).toBe('lower@x');
    expect(r.cseq).toEqual({ seq: 314159, method: 'INVITE' });
    expect(r.fieldLines('cseq')).toEqual(['CSEQ: 314159 INVITE']);
    r.setHeader('CSeq', '314160 INVITE');
    expect(r.fieldLines('cseq')).toEqual(['CSEQ: 314160 INVITE']);
  });

  it('CSeq and Max-Forwards values are checked as the grammar says', () => {
    const withCseq = (v: string): string => req([...BASE.filter((l) => !l.startsWith('CSeq')), `CSeq: ${v}`, 'Content-Length: 0']);
    expect(parseError(withCseq('12345678901 INVITE')).header).toBe('CSeq');
    expect(parseError(withCseq('4294967296 INVITE')).header).toBe('CSeq');
    expect(parseError(withCseq('1INVITE')).header).toBe('CSeq');
    expect(parseError(withCseq('1 INV/ITE')).header).toBe('CSeq');
    expect(parseError(withCseq('1 BYE')).detail).toBe('method BYE does not match INVITE');
    expect(parseReq(withCseq('4294967295 \tINVITE')).cseq).toEqual({ seq: 4294967295, method: 'INVITE' });
    const withMf = (v: string): string => req([...BASE.filter((l) => !l.startsWith('Max-Forwards')), `Max-Forwards: ${v}`, 'Content-Length: 0']);
    expect(parseError(withMf('1000')).header).toBe('Max-Forwards');
    expect(parseError(withMf('7a')).header).toBe('Max-Forwards');
    expect(parseReq(withMf('070')).header('max-forwards')).toBe('070');
  });
});

describe('serialisation', () => {
  it('an untouched message comes back byte for byte', () => {
    const text = req([...BASE, 'X-Custom:   odd   spacing  ', 'x-lower: v', 'Content-Length: 4'], '\x00\xff\r\n');
    const buf = Buffer.from(text, 'latin1');
    expect(parseReq(buf).toBuffer().equals(buf)).toBe(true);
  });

  it('edits touch only the edited headers; unknown headers and binary body stay byte for byte', () => {
    const body = Buffer.from([0x00, 0x01, 0xfe, 0xff, 0x0d, 0x0a, 0x80]);
    const head = req([...BASE, 'X-Custom:   odd   spacing  ', 'P-Weird: "ünïcödé", stuff', `Content-Length: ${body.length}`]);
    const buf = Buffer.concat([Buffer.from(head, 'utf8'), body]);
    const r = parseReq(buf);
    r.setHeader('Max-Forwards', '69');
    r.prependHeader('Via', 'SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKproxy;rport');
    r.prependHeader('Record-Route', '<sip:192.0.2.9;lr>');
    const out = r.toBuffer();
    const outHead = out.subarray(0, out.indexOf('\r\n\r\n') + 4).toString('utf8');
    expect(outHead).toContain('X-Custom:   odd   spacing  \r\n');
    expect(outHead).toContain('P-Weird: "ünïcödé", stuff\r\n');
    expect(outHead).toContain('Max-Forwards: 69\r\n');
    expect(outHead.indexOf('Via: SIP/2.0/UDP 192.0.2.9')).toBeLessThan(outHead.indexOf('Via: SIP/2.0/UDP 10.0.0.1'));
    expect(out.subarray(out.length - body.length).equals(body)).toBe(true);
    const again = parseReq(out);
    expect(again.topVia.branch).toBe('z9hG4bKproxy');
    expect(again.header('p-weird')).toBe('"ünïcödé", stuff');
  });

  it('removes only the first value of a multi-value Via line', () => {
    const r = parseMessage(Buffer.from(req([
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP proxy:5060;branch=z9hG4bKtg1, SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2;rport=5060',
      'From: <sip:a@b>;tag=1', 'To: <sip:c@d>;tag=2', 'Call-ID: r1', 'CSeq: 1 INVITE', 'Content-Length: 0',
    ])));
    expect(r.removeFirstValue('via')).toBe('SIP/2.0/UDP proxy:5060;branch=z9hG4bKtg1');
    expect(r.topVia.branch).toBe('z9hG4bK2');
    expect(r.toBuffer().toString()).toContain('\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2;rport=5060\r\n');
  });

  it('adds Content-Length when the original had none', () => {
    const r = parseReq(req([...BASE], 'abc'));
    r.setHeader('Max-Forwards', '1');
    expect(r.toBuffer().toString()).toMatch(/Content-Length: 3\r\n\r\nabc$/);
  });

  it('strict-router support: Request-URI replaced, last Route removed', () => {
    const r = parseReq(req([...BASE, 'Route: <sip:a;lr>, <sip:b;lr>', 'Content-Length: 0']));
    expect(r.removeLastValue('route')).toBe('<sip:b;lr>');
    r.setUri('sip:b');
    const out = r.toBuffer().toString();
    expect(out.startsWith('INVITE sip:b SIP/2.0\r\n')).toBe(true);
    expect(out).toContain('Route: <sip:a;lr>\r\n');
  });
});

describe('robustness', () => {
  it('random corruption only ever yields a message or a SipParseError', () => {
    const good = Buffer.from(req([...BASE, 'Route: <sip:p1;lr>, <sip:p2;lr>', 'Content-Length: 4'], 'body'));
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const alphabet = Buffer.from(':;,<>"\\\r\n @=[]%\x00\xff0aZ/');
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(good);
      const edits = 1 + rnd(6);
      for (let e = 0; e < edits; e++) b[rnd(b.length)] = alphabet[rnd(alphabet.length)];
      const cut = rnd(4) === 0 ? b.subarray(0, rnd(b.length)) : b;
      try {
        const m = parseMessage(cut);
        // Lazy accessors must not throw either.
        void m.toTag;
        void m.fromTag;
        m.headers('route');
        m.headers('via');
        m.removeFirstValue('via');
        void m.topViaOrUndefined;
        m.toBuffer();
      } catch (err) {
        if (!(err instanceof SipParseError)) throw new Error(`iteration ${i}: ${String(err)}\n${cut.toString('latin1')}`);
      }
    }
  });
});

describe('tags', () => {
  it('reads the tag of From/To values as the name-addr parser does', () => {
    const { tryParseNameAddr } = jest.requireActual('../../../src/sip/uri') as typeof import('../../../src/sip/uri');
    const values = [
      '<sip:a@b>;tag=1', '<sip:a@b;tag=inuri>', '<sip:a@b;tag=inuri>;tag=2', 'sip:a@b;tag=3', 'sip:a@b', '<sip:a@b>',
      'Bob <sip:a@b>;TAG=4', '"x;tag=q" <sip:a@b>;tag=5', '<sip:a@b> ;tag=6', '<sip:a@b>;tag=7;tag=8', '<sip:a@b>;tag',
      '<sip:a@b>;tag=', '<sip:a@b>;foo=1;tag=9;bar', '<sip:a@b>;tagx=1', '<sip:a@b>;ta=1', '<sip:a@b>;tag=a b',
      'sip:a@b ;tag=10', '<sip:a@b', '<sip:a@b>junk;tag=1', '<sip:a@b>;tag=11 ', 'sip:a@b;tag=12;other=<x>',
    ];
    for (const v of values) {
      const m = parseMessage(Buffer.from(req([
        'SIP/2.0 200 OK', 'Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx', 'From: <sip:a@b>;tag=f', `To: ${v}`, 'Call-ID: r1', 'CSeq: 1 INVITE', 'Content-Length: 0',
      ])));
      const expected = tryParseNameAddr(m.header('to')!)?.params.tag || undefined;
      expect([v, m.toTag]).toEqual([v, expected]);
    }
  });
});

describe('removeFirstValue', () => {
  it('cuts the first element of a list as splitting the whole list would', () => {
    const { splitCommaSpans } = jest.requireActual('../../../src/sip/syntax') as typeof import('../../../src/sip/syntax');
    const parts = ['<sip:a;lr>', '<sip:b,c;lr>', '"x, y" <sip:d>', ' ', '', 'SIP/2.0/UDP h;branch=z9hG4bK1', '"q\\"," <sip:e>', '<sip:f'];
    let seed = 11;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      const items: string[] = [];
      for (let k = 1 + rnd(4); k > 0; k--) items.push(parts[rnd(parts.length)]);
      const value = items.join(rnd(2) ? ', ' : ',');
      if (value.trim() === '') continue;
      const m = parseMessage(Buffer.from(req([...BASE, `Route: ${value}`, 'Content-Length: 0']), 'latin1'));
      const spans = splitCommaSpans(value);
      const removed = m.removeFirstValue('route');
      const expected = spans.length === 0 ? undefined : value.slice(spans[0].start, spans[0].end);
      const rest = spans.length > 1 ? splitCommaSpans(value.slice(spans[1].start)).map((sp) => value.slice(spans[1].start).slice(sp.start, sp.end)) : [];
      expect([value, removed, m.headers('route')]).toEqual([value, expected, rest]);
    }
  });
});
