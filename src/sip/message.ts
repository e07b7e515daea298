/**
 * SIP message parsing and serialisation (RFC 3261 §7, §20).
 *
 * Design: a message is a latin1 string (one char per byte, so any bytes pass unchanged) from the
 * socket to the socket: the proxy keeps requests and responses for their transactions, and a
 * string costs the garbage collector far less than a Buffer, each of which is an ArrayBuffer of
 * its own (~95 ns against ~930 ns to take a datagram in, measured). The parser records where each
 * header field lies (a row of offsets in one array) instead of cutting names and values out: a
 * proxy reads a handful of the dozen or so fields of a message and forwards the rest untouched,
 * so strings are made only for the fields that are read, when they are read. Unknown headers and
 * bodies pass byte-for-byte; an edit (the proxy's Via, Max-Forwards, Route, Record-Route) marks
 * one row as replaced, deleted or inserted, and toText() reuses every untouched run of lines of
 * the received text. Only the start line, the top Via and CSeq are parsed eagerly (needed for
 * validation and transaction matching); tags, URIs and lists are parsed on demand. Accessors
 * return UTF-8 text; mutators take text.
 */
import { Via, parseVia } from './via';
import { splitCommaSpans, firstSpan, bytesToText, textToBytes, isWs, latin1Slice, own } from './syntax';
import { tryParseNameAddr } from './uri';

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
 * Header keys the parser recognises get a small number (the row's key id), so finding a header
 * is an integer compare per row. Any other name is OTHER and compared by its lower-cased name,
 * which is computed only when such a header is asked for (names come from the network: they
 * never enter a table here).
 */
const OTHER = 0;
const KEY_NAMES = [
  '',
  'via', 'from', 'to', 'call-id', 'cseq', 'contact', 'max-forwards', 'content-type', 'content-length', 'record-route',
  'route', 'subject', 'user-agent', 'server', 'allow', 'supported', 'require', 'expires', 'accept', 'date', 'reason',
  'authorization', 'proxy-authorization', 'p-asserted-identity', 'p-preferred-identity', 'session-expires', 'min-se',
  'allow-events', 'content-disposition', 'content-encoding', 'privacy', 'diversion', 'remote-party-id', 'event',
  'refer-to', 'referred-by', 'accept-contact', 'reject-contact', 'request-disposition', 'identity', 'identity-info',
  'proxy-require', 'unsupported', 'accept-encoding', 'accept-language', 'path', 'service-route', 'in-reply-to',
  'warning', 'call-info', 'alert-info', 'error-info', 'history-info', 'www-authenticate', 'proxy-authenticate',
  'retry-after', 'rseq', 'rack', 'x-reason',
];
const KEY_IDS = new Map<string, number>(KEY_NAMES.map((k, i) => [k, i]));
const K_VIA = 1;
const K_FROM = 2;
const K_TO = 3;
const K_CALL_ID = 4;
const K_CSEQ = 5;
const K_MAX_FORWARDS = 7;
const K_CONTENT_LENGTH = 9;

/** Key id of a header name as an API caller writes it ('Max-Forwards', 'max-forwards', 'i'). */
const QUERY_IDS = new Map<string, number>();
function keyIdOf(name: string): number {
  const known = QUERY_IDS.get(name);
  if (known !== undefined) return known;
  const id = KEY_IDS.get(headerKey(name)) ?? OTHER;
  // Callers ask with a few constant spellings; only those of known keys are remembered.
  if (id !== OTHER && QUERY_IDS.size < 1024) QUERY_IDS.set(name, id);
  return id;
}

/**
 * Header names as SIP stacks usually spell them, with their key ids: one Map lookup instead of
 * the token check and the lower-cased copy of headerKey() for each field. Names spelled
 * otherwise take the general path.
 */
const COMMON_IDS = new Map<string, number>();
for (const name of [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Type', 'Content-Length', 'Record-Route',
  'Route', 'Subject', 'User-Agent', 'Server', 'Allow', 'Supported', 'Require', 'Expires', 'Accept', 'Date', 'Reason',
  'Authorization', 'Proxy-Authorization', 'P-Asserted-Identity', 'Session-Expires', 'Min-SE', 'Allow-Events',
  'Content-Disposition', 'Privacy', 'Diversion', 'Remote-Party-ID', 'Call-Id', 'Cseq', 'Record-route', 'Max-forwards',
  'Content-type', 'Content-length', 'User-agent', 'v', 'f', 't', 'i', 'm', 'l', 'c', 'k', 's',
]) {
  COMMON_IDS.set(name, KEY_IDS.get(headerKey(name)) ?? OTHER);
}

/**
 * The usual spelling of the most frequent names, by length and first and last character: the
 * parser recognises these by comparing bytes in place, without cutting the name out and hashing
 * it for COMMON_IDS. One name a slot; the others fall back to COMMON_IDS.
 */
const COMMON_BY_SHAPE: Array<{ id: number; name: string } | undefined> = new Array(256);
function commonSlot(len: number, first: number, last: number): number {
  return (len * 7 + first * 3 + last) & 255;
}
for (const name of [
  'Via', 'From', 'To', 'Call-ID', 'CSeq', 'Contact', 'Max-Forwards', 'Content-Type', 'Content-Length', 'Record-Route',
  'Route', 'Subject', 'User-Agent', 'Allow', 'Supported',
]) {
  const slot = commonSlot(name.length, name.charCodeAt(0), name.charCodeAt(name.length - 1));
  COMMON_BY_SHAPE[slot] ??= { id: KEY_IDS.get(headerKey(name))!, name };
}

/** Whether s holds `name` at `at`. */
function sameText(s: string, at: number, name: string): boolean {
  for (let i = 0; i < name.length; i++) if (s.charCodeAt(at + i) !== name.charCodeAt(i)) return false;
  return true;
}

/** A header field as the `fields` snapshot shows it (tests and diagnostics). */
export interface HeaderField {
  /** Name as written (byte string). */
  name: string;
  /** Canonical lower-case full name. */
  key: string;
  /** Value, unfolded and trimmed (byte string). */
  value: string;
  /** Original field text when untouched (byte string, CRLF between folded lines). */
  raw?: string;
}

export interface CSeq {
  seq: number;
  method: string;
}

// One row of the field table per header field (W numbers in `rows`): offsets into the text, the key id
// and flags. Inserted rows have no offsets; their name and value live in `names` / `vals`.
const W = 8;
const LS = 0; // line start
const NE = 1; // name end (before any whitespace and the colon)
const VS = 2; // value start (trimmed)
const VE = 3; // value end (trimmed; for folded fields, of the first line)
const LE = 4; // line end, before its CR LF (for folded fields, of the last continuation line)
const KEY = 5;
const FL = 6;
const NX = 7; // next row in document order, -1 after the last (inserted rows are linked in)
/** The field continues on further lines (§7.3.1): its value is unfolded on demand. */
const FOLDED = 1;
/** The value was replaced: the new text is in `vals`, the line is written as "name: value". */
const EDITED = 2;
const DELETED = 4;
/** Added by an edit: name and value in `names` / `vals`. */
const INSERTED = 8;


/**
 * Rows are written here while parsing, then copied out at their exact size (one allocation). A
 * plain array of small integers: a typed array's creation (an ArrayBuffer each) cost a quarter
 * of the parse.
 */
const rowScratch: number[] = new Array<number>(64 * W).fill(0);

abstract class SipMessageBase {
  /** The message as received, as a latin1 byte string. Never modified; toText() gives the edited message. */
  readonly raw: string;
  /** The body (latin1 byte string). */
  body: string;
  /** @internal the field table (W ints a row) */
  private rows: number[];
  /** @internal rows in use */
  private count: number;
  /** @internal first row in document order (-1: no fields) */
  private first: number;
  /** @internal replaced or inserted values, unfolded values, by row (allocated on first need) */
  private vals: Array<string | undefined> | null = null;
  /** @internal names of inserted rows */
  private names: Array<string | undefined> | null = null;
  /** @internal eagerly parsed CSeq (undefined only in partial messages) */
  _cseq?: CSeq;
  /** @internal eagerly parsed top Via (undefined only in partial messages) */
  _topVia?: Via;
  private _toTag?: string | null;
  private _fromTag?: string | null;
  private _callId?: string;
  protected startLineChanged = false;
  private changed = false;
  /** Via edited since _topVia was parsed; re-parse on the next read (edits are frequent, reads rare). */
  private viaDirty = false;
  /** @internal length of the received head including the blank line */
  headLength = 0;

  constructor(raw: string, rows: number[], count: number, body: string) {
    this.raw = raw;
    this.rows = rows;
    this.count = count;
    this.first = count > 0 ? 0 : -1;
    this.body = body;
  }

  abstract readonly isRequest: boolean;
  protected abstract startLine(): string;

  // ---- the field table ----

  private flags(r: number): number {
    return this.rows[r * W + FL];
  }

  /** Whether row r holds header `id` (for OTHER, the lower-cased `key`). */
  private isKey(r: number, id: number, key: string): boolean {
    const t = this.rows;
    if (t[r * W + FL] & DELETED) return false;
    const rid = t[r * W + KEY];
    if (rid !== id) return false;
    return id !== OTHER || this.keyOfRow(r) === key;
  }

  /** Canonical key of a row. */
  private keyOfRow(r: number): string {
    const id = this.rows[r * W + KEY];
    if (id !== OTHER) return KEY_NAMES[id];
    return headerKey(this.nameOfRow(r));
  }

  /** The name as written (byte string). */
  private nameOfRow(r: number): string {
    const o = r * W;
    if (this.rows[o + FL] & INSERTED) return this.names![r]!;
    return this.raw.slice(this.rows[o + LS], this.rows[o + NE]);
  }

  /** @internal The value of row r, unfolded and trimmed (byte string). */
  _value(r: number): string {
    const t = this.rows;
    const o = r * W;
    const fl = t[o + FL];
    if (fl & (EDITED | INSERTED | FOLDED)) {
      const v = this.vals?.[r];
      if (v !== undefined) return v;
      // Folded (§7.3.1): continuation lines join the value with one space each.
      let value = this.raw.slice(t[o + VS], t[o + VE]);
      for (const line of this.raw.slice(t[o + VE], t[o + LE]).split('\n').slice(1)) {
        value = (value + ' ' + line.trim()).trim();
      }
      (this.vals ??= [])[r] = value;
      return value;
    }
    return this.raw.slice(t[o + VS], t[o + VE]);
  }

  /** The field as it would be written, without its line end (byte string). */
  private lineOfRow(r: number): string {
    const t = this.rows;
    const o = r * W;
    const fl = t[o + FL];
    if (fl & (EDITED | INSERTED)) return `${this.nameOfRow(r)}: ${this.vals![r]}`;
    const line = this.raw.slice(t[o + LS], t[o + LE]);
    // A folded field keeps its line breaks, written as CRLF.
    if (fl & FOLDED) return line.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)).join('\r\n');
    return line;
  }

  /** First row (document order) of a header, or -1. */
  private firstRow(id: number, key: string): number {
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) if (this.isKey(r, id, key)) return r;
    return -1;
  }

  private setValue(r: number, value: string): void {
    this.rows[r * W + FL] = (this.rows[r * W + FL] & ~FOLDED) | EDITED;
    (this.vals ??= [])[r] = value;
  }

  private deleteRow(r: number): void {
    this.rows[r * W + FL] |= DELETED;
  }

  /** Adds a row for a new field and links it in before row `before` (-1: at the end). */
  private insertRow(before: number, name: string, id: number, value: string): void {
    const t = this.rows;
    const r = this.count++;
    const o = r * W;
    for (let i = 0; i < W; i++) t[o + i] = 0;
    t[o + KEY] = id;
    t[o + FL] = INSERTED;
    t[o + NX] = before;
    (this.names ??= [])[r] = name;
    (this.vals ??= [])[r] = value;
    if (this.first === before) {
      this.first = r;
      return;
    }
    let p = this.first;
    while (t[p * W + NX] !== before) p = t[p * W + NX];
    t[p * W + NX] = r;
  }

  // ---- reading ----

  /** First value of a header (name case-insensitive, compact forms understood), UTF-8 text. */
  header(name: string): string | undefined {
    const id = keyIdOf(name);
    const r = this.firstRow(id, id === OTHER ? headerKey(name) : '');
    return r < 0 ? undefined : bytesToText(this._value(r));
  }

  /** All values; list headers (Via, Route, Contact, ...) are split at their commas. */
  headers(name: string): string[] {
    const key = headerKey(name);
    const id = KEY_IDS.get(key) ?? OTHER;
    const out: string[] = [];
    const isList = LIST_HEADERS.has(key);
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (!this.isKey(r, id, key)) continue;
      const v = this._value(r);
      if (isList) {
        for (const sp of splitCommaSpans(v)) out.push(bytesToText(v.slice(sp.start, sp.end)));
      } else out.push(bytesToText(v));
    }
    return out;
  }

  has(name: string): boolean {
    const id = keyIdOf(name);
    return this.firstRow(id, id === OTHER ? headerKey(name) : '') >= 0;
  }

  /** First element of a list header (e.g. the topmost Route), without splitting the rest. */
  firstValue(name: string): string | undefined {
    const f = this.firstElement(name);
    return f === undefined ? undefined : bytesToText(f.value.slice(f.start, f.end));
  }

  /** The row holding a header's first element, its value and where in it the element lies. */
  private firstElement(name: string): { row: number; id: number; value: string; start: number; end: number } | undefined {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (!this.isKey(r, id, key)) continue;
      const value = this._value(r);
      const span = firstSpan(value);
      if (span !== undefined) return { row: r, id, value, start: span.start, end: span.end };
    }
    return undefined;
  }

  /** The field lines of a header as they would be written (byte strings), e.g. to copy them into a generated message. */
  fieldLines(name: string): string[] {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    const out: string[] = [];
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (this.isKey(r, id, key)) out.push(this.lineOfRow(r));
    }
    return out;
  }

  /**
   * @internal The field lines of Via, From, Call-ID and CSeq in that order (all Vias first), and
   * the first To value: what a response copies from its request (§8.2.6.2), in one pass.
   */
  responseParts(): { lines: string; to: string } {
    let via = '';
    let from = '';
    let callId = '';
    let cseq = '';
    let to: string | undefined;
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (this.flags(r) & DELETED) continue;
      const id = this.rows[r * W + KEY];
      if (id === K_VIA) via = joinLine(via, this.lineOfRow(r));
      else if (id === K_FROM) from = joinLine(from, this.lineOfRow(r));
      else if (id === K_CALL_ID) callId = joinLine(callId, this.lineOfRow(r));
      else if (id === K_CSEQ) cseq = joinLine(cseq, this.lineOfRow(r));
      else if (id === K_TO && to === undefined) to = this._value(r);
    }
    let lines = via;
    if (from) lines = joinLine(lines, from);
    if (callId) lines = joinLine(lines, callId);
    if (cseq) lines = joinLine(lines, cseq);
    return { lines, to: to ?? '' };
  }

  /** Snapshot of the fields in order (tests, diagnostics). */
  get fields(): HeaderField[] {
    const out: HeaderField[] = [];
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      const fl = this.flags(r);
      if (fl & DELETED) continue;
      const f: HeaderField = { name: this.nameOfRow(r), key: this.keyOfRow(r), value: this._value(r) };
      if (!(fl & (EDITED | INSERTED))) f.raw = this.lineOfRow(r);
      out.push(f);
    }
    return out;
  }

  get callId(): string {
    // Read several times a message (transaction, policy, dialog tables): found and decoded once,
    // as a string of its own, because those tables keep it (see own()).
    if (this._callId === undefined) this._callId = own(this.header('call-id') ?? '');
    return this._callId;
  }

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
      const first = this.firstValue('via');
      if (first !== undefined) {
        const v = parseVia(textToBytes(first));
        if (typeof v !== 'string') this._topVia = v;
      }
    }
    return this._topVia;
  }

  get toTag(): string | undefined {
    if (this._toTag === undefined) this._toTag = tagOf(this.header('to'));
    return this._toTag ?? undefined;
  }

  get fromTag(): string | undefined {
    if (this._fromTag === undefined) this._fromTag = tagOf(this.header('from'));
    return this._fromTag ?? undefined;
  }

  /** True once any edit was made (toText() then rebuilds the head). */
  get modified(): boolean {
    return this.changed || this.startLineChanged;
  }

  // ---- mutation (proxy edits). Values are text; names as the caller wants them written. ----

  /** Replaces every field of this header by one (at the first one's position), or appends it. */
  setHeader(name: string, value: string): void {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    const v = textToBytes(value);
    let done = false;
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (!this.isKey(r, id, key)) continue;
      if (done) this.deleteRow(r);
      else this.setValue(r, v);
      done = true;
    }
    if (!done) this.insertRow(-1, name, id, v);
    this.touched(id);
  }

  removeHeader(name: string): void {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (this.isKey(r, id, key)) this.deleteRow(r);
    }
    this.touched(id);
  }

  /** Inserts a field above the first field of the same header, or at the top of the head. */
  prependHeader(name: string, value: string): void {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    const at = this.firstRow(id, key);
    this.insertRow(at >= 0 ? at : this.first, name, id, textToBytes(value));
    this.touched(id);
  }

  /** Appends a field at the end of the head. */
  appendHeader(name: string, value: string): void {
    const id = keyIdOf(name);
    this.insertRow(-1, name, id, textToBytes(value));
    this.touched(id);
  }

  /**
   * Removes the first element of a list header. When one field line holds several values
   * ("Via: a, b" as sipp writes them) only the first is cut, the rest is kept as written.
   * Returns the removed value.
   */
  removeFirstValue(name: string): string | undefined {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    const t = this.rows;
    for (let r = this.first; r >= 0; r = t[r * W + NX]) {
      if (!this.isKey(r, id, key)) continue;
      const v = this._value(r);
      if (v.indexOf(',') < 0) {
        // One element (the usual case): the field goes, no span list needed.
        const first = firstSpan(v);
        this.deleteRow(r);
        if (first === undefined) continue;
        this.touched(id);
        return bytesToText(v.slice(first.start, first.end));
      }
      // Several elements ("Via: ours, theirs" as sipp folds them): cut at the first top-level
      // comma, without splitting the whole list.
      const cut = firstElementCut(v);
      if (cut !== null) {
        if (cut.rest === v.length) this.deleteRow(r);
        else this.setValue(r, v.slice(cut.rest));
        this.touched(id);
        return bytesToText(v.slice(cut.start, cut.end));
      }
      const spans = splitCommaSpans(v);
      if (spans.length === 0) {
        this.deleteRow(r);
        continue;
      }
      const removed = v.slice(spans[0].start, spans[0].end);
      if (spans.length === 1) this.deleteRow(r);
      else this.setValue(r, v.slice(spans[1].start));
      this.touched(id);
      return bytesToText(removed);
    }
    return undefined;
  }

  /** Removes the last element of a list header (strict-router handling, §16.4). Returns it. */
  removeLastValue(name: string): string | undefined {
    const id = keyIdOf(name);
    const key = id === OTHER ? headerKey(name) : '';
    // The rows of this header, last first.
    const t = this.rows;
    const matches: number[] = [];
    for (let r = this.first; r >= 0; r = t[r * W + NX]) if (this.isKey(r, id, key)) matches.push(r);
    for (let m = matches.length - 1; m >= 0; m--) {
      const r = matches[m];
      const v = this._value(r);
      const spans = splitCommaSpans(v);
      if (spans.length === 0) {
        this.deleteRow(r);
        continue;
      }
      const last = spans[spans.length - 1];
      const removed = v.slice(last.start, last.end);
      if (spans.length === 1) this.deleteRow(r);
      else this.setValue(r, v.slice(0, spans[spans.length - 2].end));
      this.touched(id);
      return bytesToText(removed);
    }
    return undefined;
  }

  /** Replaces the first element of a list header (e.g. the sender's Via after stamping received=). */
  replaceFirstValue(name: string, value: string): void {
    const f = this.firstElement(name);
    if (f === undefined) return;
    this.setValue(f.row, f.value.slice(0, f.start) + textToBytes(value) + f.value.slice(f.end));
    this.touched(f.id);
  }

  protected touched(id: number): void {
    this.changed = true;
    if (id === K_VIA) this.viaDirty = true;
    else if (id === K_TO) this._toTag = undefined;
    else if (id === K_FROM) this._fromTag = undefined;
    else if (id === K_CALL_ID) this._callId = undefined;
  }

  /**
   * Serialises, as a latin1 byte string. An untouched message is the received text itself;
   * otherwise the head is rebuilt: each run of untouched fields that were contiguous
   * CRLF-terminated lines of the received text is reused as one slice, edited and added fields
   * are written from their text, and the body follows unchanged. Content-Length is added when
   * missing (it is mandatory on stream transports, RFC 3261 §18.3).
   */
  toText(): string {
    if (!this.modified && this.hasContentLength() && this.raw.length === this.headLength + this.body.length) {
      return this.raw;
    }
    const raw = this.raw;
    const t = this.rows;
    let out = this.startLine() + '\r\n';
    let hasCl = false;
    for (let r = this.first; r >= 0; ) {
      const o = r * W;
      const fl = t[o + FL];
      if (fl & DELETED) {
        r = t[o + NX];
        continue;
      }
      if (t[o + KEY] === K_CONTENT_LENGTH) hasCl = true;
      if (fl & (EDITED | INSERTED | FOLDED)) {
        out += this.lineOfRow(r) + '\r\n';
        r = t[o + NX];
        continue;
      }
      // Extend the run while the next field is an untouched line starting right after this
      // one's CRLF.
      const from = t[o + LS];
      let end = t[o + LE];
      r = t[o + NX];
      while (r >= 0 && raw.charCodeAt(end) === 13 && raw.charCodeAt(end + 1) === 10) {
        const g = r * W;
        if (t[g + FL] !== 0 || t[g + LS] !== end + 2) break;
        if (t[g + KEY] === K_CONTENT_LENGTH) hasCl = true;
        end = t[g + LE];
        r = t[g + NX];
      }
      out += raw.charCodeAt(end) === 13 && raw.charCodeAt(end + 1) === 10 ? raw.slice(from, end + 2) : raw.slice(from, end) + '\r\n';
    }
    if (!hasCl) out += `Content-Length: ${this.body.length}\r\n`;
    return out + '\r\n' + this.body;
  }

  /** toText() as bytes. */
  toBuffer(): Buffer {
    return Buffer.from(this.toText(), 'latin1');
  }

  toString(): string {
    return Buffer.from(this.toText(), 'latin1').toString('utf8');
  }

  private hasContentLength(): boolean {
    return this.firstRow(K_CONTENT_LENGTH, '') >= 0;
  }
}

/**
 * The first element of a comma list and where the rest starts, as splitCommaSpans() would cut them
 * (quotes and <...> respected, whitespace trimmed), found without splitting the rest; `rest` is
 * v.length when nothing follows. Null for the odd cases (an empty first or second element): the
 * caller then splits the list.
 */
function firstElementCut(v: string): { start: number; end: number; rest: number } | null {
  const n = v.length;
  let start = 0;
  while (start < n && isWs(v.charCodeAt(start))) start++;
  let inQuote = false;
  let inAngle = false;
  let i = start;
  for (; i < n; i++) {
    const c = v.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuote = false;
    } else if (c === 0x22) inQuote = true;
    else if (c === 0x3c) inAngle = true;
    else if (c === 0x3e) inAngle = false;
    else if (c === 0x2c && !inAngle) break;
  }
  let end = i;
  while (end > start && isWs(v.charCodeAt(end - 1))) end--;
  if (end === start) return null;
  let rest = i + 1;
  while (rest < n && isWs(v.charCodeAt(rest))) rest++;
  if (rest >= n) return { start, end, rest: n };
  if (v.charCodeAt(rest) === 0x2c) return null;
  return { start, end, rest };
}

function joinLine(lines: string, line: string): string {
  return lines ? lines + '\r\n' + line : line;
}

export class SipRequest extends SipMessageBase {
  readonly isRequest = true;
  readonly method: string;
  private _uri: string;
  private readonly rawStartLine: string;

  constructor(raw: string, rows: number[], count: number, body: string, startLine: string, method: string, uri: string) {
    super(raw, rows, count, body);
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

  constructor(raw: string, rows: number[], count: number, body: string, startLine: string, status: number, reason: string) {
    super(raw, rows, count, body);
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

/**
 * The tag parameter of a From/To value (§20.20, §20.39). The usual forms, `<uri>;tag=x` and
 * `uri;tag=x`, are read by a scan of the parameters after the URI; a quoted display name or
 * spacing in the parameters takes the name-addr parser. This runs for most messages
 * (initial-INVITE test, dialog matching), where the parser's parameter table was most of the cost.
 */
function tagOf(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.indexOf('"') >= 0) return tagSlow(value);
  const lt = value.indexOf('<');
  let from: number;
  if (lt >= 0) {
    from = value.indexOf('>', lt);
    if (from < 0) return tagSlow(value);
    from++;
  } else {
    // A bare addr-spec: every ';param' belongs to the header (§20.10).
    from = value.indexOf(';');
    if (from < 0) return value.indexOf(' ') < 0 && value.indexOf('\t') < 0 ? null : tagSlow(value);
  }
  let tag: string | null = null;
  const n = value.length;
  for (let i = from; i < n; ) {
    const c = value.charCodeAt(i);
    if (c !== 0x3b) return tagSlow(value); // spacing, or garbage the parser rejects
    let end = value.indexOf(';', i + 1);
    if (end < 0) end = n;
    const eq = value.indexOf('=', i + 1);
    const nameEnd = eq >= 0 && eq < end ? eq : end;
    if (nameEnd - i === 4 && (value.charCodeAt(i + 1) | 0x20) === 0x74 && (value.charCodeAt(i + 2) | 0x20) === 0x61 && (value.charCodeAt(i + 3) | 0x20) === 0x67) {
      const v = nameEnd < end ? value.slice(nameEnd + 1, end) : '';
      for (let k = 0; k < v.length; k++) if (isWs(v.charCodeAt(k))) return tagSlow(value);
      tag = v.length !== 0 ? v : null; // the last tag counts, as in the parser's table
    } else {
      for (let k = i + 1; k < end; k++) if (isWs(value.charCodeAt(k))) return tagSlow(value);
    }
    i = end;
  }
  return tag;
}

function tagSlow(value: string): string | null {
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

/** The value of a non-empty all-digit range of s (at most 10 digits), else -1. */
function digitsValue(s: string, from = 0, to = s.length): number {
  if (to <= from) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!isDigit(c)) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

/**
 * CSeq value (§20.16: 1*DIGIT LWS Method) in head[from, to), as /^([0-9]{1,10})[ \t]+(token)$/
 * did. `requestMethod` is reused as the method string when they are equal.
 */
function parseCSeq(s: string, from: number, to: number, requestMethod: string): CSeq | undefined {
  let i = from;
  while (i < to && isDigit(s.charCodeAt(i))) i++;
  if (i === from || i - from > 10) return undefined;
  const seq = digitsValue(s, from, i);
  if (seq > 0xffffffff) return undefined;
  let j = i;
  while (j < to && (s.charCodeAt(j) === 0x20 || s.charCodeAt(j) === 0x09)) j++;
  if (j === i || j === to) return undefined;
  for (let k = j; k < to; k++) if (!isTokenChar(s.charCodeAt(k))) return undefined;
  const method = to - j === requestMethod.length && s.startsWith(requestMethod, j) ? requestMethod : s.slice(j, to);
  return { seq, method };
}

/**
 * Parses one SIP message: a latin1 byte string (as the transports deliver them) or bytes. Throws
 * SipParseError (with `partial` when the head was readable).
 */
export function parseMessage(input: string | Uint8Array, opts: ParseOptions = {}): SipMessage {
  const text = typeof input === 'string' ? input : latin1Slice(Buffer.from(input.buffer, input.byteOffset, input.byteLength), 0, input.byteLength);
  // §7.5: CRLFs before the start line are ignored.
  let start = 0;
  while (start < text.length && (text.charCodeAt(start) === 0x0d || text.charCodeAt(start) === 0x0a)) start++;
  if (start >= text.length) throw new SipParseError('empty message');

  let headEnd = text.indexOf('\r\n\r\n', start);
  let sepLen = 4;
  if (headEnd < 0) {
    headEnd = text.indexOf('\n\n', start);
    sepLen = 2;
  }
  let missingBlankLine = false;
  if (headEnd < 0) {
    missingBlankLine = true;
    headEnd = text.length;
    sepLen = 0;
  }
  // Offsets are into the whole text; the head is the part before headEnd.
  const head = text;
  const headLen = headEnd;
  let lineEnd = head.indexOf('\n', start);
  if (lineEnd < 0) lineEnd = headLen;
  const startLine = head.slice(start, lineEnd > start && head.charCodeAt(lineEnd - 1) === 0x0d ? lineEnd - 1 : lineEnd);

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
      let okMethod = true;
      for (let i = 0; i < method.length; i++) if (!isTokenChar(method.charCodeAt(i))) okMethod = false;
      if (!okMethod) startError = 'bad method';
      else if (!startLine.endsWith('SIP/2.0') || startLine.length - sp2 - 1 !== 7) {
        const version = startLine.slice(sp2 + 1);
        if (version.toUpperCase() !== 'SIP/2.0') startError = `unsupported version "${version.slice(0, 20)}"`;
        else if (uri.indexOf(':') <= 0) startError = 'bad Request-URI';
        else kind = 'req';
      } else if (uri.indexOf(':') <= 0) startError = 'bad Request-URI';
      else kind = 'req';
    } else startError = 'bad request line';
  }

  // Header fields (§7.3), with line folding (§7.3.1): one row of offsets each, no strings. The
  // rows the parser checks itself are noted on the way.
  const t = rowScratch;
  let count = 0;
  let headerError: SipParseError | undefined;
  let viaRow = -1;
  let cseqRow = -1;
  let clRow = -1;
  let fromRow = -1;
  let toRow = -1;
  let callIdRow = -1;
  let mfRow = -1;
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
      if (count === 0) {
        headerError ??= new SipParseError('continuation line before any header', 'header');
        continue;
      }
      // The previous field continues here; its value is unfolded when read.
      const o = (count - 1) * W;
      t[o + LE] = cut;
      t[o + FL] |= FOLDED;
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
    let id: number | undefined;
    const common = COMMON_BY_SHAPE[commonSlot(nameEnd - ls, head.charCodeAt(ls), head.charCodeAt(nameEnd - 1))];
    if (common !== undefined && common.name.length === nameEnd - ls && sameText(head, ls, common.name)) {
      id = common.id;
    } else {
      const name = head.slice(ls, nameEnd);
      id = COMMON_IDS.get(name);
      if (id === undefined) {
        let bad = false;
        for (let i = 0; i < name.length; i++) if (!isTokenChar(name.charCodeAt(i))) bad = true;
        if (bad || name.length === 0) {
          headerError ??= new SipParseError(`bad header name "${bytesToText(name.slice(0, 40))}"`, 'header');
          continue;
        }
        id = KEY_IDS.get(headerKey(name)) ?? OTHER;
      }
    }
    let v0 = colon + 1;
    let v1 = cut;
    while (v0 < v1 && isWs(head.charCodeAt(v0))) v0++;
    while (v1 > v0 && isWs(head.charCodeAt(v1 - 1))) v1--;
    const o = count * W;
    t[o + LS] = ls;
    t[o + NE] = nameEnd;
    t[o + VS] = v0;
    t[o + VE] = v1;
    t[o + LE] = cut;
    t[o + KEY] = id;
    t[o + FL] = 0;
    t[o + NX] = count + 1;
    switch (id) {
      case K_VIA: if (viaRow < 0) viaRow = count; break;
      case K_CSEQ: if (cseqRow < 0) cseqRow = count; break;
      case K_CONTENT_LENGTH: if (clRow < 0) clRow = count; break;
      case K_FROM: if (fromRow < 0) fromRow = count; break;
      case K_TO: if (toRow < 0) toRow = count; break;
      case K_CALL_ID: if (callIdRow < 0) callIdRow = count; break;
      case K_MAX_FORWARDS: if (mfRow < 0) mfRow = count; break;
    }
    count++;
  }
  // A request that is forwarded gets our Via and up to two Record-Routes as new rows: room for
  // them now, because growing the array later copies all of it (the larger part of the
  // allocations of a forwarded request, measured).
  const rows = t.slice(0, (kind === 'req' ? count + 3 : count) * W);
  if (count > 0) rows[(count - 1) * W + NX] = -1;

  // Body and Content-Length (§18.3, §20.14).
  const bodyStart = Math.min(headEnd + sepLen, text.length);
  let body = text.slice(bodyStart);
  let clError: SipParseError | undefined;
  if (clRow >= 0) {
    const o = clRow * W;
    const folded = rows[o + FL] & FOLDED;
    const vs = rows[o + VS];
    const ve = rows[o + VE];
    const cl = !folded && ve - vs <= 9 ? digitsValue(head, vs, ve) : -1;
    if (cl < 0) clError = new SipParseError(`invalid value "${bytesToText(head.slice(vs, Math.min(ve, vs + 20)))}"`, 'Content-Length');
    else if (cl > body.length) clError = new SipParseError(`says ${cl} bytes, body has ${body.length}`, 'Content-Length');
    else if (cl < body.length) body = body.slice(0, cl);
  } else if (opts.stream) {
    clError = new SipParseError('missing (required on stream transports)', 'Content-Length');
  }

  let msg: SipMessage;
  if (kind === 'res') msg = new SipResponse(text, rows, count, body, startLine, status, reason);
  else msg = new SipRequest(text, rows, count, body, startLine, method || 'UNKNOWN', uri);
  msg.headLength = bodyStart;
  const partialOk = kind !== 'bad' || !startLine.startsWith('SIP/');

  // Top Via first: without it nothing can be answered.
  let viaError: SipParseError | undefined;
  if (viaRow < 0) viaError = new SipParseError('missing', 'Via');
  else {
    const value = msg._value(viaRow);
    const span = firstSpan(value);
    const v = span !== undefined ? parseVia(value.slice(span.start, span.end)) : 'empty';
    if (typeof v === 'string') viaError = new SipParseError(v, 'Via');
    else msg._topVia = v;
  }

  // CSeq (§20.16) is needed for responses built from a partial request, so parse it before failing.
  let cseqError: SipParseError | undefined;
  if (cseqRow < 0) cseqError = new SipParseError('missing', 'CSeq');
  else {
    const o = cseqRow * W;
    const c = rows[o + FL] & FOLDED
      ? parseCSeq(msg._value(cseqRow), 0, msg._value(cseqRow).length, method)
      : parseCSeq(head, rows[o + VS], rows[o + VE], method);
    if (c === undefined) cseqError = new SipParseError(`invalid value "${bytesToText(msg._value(cseqRow).slice(0, 30))}"`, 'CSeq');
    else {
      msg._cseq = c;
      if (kind === 'req' && c.method !== method) cseqError = new SipParseError(`method ${c.method} does not match ${method}`, 'CSeq');
    }
  }

  let error: SipParseError | undefined;
  if (kind === 'bad') error = new SipParseError(startError, 'start-line');
  else if (missingBlankLine) error = new SipParseError('no empty line after the headers', 'header');
  else if (headerError) error = headerError;
  else if (viaError) error = viaError;
  else if (fromRow < 0 || msg._value(fromRow).length === 0) error = new SipParseError('missing', 'From');
  else if (toRow < 0 || msg._value(toRow).length === 0) error = new SipParseError('missing', 'To');
  else if (callIdRow < 0 || msg._value(callIdRow).length === 0) error = new SipParseError('missing', 'Call-ID');
  else if (cseqError) error = cseqError;
  else if (clError) error = clError;
  else if (mfRow >= 0) {
    const mf = msg._value(mfRow);
    if (mf.length > 3 || digitsValue(mf) < 0) error = new SipParseError(`invalid value "${bytesToText(mf.slice(0, 20))}"`, 'Max-Forwards');
  }
  if (error !== undefined) throw new SipParseError(error.detail, error.header, partialOk ? msg : undefined);
  return msg;
}

export function isRequest(m: SipMessage): m is SipRequest {
  return m.isRequest;
}
