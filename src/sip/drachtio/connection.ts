import type { Server, Socket } from 'node:net';
import type { Logger } from 'winston';
import type { Srf } from './srf-types';

/** How TollGuard and drachtio-server find each other. */
export type DrachtioConnectionSpec =
  /** Inbound: TollGuard connects to drachtio-server's admin port. */
  | { style: 'inbound'; host: string; port: number; secret: string }
  /** Outbound: drachtio-server connects to TollGuard (one connection per call). */
  | { style: 'outbound'; address: string; port: number; secret: string };

export interface ConnectionOptions {
  /**
   * Cap on the reconnect delay. drachtio-srf's wire protocol already reconnects after 'error' /
   * 'close' with a delay growing ×1.7 from 150 ms, but with no cap unless one is given: after 20
   * failed attempts it would wait ~1.7 h. 10 s keeps a restarted drachtio-server picked up fast.
   */
  retryMaxDelayMs?: number;
}

export const DEFAULT_RETRY_MAX_DELAY_MS = 10_000;

/** The wire-protocol internals the stop path must reach (drachtio-srf has no API for them). */
interface WireInternals {
  _app?: { client?: { wp?: { closing?: boolean; reconnectVars?: { retryTimer?: NodeJS.Timeout | null } } } };
}

/**
 * Connects the Srf in the configured style, and logs the connection's life: every reconnect
 * attempt with its delay, errors, losses and (re)connections. The back-off itself is drachtio-srf's
 * (wire-protocol.js _onConnectionGone); this class gives it a cap, listens for 'error' (an
 * unhandled 'error' event would crash the process) and makes it visible.
 */
export class DrachtioConnection {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private stopping = false;
  private connectedOnce = false;
  /** An authenticated inbound connection is up. */
  private up = false;
  private attempt = 1;
  private lastError?: string;
  private readonly firstConnect: Promise<void>;
  private resolveFirst!: () => void;

  constructor(
    private readonly srf: Srf,
    readonly spec: DrachtioConnectionSpec,
    private readonly logger: Logger,
    private readonly opts: ConnectionOptions = {},
  ) {
    this.firstConnect = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  /** Where, for logs: "inbound 127.0.0.1:9022" / "outbound 0.0.0.0:4000". */
  get description(): string {
    const s = this.spec;
    return `${s.style} ${s.style === 'inbound' ? s.host : s.address}:${s.port}`;
  }

  /**
   * Inbound: starts connecting and returns at once (drachtio-server may come up later; attempts
   * are logged). Outbound: resolves once the port listens, rejects if it cannot be bound.
   */
  async start(): Promise<void> {
    this.listenForEvents();
    const s = this.spec;
    if (s.style === 'inbound') {
      this.logger.info({ message: 'connecting to drachtio-server', host: s.host, port: s.port });
      this.srf.connect({
        host: s.host,
        port: s.port,
        secret: s.secret,
        reconnect: { retryMaxDelay: this.opts.retryMaxDelayMs ?? DEFAULT_RETRY_MAX_DELAY_MS },
      });
      return;
    }
    const server = this.srf.listen({ host: s.address, port: s.port, secret: s.secret });
    this.server = server;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => reject(new Error(`cannot listen for drachtio-server on ${s.address}:${s.port}: ${err.message}`));
      server.once('error', onError);
      server.once('listening', () => {
        server.off('error', onError);
        resolve();
      });
    });
    this.logger.info({ message: 'listening for drachtio-server', address: s.address, port: (server.address() as { port: number }).port });
  }

  /** Resolves on the first authenticated connection (either style). */
  connected(): Promise<void> {
    return this.firstConnect;
  }

  /** The port actually bound (outbound; useful with port 0 in tests). */
  boundPort(): number | undefined {
    const a = this.server?.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.spec.style === 'inbound') {
      // drachtio-srf's pending retry timer ignores its own 'closing' flag once armed, so clear it
      // here or a stopped guard would reconnect.
      const wp = (this.srf as unknown as WireInternals)._app?.client?.wp;
      if (wp) {
        wp.closing = true;
        if (wp.reconnectVars?.retryTimer) clearTimeout(wp.reconnectVars.retryTimer);
        if (wp.reconnectVars) wp.reconnectVars.retryTimer = null;
      }
      try {
        this.srf.disconnect();
      } catch {
        // No socket (never connected or between attempts): nothing to close.
      }
      return;
    }
    const server = this.server;
    if (server === undefined) return;
    // net.Server#close waits for every open connection, and drachtio-server keeps one per live
    // call: end them, or stopping would wait for the last call to hang up.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private listenForEvents(): void {
    const inbound = this.spec.style === 'inbound';
    this.srf.on('connect', (err, hostport, serverVersion) => {
      if (err) {
        // drachtio-server closes nothing and retries nothing after a refused secret: say it loudly.
        this.logger.error({ message: 'drachtio-server refused the connection: check drachtio.secret', where: this.description, error: err.message });
        return;
      }
      const entry = { message: 'connected to drachtio-server', where: this.description, sipAddresses: hostport ?? null, serverVersion: serverVersion ?? null, attempt: this.attempt };
      // Outbound mode opens one connection per call: one line per connection only at debug.
      if (inbound || !this.connectedOnce) this.logger.info(entry);
      else this.logger.debug(entry);
      this.connectedOnce = true;
      this.up = true;
      this.attempt = 1;
      this.lastError = undefined;
      this.resolveFirst();
    });
    this.srf.on('reconnecting', ({ delay, attempt }) => {
      // One line per attempt, carrying the error that made the last one fail.
      this.attempt = attempt;
      this.logger.warn({ message: 'reconnecting to drachtio-server', where: this.description, attempt, delayMs: delay, lastError: this.lastError ?? null });
    });
    this.srf.on('error', (err) => {
      if (this.stopping) return;
      const code = (err as NodeJS.ErrnoException).code;
      this.lastError = code !== undefined ? `${code}: ${err.message}` : err.message;
      // A failed attempt is reported by the 'reconnecting' line; a live connection breaking is news.
      if (this.up) this.logger.warn({ message: 'drachtio connection error', where: this.description, error: this.lastError });
      else this.logger.debug({ message: 'drachtio connection attempt failed', where: this.description, error: this.lastError });
    });
    this.srf.on('close', () => {
      if (this.stopping) return;
      if (inbound && this.up) this.logger.warn({ message: 'connection to drachtio-server lost', where: this.description });
      else if (!inbound) this.logger.debug({ message: 'drachtio-server closed a connection', where: this.description });
      if (inbound) this.up = false;
    });
  }
}
