/**
 * Fakes of drachtio-srf's request, response, dialog and Srf, shaped after its source (not its
 * bundled typings): header lookup is case-insensitive and answers undefined when absent
 * (sip-parser/message.js get), a response is final from status 200 on and refuses a second final
 * (response.js send), Dialog#destroy removes every listener and emits nothing (dialog.js), the
 * middleware runner stops once a final response was sent and turns a throw into next(err)
 * (proto.js handle), createB2BUA is (req, res, uri, opts, callbacks) and proxyRequest returns a
 * Promise. CI cannot run drachtio-server, so the adapter is tested through these shapes.
 */
import { EventEmitter } from 'node:events';
import type {
  B2buaCallbacks,
  B2buaOptions,
  ConnectOptions,
  Dialog,
  DrachtioRequest,
  DrachtioResponse,
  ListenOptions,
  Middleware,
  ProxyRequestOptions,
  ProxyResult,
  SendOptions,
  SipError,
  SipMessageView,
  Srf,
} from '../../../src/sip/drachtio/srf-types';

/** sip-status knows these (and more); an unknown code makes Response#send throw. */
const KNOWN_STATUSES = new Set([100, 180, 183, 200, 202, 400, 401, 403, 404, 407, 408, 480, 481, 483, 484, 486, 487, 488, 500, 503, 603]);

export class FakeMessage implements SipMessageView {
  readonly headers: Record<string, string> = {};
  body?: string;
  constructor(headers: Record<string, string> = {}) {
    for (const [k, v] of Object.entries(headers)) this.headers[k.toLowerCase()] = v;
  }
  get(name: string): string | undefined {
    return this.headers[name.toLowerCase()];
  }
  has(name: string): boolean {
    return name.toLowerCase() in this.headers;
  }
}

export interface InviteSpec {
  user?: string;
  uri?: string;
  from?: string;
  source?: string;
  protocol?: string;
  callId?: string;
  headers?: Record<string, string>;
  method?: string;
}

let seq = 0;

export class FakeRequest extends EventEmitter implements DrachtioRequest {
  readonly headers: Record<string, string> = {};
  method: string;
  uri: string;
  body?: string = 'v=0\r\n';
  readonly source = 'network' as const;
  readonly source_address: string;
  readonly source_port = 5060;
  readonly protocol: string;
  readonly stackTxnId = `txn-${++seq}`;
  readonly stackDialogId?: string;
  canceled?: boolean;
  tollguard?: unknown;

  constructor(spec: InviteSpec = {}) {
    super();
    this.method = spec.method ?? 'INVITE';
    this.uri = spec.uri ?? `sip:${spec.user ?? '095550111'}@127.0.0.1:5060`;
    this.source_address = spec.source ?? '127.0.0.10';
    this.protocol = spec.protocol ?? 'udp';
    const callId = spec.callId ?? `call-${seq}@test`;
    const base: Record<string, string> = {
      From: `<sip:${spec.from ?? 'someone'}@${this.source_address}>;tag=f${seq}`,
      To: `<${this.uri}>`,
      'Call-ID': callId,
      CSeq: `1 ${this.method}`,
      Contact: `<sip:${spec.from ?? 'someone'}@${this.source_address}:5060>`,
      ...spec.headers,
    };
    for (const [k, v] of Object.entries(base)) this.headers[k.toLowerCase()] = v;
  }
  get(name: string): string | undefined {
    return this.headers[name.toLowerCase()];
  }
  has(name: string): boolean {
    return name.toLowerCase() in this.headers;
  }
  cancel(): void {
    throw new Error('Request#cancel can only be used for uac Request');
  }
}

/** The B-leg INVITE createB2BUA sent (source 'application'): it can be CANCELed. */
export class FakeUacRequest extends FakeRequest {
  cancels: Array<{ headers?: Record<string, string> }> = [];
  override cancel(opts: { headers?: Record<string, string> } = {}): void {
    this.cancels.push(opts);
  }
}

export interface Sent {
  status: number;
  reason?: string;
  headers: Record<string, string>;
}

export class FakeResponse implements DrachtioResponse {
  readonly sent: Sent[] = [];
  status?: number;
  private finished = false;

  get finalResponseSent(): boolean {
    return this.finished;
  }

  send(status: number, reasonOrOpts?: string | SendOptions, optsOrCb?: SendOptions | ((err: Error | null) => void)): void {
    if (!KNOWN_STATUSES.has(status)) throw new Error('Response#send: status is required and must be a valid sip response code');
    const reason = typeof reasonOrOpts === 'string' ? reasonOrOpts : undefined;
    const opts = (typeof reasonOrOpts === 'object' ? reasonOrOpts : typeof optsOrCb === 'object' ? optsOrCb : undefined) ?? {};
    if (this.finished) return; // drachtio-srf: a second final response is dropped
    this.status = status;
    this.sent.push({ status, reason, headers: { ...(opts.headers ?? {}) } });
    if (status >= 200) this.finished = true;
  }

  get final(): Sent | undefined {
    return this.sent.find((s) => s.status >= 200);
  }
}

export class FakeDialog extends EventEmitter implements Dialog {
  readonly id: string;
  readonly sip: { callId: string; localTag: string; remoteTag: string };
  connected = true;
  other?: Dialog;
  destroyed: Array<{ headers?: Record<string, string> }> = [];
  destroyError?: Error;

  constructor(readonly type: 'uas' | 'uac', callId: string) {
    super();
    this.sip = { callId, localTag: `${type}-l`, remoteTag: `${type}-r` };
    this.id = `${callId};from-tag=${this.sip.remoteTag}`;
  }

  destroy(opts: { headers?: Record<string, string> } = {}): Promise<unknown> {
    this.destroyed.push(opts);
    this.connected = false;
    this.removeAllListeners();
    return this.destroyError ? Promise.reject(this.destroyError) : Promise.resolve({});
  }

  modifies: string[] = [];
  requests: Array<{ method: string; headers?: Record<string, string>; body?: string }> = [];
  /** What the far end of this leg answers to a re-INVITE (SDP) or an in-dialog request (status). */
  modifyAnswer: string | Error = 'v=0 answer';
  requestStatus = 200;

  modify(sdp: string): Promise<string> {
    this.modifies.push(sdp);
    return this.modifyAnswer instanceof Error ? Promise.reject(this.modifyAnswer) : Promise.resolve(this.modifyAnswer);
  }

  request(opts: { method: string; headers?: Record<string, string>; body?: string }): Promise<SipMessageView & { status: number }> {
    this.requests.push(opts);
    return Promise.resolve(Object.assign(new FakeMessage(), { status: this.requestStatus }));
  }

  /** The far end of this leg sends BYE: drachtio answers 200 and emits 'destroy'. */
  farEndBye(): void {
    this.connected = false;
    this.emit('destroy', new FakeRequest({ method: 'BYE' }), 'normal release');
    this.removeAllListeners();
  }
}

export function sipError(status: number, reason?: string): SipError {
  const e = new Error(`Sip non-success response: ${status}`) as SipError;
  e.name = 'SipError';
  e.status = status;
  if (reason) e.reason = reason;
  return e;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export interface ProxyCallRecord {
  req: DrachtioRequest;
  destination: string | string[];
  opts?: ProxyRequestOptions;
  /** Settle drachtio-server's proxy transaction with this final status. */
  finish(status: number): void;
  fail(err: Error): void;
}

export interface B2buaRecord {
  req: DrachtioRequest;
  res: DrachtioResponse;
  uri: string;
  opts?: B2buaOptions;
  uacReq: FakeUacRequest;
  /** B answered: A answered too, both dialogs exist. */
  answer(): { uac: FakeDialog; uas: FakeDialog };
  /** B failed with status: passed on to A (passFailure), the promise rejects with a SipError. */
  fail(status: number): void;
}

/** Srf with a proto.js-style middleware runner and scripted proxy / B2BUA outcomes. */
export class FakeSrf extends EventEmitter implements Srf {
  readonly stacks = new Map<string, Middleware<never>[]>();
  readonly proxied: ProxyCallRecord[] = [];
  readonly b2buas: B2buaRecord[] = [];
  readonly endedSessions: DrachtioRequest[] = [];
  connectedWith?: ConnectOptions;
  disconnects = 0;

  connect(opts: ConnectOptions): unknown {
    this.connectedWith = opts;
    return undefined;
  }

  listen(_opts: ListenOptions): never {
    throw new Error('FakeSrf.listen: use a real Srf for outbound tests');
  }

  use(method: string, fns: Middleware<never>[] | Middleware<never>): unknown {
    const list = this.stacks.get(method) ?? [];
    list.push(...(Array.isArray(fns) ? fns : [fns]));
    this.stacks.set(method, list);
    return undefined;
  }

  /** Runs a request through the middleware registered for its method, like proto.js handle. */
  handle(req: DrachtioRequest, res: FakeResponse): void {
    const stack = (this.stacks.get(req.method.toLowerCase()) ?? []) as unknown as Middleware[];
    let i = 0;
    const next = (err?: unknown): void => {
      if (err) throw err;
      const layer = stack[i++];
      if (!layer || res.finalResponseSent) {
        if (!layer && !res.finalResponseSent && !err) res.send(404);
        return;
      }
      layer(req, res, next);
    };
    next();
  }

  proxyRequest(req: DrachtioRequest, destination: string | string[], opts?: ProxyRequestOptions): Promise<ProxyResult> {
    const d = deferred<ProxyResult>();
    this.proxied.push({
      req,
      destination,
      opts,
      finish: (status) => d.resolve({ connected: status === 200, finalStatus: status, responses: [] }),
      fail: (err) => d.reject(err),
    });
    return d.promise;
  }

  createB2BUA(req: DrachtioRequest, res: DrachtioResponse, uri: string, opts?: B2buaOptions, callbacks?: B2buaCallbacks): Promise<{ uac: Dialog; uas: Dialog }> {
    const d = deferred<{ uac: Dialog; uas: Dialog }>();
    const uacReq = new FakeUacRequest({ callId: `b-${req.get('Call-ID')}` });
    // drachtio-srf calls cbRequest once the B-leg INVITE has been sent (asynchronously).
    queueMicrotask(() => callbacks?.cbRequest?.(null, uacReq));
    const callId = req.get('Call-ID') ?? '';
    this.b2buas.push({
      req,
      res,
      uri,
      opts,
      uacReq,
      answer: () => {
        const uas = new FakeDialog('uas', callId);
        const uac = new FakeDialog('uac', `b-${callId}`);
        uas.other = uac;
        uac.other = uas;
        res.send(200);
        d.resolve({ uac, uas });
        return { uac, uas };
      },
      fail: (status) => {
        res.send(status);
        d.reject(sipError(status));
      },
    });
    // The caller's CANCEL: drachtio-srf answers 487 and CANCELs the B leg (srf.js handleUACSent).
    (req as FakeRequest).once('cancel', () => {
      req.canceled = true;
      res.send(487);
      d.reject(sipError(487));
    });
    return d.promise;
  }

  disconnect(): void {
    this.disconnects++;
  }

  endSession(req: DrachtioRequest): void {
    this.endedSessions.push(req);
  }
}

/** Lets pending promise callbacks (and queued microtasks) run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
}
