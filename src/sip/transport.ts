/**
 * The SIP transport layer (RFC 3261 §18): UDP sockets and stream connections (TCP now; TLS is
 * another StreamFactory, nothing above this file changes). It hands whole messages up and sends
 * bytes where it is told; it knows nothing about transactions.
 *
 * - UDP: one socket per listen spec, with large kernel buffers (Node's defaults drop packets at
 *   thousands of calls per second).
 * - Streams: Content-Length framing (framing.ts), CRLF keep-alive pongs (RFC 5626), a maximum
 *   message size, idle timeout, and connection reuse keyed by the remote address:port, so
 *   responses go back over the connection the request came on (§18.2.2) and requests to the same
 *   destination share one connection.
 * - Every socket error is logged and contained; nothing here throws into the event loop.
 */
import * as net from 'node:net';
import type { Logger } from 'winston';
import type { Peer, TransportName } from './policy';
import { StreamFramer } from './framing';
import { LogThrottle } from './log-throttle';
import { latin1Slice } from './syntax';
import { bindUdpSocket, type SendCallback, type UdpIo, type UdpSocket } from './udp-socket';
import { familyOf, normaliseAddress, isWildcard, HostPortSpec } from './address';

/** A bound listening address. `port` is the real port (also when 0 was asked for). */
export interface LocalEndpoint {
  transport: TransportName;
  address: string;
  port: number;
  family: 4 | 6;
}

/** A stream connection as seen by the layers above. */
export interface Connection {
  readonly id: number;
  readonly transport: TransportName;
  readonly remote: Peer;
  /** The listener this connection belongs to (inbound) or the one of its transport/family (outbound). */
  readonly local: LocalEndpoint;
  /** True when we opened it. */
  readonly outbound: boolean;
  readonly closed: boolean;
}

export interface InboundMessage {
  /** The message as a latin1 byte string (one char per byte). */
  data: string;
  peer: Peer;
  local: LocalEndpoint;
  /** Set for stream transports: the connection it arrived on. */
  conn?: Connection;
  /** Stream framing failed: `data` is the header block only and the connection is being closed. */
  framingError?: string;
  /**
   * How long it waited in the kernel before it was read, ms (batch UDP: the receive timestamp;
   * 0 elsewhere). Rates are counted at arrival, so a backlog read at once after a stall (GC, a
   * paused VM) is not taken for a flood.
   */
  queuedMs?: number;
}

export type { SendCallback };

/** What a stream transport needs from node:net / node:tls. */
export interface StreamFactory {
  readonly name: 'tcp' | 'tls';
  createServer(onSocket: (socket: net.Socket) => void): net.Server;
  connect(host: string, port: number, family: 4 | 6): net.Socket;
  /** Event after which the socket is usable: 'connect' (net) or 'secureConnect' (tls). */
  readonly readyEvent: 'connect' | 'secureConnect';
}

export const tcpFactory: StreamFactory = {
  name: 'tcp',
  createServer: (onSocket) => net.createServer({ noDelay: true }, onSocket),
  connect: (host, port, family) => net.connect({ host, port, family, noDelay: true }),
  readyEvent: 'connect',
};

export interface TransportOptions {
  listen: HostPortSpec[];
  logger: Logger;
  /** recvBufferSize/sendBufferSize on UDP sockets. Default 8 MiB. */
  udpBufferBytes?: number;
  /** UDP I/O layer: the native batch addon, node:dgram, or batch when it loaded (default). */
  udpIo?: UdpIo;
  /** Largest message accepted on a stream; bigger → connection dropped. Default 64 KiB. */
  maxMessageBytes?: number;
  /** Stream connections without traffic this long are closed. Default 5 minutes. */
  idleTimeoutMs?: number;
  /** Most stream connections held at once; more inbound ones are refused. Default 10000. */
  maxConnections?: number;
  /** Most inbound stream connections one source address may hold, so one host cannot take them all. Default 1000. */
  maxConnectionsPerSource?: number;
  /**
   * A message begun on a stream must be complete within this long, and an inbound connection must
   * bring its first message within it, or the connection is closed: a peer dribbling a header a
   * byte at a time (slowloris) would otherwise hold it forever, since every byte restarts the idle
   * timer, and a silent one would hold it for the idle timeout. Default 32 s (64*T1).
   */
  partialMessageTimeoutMs?: number;
  /** Extra stream transports (TLS) by name. */
  streamFactories?: Partial<Record<'tcp' | 'tls', StreamFactory>>;
}

class StreamConnection implements Connection {
  closed = false;
  ready: boolean;
  /** Callbacks of writes issued before the connection was ready; failed if it never gets there. */
  waiting: SendCallback[] = [];
  readonly framer: StreamFramer;
  /** Running while part of a message is buffered (partialMessageTimeoutMs), or until an inbound connection's first message. */
  partialTimer: NodeJS.Timeout | null = null;
  /** Whether a whole message has arrived on it yet. */
  delivered = false;

  constructor(
    readonly id: number,
    readonly key: string,
    readonly transport: TransportName,
    readonly remote: Peer,
    readonly local: LocalEndpoint,
    readonly outbound: boolean,
    readonly socket: net.Socket,
    maxMessageBytes: number,
  ) {
    this.ready = !outbound;
    this.framer = new StreamFramer(maxMessageBytes);
  }
}

interface UdpEndpoint {
  socket: UdpSocket;
  local: LocalEndpoint;
}

const NO_OPTS: { conn?: Connection; local?: LocalEndpoint } = {};

interface StreamListener {
  server: net.Server;
  local: LocalEndpoint;
  factory: StreamFactory;
}

const PONG = Buffer.from('\r\n');

function connKey(transport: string, address: string, port: number): string {
  return `${transport}|${address}|${port}`;
}

function once(cb: SendCallback | undefined): SendCallback {
  let called = false;
  return (err) => {
    if (called || !cb) return;
    called = true;
    cb(err);
  };
}

export class TransportLayer {
  /** Set by the owner before start(). Exceptions thrown by it are caught and logged. */
  onMessage: (m: InboundMessage) => void = () => undefined;
  /**
   * Asked on every inbound stream connection before any byte is read: false closes it at once,
   * so a banned source cannot hold connections or make the framer work. Set by the owner.
   */
  acceptStream: (address: string, transport: TransportName) => boolean = () => true;

  private readonly log: Logger;
  private readonly udp: UdpEndpoint[] = [];
  private readonly listeners: StreamListener[] = [];
  private readonly conns = new Map<string, StreamConnection>();
  private readonly factories: Record<string, StreamFactory>;
  private nextConnId = 1;
  /** Inbound stream connections held per source address. */
  private readonly inboundBySource = new Map<string, number>();
  private readonly refusals = new LogThrottle(1, 10_000);
  private started = false;
  private stopping = false;

  constructor(private readonly opts: TransportOptions) {
    this.log = opts.logger;
    this.factories = { tcp: tcpFactory, ...(opts.streamFactories ?? {}) } as Record<string, StreamFactory>;
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    try {
      for (const spec of this.opts.listen) {
        if (spec.transport === 'udp') await this.bindUdp(spec);
        else await this.listenStream(spec);
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const c of this.conns.values()) c.socket.destroy();
    this.conns.clear();
    await Promise.all([
      ...this.udp.map((u) => u.socket.close()),
      ...this.listeners.map((l) => new Promise<void>((resolve) => l.server.close(() => resolve()))),
    ]);
    this.udp.length = 0;
    this.listeners.length = 0;
  }

  /** Bound listening endpoints, in listen-spec order. */
  endpoints(): LocalEndpoint[] {
    return [...this.udp.map((u) => u.local), ...this.listeners.map((l) => l.local)];
  }

  /** The listening endpoint used as our address for a transport and IP family. */
  endpointFor(transport: TransportName, family: 4 | 6): LocalEndpoint | undefined {
    if (transport === 'udp') {
      const udp = this.udp;
      for (let i = 0; i < udp.length; i++) if (udp[i].local.family === family) return udp[i].local;
      return undefined;
    }
    return this.listeners.find((l) => l.local.transport === transport && l.local.family === family)?.local;
  }

  connectionCount(): number {
    return this.conns.size;
  }

  /** Closes a stream connection now, without waiting for what is queued on it. */
  closeConnection(conn: Connection): void {
    const c = this.conns.get(connKey(conn.transport, conn.remote.address, conn.remote.port));
    if (c !== undefined && c.id === conn.id) c.socket.destroy();
  }

  /** An open stream connection to this remote address:port, if any. */
  findConnection(transport: TransportName, address: string, port: number): Connection | undefined {
    const c = this.conns.get(connKey(transport, address, port));
    return c && !c.closed ? c : undefined;
  }

  /**
   * Sends bytes. Streams: over `conn` when given and open, else over a connection to the
   * destination (opened when there is none). UDP: from `local` when it is a UDP endpoint of the
   * right family (symmetric replies), else from the first UDP socket of the destination's family.
   * `cb` gets every failure (no listener, socket error, connect refused), exactly once.
   */
  send(dest: Peer, data: string, opts: { conn?: Connection; local?: LocalEndpoint } = NO_OPTS, cb?: SendCallback): void {
    if (dest.transport === 'udp' && !this.stopping && cb === undefined) {
      // The proxy's usual send: no callback to wrap.
      try {
        this.sendUdp(dest, data, opts.local);
      } catch (err) {
        this.log.warn({ message: 'send failed', dest: peerText(dest), error: (err as Error).message });
      }
      return;
    }
    const done = once(cb);
    try {
      if (this.stopping) return done(new Error('transport stopped'));
      if (dest.transport === 'udp') return this.sendUdp(dest, data, opts.local, cb ? done : undefined);
      let c = opts.conn as StreamConnection | undefined;
      if (!c || c.closed) c = this.conns.get(connKey(dest.transport, dest.address, dest.port));
      if (!c || c.closed) c = this.connect(dest);
      if (!c) return done(new Error(`no ${dest.transport} transport`));
      this.writeStream(c, data, done);
    } catch (err) {
      if (cb) done(err as Error);
      else this.log.warn({ message: 'send failed', dest: peerText(dest), error: (err as Error).message });
    }
  }

  // ---------------- UDP ----------------

  private async bindUdp(spec: HostPortSpec): Promise<void> {
    const family = familyOf(spec.host);
    const size = this.opts.udpBufferBytes ?? 8 * 1024 * 1024;
    const local: LocalEndpoint = { transport: 'udp', address: spec.host, port: spec.port, family };
    const socket = await bindUdpSocket({
      spec,
      bufferBytes: size,
      io: this.opts.udpIo ?? 'auto',
      logger: this.log,
      onDatagram: (data, address, port, queuedMs) => this.deliver({ data, peer: { transport: 'udp', address, port }, local, queuedMs }),
    });
    local.port = socket.port;
    this.udp.push({ socket, local });
    this.checkUdpBuffers(socket, size, local);
  }

  private checkUdpBuffers(socket: UdpSocket, wanted: number, local: LocalEndpoint): void {
    try {
      // Linux reports double the granted size; anything under what we asked for means the kernel
      // capped it (net.core.rmem_max) and bursts will be dropped.
      const got = socket.bufferSizes().recv;
      if (got < wanted) {
        this.log.warn({
          message: 'UDP receive buffer smaller than configured (raise net.core.rmem_max)',
          local: `${local.address}:${local.port}`, wanted, got,
        });
      }
    } catch {
      /* not fatal */
    }
  }

  /**
   * The longest time datagrams last read from a UDP socket had waited in its receive queue (ms;
   * 0 when not known): how far behind the proxy is, as the event loop's lag does not show it.
   */
  queueDelayMs(): number {
    let max = 0;
    const udp = this.udp;
    for (let i = 0; i < udp.length; i++) max = Math.max(max, udp[i].socket.queueDelayMs());
    return max;
  }

  /** The I/O layer of the UDP sockets ('batch' or 'dgram'), for the start-up log line. */
  udpIo(): string | undefined {
    return this.udp[0]?.socket.io;
  }

  private sendUdp(dest: Peer, data: string, local: LocalEndpoint | undefined, done?: SendCallback): void {
    const family = familyOf(dest.address);
    let ep = local !== undefined && local.transport === 'udp' ? this.udpOf(local) : undefined;
    if (ep && ep.local.family !== family && !isWildcard(ep.local.address)) ep = undefined;
    ep ??= this.udp.find((u) => u.local.family === family);
    if (!ep) {
      const err = new Error(`no UDP listener for IPv${family} destination ${dest.address}`);
      if (done) return done(err);
      throw err;
    }
    ep.socket.send(data, dest.port, dest.address, done);
  }

  private udpOf(local: LocalEndpoint): UdpEndpoint | undefined {
    const udp = this.udp;
    for (let i = 0; i < udp.length; i++) if (udp[i].local === local) return udp[i];
    return undefined;
  }

  // ---------------- streams ----------------

  private listenStream(spec: HostPortSpec): Promise<void> {
    const factory = this.factories[spec.transport];
    if (!factory) return Promise.reject(new Error(`transport ${spec.transport} is not available`));
    const family = familyOf(spec.host);
    const local: LocalEndpoint = { transport: spec.transport, address: spec.host, port: spec.port, family };
    const server = factory.createServer((socket) => this.onAccept(socket, local));
    server.maxConnections = this.opts.maxConnections ?? 10000;
    server.on('drop', (d?: { remoteAddress?: string }) => {
      const t = this.refusals.take('full');
      if (t.ok) {
        this.log.warn({
          message: 'refusing a stream connection: the connection table is full', remote: d?.remoteAddress, transport: spec.transport,
          max: server.maxConnections, ...(t.suppressed ? { suppressedSinceLast: t.suppressed } : {}),
        });
      }
    });
    return new Promise<void>((resolve, reject) => {
      const onListenError = (err: Error): void => reject(err);
      server.once('error', onListenError);
      server.listen({ host: spec.host, port: spec.port, exclusive: true }, () => {
        server.off('error', onListenError);
        const a = server.address() as net.AddressInfo;
        local.port = a.port;
        server.on('error', (err) => this.log.warn({ message: `${spec.transport} listener error`, local: `${spec.host}:${a.port}`, error: err.message }));
        this.listeners.push({ server, local, factory });
        resolve();
      });
    });
  }

  private onAccept(socket: net.Socket, local: LocalEndpoint): void {
    const address = normaliseAddress(socket.remoteAddress ?? '');
    const port = socket.remotePort ?? 0;
    if (this.stopping || !address || !this.acceptStream(address, local.transport)) {
      socket.destroy();
      return;
    }
    const held = this.inboundBySource.get(address) ?? 0;
    if (held >= (this.opts.maxConnectionsPerSource ?? 1000)) {
      const t = this.refusals.take(address);
      if (t.ok) {
        this.log.warn({
          message: 'refusing a stream connection: the source holds its most', remote: address, transport: local.transport, held,
          ...(t.suppressed ? { suppressedSinceLast: t.suppressed } : {}),
        });
      }
      socket.destroy();
      return;
    }
    this.inboundBySource.set(address, held + 1);
    socket.once('close', () => {
      const n = (this.inboundBySource.get(address) ?? 1) - 1;
      if (n <= 0) this.inboundBySource.delete(address);
      else this.inboundBySource.set(address, n);
    });
    const remote: Peer = { transport: local.transport, address, port };
    const key = connKey(local.transport, address, port);
    const c = new StreamConnection(this.nextConnId++, key, local.transport, remote, local, false, socket, this.maxMessageBytes());
    this.register(c);
  }

  private connect(dest: Peer): StreamConnection | undefined {
    const factory = this.factories[dest.transport];
    if (!factory) return undefined;
    if (this.conns.size >= (this.opts.maxConnections ?? 10000)) throw new Error('too many connections');
    const family = familyOf(dest.address);
    const local =
      this.endpointFor(dest.transport, family) ??
      ({ transport: dest.transport, address: family === 6 ? '::' : '0.0.0.0', port: 0, family } as LocalEndpoint);
    const socket = factory.connect(dest.address, dest.port, family);
    const key = connKey(dest.transport, dest.address, dest.port);
    const c = new StreamConnection(this.nextConnId++, key, dest.transport, { ...dest }, local, true, socket, this.maxMessageBytes());
    socket.once(factory.readyEvent, () => {
      c.ready = true;
      c.waiting = [];
    });
    this.register(c);
    return c;
  }

  private register(c: StreamConnection): void {
    const { socket } = c;
    const old = this.conns.get(c.key);
    if (old && !old.closed) old.socket.destroy();
    this.conns.set(c.key, c);
    socket.setTimeout(this.opts.idleTimeoutMs ?? 5 * 60_000);
    socket.on('timeout', () => {
      this.log.debug({ message: 'closing idle connection', remote: peerText(c.remote), transport: c.transport });
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.onStreamData(c, chunk));
    // An inbound connection must bring its first message within the same bound as a partial one,
    // so one that never says anything holds a slot for 32 s, not for the 5-minute idle timeout.
    if (!c.outbound) this.armPartialTimer(c);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.log.warn({
        message: `${c.transport} connection error`, remote: peerText(c.remote), outbound: c.outbound,
        error: err.code ?? err.message,
      });
      this.failWaiting(c, err);
    });
    socket.on('close', () => {
      c.closed = true;
      if (c.partialTimer !== null) clearTimeout(c.partialTimer);
      if (this.conns.get(c.key) === c) this.conns.delete(c.key);
      this.failWaiting(c, new Error('connection closed'));
    });
  }

  private failWaiting(c: StreamConnection, err: Error): void {
    if (c.ready) return;
    const w = c.waiting;
    c.waiting = [];
    for (const cb of w) cb(err);
  }

  private writeStream(c: StreamConnection, data: string, done: SendCallback): void {
    if (!c.ready) c.waiting.push(done);
    c.socket.write(data, 'latin1', (err) => done(err ?? null));
  }

  private onStreamData(c: StreamConnection, chunk: Buffer): void {
    const events = c.framer.push(chunk);
    if (!c.delivered && events.some((e) => e.kind === 'message')) c.delivered = true;
    if (c.framer.pending === 0 && c.delivered) {
      if (c.partialTimer !== null) {
        clearTimeout(c.partialTimer);
        c.partialTimer = null;
      }
    } else if (c.framer.pending > 0 && c.partialTimer === null) {
      this.armPartialTimer(c);
    }
    for (const ev of events) {
      if (ev.kind === 'ping') {
        c.socket.write(PONG);
      } else if (ev.kind === 'message') {
        this.deliver({ data: latin1Slice(ev.data, 0, ev.data.length), peer: c.remote, local: c.local, conn: c });
      } else {
        this.log.warn({ message: 'dropping stream connection', remote: peerText(c.remote), transport: c.transport, reason: ev.reason });
        if (ev.head) this.deliver({ data: latin1Slice(ev.head, 0, ev.head.length), peer: c.remote, local: c.local, conn: c, framingError: ev.reason });
        // Let a 400 written by the handler go out before closing.
        c.socket.end();
        setTimeout(() => c.socket.destroy(), 1000).unref();
        return;
      }
    }
  }

  private armPartialTimer(c: StreamConnection): void {
    const ms = this.opts.partialMessageTimeoutMs ?? 32_000;
    c.partialTimer = setTimeout(() => {
      const why = c.framer.pending > 0 ? 'a message stayed incomplete' : 'no message since the connection opened';
      const t = this.refusals.take(`partial:${c.remote.address}`);
      if (t.ok) this.log.warn({ message: `closing a stream connection: ${why}`, remote: peerText(c.remote), transport: c.transport, ms, pending: c.framer.pending });
      c.socket.destroy();
    }, ms);
    c.partialTimer.unref();
  }

  private deliver(m: InboundMessage): void {
    try {
      this.onMessage(m);
    } catch (err) {
      this.log.error({ message: 'message handler failed', peer: peerText(m.peer), error: (err as Error).stack ?? String(err) });
    }
  }

  private maxMessageBytes(): number {
    return this.opts.maxMessageBytes ?? 64 * 1024;
  }
}

export function peerText(p: Peer): string {
  return p.address.includes(':') ? `${p.transport}:[${p.address}]:${p.port}` : `${p.transport}:${p.address}:${p.port}`;
}
