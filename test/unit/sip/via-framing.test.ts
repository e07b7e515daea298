import { parseVia, stampReceived, viaResponseTarget } from '../../../src/sip/via';
import { Router } from '../../../src/sip/router';
import { parseParams } from '../../../src/sip/syntax';
import { StreamFramer } from '../../../src/sip/framing';
import { parseHostPortSpec, normaliseAddress } from '../../../src/sip/address';
import { branchFor, isOurBranch } from '../../../src/sip/ids';

describe('Via (RFC 3261 §20.42, RFC 3581)', () => {
  it('parses LWS around slashes, IPv6 sent-by and params', () => {
    const v = parseVia('SIP / 2.0 / tcp [2001:db8::9]:5061 ;branch=z9hG4bKa;received=2001:db8::1;ttl=3');
    expect(v).toMatchObject({ transport: 'TCP', host: '2001:db8::9', port: 5061, branch: 'z9hG4bKa', received: '2001:db8::1' });
  });

  it('reads branch, rport and received as the general parameter parser does', () => {
    // The Via parser cuts out only these three; any parameter list must give what parseParams gives.
    const pieces = [';branch=z9hG4bKa', ';BRANCH=z9hG4bKb', ';branch', ';rport', ';rport=', ';rport=5062', ';RPort=7', ';received=192.0.2.1',
      ';received', ';ttl=3', '; branch = z9hG4bKc', ';branch="z9hG4bK;q"', ';;', ';maddr=x', ';received=2001:db8::1', ';rport=99999', ' ;lr'];
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 3000; i++) {
      let rest = '';
      for (let k = rnd(5); k >= 0; k--) rest += pieces[rnd(pieces.length)];
      const v = parseVia(`SIP/2.0/UDP host:5060${rest}`);
      const p = parseParams(rest.trim());
      const rp = 'rport' in p ? p.rport : undefined;
      if (rp !== undefined && rp !== null && rp !== '' && !(Number(rp) <= 65535 && /^[0-9]{1,5}$/.test(rp))) {
        expect(v).toBe('bad rport');
        continue;
      }
      if (typeof v === 'string') throw new Error(`${rest}: ${v}`);
      expect([rest, v.branch, v.received, v.rport]).toEqual([rest, p.branch || undefined, p.received || undefined,
        rp === undefined ? undefined : rp === null || rp === '' ? null : Number(rp)]);
    }
  });

  it('reports what is wrong as a string', () => {
    expect(parseVia('SIP/2.0/UDP')).toMatch(/sent-by/);
    expect(parseVia('HTTP/1.1/TCP host')).toMatch(/sent-protocol/);
    expect(parseVia('SIP/2.0/UDP host:99999')).toMatch(/port/);
    expect(parseVia('SIP/2.0/UDP host;rport=x')).toMatch(/rport/);
  });

  it('stamps received when sent-by differs from the source, and fills an empty rport', () => {
    const value = 'SIP/2.0/UDP phone.local:5060;branch=z9hG4bKx;rport';
    const v = parseVia(value);
    if (typeof v === 'string') throw new Error(v);
    expect(stampReceived(value, v, '198.51.100.7', 40000)).toBe('SIP/2.0/UDP phone.local:5060;branch=z9hG4bKx;rport=40000;received=198.51.100.7');
    const same = 'SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKy';
    const v2 = parseVia(same);
    if (typeof v2 === 'string') throw new Error(v2);
    expect(stampReceived(same, v2, '10.0.0.1', 5060)).toBeUndefined();
  });

  it('on UDP (symmetric), a sent-by port other than the source port gets rport= unasked, so stateless 2xx follow the source', () => {
    const natted = 'SIP/2.0/UDP 10.1.1.5:5060;branch=z9hG4bKn';
    const v = parseVia(natted);
    if (typeof v === 'string') throw new Error(v);
    expect(stampReceived(natted, v, '198.51.100.7', 40000, true)).toBe('SIP/2.0/UDP 10.1.1.5:5060;branch=z9hG4bKn;rport=40000;received=198.51.100.7');
    // Same host, other port: RFC 3581 wants received= beside a filled rport.
    const samePortless = 'SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKp';
    const v2 = parseVia(samePortless);
    if (typeof v2 === 'string') throw new Error(v2);
    expect(stampReceived(samePortless, v2, '10.0.0.1', 34567, true)).toBe('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKp;rport=34567;received=10.0.0.1');
    expect(stampReceived(samePortless, v2, '10.0.0.1', 5060, true)).toBeUndefined(); // default port matches
    // Not symmetric (TCP): the sent-by port is where a new connection goes, so it is left alone.
    expect(stampReceived(samePortless, v2, '10.0.0.1', 34567, false)).toBeUndefined();
    // A Via that already carries an rport value is not rewritten.
    const filled = 'SIP/2.0/UDP 10.0.0.1:5060;rport=7;branch=z9hG4bKq';
    const v3 = parseVia(filled);
    if (typeof v3 === 'string') throw new Error(v3);
    expect(stampReceived(filled, v3, '10.0.0.1', 34567, true)).toBeUndefined();
  });

  it('response target: received + rport, else sent-by', () => {
    const v = parseVia('SIP/2.0/UDP a.example:5070;branch=z9hG4bK1;received=192.0.2.4;rport=3333');
    if (typeof v === 'string') throw new Error(v);
    expect(viaResponseTarget(v)).toEqual({ address: '192.0.2.4', port: 3333, transport: 'UDP' });
    const w = parseVia('SIP/2.0/TLS a.example;branch=z9hG4bK1');
    if (typeof w === 'string') throw new Error(w);
    expect(viaResponseTarget(w)).toEqual({ address: 'a.example', port: 5061, transport: 'TLS' });
    const router = new Router([{ transport: 'udp', address: '::1', port: 5060, family: 6 }]);
    const [ep] = [{ transport: 'udp' as const, address: '::1', port: 5060, family: 6 as const }];
    expect(router.via(ep, 'z9hG4bKq')).toBe('SIP/2.0/UDP [::1]:5060;branch=z9hG4bKq;rport');
    expect(router.recordRoute(ep)).toBe('<sip:[::1]:5060;transport=udp;lr>');
  });

  it('branches are derived (same key, same branch) and recognisable', () => {
    expect(branchFor('k1')).toBe(branchFor('k1'));
    expect(branchFor('k1')).not.toBe(branchFor('k2'));
    expect(isOurBranch(branchFor('k1'))).toBe(true);
    expect(isOurBranch('z9hG4bK-other')).toBe(false);
  });
});

describe('stream framing (RFC 3261 §18.3, RFC 5626 keep-alive)', () => {
  const msg = (body: string): string => `OPTIONS sip:a@b SIP/2.0\r\nl: ${body.length}\r\n\r\n${body}`;

  it('frames by Content-Length across arbitrary chunking', () => {
    const f = new StreamFramer(65536);
    const all = Buffer.from(msg('hello') + msg('') + msg('xyz'));
    const out: string[] = [];
    for (let i = 0; i < all.length; i += 7) {
      for (const ev of f.push(all.subarray(i, i + 7))) if (ev.kind === 'message') out.push(ev.data.toString());
    }
    expect(out).toEqual([msg('hello'), msg(''), msg('xyz')]);
    expect(f.pending).toBe(0);
  });

  it('answers a CRLFCRLF ping, skips a CRLF pong', () => {
    const f = new StreamFramer(65536);
    expect(f.push(Buffer.from('\r\n\r\n'))).toEqual([{ kind: 'ping' }]);
    const ev = f.push(Buffer.from('\r\n' + msg('')));
    expect(ev.map((e) => e.kind)).toEqual(['message']);
  });

  it('fails on a missing or bad Content-Length and on oversize messages', () => {
    expect(new StreamFramer(65536).push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n\r\n'))[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/Content-Length/) });
    expect(new StreamFramer(65536).push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n'))[0].kind).toBe('error');
    expect(new StreamFramer(100).push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 500\r\n\r\n'))[0].kind).toBe('error');
    expect(new StreamFramer(100).push(Buffer.alloc(200, 0x41))[0].kind).toBe('error');
  });
});

describe('stream framing under hostile input', () => {
  const msg = (body: string, cl = `Content-Length: ${body.length}`): string => `OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n${cl}\r\n\r\n${body}`;

  it('reads Content-Length in its forms: any case, compact l, blanks around the colon and value', () => {
    for (const cl of ['Content-Length: 3', 'content-length:3', 'CONTENT-LENGTH \t:  3 \t', 'l: 3', 'L:3', 'l \t: 3']) {
      const ev = new StreamFramer(65536).push(Buffer.from(msg('abc', cl)));
      expect(ev).toHaveLength(1);
      expect(ev[0].kind).toBe('message');
    }
    // Names that only start like it are other headers.
    const other = new StreamFramer(65536).push(Buffer.from(msg('', 'Location: 5\r\nContent-Length-X: 7\r\nl: 0')));
    expect(other.map((e) => e.kind)).toEqual(['message']);
  });

  it('a 60 KB Content-Length line of blanks is refused as invalid, in linear time', () => {
    const head = `OPTIONS sip:a@b SIP/2.0\r\nl: x${' '.repeat(60_000)}x\r\n\r\n`;
    const started = process.hrtime.bigint();
    const ev = new StreamFramer(65536).push(Buffer.from(head));
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(ev[0]).toMatchObject({ kind: 'error', reason: expect.stringMatching(/invalid Content-Length/) });
    // The backtracking regex took seconds; a linear scan takes well under one. A generous bound,
    // since this is a complexity check, not a speed target.
    expect(ms).toBeLessThan(1000);
  });

  it('a message dribbled in one byte at a time is framed once, exactly, and the next one after it', () => {
    const f = new StreamFramer(65536);
    const one = msg('x'.repeat(3000));
    const two = msg('tail');
    const all = Buffer.from(one + two);
    const out: string[] = [];
    for (let i = 0; i < all.length; i++) for (const ev of f.push(all.subarray(i, i + 1))) if (ev.kind === 'message') out.push(ev.data.toString('latin1'));
    expect(out).toEqual([one, two]);
    expect(f.pending).toBe(0);
  });

  it('frames messages written with bare LF line ends, as the UDP parser reads them', () => {
    const f = new StreamFramer(65536);
    const lfOnly = 'OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/TCP h\nl: 3\n\nabc';
    const ev = f.push(Buffer.from(lfOnly + msg('ok')));
    expect(ev.map((e) => (e.kind === 'message' ? e.data.toString('latin1') : e.kind))).toEqual([lfOnly, msg('ok')]);
  });

  it('messages handed out stay intact while later segments arrive', () => {
    const f = new StreamFramer(65536);
    const a = msg('AAAA');
    const b = msg('BBBB');
    const first = f.push(Buffer.from(a.slice(0, 10)));
    expect(first).toEqual([]);
    const got = f.push(Buffer.from(a.slice(10) + b.slice(0, 5)));
    expect(got).toHaveLength(1);
    const kept = (got[0] as { data: Buffer }).data;
    f.push(Buffer.from(b.slice(5)));
    expect(kept.toString('latin1')).toBe(a);
  });
});

describe('address specs', () => {
  it('parses listen and upstream forms', () => {
    expect(parseHostPortSpec('udp:127.0.0.1:5060', true)).toEqual({ transport: 'udp', host: '127.0.0.1', port: 5060 });
    expect(parseHostPortSpec('tcp:[::1]:5062', true)).toEqual({ transport: 'tcp', host: '::1', port: 5062 });
    expect(parseHostPortSpec('[::1]:5080')).toEqual({ transport: 'udp', host: '::1', port: 5080 });
    expect(parseHostPortSpec('core.example:5080')).toEqual({ transport: 'udp', host: 'core.example', port: 5080 });
    expect(() => parseHostPortSpec('127.0.0.1:5060', true)).toThrow(/transport/);
    expect(() => parseHostPortSpec('udp:::1:5060')).toThrow(/brackets/);
    expect(() => parseHostPortSpec('udp:host:x')).toThrow(/port/);
    expect(normaliseAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
  });
});
