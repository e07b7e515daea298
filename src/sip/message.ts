/**
 * SIP message parsing and serialisation (RFC 3261 §7, §20).
 *
 * Design: the head is decoded as latin1 so that one char is one byte; every header field keeps
 * its original text (folding included) and is written back unchanged unless the proxy edits it,
 * so unknown headers and bodies pass byte-for-byte. Only the start line, the top Via and CSeq
 * are parsed eagerly (they are needed for validation and transaction matching); everything else
 * (tags, URIs, lists) is parsed on demand. Accessors return UTF-8 text; mutators take text.
 */
import { Via, parseVia } from './via';
import { splitCommaSpans, firstSpan, bytesToText, textToBytes, isWs } from './syntax';
import { tryParseNameAddr } from './uri';
import { outBuffer } from './out-buffer';

/** Why a message could not be parsed. `header` names the offending header (or "start-line", "body"). */
export class SipParseError extends Error {
  constructor(
    /** The problem without the header name, e.g. "missing", "method INVITE does not match BYE". */
    readonly detail: string,
    readonly header?: string,
    /** What could be parsed, so the caller can still answer 400 to a request with a usable Via. */
    readonly partial?: SipRequest | SipResponse,
  ) {
    super(header ? `${header}: ${detail}` : detail);
    this.name = 'SipParseError';
  }
}

/** RFC 3261 §7.3.3 compact forms, plus the ones registered later (RFC 3265, 3515, 3892, 4028, 3841). */
const COMPACT: Record<string, string> = {
  v: 'via', f: 'from', t: 'to', i: 'call-id', m: 'contact', l: 'content-length', c: 'content-type',
  k: 'supported', s: 'subject', e: 'content-encoding', o: 'event', r: 'refer-to', u: 'allow-events',
  x: 'session-expires', b: 'referred-by', a: 'accept-contact', j: 'reject-contact', d: 'request-disposition',
  y: 'identity', n: 'identity-info',
};

/**
 * Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1), so one field line may
 * carry several values. Others (Authorization, WWW-Authenticate, Date, ...) contain commas
 * that must not be split.
 */
const LIST_HEADERS = new Set([
  'via', 'route', 'record-route', 'contact', 'allow', 'supported', 'require', 'proxy-require', 'unsupported',
  'accept', 'accept-encoding', 'accept-language', 'content-encoding', 'allow-events', 'path', 'service-route',
  'in-reply-to', 'warning', 'call-info', 'alert-info', 'error-info', 'p-asserted-identity',
  'p-preferred-identity', 'reason', 'history-info', 'accept-contact', 'reject-contact', 'request-disposition',
]);

/** Canonical lower-case full name of a header name (compact forms expanded). */
export function headerKey(name: string): string {
  const lower = name.toLowerCase();
  if (lower.length === 1) return COMPACT[lower] ?? lower;
  return lower;
}

/**
 * Header names as SIP stacks usually spell them, with their keys: one Map lookup instead of the
 * token check and the lower-cased copy of headerKey() for each field (~12 a message on the
 * proxy's hot path). Names spelled otherwise take the general path.
 */
const COMMON_KEYS = new Map<string, string>();
for (const name of [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Type', 'Content-Length', 'Record-Route',
  'Route', 'Subject', 'User-Agent', 'Server', 'Allow', 'Supported', 'Require', 'Expires', 'Accept', 'Date', 'Reason',
  'Authorization', 'Proxy-Authorization', 'P-Asserted-Identity', 'Session-Expires', 'Min-SE', 'Allow-Events',
  'Content-Disposition', 'Privacy', 'Diversion', 'Remote-Party-ID', 'Call-Id', 'Cseq', 'Record-route', 'Max-forwards',
  'Content-type', 'Content-length', 'User-agent', 'v', 'f', 't', 'i', 'm', 'l', 'c', 'k', 's',
]) {
  COMMON_KEYS.set(name, headerKey(name));
}

/**
 * The usual spelling of the most frequent names, by length and first and last character: the
 * parser recognises these by comparing characters in place, without cutting the name out and
 * hashing it for COMMON_KEYS (that lookup was ~40 % of the parse). One name a slot; the others
 * fall back to COMMON_KEYS.
 */
const COMMON_BY_SHAPE: Array<{ name: string; key: string; bytes: Uint8Array } | undefined> = new Array(256);
function commonSlot(len: number, first: number, last: number): number {
  return (len * 7 + first * 3 + last) & 255;
}
for (const name of [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Type', 'Content-Length', 'Record-Route',
  'Route', 'Subject', 'User-Agent', 'Allow', 'Supported',
]) {
  const slot = commonSlot(name.length, name.charCodeAt(0), name.charCodeAt(name.length - 1));
  COMMON_BY_SHAPE[slot] ??= { name, key: headerKey(name), bytes: Buffer.from(name, 'latin1') };
}

/**
 * Whether buf holds `bytes` at `at`. Compared on the received bytes: reading a Uint8Array is about
 * twice as fast as charCodeAt() on the head string, and the builtin startsWith(s, at) is not
 * inlined at all.
 */
function sameBytes(buf: Buffer, at: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[at + i] !== bytes[i]) return false;
  return true;
}

export interface HeaderField {
  /** Name as written (byte string). */
  name: string;
  /** Canonical lower-case full name. */
  key: string;
  /** Value, unfolded and trimmed (byte string). */
  value: string;
  /** Original field text when untouched (byte string, may contain folding CRLFs). */
  raw?: string;
  /**
   * Byte offset of `raw` in the received message, set by the parser for single-line fields; lets
   * toBuffer() copy untouched fields straight from the received bytes. Only read while `raw` is
   * set, and every edit clears `raw`.
   */
  at?: number;
}

export interface CSeq {
  seq: number;
  method: string;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

abstract class SipMessageBase {
  /** The bytes as received. Never modified; serialise with toBuffer() to get edits. */
  readonly raw: Buffer;
  /** Body bytes (a view into raw). */
  body: Buffer;
  /** @internal header fields in order */
  fields: HeaderField[];
  /** @internal eagerly parsed CSeq (undefined only in partial messages) */
  _cseq?: CSeq;
  /** @internal eagerly parsed top Via (undefined only in partial messages) */
  _topVia?: Via;
  private _toTag?: string | null;
  private _fromTag?: string | null;
  protected startLineChanged = false;
  private changed = false;

  constructor(raw: Buffer, fields: HeaderField[], body: Buffer) {
    this.raw = raw;
    this.fields = fields;
    this.body = body;
  }

  abstract readonly isRequest: boolean;
  protected abstract startLine(): string;

  /** First value of a header (name case-insensitive, compact forms understood), UTF-8 text. */
  header(name: string): string | undefined {
    const key = headerKey(name);
    for (const f of this.fields) if (f.key === key) return bytesToText(f.value);
    return undefined;
  }

  /** All values; list headers (Via, Route, Contact, ...) are split at their commas. */
  headers(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    const isList = LIST_HEADERS.has(key);
    for (const f of this.fields) {
      if (f.key !== key) continue;
      if (isList) {
        for (const sp of splitCommaSpans(f.value)) out.push(bytesToText(f.value.slice(sp.start, sp.end)));
      } else out.push(bytesToText(f.value));
    }
    return out;
  }

  has(name: string): boolean {
    const key = headerKey(name);
    return this.fields.some((f) => f.key === key);
  }

  /** First element of a list header (e.g. the topmost Route), without splitting the rest. */
  firstValue(name: string): string | undefined {
    const key = headerKey(name);
    for (const f of this.fields) {
      if (f.key !== key) continue;
      const first = firstSpan(f.value);
      if (first === undefined) continue;
      return bytesToText(f.value.slice(first.start, first.end));
    }
    return undefined;
  }

  get callId(): string {
    // Read several times a message (transaction, policy, dialog tables): found and decoded once.
    if (this._callId === undefined) this._callId = this.header('call-id') ?? '';
    return this._callId;
  }

  private _callId?: string;

  get cseq(): CSeq {
    return this._cseq ?? { seq: 0, method: '' };
  }

  /** The topmost Via value, parsed. */
  get topVia(): Via {
    const v = this.topViaOrUndefined;
    if (!v) throw new SipParseError('no usable Via', 'Via');
    return v;
  }

  /** Top Via when it parsed, else undefined (for partial messages). */
  get topViaOrUndefined(): Via | undefined {
    if (this.viaDirty) {
      this.viaDirty = false;
      this._topVia = undefined;
      this.reparseTopVia();
    }
    return this._topVia;
  }

  /** Via edited since _topVia was parsed; re-parse on the next read (edits are frequent, reads rare). */
  private viaDirty = false;

  get toTag(): string | undefined {
    if (this._toTag === undefined) this._toTag = tagOf(this.header('to'));
    return this._toTag ?? undefined;
  }

  get fromTag(): string | undefined {
    if (this._fromTag === undefined) this._fromTag = tagOf(this.header('from'));
    return this._fromTag ?? undefined;
  }

  /** The field lines of a header as they would be written (byte strings), e.g. to copy them into a generated message. */
  fieldLines(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    for (const f of this.fields) if (f.key === key) out.push(f.raw ?? `${f.name}: ${f.value}`);
    return out;
  }

  /** True once any edit was made (toBuffer() then re-serialises the head). */
  get modified(): boolean {
    return this.changed || this.startLineChanged;
  }

  // ---- mutation (proxy edits). Values are text; names as the caller wants them written. ----

  /** Replaces every field of this header by one (at the first one's position), or appends it. */
  setHeader(name: string, value: string): void {
    const key = headerKey(name);
    const v = textToBytes(value);
    // In place (Max-Forwards is set on every forwarded request): no filtered copy of the list.
    const fields = this.fields;
    let done = false;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      if (f.key !== key) continue;
      if (done) {
        fields.splice(i, 1);
        i--;
        continue;
      }
      f.value = v;
      f.raw = undefined;
      done = true;
    }
    if (!done) fields.push({ name, key, value: v });
    this.touched(key);
  }

  removeHeader(name: string): void {
    const key = headerKey(name);
    this.fields = this.fields.filter((f) => f.key !== key);
    this.touched(key);
  }

  /** Inserts a field above the first field of the same header, or at the top of the head. */
  prependHeader(name: string, value: string): void {
    const key = headerKey(name);
    const field: HeaderField = { name, key, value: textToBytes(value) };
    const idx = this.fields.findIndex((f) => f.key === key);
    this.fields.splice(idx < 0 ? 0 : idx, 0, field);
    this.touched(key);
  }

  /** Appends a field at the end of the head. */
  appendHeader(name: string, value: string): void {
    const key = headerKey(name);
    this.fields.push({ name, key, value: textToBytes(value) });
    this.touched(key);
  }

  /**
   * Removes the first element of a list header. When one field line holds several values
   * ("Via: a, b" as sipp writes them) only the first is cut, the rest is kept as written.
   * Returns the removed value.
   */
  removeFirstValue(name: string): string | undefined {
    const key = headerKey(name);
    for (let i = 0; i < this.fields.length; i++) {
      const f = this.fields[i];
      if (f.key !== key) continue;
      if (f.value.indexOf(',') < 0) {
        // One element (the usual case): the field goes, no span list needed.
        const first = firstSpan(f.value);
        this.fields.splice(i, 1);
        if (first === undefined) {
          i--;
          continue;
        }
        this.touched(key);
        return bytesToText(f.value.slice(first.start, first.end));
      }
      const spans = splitCommaSpans(f.value);
      if (spans.length === 0) {
        this.fields.splice(i, 1);
        i--;
        continue;
      }
      const removed = f.value.slice(spans[0].start, spans[0].end);
      if (spans.length === 1) this.fields.splice(i, 1);
      else {
        f.value = f.value.slice(spans[1].start);
        f.raw = undefined;
      }
      this.touched(key);
      return bytesToText(removed);
    }
    return undefined;
  }

  /** Removes the last element of a list header (strict-router handling, §16.4). Returns it. */
  removeLastValue(name: string): string | undefined {
    const key = headerKey(name);
    for (let i = this.fields.length - 1; i >= 0; i--) {
      const f = this.fields[i];
      if (f.key !== key) continue;
      const spans = splitCommaSpans(f.value);
      if (spans.length === 0) {
        this.fields.splice(i, 1);
        continue;
      }
      const last = spans[spans.length - 1];
      const removed = f.value.slice(last.start, last.end);
      if (spans.length === 1) this.fields.splice(i, 1);
      else {
        f.value = f.value.slice(0, spans[spans.length - 2].end);
        f.raw = undefined;
      }
      this.touched(key);
      return bytesToText(removed);
    }
    return undefined;
  }

  /** Replaces the first element of a list header (e.g. the sender's Via after stamping received=). */
  replaceFirstValue(name: string, value: string): void {
    const key = headerKey(name);
    for (const f of this.fields) {
      if (f.key !== key) continue;
      const first = firstSpan(f.value);
      if (first === undefined) continue;
      f.value = f.value.slice(0, first.start) + textToBytes(value) + f.value.slice(first.end);
      f.raw = undefined;
      this.touched(key);
      return;
    }
  }

  protected touched(key: string): void {
    this.changed = true;
    if (key === 'via') this.viaDirty = true;
    else if (key === 'to') this._toTag = undefined;
    else if (key === 'from') this._fromTag = undefined;
    else if (key === 'call-id') this._callId = undefined;
  }

  private reparseTopVia(): void {
    const first = this.fields.find((f) => f.key === 'via');
    if (!first) return;
    const span = firstSpan(first.value);
    if (span === undefined) return;
    const v = parseVia(first.value.slice(span.start, span.end));
    if (typeof v !== 'string') this._topVia = v;
  }

  /**
   * Serialises. Untouched messages return the received bytes; otherwise the head is rebuilt from
   * the fields (untouched fields verbatim) and the body appended unchanged. Content-Length is
   * added when missing (it is mandatory on stream transports, RFC 3261 §18.3).
   */
  toBuffer(): Buffer {
    if (!this.modified && this.hasContentLength() && this.raw.length === this.headLength + this.body.length) {
      return this.raw;
    }
    // Every string here is a latin1 byte string, so its length is its size in bytes. Runs of
    // untouched fields that were contiguous CRLF-terminated lines in the received message are
    // copied from it in one go; only edited or added fields are written from their text. This
    // replaced building the whole head as one string (six times a call, ~7 KB of garbage a call
    // in the allocation profile of bench/proxy-cpu.ts) and encoding it again.
    const raw = this.raw;
    const fields = this.fields;
    const startLine = this.startLine();
    let size = startLine.length + 2;
    let hasCl = false;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      size += (f.raw !== undefined ? f.raw.length : f.name.length + 2 + f.value.length) + 2;
      if (f.key === 'content-length') hasCl = true;
    }
    const cl = hasCl ? '' : `Content-Length: ${this.body.length}\r\n`;
    size += cl.length + 2 + this.body.length;
    const out = outBuffer(size);
    let pos = out.write(startLine, 0, 'latin1');
    out[pos++] = 13;
    out[pos++] = 10;
    for (let i = 0; i < fields.length; ) {
      const f = fields[i];
      if (f.raw === undefined || f.at === undefined) {
        pos += out.write(f.raw ?? `${f.name}: ${f.value}`, pos, 'latin1');
        out[pos++] = 13;
        out[pos++] = 10;
        i++;
        continue;
      }
      // Extend the run while the next field starts right after this one's CRLF in raw.
      const from = f.at;
      let end = f.at + f.raw.length;
      i++;
      while (i < fields.length) {
        const g = fields[i];
        if (g.raw === undefined || g.at !== end + 2 || raw[end] !== 13 || raw[end + 1] !== 10) break;
        end = g.at + g.raw.length;
        i++;
      }
      pos += raw.copy(out, pos, from, end);
      out[pos++] = 13;
      out[pos++] = 10;
    }
    if (cl) pos += out.write(cl, pos, 'latin1');
    out[pos++] = 13;
    out[pos++] = 10;
    this.body.copy(out, pos);
    return out;
  }

  toString(): string {
    return this.toBuffer().toString('utf8');
  }

  /** @internal length of the received head including the blank line */
  headLength = 0;

  private hasContentLength(): boolean {
    return this.fields.some((f) => f.key === 'content-length');
  }
}

export class SipRequest extends SipMessageBase {
  readonly isRequest = true;
  readonly method: string;
  private _uri: string;
  private readonly rawStartLine: string;

  constructor(raw: Buffer, startLine: string, method: string, uri: string, fields: HeaderField[], body: Buffer) {
    super(raw, fields, body);
    this.rawStartLine = startLine;
    this.method = method;
    this._uri = uri;
  }

  /** The Request-URI as written. */
  get uri(): string {
    return bytesToText(this._uri);
  }

  /** Replaces the Request-URI (strict-router handling, RFC 3261 §16.4). */
  setUri(uri: string): void {
    this._uri = textToBytes(uri);
    this.startLineChanged = true;
  }

  protected startLine(): string {
    return this.startLineChanged ? `${this.method} ${this._uri} SIP/2.0` : this.rawStartLine;
  }
}

export class SipResponse extends SipMessageBase {
  readonly isRequest = false;
  readonly status: number;
  readonly reason: string;
  private readonly rawStartLine: string;

  constructor(raw: Buffer, startLine: string, status: number, reason: string, fields: HeaderField[], body: Buffer) {
    super(raw, fields, body);
    this.rawStartLine = startLine;
    this.status = status;
    this.reason = bytesToText(reason);
  }

  protected startLine(): string {
    return this.rawStartLine;
  }
}

export type SipMessage = SipRequest | SipResponse;

export interface ParseOptions {
  /**
   * The bytes were framed by a stream transport (TCP/TLS): Content-Length must be present and is
   * exact. For datagrams a missing Content-Length means "rest of the packet" and extra bytes
   * past it are discarded (RFC 3261 §18.3).
   */
  stream?: boolean;
}

function tagOf(value: string | undefined): string | null {
  if (value === undefined) return null;
  // Fast path: most From/To values carry ";tag=" once, after the '>' of the URI.
  const na = tryParseNameAddr(value);
  const tag = na?.params.tag;
  return tag ? tag : null;
}

function isTokenChar(c: number): boolean {
  // RFC 3261 §25.1 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~"
  return (
    (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c === 0x2d || c === 0x2e || c === 0x21 || c === 0x25 || c === 0x2a || c === 0x5f || c === 0x2b ||
    c === 0x60 || c === 0x27 || c === 0x7e
  );
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The value of a non-empty all-digit string (at most 10 digits), else -1. Replaces /^[0-9]+$/ + Number(). */
function digitsValue(s: string): number {
  if (s.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/**
 * CSeq value (§20.16: 1*DIGIT LWS Method), as /^([0-9]{1,10})[ \t]+(token)$/ did, without the
 * match array. `requestMethod` is reused as the method string when they are equal.
 */
function parseCSeq(v: string, requestMethod: string): CSeq | undefined {
  let i = 0;
  while (i < v.length && isDigit(v.charCodeAt(i))) i++;
  if (i === 0 || i > 10) return undefined;
  const seq = digitsValue(v.slice(0, i));
  if (seq > 0xffffffff) return undefined;
  let j = i;
  while (j < v.length && (v.charCodeAt(j) === 0x20 || v.charCodeAt(j) === 0x09)) j++;
  if (j === i || j === v.length) return undefined;
  for (let k = j; k < v.length; k++) if (!isTokenChar(v.charCodeAt(k))) return undefined;
  const method = v.length - j === requestMethod.length && v.endsWith(requestMethod) ? requestMethod : v.slice(j);
  return { seq, method };
}

/** Parses one SIP message. Throws SipParseError (with `partial` when the head was readable). */
export function parseMessage(buf: Buffer, opts: ParseOptions = {}): SipMessage {
  // §7.5: CRLFs before the start line are ignored.
  let start = 0;
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start >= buf.length) throw new SipParseError('empty message');

  let headEnd = buf.indexOf(CRLFCRLF, start);
  let sepLen = 4;
  if (headEnd < 0) {
    headEnd = buf.indexOf(LFLF, start);
    sepLen = 2;
  }
  let missingBlankLine = false;
  if (headEnd < 0) {
    missingBlankLine = true;
    headEnd = buf.length;
    sepLen = 0;
  }
  const head = buf.toString('latin1', start, headEnd);
  // Lines are cut out of head one at a time (no split() array, one slice a line, CR excluded).
  const headLen = head.length;
  let lineEnd = head.indexOf('\n');
  if (lineEnd < 0) lineEnd = headLen;
  const startLine = head.slice(0, lineEnd > 0 && head.charCodeAt(lineEnd - 1) === 0x0d ? lineEnd - 1 : lineEnd);

  // Start line (§7.1, §7.2).
  let kind: 'req' | 'res' | 'bad' = 'bad';
  let method = '';
  let uri = '';
  let status = 0;
  let reason = '';
  let startError = '';
  if (startLine.startsWith('SIP/2.0 ')) {
    const sp = startLine.indexOf(' ', 8);
    const code = sp < 0 ? startLine.slice(8) : startLine.slice(8, sp);
    if (code.length === 3 && code >= '100' && code <= '699' && isDigit(code.charCodeAt(1)) && isDigit(code.charCodeAt(2))) {
      kind = 'res';
      status = Number(code);
      reason = sp < 0 ? '' : startLine.slice(sp + 1);
    } else startError = 'bad status code';
  } else {
    const sp1 = startLine.indexOf(' ');
    const sp2 = sp1 < 0 ? -1 : startLine.indexOf(' ', sp1 + 1);
    if (sp1 > 0 && sp2 > sp1 + 1 && startLine.indexOf(' ', sp2 + 1) < 0) {
      method = startLine.slice(0, sp1);
      uri = startLine.slice(sp1 + 1, sp2);
      const version = startLine.slice(sp2 + 1);
      let okMethod = true;
      for (let i = 0; i < method.length; i++) if (!isTokenChar(method.charCodeAt(i))) okMethod = false;
      if (!okMethod) startError = 'bad method';
      else if (version !== 'SIP/2.0' && version.toUpperCase() !== 'SIP/2.0') startError = `unsupported version "${version.slice(0, 20)}"`;
      else if (uri.indexOf(':') <= 0) startError = 'bad Request-URI';
      else kind = 'req';
    } else startError = 'bad request line';
  }

  // Header fields (§7.3), with line folding (§7.3.1). Name, value and raw text are cut out of
  // head by offset (no per-line string), and the fields the parser checks are noted on the way.
  const fields: HeaderField[] = [];
  let headerError: SipParseError | undefined;
  let viaField: HeaderField | undefined;
  let cseqField: HeaderField | undefined;
  let clField: HeaderField | undefined;
  let fromField: HeaderField | undefined;
  let toField: HeaderField | undefined;
  let callIdField: HeaderField | undefined;
  let mfField: HeaderField | undefined;
  let nextColon = -1;
  for (let lineStart = lineEnd + 1; lineStart <= headLen; ) {
    let next = head.indexOf('\n', lineStart);
    if (next < 0) next = headLen;
    const cut = next > lineStart && head.charCodeAt(next - 1) === 0x0d ? next - 1 : next;
    const ls = lineStart;
    lineStart = next + 1;
    if (cut === ls) continue;
    const c0 = head.charCodeAt(ls);
    if (c0 === 0x20 || c0 === 0x09) {
      const line = head.slice(ls, cut);
      const prev = fields[fields.length - 1];
      if (!prev) {
        headerError ??= new SipParseError('continuation line before any header', 'header');
        continue;
      }
      prev.at = undefined; // folded: raw no longer matches one range of the received bytes
      prev.raw = (prev.raw ?? '') + '\r\n' + line;
      prev.value = (prev.value + ' ' + line.trim()).trim();
      continue;
    }
    // Native indexOf (a JS char loop costs several times more a char), but never over the same
    // text twice: a colon found past this line is kept for the lines before it, so a message of
    // many colon-less lines stays linear.
    if (nextColon < ls) {
      nextColon = head.indexOf(':', ls);
      if (nextColon < 0) nextColon = headLen;
    }
    const colon = nextColon < cut ? nextColon : cut;
    if (colon === cut || colon === ls) {
      headerError ??= new SipParseError(`malformed header line "${bytesToText(head.slice(ls, Math.min(cut, ls + 40)))}"`, 'header');
      continue;
    }
    let nameEnd = colon;
    while (nameEnd > ls && isWs(head.charCodeAt(nameEnd - 1))) nameEnd--;
    let name: string;
    let key: string | undefined;
    const common = COMMON_BY_SHAPE[commonSlot(nameEnd - ls, head.charCodeAt(ls), head.charCodeAt(nameEnd - 1))];
    if (common !== undefined && common.name.length === nameEnd - ls && sameBytes(buf, start + ls, common.bytes)) {
      name = common.name;
      key = common.key;
    } else {
      name = head.slice(ls, nameEnd);
      key = COMMON_KEYS.get(name);
    }
    if (key === undefined) {
      let bad = false;
      for (let i = 0; i < name.length; i++) if (!isTokenChar(name.charCodeAt(i))) bad = true;
      if (bad || name.length === 0) {
        headerError ??= new SipParseError(`bad header name "${bytesToText(name.slice(0, 40))}"`, 'header');
        continue;
      }
      key = headerKey(name);
    }
    let v0 = colon + 1;
    let v1 = cut;
    while (v0 < v1 && isWs(head.charCodeAt(v0))) v0++;
    while (v1 > v0 && isWs(head.charCodeAt(v1 - 1))) v1--;
    const field: HeaderField = { name, key, value: head.slice(v0, v1), raw: head.slice(ls, cut), at: start + ls };
    fields.push(field);
    switch (key) {
      case 'via': viaField ??= field; break;
      case 'cseq': cseqField ??= field; break;
      case 'content-length': clField ??= field; break;
      case 'from': fromField ??= field; break;
      case 'to': toField ??= field; break;
      case 'call-id': callIdField ??= field; break;
      case 'max-forwards': mfField ??= field; break;
    }
  }

  // Body and Content-Length (§18.3, §20.14).
  const bodyStart = Math.min(headEnd + sepLen, buf.length);
  let body = buf.subarray(bodyStart);
  let clError: SipParseError | undefined;
  if (clField) {
    const v = clField.value;
    const cl = v.length <= 9 ? digitsValue(v) : -1;
    if (cl < 0) clError = new SipParseError(`invalid value "${bytesToText(v.slice(0, 20))}"`, 'Content-Length');
    else {
      if (cl > body.length) clError = new SipParseError(`says ${cl} bytes, body has ${body.length}`, 'Content-Length');
      else if (cl < body.length) body = body.subarray(0, cl);
    }
  } else if (opts.stream) {
    clError = new SipParseError('missing (required on stream transports)', 'Content-Length');
  }

  let msg: SipMessage;
  if (kind === 'res') msg = new SipResponse(buf, startLine, status, reason, fields, body);
  else msg = new SipRequest(buf, startLine, method || 'UNKNOWN', uri, fields, body);
  msg.headLength = bodyStart;
  const partialOk = kind !== 'bad' || !startLine.startsWith('SIP/');

  // Top Via first: without it nothing can be answered.
  let viaError: SipParseError | undefined;
  if (!viaField) viaError = new SipParseError('missing', 'Via');
  else {
    const span = firstSpan(viaField.value);
    const v = span !== undefined ? parseVia(viaField.value.slice(span.start, span.end)) : 'empty';
    if (typeof v === 'string') viaError = new SipParseError(v, 'Via');
    else msg._topVia = v;
  }

  // CSeq (§20.16) is needed for responses built from a partial request, so parse it before failing.
  let cseqError: SipParseError | undefined;
  if (!cseqField) cseqError = new SipParseError('missing', 'CSeq');
  else {
    const c = parseCSeq(cseqField.value, method);
    if (c === undefined) cseqError = new SipParseError(`invalid value "${bytesToText(cseqField.value.slice(0, 30))}"`, 'CSeq');
    else {
      msg._cseq = c;
      if (kind === 'req' && c.method !== method) cseqError = new SipParseError(`method ${c.method} does not match ${method}`, 'CSeq');
    }
  }

  const fail = (e: SipParseError): never => {
    throw new SipParseError(e.detail, e.header, partialOk ? msg : undefined);
  };
  if (kind === 'bad') fail(new SipParseError(startError, 'start-line'));
  if (missingBlankLine) fail(new SipParseError('no empty line after the headers', 'header'));
  if (headerError) fail(headerError);
  if (viaError) fail(viaError);
  if (!fromField || fromField.value.length === 0) fail(new SipParseError('missing', 'From'));
  if (!toField || toField.value.length === 0) fail(new SipParseError('missing', 'To'));
  if (!callIdField || callIdField.value.length === 0) fail(new SipParseError('missing', 'Call-ID'));
  if (cseqError) fail(cseqError);
  if (clError) fail(clError);
  if (mfField && (mfField.value.length > 3 || digitsValue(mfField.value) < 0)) {
    fail(new SipParseError(`invalid value "${bytesToText(mfField.value.slice(0, 20))}"`, 'Max-Forwards'));
  }
  return msg;
}

export function isRequest(m: SipMessage): m is SipRequest {
  return m.isRequest;
}
