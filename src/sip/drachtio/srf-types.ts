/**
 * Type declarations for the parts of drachtio-srf 5.x that TollGuard uses, written from its
 * source (lib/srf.js, connect.js, proto.js, drachtio-agent.js, wire-protocol.js, request.js,
 * response.js, dialog.js, sip-parser/message.js) rather than from its bundled index.d.ts, which
 * is wrong where it matters here:
 * - proxyRequest is typed void; it returns a Promise of the proxy results (srf.js proxyRequest).
 * - createB2BUA's signature is (req, res, uri, opts, callbacks), resolving to {uac, uas}.
 * - a Request has no callId property; the Call-ID is req.get('Call-ID').
 * - middleware's next is Function and locals are untyped.
 * - the 'connect' event's first argument is an Error or null (drachtio-agent.js _onConnect), and
 *   'reconnecting' carries {delay, attempt} (wire-protocol.js _onConnectionGone).
 * - cdr:start / cdr:stop listeners get (source, time, role-or-reason, message).
 *
 * Only shapes are declared here; newSrf() is the one place that touches the untyped module.
 */
import type { Server, Socket } from 'node:net';

/** The parsed SIP message behind a request or response (sip-parser/message.js). */
export interface SipMessageView {
  /**
   * A header's value, case-insensitive, compact forms understood; undefined when absent.
   * Repeated header lines are joined with "," (sip-parser/parser.js, lazy parse).
   */
  get(name: string): string | undefined;
  has(name: string): boolean;
  /** Lower-cased header name -> value. */
  readonly headers: Readonly<Record<string, string>>;
  body?: string;
}

/** Where a request came from: 'network' (a SIP peer) or 'application' (sent by an app). */
export type MessageSource = 'network' | 'application';

/** An incoming request (lib/request.js). Fields set from the wire protocol's meta line. */
export interface DrachtioRequest extends SipMessageView {
  method: string;
  /** The Request-URI as written. */
  uri: string;
  readonly source: MessageSource;
  /** The peer's IP address as drachtio-server's socket saw it. */
  readonly source_address: string;
  readonly source_port: number;
  /** 'udp', 'tcp', 'tls', 'ws' or 'wss'. */
  readonly protocol: string;
  readonly stackTxnId: string;
  readonly stackDialogId?: string;
  /** Set by createUAS/createB2BUA when the caller's CANCEL arrived. */
  canceled?: boolean;
  /** The caller CANCELed this INVITE (emitted by drachtio-agent.js with the CANCEL message). */
  on(event: 'cancel', listener: (cancel: SipMessageView) => void): this;
  once(event: 'cancel', listener: (cancel: SipMessageView) => void): this;
  /**
   * Only for requests this app sent (source 'application'): sends a CANCEL for it. Throws for
   * an incoming request (request.js cancel).
   */
  cancel(opts?: { headers?: Record<string, string> }, callback?: (err: Error | null) => void): void;
}

/** Options of Response#send. */
export interface SendOptions {
  headers?: Record<string, string>;
  body?: string;
}

/** The response to an incoming request (lib/response.js). */
export interface DrachtioResponse {
  /** Status is validated against sip-status: an unknown code throws. */
  send(status: number, reason?: string, opts?: SendOptions, callback?: (err: Error | null) => void): void;
  send(status: number, opts: SendOptions, callback?: (err: Error | null) => void): void;
  readonly finalResponseSent: boolean;
  status?: number;
}

export type Next = (err?: unknown) => void;

/** drachtio-srf middleware (proto.js handle): arity 3; a thrown error becomes next(err). */
export type Middleware<Req extends DrachtioRequest = DrachtioRequest> = (req: Req, res: DrachtioResponse, next: Next) => void;

/** A SIP dialog (lib/dialog.js). */
export interface Dialog {
  /** drachtio-server's dialog id (Call-ID;from-tag=...). */
  readonly id: string;
  readonly sip: { callId: string; localTag: string; remoteTag: string };
  /** 'uas' for the caller's leg, 'uac' for the leg towards the core. */
  readonly type: 'uas' | 'uac';
  connected: boolean;
  /** Set by createB2BUA: the other leg. */
  other?: Dialog;
  /**
   * Sends BYE (INVITE dialogs) and forgets the dialog. Emits no 'destroy' on this dialog and
   * removes all its listeners (dialog.js destroy). Resolves to the BYE that was sent.
   */
  destroy(opts?: { headers?: Record<string, string> }): Promise<unknown>;
  /**
   * Sends a re-INVITE with this SDP offer; resolves to the far end's answer SDP (dialog.js modify).
   */
  modify(sdp: string): Promise<string>;
  /** Sends a request inside the dialog; resolves to the far end's final response. */
  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<SipMessageView & { status: number; reason?: string }>;
  /** The far end sent BYE (reason: "normal release", or the Reason text of an app's BYE). */
  on(event: 'destroy', listener: (bye: DrachtioRequest, reason?: string) => void): this;
  /**
   * A re-INVITE that changes the session (not a refresh, hold or unhold with listeners for those).
   * Without a listener dialog.js answers 200 with this leg's old SDP itself.
   */
  on(event: 'modify', listener: (req: DrachtioRequest, res: DrachtioResponse) => void): this;
  /** INFO inside the dialog (DTMF, ...); without a listener dialog.js answers 200 itself. */
  on(event: 'info', listener: (req: DrachtioRequest, res: DrachtioResponse) => void): this;
  once(event: 'destroy', listener: (bye: DrachtioRequest, reason?: string) => void): this;
}

/** A non-2xx final answer from the far end (lib/sip_error.js), as createB2BUA rejects with. */
export interface SipError extends Error {
  name: 'SipError';
  status: number;
  reason?: string;
  /** The failure response, when one came from the network. */
  res?: SipMessageView;
}

export function isSipError(err: unknown): err is SipError {
  return err instanceof Error && err.name === 'SipError' && typeof (err as { status?: unknown }).status === 'number';
}

/** Options of srf.proxyRequest (request.js proxy). */
export interface ProxyRequestOptions {
  /** Record-Route, so in-dialog requests stay on drachtio-server (alias remainInDialog). */
  recordRoute?: boolean;
  remainInDialog?: boolean;
  followRedirects?: boolean;
  forking?: 'sequential' | 'simultaneous';
  /** e.g. '2s', '1500ms': time to wait for a 100 before trying the next destination. */
  provisionalTimeout?: string;
  finalTimeout?: string;
  headers?: Record<string, string>;
}

/** What proxyRequest resolves to once the transaction is done (request.js proxy). */
export interface ProxyResult {
  /** finalStatus === 200 (note: not any 2xx). */
  connected: boolean;
  /** The last response status seen; undefined if none came back. */
  finalStatus?: number;
  finalResponse?: { time: string; status: number; msg: SipMessageView };
  responses: Array<{ address: string; port: number; msgs: Array<{ time: string; status: number; msg: SipMessageView }> }>;
}

/** Options of srf.createB2BUA (srf.js). */
export interface B2buaOptions {
  headers?: Record<string, string>;
  /**
   * Headers of the A-leg INVITE copied to the B leg: names, or ['all', '-Name', ...]. 'all'
   * copies everything except Via, From, To, Call-ID, CSeq, Contact, Content-Length/-Type.
   */
  proxyRequestHeaders?: string[];
  /** Headers of B-leg responses copied to the A leg, same syntax. */
  proxyResponseHeaders?: string[];
  /** Default true: a B-leg failure is answered to A with the same status. */
  passFailure?: boolean;
  passProvisionalResponses?: boolean;
  /** SDP offered to B; the A-leg body when absent. */
  localSdpB?: string;
  /** Send the B-leg INVITE via this outbound proxy (SIP URI or host[:port]). */
  proxy?: string;
  callingNumber?: string;
  calledNumber?: string;
}

export interface B2buaCallbacks {
  /** The B-leg INVITE was sent (or failed to send): keep it to CANCEL a ringing call. */
  cbRequest?: (err: Error | null, uacReq: DrachtioRequest) => void;
  cbProvisional?: (res: SipMessageView & { status: number }) => void;
  /** B answered 2xx; the A leg is about to be answered. */
  cbFinalizedUac?: (uac: Dialog) => void;
}

/** Inbound connection (srf.connect → drachtio-agent.js connect → wire-protocol.js connect). */
export interface ConnectOptions {
  host: string;
  port: number;
  secret: string;
  /**
   * wire-protocol.js back-off: the delay starts at 150 ms and grows ×1.7 per attempt; without
   * retryMaxDelay it grows without bound (after 20 failures it is ~1.7 h).
   */
  reconnect?: { retryMaxDelay?: number; maxAttempts?: number; connectTimeout?: number };
  enablePing?: boolean;
  pingInterval?: number;
}

/** Outbound connections (srf.listen → wire-protocol.js listen). */
export interface ListenOptions {
  port: number;
  host?: string;
  secret: string;
}

export interface ReconnectingInfo {
  /** ms until the next attempt. */
  delay: number;
  attempt: number;
}

/** The drachtio-srf Srf class, as far as TollGuard uses it. */
export interface Srf {
  connect(opts: ConnectOptions): unknown;
  /** Returns the net.Server that drachtio-server connects to. */
  listen(opts: ListenOptions): Server;
  /** Middleware for one method (lower-case, e.g. 'invite'); registers the route with the server. */
  use(method: string, fns: Middleware<never>[] | Middleware<never>): unknown;
  proxyRequest(req: DrachtioRequest, destination: string | string[], opts?: ProxyRequestOptions): Promise<ProxyResult>;
  createB2BUA(req: DrachtioRequest, res: DrachtioResponse, uri: string, opts?: B2buaOptions, callbacks?: B2buaCallbacks): Promise<{ uac: Dialog; uas: Dialog }>;
  /** Inbound: closes the connection and stops reconnecting (wire-protocol.js disconnect sets closing). */
  disconnect(socket?: Socket): void;
  /** Outbound: closes the connection drachtio-server opened for this request. */
  endSession(req: DrachtioRequest): void;
  on(event: 'connect', listener: (err: Error | null, hostport?: string, serverVersion?: string | null, localHostports?: string | null) => void): this;
  on(event: 'reconnecting', listener: (info: ReconnectingInfo) => void): this;
  /** Must be listened for: an unhandled 'error' event would crash the process. */
  on(event: 'error', listener: (err: Error, socket?: Socket) => void): this;
  on(event: 'close', listener: (socket?: Socket) => void): this;
  on(event: 'listening', listener: () => void): this;
  /**
   * CDR events (registered with drachtio-server as a route, so subscribe before connecting).
   * drachtio-server writes them for proxied calls too: cdr:start on a 2xx, cdr:stop on a failure,
   * a CANCEL or the BYE (sip-proxy-controller.cpp writeCdr). Returns the inner app, not the Srf.
   */
  on(event: 'cdr:start', listener: (source: MessageSource, time: string, role: string, msg: SipMessageView) => void): unknown;
  on(event: 'cdr:stop', listener: (source: MessageSource, time: string, reason: string, msg: SipMessageView) => void): unknown;
  removeAllListeners(event?: string): this;
}

/** Makes a real drachtio-srf instance; the only untyped hand-off in the front end. */
export function newSrf(): Srf {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const SrfClass = require('drachtio-srf') as new () => unknown;
  return new SrfClass() as Srf;
}
