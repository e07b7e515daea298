/**
 * The embedded proxy's UDP sockets, over one of two I/O layers:
 *
 * - "batch": the native addon (udp-batch.ts, Linux): up to 64 datagrams per recvmmsg handed over
 *   in one callback, sends queued and sent with sendmmsg. ~30 µs less CPU a call than node:dgram
 *   (README, benchmarks).
 * - "dgram": node:dgram, one system call and one callback per datagram. Everywhere Node runs.
 *
 * "auto" (the default) takes batch when the addon loaded and otherwise dgram, with one warning
 * that says why. Both deliver each datagram as a latin1 string and take latin1 strings to send.
 */
import * as dgram from 'node:dgram';
import { lookup as dnsLookup, type LookupOptions } from 'node:dns';
import { constants as osConstants } from 'node:os';
import type { Logger } from 'winston';
import { familyOf, ipVersion, normaliseAddress, type HostPortSpec } from './address';
import { latin1Slice } from './syntax';
import { createUdpBatchSocket, udpBatchUnavailable, type UdpBatchSocket, type UdpBatchStats } from './udp-batch';

export type UdpIo = 'auto' | 'batch' | 'dgram';

export type SendCallback = (err: Error | null) => void;

export interface UdpSocket {
  readonly io: 'batch' | 'dgram';
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  /**
   * Sends (batch: queues) a datagram. A failure known now (no socket, a full queue, a bad
   * address) goes to `done` on the next tick, or is thrown when there is no `done`. dgram also
   * reports the kernel's refusals to `done`; batch counts them and logs them every few seconds.
   */
  send(data: string, port: number, address: string, done?: SendCallback): void;
  /** What the kernel granted for the receive and send buffers. */
  bufferSizes(): { recv: number; send: number };
  /**
   * How long the datagrams read last had waited in the socket's receive queue, in ms: the backlog
   * the proxy is behind by (0 when not known: dgram has no receive timestamps).
   */
  queueDelayMs(): number;
  close(): Promise<void>;
}

export interface UdpSocketOptions {
  spec: HostPortSpec;
  bufferBytes: number;
  io: UdpIo;
  logger: Logger;
  /**
   * One received datagram: latin1 text, sender address (IPv4-mapped IPv6 given as IPv4) and port,
   * and how long it waited in the socket's queue, ms (0 when the I/O layer cannot tell).
   */
  onDatagram(data: string, address: string, port: number, queuedMs: number): void;
}

/** How often the batch socket's counters are read for send errors the kernel reported. */
const SEND_ERROR_CHECK_MS = 5_000;
/** A queueing-delay reading older than this is not used (no datagram came since). */
const QUEUE_READING_TTL_MS = 1_000;

let warnedUnavailable = false;

export async function bindUdpSocket(o: UdpSocketOptions): Promise<UdpSocket> {
  if (o.io !== 'dgram') {
    const why = udpBatchUnavailable();
    if (why === undefined) return BatchUdpSocket.bind(o);
    if (o.io === 'batch') throw new Error(`sip.udp_io is batch, but the native UDP addon is unavailable: ${why}`);
    if (!warnedUnavailable) {
      warnedUnavailable = true;
      o.logger.warn({ message: 'native UDP addon unavailable, using node:dgram (about 30 µs more CPU a call)', reason: why });
    }
  }
  return DgramUdpSocket.bind(o);
}

class BatchUdpSocket implements UdpSocket {
  readonly io = 'batch';
  private timer: NodeJS.Timeout | null = null;
  /** Queueing delay (µs) of the oldest datagram of the last batch, and when that batch came (ms). */
  private queuedUs = 0;
  private queuedAt = 0;
  private reported = { txErrors: 0, txDropped: 0 };

  private constructor(
    private readonly s: UdpBatchSocket,
    readonly port: number,
    private readonly o: UdpSocketOptions,
  ) {}

  static bind(o: UdpSocketOptions): BatchUdpSocket {
    const family = familyOf(o.spec.host);
    const s = createUdpBatchSocket(family === 6 ? 'udp6' : 'udp4', { recvBufferSize: o.bufferBytes, sendBufferSize: o.bufferBytes });
    let port: number;
    try {
      port = s.bind(o.spec.port, o.spec.host);
    } catch (err) {
      s.close();
      throw err;
    }
    const u = new BatchUdpSocket(s, port, o);
    const deliver = o.onDatagram;
    s.onBatch((b) => {
      // A batch is read oldest first: its first datagram waited longest.
      u.queuedUs = b.queuedUs(0);
      u.queuedAt = Date.now();
      for (let i = 0; i < b.count; i++) {
        const data = b.text(i);
        if (isKeepAlive(data)) continue;
        const q = b.queuedUs(i);
        deliver(data, b.address(i), b.port(i), q > 0 ? q / 1000 : 0);
      }
    });
    u.timer = setInterval(() => u.reportSendErrors(), SEND_ERROR_CHECK_MS);
    u.timer.unref();
    return u;
  }

  send(data: string, port: number, address: string, done?: SendCallback): void {
    let ok: boolean;
    try {
      ok = this.s.send(data, port, address);
    } catch (err) {
      if (!done) throw err;
      process.nextTick(done, err as Error);
      return;
    }
    if (ok) return;
    const err = new Error('UDP send queue full: the socket send buffer is full');
    if (done) process.nextTick(done, err);
    else throw err;
  }

  bufferSizes(): { recv: number; send: number } {
    return this.s.bufferSizes();
  }

  queueDelayMs(): number {
    // A reading that old says nothing about now: the queue has been read empty since.
    if (this.queuedUs <= 0 || Date.now() - this.queuedAt > QUEUE_READING_TTL_MS) return 0;
    return this.queuedUs / 1000;
  }

  close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.reportSendErrors();
    this.s.close();
    return Promise.resolve();
  }

  /** The kernel's refusals of queued datagrams are counted natively; say so when there are new ones. */
  private reportSendErrors(): void {
    let st: UdpBatchStats;
    try {
      st = this.s.stats();
    } catch {
      return;
    }
    const errors = st.txErrors - this.reported.txErrors;
    const dropped = st.txDropped - this.reported.txDropped;
    if (errors === 0 && dropped === 0) return;
    this.reported = { txErrors: st.txErrors, txDropped: st.txDropped };
    this.o.logger.warn({
      message: 'UDP datagrams not sent', local: `${this.o.spec.host}:${this.port}`,
      refusedByKernel: errors, droppedQueueFull: dropped, lastError: errnoName(st.lastErrno),
    });
  }
}

class DgramUdpSocket implements UdpSocket {
  readonly io = 'dgram';

  private constructor(
    private readonly socket: dgram.Socket,
    readonly port: number,
  ) {}

  static bind(o: UdpSocketOptions): Promise<DgramUdpSocket> {
    const family = familyOf(o.spec.host);
    const size = o.bufferBytes;
    const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: size, sendBufferSize: size, lookup: literalLookup });
    const deliver = o.onDatagram;
    return new Promise((resolve, reject) => {
      const onBindError = (err: Error): void => reject(err);
      socket.once('error', onBindError);
      socket.bind({ address: o.spec.host, port: o.spec.port, exclusive: true }, () => {
        socket.off('error', onBindError);
        const port = socket.address().port;
        socket.on('error', (err) => o.logger.warn({ message: 'udp socket error', local: `${o.spec.host}:${port}`, error: err.message }));
        socket.on('message', (msg, rinfo) => {
          const data = latin1Slice(msg, 0, msg.length);
          if (isKeepAlive(data)) return;
          deliver(data, normaliseAddress(rinfo.address), rinfo.port, 0);
        });
        resolve(new DgramUdpSocket(socket, port));
      });
    });
  }

  /**
   * Without a callback the datagram goes out synchronously and a failure surfaces as the socket's
   * 'error' event (logged); with one, Node adds a tick and a request object per packet, so callers
   * pass one only when a failure changes what they do.
   */
  send(data: string, port: number, address: string, done?: SendCallback): void {
    const bytes = Buffer.from(data, 'latin1');
    if (done) this.socket.send(bytes, port, address, (err) => done(err ?? null));
    else this.socket.send(bytes, port, address);
  }

  queueDelayMs(): number {
    return 0;
  }

  bufferSizes(): { recv: number; send: number } {
    // Linux reports double the size asked for (the kernel's bookkeeping share).
    return { recv: this.socket.getRecvBufferSize(), send: this.socket.getSendBufferSize() };
  }

  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}

/**
 * dgram resolves every destination through dns.lookup, which answers IP literals on the next tick:
 * one extra tick and async-hooks scope per datagram. We only ever send to IP literals (names are
 * resolved above this layer), so answer at once; anything else still goes to dns.lookup.
 */
function literalLookup(
  host: string,
  options: unknown,
  cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const fam = ipVersion(host);
  if (fam) return cb(null, host, fam);
  dnsLookup(host, { ...(options as LookupOptions), all: false }, (err, address, family) => cb(err, address as string, family as number));
}

/** A short datagram of only CRLF, spaces, tabs or NULs: a peer's bare keep-alive, not SIP (RFC 5626's keep-alives over UDP are STUN, but many peers send CRLFs). */
function isKeepAlive(s: string): boolean {
  if (s.length >= 16) return false;
  for (let i = 0; i < s.length; i++) {
    const x = s.charCodeAt(i);
    if (x !== 0x0d && x !== 0x0a && x !== 0x20 && x !== 0x09 && x !== 0) return false;
  }
  return true;
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return String(errno);
}
