import { logSink } from '../log-sink';
/**
 * A real drachtio-srf Srf (its wire protocol, agent, middleware runner, request and response
 * classes) against a fake drachtio-server socket: reconnect behaviour, and INVITEs answered or
 * proxied end to end through drachtio-srf's own code.
 */
import { GuardCore } from '../../../src/core/guard-core';
import { compileRules } from '../../../src/rules/compile';
import { loadRuleSet } from '../../../src/rules/load';
import { DrachtioConnection } from '../../../src/sip/drachtio/connection';
import { DrachtioFrontEnd } from '../../../src/sip/drachtio/front-end';
import { newSrf } from '../../../src/sip/drachtio/srf-types';
import { SHIPPED } from '../rules/helpers';
import { FakeDrachtioServer, freePort } from './fake-drachtio-server';

jest.setTimeout(15_000);


async function until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('reconnecting to drachtio-server (inbound)', () => {
  it('backs off with a capped delay, logging each attempt, until the server comes up; reconnects after a loss; stops for good on stop()', async () => {
    const port = await freePort();
    const { lines, logger } = logSink();
    const conn = new DrachtioConnection(newSrf(), { style: 'inbound', host: '127.0.0.1', port, secret: 'cymru' }, logger, { retryMaxDelayMs: 300 });
    cleanups.push(() => conn.stop());
    await conn.start();

    const attempts = () => lines.filter((l) => l.message === 'reconnecting to drachtio-server');
    await until(() => attempts().length >= 4);
    // drachtio-srf's back-off: 150 ms × 1.7 per attempt, here capped at 300 ms.
    expect(attempts().slice(0, 4).map((l) => [l.attempt, l.delayMs])).toEqual([
      [2, 255],
      [3, 300],
      [4, 300],
      [5, 300],
    ]);
    expect(attempts()[0].lastError).toMatch(/ECONNREFUSED/);

    const server = new FakeDrachtioServer();
    cleanups.push(() => server.close());
    await server.listen(port);
    await conn.connected();
    expect(lines.find((l) => l.message === 'connected to drachtio-server')).toMatchObject({ sipAddresses: 'udp/127.0.0.1:5060', serverVersion: 'v0.9.10-fake' });

    // drachtio-server restarts: the connection drops, the guard says so and comes back.
    const before = attempts().length;
    server.dropConnections();
    await until(() => lines.some((l) => l.message === 'connection to drachtio-server lost'));
    await until(() => server.authentications === 2);
    expect(attempts().length).toBeGreaterThan(before);
    expect(attempts()[before]).toMatchObject({ attempt: 2, delayMs: 255 });
    await until(() => lines.filter((l) => l.message === 'connected to drachtio-server').length === 2);

    // stop() during a back-off wait: no further attempt.
    server.dropConnections();
    await conn.stop();
    await new Promise((r) => setTimeout(r, 700));
    expect(server.authentications).toBe(2);
  });

  it('a wrong secret is logged as an error naming drachtio.secret', async () => {
    const server = new FakeDrachtioServer('right');
    cleanups.push(() => server.close());
    const port = await server.listen();
    const { lines, logger } = logSink();
    const conn = new DrachtioConnection(newSrf(), { style: 'inbound', host: '127.0.0.1', port, secret: 'wrong' }, logger);
    cleanups.push(() => conn.stop());
    await conn.start();
    await until(() => lines.some((l) => l.level === 'error'));
    expect(lines.find((l) => l.level === 'error')!.message).toMatch(/check drachtio.secret/);
  });
});

describe('INVITEs through a real Srf', () => {
  const invite = (user: string, callId: string) =>
    [
      `INVITE sip:${user}@127.0.0.1:5060 SIP/2.0`,
      'Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-1',
      'From: <sip:someone@127.0.0.10>;tag=a1',
      `To: <sip:${user}@127.0.0.1:5060>`,
      `Call-ID: ${callId}`,
      'CSeq: 1 INVITE',
      'Contact: <sip:someone@127.0.0.10:5060>',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');

  async function running() {
    const server = new FakeDrachtioServer();
    const port = await server.listen();
    const rules = compileRules(loadRuleSet(SHIPPED));
    const core = new GuardCore(rules);
    const { lines, logger } = logSink();
    const fe = new DrachtioFrontEnd({ srf: newSrf(), core, logger, connection: { style: 'inbound', host: '127.0.0.1', port, secret: 'cymru' }, upstream: '127.0.0.1:5080' });
    await fe.start();
    await fe.connection.connected();
    cleanups.push(() => server.close(), () => fe.stop());
    return { server, core, fe, lines };
  }

  it('registers the routes and answers a high-risk call 403 with Warning and X-Reason on the wire', async () => {
    const { server } = await running();
    await server.waitFor((m) => m.body === 'route|invite');
    const txn = server.sendSip(invite('+252612345678', 'real-1'));
    const answer = await server.waitFor((m) => m.body.startsWith(`sip|${txn}|`));
    expect(answer.body).toContain('SIP/2.0 403 Forbidden');
    expect(answer.body).toMatch(/Warning: 399 tollguard "high-risk destination \+252 Somalia"/i);
    expect(answer.body).toMatch(/X-Reason: high_risk/i);
  });

  it('proxies an allowed call to the core with record-route, and releases the slot on its failure', async () => {
    const { server, fe } = await running();
    const txn = server.sendSip(invite('095550111', 'real-2'));
    const proxy = await server.waitFor((m) => m.body.startsWith(`proxy|${txn}|`));
    // proxy|txn|remainInDialog|fullResponse|followRedirects|serial|provisionalTimeout|finalTimeout|destination
    expect(proxy.body.split('\r\n')[0]).toBe(`proxy|${txn}|remainInDialog|fullResponse||serial|||sip:095550111@127.0.0.1:5080`);
    expect(fe.isAdmitted('real-2')).toBe(true);
    server.answerProxy(proxy.msgId, ['SIP/2.0 486 Busy Here', 'Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-1', 'From: <sip:someone@127.0.0.10>;tag=a1', 'To: <sip:095550111@127.0.0.1>;tag=b', 'Call-ID: real-2', 'CSeq: 1 INVITE', 'Content-Length: 0', '', ''].join('\r\n'));
    await until(() => !fe.isAdmitted('real-2'));
  });
});

describe('a silent drop through a real Srf (inbound)', () => {
  it('sends drachtio-server nothing for the dropped INVITE and leaves nothing in drachtio-srf\'s pending-invite table', async () => {
    const server = new FakeDrachtioServer();
    const port = await server.listen();
    const core = new GuardCore(compileRules(loadRuleSet(SHIPPED)));
    const { logger, lines } = logSink();
    const srf = newSrf();
    const fe = new DrachtioFrontEnd({ srf, core, logger, connection: { style: 'inbound', host: '127.0.0.1', port, secret: 'cymru' }, upstream: '127.0.0.1:5080' });
    fe.addScreen({ dropSource: (address) => address === '127.0.0.66' });
    await fe.start();
    await fe.connection.connected();
    cleanups.push(() => server.close(), () => fe.stop());
    const raw = (callId: string) =>
      ['INVITE sip:095550111@127.0.0.1:5060 SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.66:5060;branch=z9hG4bK-d', 'From: <sip:x@127.0.0.66>;tag=d', 'To: <sip:095550111@127.0.0.1:5060>', `Call-ID: ${callId}`, 'CSeq: 1 INVITE', 'Contact: <sip:x@127.0.0.66:5060>', 'Max-Forwards: 70', 'Content-Length: 0', '', ''].join('\r\n');
    const dropped = server.sendSip(raw('dropped-1'), { address: '127.0.0.66' });
    // A call from an unlisted source after it: once its proxy command is back, the dropped one
    // (sent first on the same socket) has been through the middleware.
    const passed = server.sendSip(raw('passed-1'), { address: '127.0.0.10' });
    await server.waitFor((m) => m.body.startsWith(`proxy|${passed}|`));
    expect(server.received.filter((m) => m.body.includes(dropped))).toEqual([]);
    expect(fe.droppedRequests).toBe(1);
    // drachtio-agent.js keeps unanswered INVITEs per connection by Call-ID; a drop must not.
    const agent = (srf as unknown as { _app: { client: { mapServer: Map<unknown, { pendingNetworkInvites: Map<string, unknown> }> } } })._app.client;
    const pending = [...agent.mapServer.values()].flatMap((c) => [...c.pendingNetworkInvites.keys()]);
    expect(pending).not.toContain('dropped-1');
    expect(lines.some((l) => /drachtio-srf internals/.test(String(l.message)))).toBe(false);
  });
});

describe('outbound connections through a real Srf', () => {
  it('listens, authenticates the connection drachtio-server opens, and answers an INVITE on it', async () => {
    const rules = compileRules(loadRuleSet(SHIPPED));
    const { lines, logger } = logSink();
    const fe = new DrachtioFrontEnd({ srf: newSrf(), core: new GuardCore(rules), logger, connection: { style: 'outbound', address: '127.0.0.1', port: 0, secret: 'cymru' }, upstream: '127.0.0.1:5080' });
    await fe.start();
    cleanups.push(() => fe.stop());
    const port = fe.connection.boundPort()!;
    expect(lines.find((l) => l.message === 'listening for drachtio-server')).toMatchObject({ address: '127.0.0.1', port });

    const server = new FakeDrachtioServer();
    cleanups.push(() => server.close());
    await server.connectTo(port);
    await server.waitFor((m) => m.body.startsWith('authenticate|cymru'));
    await fe.connection.connected();
    const txn = server.sendSip(
      ['INVITE sip:+252612345678@127.0.0.1 SIP/2.0', 'Via: SIP/2.0/UDP 127.0.0.10:5060;branch=z9hG4bK-9', 'From: <sip:x@127.0.0.10>;tag=1', 'To: <sip:+252612345678@127.0.0.1>', 'Call-ID: out-1', 'CSeq: 1 INVITE', 'Contact: <sip:x@127.0.0.10>', 'Content-Length: 0', '', ''].join('\r\n'),
    );
    const answer = await server.waitFor((m) => m.body.startsWith(`sip|${txn}|`));
    expect(answer.body).toContain('SIP/2.0 403 Forbidden');

    // Stopping does not wait for drachtio-server to close its per-call connections.
    await fe.stop();
    await new Promise((r) => setTimeout(r, 50));
    expect(server.sockets.size).toBe(0);
  });
});
