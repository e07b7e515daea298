import { bindUdpSocket, type UdpSocket } from '../../../src/sip/udp-socket';
import { silentLogger } from '../../../src/log';
import { createUdpBatchSocket, type UdpBatchSocket } from '../../../src/sip/udp-batch';

/** Busy-waits: the event loop cannot read the socket meanwhile, so datagrams queue in the kernel. */
function block(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* spin */
  }
}

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('UDP sockets: how long datagrams waited in the kernel queue', () => {
  let sock: UdpSocket | undefined;
  let sender: UdpBatchSocket | undefined;
  afterEach(async () => {
    await sock?.close();
    sender?.close();
    sock = undefined;
    sender = undefined;
  });

  async function open(io: 'batch' | 'dgram'): Promise<{ got: string[]; send: (s: string) => void }> {
    const got: string[] = [];
    sock = await bindUdpSocket({
      spec: { transport: 'udp', host: '127.0.0.1', port: 0 },
      bufferBytes: 1 << 20,
      io,
      logger: silentLogger(),
      onDatagram: (data) => got.push(data),
    });
    const port = sock.port;
    // The batch layer's own socket as the sender: flush() sends at once, so the datagram is in the
    // receiver's queue before the test blocks the event loop (dgram would send a tick later).
    const out = (sender = createUdpBatchSocket('udp4', { recvBufferSize: 1 << 16, sendBufferSize: 1 << 16 }));
    out.bind(0, '127.0.0.1');
    return {
      got,
      send: (s) => {
        out.send(s, port, '127.0.0.1');
        out.flush();
      },
    };
  }

  it('batch: a datagram read late reports its wait; one read at once reports next to none', async () => {
    const { got, send } = await open('batch');
    send('OPTIONS sip:a SIP/2.0\r\n\r\n');
    block(150); // the datagram sits in the receiver's socket queue
    await tick();
    expect(got).toHaveLength(1);
    expect(sock!.queueDelayMs()).toBeGreaterThanOrEqual(140);
    send('OPTIONS sip:b SIP/2.0\r\n\r\n');
    await tick();
    expect(got).toHaveLength(2);
    expect(sock!.queueDelayMs()).toBeLessThan(50);
  });

  it('dgram has no receive timestamps: the wait is reported as 0 (unknown)', async () => {
    const { got, send } = await open('dgram');
    send('OPTIONS sip:a SIP/2.0\r\n\r\n');
    block(100);
    await tick();
    expect(got).toHaveLength(1);
    expect(sock!.queueDelayMs()).toBe(0);
  });
});
