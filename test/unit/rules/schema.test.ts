import { accountIdProblem, checkCidr, countryProblem, listenProblem, upstreamProblem } from '../../../src/rules/schema';

describe('checkCidr', () => {
  it.each([
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['192.0.2.7', '192.0.2.7/32'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['::1', '::1/128'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['::/0', '::/0'],
  ])('accepts %s as %s', (input, cidr) => {
    expect(checkCidr(input)).toEqual({ ok: true, cidr });
  });

  it.each([
    ['10.0.0.0/33', /prefix length of 0-32/],
    ['::/129', /prefix length of 0-128/],
    ['300.1.1.1/8', /expected a CIDR/],
    ['10.0.0.0/08', /expected a CIDR/],
    ['fe80::1%eth0/64', /expected a CIDR/],
    ['10.0.0/24', /expected a CIDR/],
    ['example.com', /expected an IP address or CIDR/],
    ['10.0.0.5/30', /host bits are set.*10\.0\.0\.4\/30/],
  ])('rejects %s', (input, message) => {
    const r = checkCidr(input);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(message);
  });
});

describe('listen specs', () => {
  it.each(['udp:127.0.0.1:5060', 'tcp:0.0.0.0:5060', 'tcp:[::1]:5060', 'udp:[::]:65535'])('accepts %s', (s) => {
    expect(listenProblem(s)).toBeUndefined();
  });

  it.each([
    ['tls:127.0.0.1:5061', /tls: listeners are not supported yet/],
    ['127.0.0.1:5060', /prefix is required/],
    ['udp:::1:5060', /in brackets: udp:\[::1\]:5060/],
    ['udp:127.0.0.1:0', /port number 1-65535/],
    ['udp:127.0.0.1:65536', /port number 1-65535/],
    ['udp:127.0.0.1', /port is required/],
    ['tcp:[::1]', /port is required/],
    ['tcp:localhost:5060', /not a host name/],
    ['sctp:127.0.0.1:5060', /sctp: is not supported/],
    ['UDP:127.0.0.1:5060', /lower case: udp:/],
  ])('rejects %s', (s, message) => {
    expect(listenProblem(s)).toMatch(message);
  });
});

describe('upstream', () => {
  it.each(['127.0.0.1:5080', '[2001:db8::1]:5060', 'udp:sip-core:5060', 'tcp:sip-core.example.net:5060', 'udp:5060'])(
    'accepts %s',
    (s) => {
      expect(upstreamProblem(s)).toBeUndefined();
    },
  );

  it.each([
    ['127.0.0.1', /port is required/],
    ['[::1]', /port is required/],
    ['tls:core.example:5061', /tls: upstreams are not supported yet/],
    ['2001:db8::1:5060', /in brackets/],
    ['300.1.1.1:5060', /host name or IP address/],
    ['core_example:5060', /host name or IP address/],
    ['core.example:70000', /port number 1-65535/],
  ])('rejects %s', (s, message) => {
    expect(upstreamProblem(s)).toMatch(message);
  });
});

describe('countries and account ids', () => {
  it('knows NZ, GB and US; explains nz and UK', () => {
    expect(countryProblem('NZ')).toBeUndefined();
    expect(countryProblem('GB')).toBeUndefined();
    expect(countryProblem('US')).toBeUndefined();
    expect(countryProblem('nz')).toBe('write the country code in capitals: NZ');
    expect(countryProblem('UK')).toContain('use GB');
    expect(countryProblem('XX')).toMatch(/two-letter ISO 3166/);
  });

  it('reserves ids starting with _ and rejects odd characters', () => {
    expect(accountIdProblem('acme')).toBeUndefined();
    expect(accountIdProblem('acme-2.b_c')).toBeUndefined();
    expect(accountIdProblem('_x')).toMatch(/reserved/);
    expect(accountIdProblem('a b')).toMatch(/may only contain/);
    expect(accountIdProblem('a/b')).toMatch(/may only contain/);
  });
});
