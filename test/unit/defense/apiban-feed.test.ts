import * as http from 'http';
import type { AddressInfo } from 'net';
import { ApibanFeed } from '../../../src/defense/apiban-feed';
import { silentLogger } from '../../../src/log';

/** A stand-in for apiban.org: answers GET /api/KEY/banned/<ID> from a script the test controls. */
function feedServer(answer: (id: string) => { status: number; body: string }) {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const id = decodeURIComponent(req.url!.split('/').pop()!);
    requests.push(id);
    const a = answer(id);
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.body);
  });
  return new Promise<{ url: string; requests: string[]; close: () => Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}/api/KEY/banned`, requests, close: () => new Promise((r) => server.close(() => r())) });
    }),
  );
}

const NONE = { status: 400, body: JSON.stringify({ ipaddress: ['no new bans'], ID: 'none' }) };

describe('ApibanFeed', () => {
  it('pages through the list from ID 100, then asks only for changes since the last ID', async () => {
    let phase = 1;
    const srv = await feedServer((id) => {
      if (phase === 1 && id === '100') return { status: 200, body: JSON.stringify({ ipaddress: ['192.0.2.1', '192.0.2.2'], ID: '200' }) };
      if (phase === 1 && id === '200') return { status: 200, body: JSON.stringify({ ipaddress: ['2001:db8::1'], ID: '300' }) };
      if (phase === 2 && id === '300') return { status: 200, body: JSON.stringify({ ipaddress: ['192.0.2.3'], ID: '400' }) };
      return NONE;
    });
    let list: ReadonlySet<string> = new Set();
    const feed = new ApibanFeed({ url: srv.url, intervalSeconds: 60, timeoutSeconds: 2, keepSeconds: 3600 }, (s) => (list = s), silentLogger());
    await feed.pollOnce();
    expect([...list].sort()).toEqual(['192.0.2.1', '192.0.2.2', '2001:db8::1']);
    phase = 2;
    await feed.pollOnce();
    expect(srv.requests).toEqual(['100', '200', '300', '300', '400']);
    expect(list.has('192.0.2.3')).toBe(true);
    expect(list.size).toBe(4);
    await srv.close();
  });

  it('keeps the last good list through an outage and a malformed answer', async () => {
    let mode: 'good' | 'down' | 'garbage' | 'bad-ip' = 'good';
    const srv = await feedServer((id) => {
      if (mode === 'down') return { status: 503, body: 'upstream unavailable' };
      if (mode === 'garbage') return { status: 200, body: '{"ipaddress": [' };
      if (mode === 'bad-ip') return { status: 200, body: JSON.stringify({ ipaddress: ['192.0.2.9', 'rm -rf'], ID: '999' }) };
      return id === '100' ? { status: 200, body: JSON.stringify({ ipaddress: ['192.0.2.1'], ID: '150' }) } : NONE;
    });
    let list: ReadonlySet<string> = new Set();
    const feed = new ApibanFeed({ url: srv.url, intervalSeconds: 60, timeoutSeconds: 2, keepSeconds: 3600 }, (s) => (list = s), silentLogger());
    await feed.pollOnce();
    expect([...list]).toEqual(['192.0.2.1']);
    for (const m of ['down', 'garbage', 'bad-ip'] as const) {
      mode = m;
      await feed.pollOnce();
      expect(feed.lastPoll).toMatchObject({ ok: false });
      expect([...list]).toEqual(['192.0.2.1']);
    }
    expect(feed.lastPoll!.error).toMatch(/is not an IP address/);
    mode = 'good';
    await feed.pollOnce();
    expect(feed.lastPoll).toMatchObject({ ok: true });
    expect(srv.requests.at(-1)).toBe('150'); // resumes from the last good ID
    await srv.close();
  });

  it('reports a feed that cannot be reached at all, without throwing', async () => {
    const feed = new ApibanFeed({ url: 'http://127.0.0.1:1/api/KEY/banned', intervalSeconds: 60, timeoutSeconds: 1, keepSeconds: 3600 }, () => undefined, silentLogger());
    await feed.pollOnce();
    expect(feed.lastPoll).toMatchObject({ ok: false, error: expect.stringMatching(/GET http:\/\/127\.0\.0\.1:1\/api\/\*\*\*\/banned\/100 failed/) });
  });
});
