/**
 * The native UDP addon through its TypeScript face, on real loopback sockets (127.0.0.1, ::1).
 * Every socket a test opens is closed in afterEach, so jest has nothing left to wait for.
 */
import * as dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createUdpBatchSocket, udpBatchUnavailable, UdpBatch, UdpBatchSocket } from '../../../src/sip/udp-batch';

type Family = 'udp4' | 'udp6';
interface Received {
  bytes: Buffer;
  text?: string;
  length: number;
  address: string;
  port: number;
}
interface Peer {
  port: number;
  got: Received[];
  /** Sends bytes, or for a batch socket a latin1 string too. */
  send(data: string | Uint8Array, port: number): void;
}

const BUFFERS = { recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 };
const HOSTS: Record<Family, string> = { udp4: '127.0.0.1', udp6: '::1' };
/** The largest UDP payload of each family (no jumbograms). */
const MAX_PAYLOAD: Record<Family, number> = { udp4: 65_507, udp6: 65_527 };

const open: Array<() => void> = [];
afterEach(() => {
  for (const close of open.splice(0)) close();
});

function batchSocket(type: Family): UdpBatchSocket {
  const s = createUdpBatchSocket(type, BUFFERS);
  open.push(() => s.close());
  return s;
}

function dgramSocket(type: Family): dgram.Socket {
  const s = dgram.createSocket({ type, ...BUFFERS });
  open.push(() => {
    try {
      s.close();
    } catch {
      // already closed by the test
    }
  });
  return s;
}

function record(b: UdpBatch, i: number): Received {
  return { bytes: Buffer.from(b.view(i)), text: b.text(i), length: b.length(i), address: b.address(i), port: b.port(i) };
}

function batchPeer(type: Family, host = HOSTS[type]): Peer & { s: UdpBatchSocket } {
  const s = batchSocket(type);
  const port = s.bind(0, host);
  const got: Received[] = [];
  s.onBatch((b) => {
    for (let i = 0; i < b.count; i++) got.push(record(b, i));
  });
  return { s, port, got, send: (data, to) => void s.send(data, to, HOSTS[type]) };
}

async function dgramPeer(type: Family, host = HOSTS[type]): Promise<Peer & { s: dgram.Socket }> {
  const s = dgramSocket(type);
  const got: Received[] = [];
  s.on('message', (m, r) => got.push({ bytes: m, length: r.size, address: r.address, port: r.port }));
  await new Promise<void>((resolve) => s.bind(0, host, resolve));
  return {
    s,
    port: s.address().port,
    got,
    send: (data, to) => s.send(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, to, HOSTS[type]),
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(cond: () => boolean, what: string, ms = 2000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

interface Thrown {
  name: string;
  message: string;
  code?: string;
}

/** What fn throws. Not checked with instanceof: the addon's errors come from Node's own realm, not jest's. */
function caught(fn: () => unknown): Thrown {
  try {
    fn();
  } catch (e) {
    if (typeof e === 'object' && e !== null && 'message' in e && 'name' in e) return e as Thrown;
    throw new Error(`threw something else: ${String(e)}`);
  }
  throw new Error('did not throw');
}

/** A latin1 string of random bytes (so about half of them ≥ 0x80). */
function randomLatin1(n: number): string {
  return randomBytes(n).toString('latin1');
}

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

const onLinux = process.platform === 'linux';

describe('udp-batch', () => {
  (onLinux ? it : it.skip)('is available on Linux (npm install builds it; CI must not run on dgram unnoticed)', () => {
    expect(udpBatchUnavailable()).toBeUndefined();
  });

  if (!onLinux) {
    it('says why it is unavailable off Linux', () => {
      expect(udpBatchUnavailable()).toMatch(/Linux/);
      expect(caught(() => createUdpBatchSocket('udp4', BUFFERS)).code).toBe('ERR_UDP_BATCH_UNAVAILABLE');
    });
    return;
  }

  describe.each(['udp4', 'udp6'] as const)('%s round trips', (type) => {
    const sizes = [0, 1_400, 9_000, MAX_PAYLOAD[type]];
    const makers = {
      batch: async (t: Family) => batchPeer(t),
      dgram: (t: Family) => dgramPeer(t),
    };
    it.each([
      ['batch', 'batch'],
      ['batch', 'dgram'],
      ['dgram', 'batch'],
    ] as const)(`${HOSTS[type]}: %s → %s, strings and Buffers of 0, 1,400, 9,000 and ${MAX_PAYLOAD[type]} bytes`, async (from, to) => {
      const a = await makers[from](type);
      const b = await makers[to](type);
      const sent: Buffer[] = [];
      for (const n of sizes) {
        const text = randomLatin1(n);
        a.send(text, b.port); // a dgram peer sends Buffer.from(text, 'latin1')
        sent.push(Buffer.from(text, 'latin1'));
        const bytes = randomBytes(n);
        a.send(bytes, b.port);
        sent.push(bytes);
      }
      a.send(ALL_BYTES.toString('latin1'), b.port);
      sent.push(ALL_BYTES);
      if (from === 'batch') {
        // a Uint8Array that is a window on a bigger buffer: only its own bytes go
        const window = new Uint8Array(ALL_BYTES.buffer, ALL_BYTES.byteOffset + 100, 50);
        a.send(window, b.port);
        sent.push(Buffer.from(window));
      }

      await until(() => b.got.length === sent.length, `${sent.length} datagrams`);
      expect(sent.some((buf) => buf.some((x) => x >= 0x80))).toBe(true);
      b.got.forEach((r, i) => {
        expect(r.length).toBe(sent[i].length);
        expect(r.bytes.equals(sent[i])).toBe(true);
        if (to === 'batch') expect(r.text).toBe(sent[i].toString('latin1'));
        expect(r.port).toBe(a.port);
        expect(r.address).toBe(HOSTS[type]);
      });
    });
  });

  const dualStack = readFileSync('/proc/sys/net/ipv6/bindv6only', 'utf8').trim() === '0';
  if (dualStack) {
    it('a udp6 socket bound to :: gives an IPv4 peer as 127.0.0.1 (not ::ffff:127.0.0.1), and a reply to 127.0.0.1 reaches it', async () => {
      const b = batchPeer('udp6', '::');
      const v4 = await dgramPeer('udp4');
      const v6 = await dgramPeer('udp6');
      v4.send('from v4', b.port);
      v6.send('from v6', b.port);
      await until(() => b.got.length === 2, 'both datagrams');
      const byText = new Map(b.got.map((r) => [r.text, r]));
      expect(byText.get('from v4')).toMatchObject({ address: '127.0.0.1', port: v4.port });
      expect(byText.get('from v6')).toMatchObject({ address: '::1', port: v6.port });
      expect(b.s.send('reply', v4.port, '127.0.0.1')).toBe(true);
      await until(() => v4.got.length === 1, 'the reply');
      expect(v4.got[0]).toMatchObject({ address: '127.0.0.1', port: b.port });
      expect(v4.got[0].bytes.toString('latin1')).toBe('reply');
    });
  } else {
    it('no dual-stack here (net.ipv6.bindv6only=1): a udp6 socket bound to :: cannot send to an IPv4 peer; the kernel refusal is counted', () => {
      const b = batchPeer('udp6', '::');
      b.s.send('x', 9, '127.0.0.1');
      b.s.flush();
      expect(b.s.stats().txErrors).toBe(1);
      expect(b.s.stats().lastErrno).toBeGreaterThan(0);
    });
  }

  it('close() inside onBatch: the batch stays readable for the rest of the callback, no more callbacks, send after close throws EBADF, the port is free at once', async () => {
    const a = batchPeer('udp4');
    const b = batchSocket('udp4');
    const port = b.bind(0, '127.0.0.1');
    let calls = 0;
    let seen = 0;
    let kept: UdpBatch | undefined;
    let sendError: Thrown | undefined;
    b.onBatch((batch) => {
      calls++;
      kept = batch;
      b.close();
      b.close(); // idempotent
      for (let i = 0; i < batch.count; i++) if (batch.text(i) === `#${i}`) seen++;
      sendError = caught(() => b.send('x', a.port, '127.0.0.1'));
    });
    for (let i = 0; i < 50; i++) a.send(`#${i}`, port);
    a.s.flush();
    await until(() => calls > 0, 'the first batch');
    await sleep(30);
    expect(calls).toBe(1);
    expect(seen).toBe(50); // all 50 were in that one batch, read after close()
    expect(sendError?.code).toBe('EBADF');
    expect(() => kept?.text(0)).toThrow(RangeError); // a batch is not readable past its callback
    expect(b.stats().rxDatagrams).toBe(50);
    expect(caught(() => b.send('x', a.port, '127.0.0.1')).code).toBe('EBADF');
    const again = batchSocket('udp4');
    expect(again.bind(port, '127.0.0.1')).toBe(port);
  });

  it('onBatch(null) stops reading; datagrams wait in the socket until a function is set again', async () => {
    const a = batchPeer('udp4');
    const b = batchPeer('udp4');
    b.s.onBatch(null);
    a.send('waiting', b.port);
    await sleep(30);
    expect(b.got).toHaveLength(0);
    const texts: string[] = [];
    b.s.onBatch((batch) => {
      for (let i = 0; i < batch.count; i++) texts.push(batch.text(i));
    });
    await until(() => texts.length === 1, 'the waiting datagram');
    expect(texts).toEqual(['waiting']);
  });

  it('a burst of 1,000 datagrams arrives whole, in order, in few batches, sent with few system calls', async () => {
    const a = batchPeer('udp4');
    const b = batchSocket('udp4');
    const port = b.bind(0, '127.0.0.1');
    const seen: number[] = [];
    let biggest = 0;
    b.onBatch((batch) => {
      biggest = Math.max(biggest, batch.count);
      for (let i = 0; i < batch.count; i++) seen.push(parseInt(batch.text(i), 10));
    });
    const pad = '.'.repeat(200);
    // Ten sends of 100 with the event loop turning in between, so that the receive buffer never
    // needs more than the kernel's default maximum allows (net.core.rmem_max).
    for (let i = 0; i < 1000; i++) {
      a.send(`${i} ${pad}`, port);
      if (i % 100 === 99) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await until(() => seen.length === 1000, '1,000 datagrams');
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    const rx = b.stats();
    const tx = a.s.stats();
    expect(rx.rxDatagrams).toBe(1000);
    expect(rx.rxBatches).toBeLessThanOrEqual(50); // node:dgram: 1,000 callbacks
    expect(biggest).toBeGreaterThan(1);
    expect(biggest).toBeLessThanOrEqual(64);
    expect(tx.txDatagrams).toBe(1000);
    expect(tx.txSyscalls).toBeLessThanOrEqual(40); // node:dgram: 1,000 sendmsg
    expect(tx.txDropped + tx.txErrors).toBe(0);
  });

  it('a send queued from a timer leaves without flush()', async () => {
    const d = await dgramPeer('udp4');
    const s = batchSocket('udp4');
    const port = s.bind(0, '127.0.0.1');
    let queued = -1;
    setTimeout(() => {
      s.send('from a timer', d.port, '127.0.0.1');
      queued = s.stats().txQueued; // still in the native queue: the loop's prepare phase sends it
    }, 5);
    await until(() => d.got.length === 1, 'the timer send');
    expect(queued).toBe(1);
    expect(d.got[0]).toMatchObject({ port, address: '127.0.0.1' });
    expect(d.got[0].bytes.toString('latin1')).toBe('from a timer');
  });

  it('a string that ends exactly at the end of the send queue memory goes whole', async () => {
    const b = batchPeer('udp4');
    const s = batchSocket('udp4');
    s.bind(0, '127.0.0.1');
    const big = 'b'.repeat(65_507);
    const last = 'L'.repeat(256 * 1024 - 4 * 65_507); // the queue's copy area is 256 KiB
    for (let i = 0; i < 4; i++) s.send(big, b.port, '127.0.0.1');
    s.send(last, b.port, '127.0.0.1');
    expect(s.stats().txQueued).toBe(5); // all five in the queue at once
    await until(() => b.got.length === 5, 'five datagrams');
    expect(b.got.map((r) => r.length)).toEqual([65_507, 65_507, 65_507, 65_507, last.length]);
    expect(b.got[4].text).toBe(last);
  });

  it('bad addresses, ports and sizes throw errors that name them', () => {
    const s4 = batchSocket('udp4');
    const port = s4.bind(0, '127.0.0.1');
    const s6 = batchSocket('udp6');
    s6.bind(0, '::1');

    let e = caught(() => s4.send('x', 5060, 'not-an-ip'));
    expect(e.message).toContain('"not-an-ip"');
    expect(e.code).toBe('ERR_INVALID_IP_ADDRESS');
    e = caught(() => s4.send('x', 5060, '::1')); // IPv6 on a udp4 socket
    expect(e.message).toContain('"::1"');
    expect(caught(() => s6.send('x', 5060, '1.2.3.400')).message).toContain('"1.2.3.400"');

    e = caught(() => batchSocket('udp4').bind(port, '127.0.0.1'));
    expect(e.code).toBe('EADDRINUSE');
    expect(e.message).toContain(`127.0.0.1:${port}`);
    e = caught(() => batchSocket('udp4').bind(5060, '127.0.0.x'));
    expect(e.code).toBe('EINVAL');
    expect(e.message).toContain('127.0.0.x:5060');

    expect(caught(() => s4.send('x'.repeat(65_536), 5060, '127.0.0.1')).code).toBe('EMSGSIZE');
    expect(caught(() => s4.send(Buffer.alloc(65_536), 5060, '127.0.0.1')).code).toBe('EMSGSIZE');
    expect(caught(() => s4.send('x', 0, '127.0.0.1')).name).toBe('RangeError');
    expect(s4.stats().txQueued).toBe(0); // nothing of the refused sends was queued
  });

  it('reports its address and what getsockopt says of its buffers (as node:dgram does for the same request)', async () => {
    const s = batchSocket('udp6');
    const port = s.bind(0, '::1');
    expect(s.family).toBe(6);
    expect(s.address()).toEqual({ address: '::1', port, family: 6 });
    const d = await dgramPeer('udp6');
    expect(s.bufferSizes()).toEqual({ recv: d.s.getRecvBufferSize(), send: d.s.getSendBufferSize() });
  });
});
