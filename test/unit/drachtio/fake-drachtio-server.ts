/**
 * A stand-in for drachtio-server's admin socket, speaking the wire protocol drachtio-srf speaks
 * (wire-protocol.js framing "LENGTH#MSGID|...", drachtio-agent.js message layouts), so a real
 * Srf can be connected, disconnected and handed SIP requests in a unit test. Only what the
 * tests need: authenticate, route registrations (not answered, as drachtio-srf sends them fire
 * and forget), SIP requests from the network, and answers to proxy commands.
 */
import { randomUUID } from 'node:crypto';
import * as net from 'node:net';

export interface AppMessage {
  msgId: string;
  /** The part after "MSGID|": "authenticate|cymru|", "route|invite", "sip|txn|\r\nSIP/2.0 ...". */
  body: string;
}

export class FakeDrachtioServer {
  readonly received: AppMessage[] = [];
  readonly sockets = new Set<net.Socket>();
  authentications = 0;
  private server?: net.Server;
  private waiters: Array<() => void> = [];

  constructor(private readonly secret = 'cymru') {}

  async listen(port = 0): Promise<number> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return (server.address() as net.AddressInfo).port;
  }

  /** drachtio-server going away: every app connection is cut. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** An incoming SIP request as drachtio-server hands it to the app (agent _onMsg 'sip'). */
  sendSip(raw: string, meta: { address?: string; port?: number; protocol?: string; txn?: string } = {}): string {
    const txn = meta.txn ?? randomUUID();
    const leader = ['sip', 'network', String(Buffer.byteLength(raw)), meta.protocol ?? 'udp', meta.address ?? '127.0.0.10', String(meta.port ?? 5060), '12:00:00.000000', txn, ''].join('|');
    this.write(`${leader}\r\n${raw}`);
    return txn;
  }

  /** Answers a proxy command: one response from the core, then "done" (request.js proxy). */
  answerProxy(rId: string, rawResponse: string): void {
    const meta = ['network', String(Buffer.byteLength(rawResponse)), 'udp', '127.0.0.1', '5080', '12:00:00.000001', 'txn-b', '', 'continue'].join('|');
    this.write(`response|${rId}|OK|${meta}\r\n${rawResponse}`);
    this.write(`response|${rId}|OK|done`);
  }

  /** Resolves when a message from the app matches. */
  async waitFor(pred: (m: AppMessage) => boolean, timeoutMs = 3000): Promise<AppMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.received.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no matching message from the app; got:\n${this.received.map((m) => m.body.split('\r\n')[0]).join('\n')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 20);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Outbound style: drachtio-server opens the connection to the app (which then authenticates). */
  async connectTo(port: number): Promise<void> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    this.accept(socket);
  }

  private write(body: string): void {
    const s = `${randomUUID()}|${body}`;
    for (const socket of this.sockets) socket.write(`${Buffer.byteLength(s)}#${s}`);
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => this.sockets.delete(socket));
    let buf = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        const hash = buf.indexOf('#');
        if (hash <= 0) return;
        const len = Number(buf.subarray(0, hash).toString());
        if (buf.length < hash + 1 + len) return;
        const text = buf.subarray(hash + 1, hash + 1 + len).toString();
        buf = buf.subarray(hash + 1 + len);
        const bar = text.indexOf('|');
        this.onMessage(socket, { msgId: text.slice(0, bar), body: text.slice(bar + 1) });
      }
    });
  }

  private onMessage(socket: net.Socket, m: AppMessage): void {
    this.received.push(m);
    if (m.body.startsWith('authenticate|')) {
      this.authentications++;
      const ok = m.body.split('|')[1] === this.secret;
      const reply = ok ? `response|${m.msgId}|OK|udp/127.0.0.1:5060|v0.9.10-fake` : `response|${m.msgId}|NOK|incorrect secret`;
      const s = `${randomUUID()}|${reply}`;
      socket.write(`${Buffer.byteLength(s)}#${s}`);
    }
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}

/** A port with nothing listening on it (bound, read, released). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
