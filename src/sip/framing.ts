/**
 * Message framing on stream transports (TCP, later TLS): RFC 3261 §18.3 — the Content-Length
 * header is mandatory and delimits the body. Also the RFC 5626 §3.5.1 CRLF keep-alive: a
 * double CRLF "ping" between messages is answered with a single CRLF "pong".
 */

export type FrameEvent =
  | { kind: 'message'; data: Buffer }
  | { kind: 'ping' }
  /** Unrecoverable: the stream cannot be re-synchronised; `head` is the header block when known. */
  | { kind: 'error'; reason: string; head?: Buffer };

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');
const CONTENT_LENGTH = Buffer.from('content-length');

function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** Whether head[i..] starts with the lower-case ASCII `name`, in any case. */
function startsWithName(head: Buffer, i: number, name: Buffer): boolean {
  if (i + name.length > head.length) return false;
  for (let k = 0; k < name.length; k++) if ((head[i + k] | 0x20) !== name[k]) return false;
  return true;
}

/**
 * The Content-Length (or compact "l") value of a header block, trimmed, or undefined when there
 * is none. One pass over the bytes: a regex with a lazy value and trailing blanks backtracked
 * quadratically on a 60 KB line of spaces, which let one TCP peer stall the event loop.
 */
export function contentLengthOf(head: Buffer): string | undefined {
  const n = head.length;
  for (let i = 0; i < n; ) {
    let j = -1;
    if (startsWithName(head, i, CONTENT_LENGTH)) j = i + CONTENT_LENGTH.length;
    if ((head[i] | 0x20) === 0x6c /* l */) {
      // "l:" compact form, unless the full name matched and is followed by its colon.
      let k = i + 1;
      while (k < n && isBlank(head[k])) k++;
      if (k < n && head[k] === 0x3a) j = i + 1;
    }
    let eol = head.indexOf(0x0a, i);
    if (eol < 0) eol = n;
    if (j >= 0) {
      while (j < eol && isBlank(head[j])) j++;
      if (j < eol && head[j] === 0x3a) {
        let v = j + 1;
        while (v < eol && isBlank(head[v])) v++;
        let e = eol;
        if (e > v && head[e - 1] === 0x0d) e--;
        while (e > v && isBlank(head[e - 1])) e--;
        return head.toString('latin1', v, e);
      }
    }
    i = eol + 1;
  }
  return undefined;
}

export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);
  private failed = false;
  /** How far into buf the search for the end of the header block has already looked. */
  private searched = 0;
  /** Backing buffer of buf once segments had to be joined, and how much of it holds data. */
  private store: Buffer | null = null;
  private storeUsed = 0;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes held waiting for the rest of a message. */
  get pending(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): FrameEvent[] {
    if (this.failed) return [];
    this.buf = this.buf.length === 0 ? chunk : this.append(chunk);
    const out: FrameEvent[] = [];
    for (;;) {
      const b = this.buf;
      if (b.length === 0) break;
      // Keep-alives and stray line ends between messages (RFC 5626 §3.5.1, RFC 3261 §7.5).
      if (b[0] === 0x0d || b[0] === 0x0a) {
        if (b.length >= 4 && b[0] === 0x0d && b[1] === 0x0a && b[2] === 0x0d && b[3] === 0x0a) {
          out.push({ kind: 'ping' });
          this.buf = b.subarray(4);
        } else if (b.length >= 2 && b[0] === 0x0d && b[1] === 0x0a) {
          if (b.length < 4 && b.length === 3 && b[2] === 0x0d) break; // maybe half a ping
          this.buf = b.subarray(2);
        } else if (b[0] === 0x0a) {
          this.buf = b.subarray(1);
        } else break; // a lone CR: wait for its LF
        continue;
      }
      // Search only the bytes not searched before, so a header block dribbled in byte by byte
      // costs linear time, not quadratic.
      // RFC 3261 §7 asks for CRLF, but as on UDP (and in Kamailio) bare LF line ends are read too.
      let headEnd = b.indexOf(CRLFCRLF, this.searched);
      let sepLen = 4;
      const lf = b.indexOf(LFLF, this.searched);
      if (lf >= 0 && (headEnd < 0 || lf < headEnd)) {
        headEnd = lf;
        sepLen = 2;
      }
      if (headEnd < 0) {
        if (b.length > this.maxMessageBytes) return this.fail(out, `header block over ${this.maxMessageBytes} bytes`);
        this.searched = Math.max(0, b.length - 3);
        break;
      }
      this.searched = 0;
      const head = b.subarray(0, headEnd + sepLen);
      const cl = contentLengthOf(head);
      if (cl === undefined) return this.fail(out, 'missing Content-Length (required on stream transports)', head);
      if (!/^[0-9]{1,9}$/.test(cl)) return this.fail(out, `invalid Content-Length "${cl.slice(0, 20)}"`, head);
      const total = headEnd + sepLen + Number(cl);
      if (total > this.maxMessageBytes) return this.fail(out, `message of ${total} bytes over the ${this.maxMessageBytes} limit`, head);
      if (b.length < total) break;
      out.push({ kind: 'message', data: b.subarray(0, total) });
      this.buf = b.subarray(total);
    }
    if (this.buf.length === 0) this.store = null; // nothing pending: let the backing buffer go
    return out;
  }

  /**
   * buf + chunk, in a backing buffer that grows by doubling: a peer sending a message in tiny
   * segments costs linear copying, where concatenating on every segment was quadratic. Only the
   * free room after buf is ever written, so messages already handed out are never overwritten.
   */
  private append(chunk: Buffer): Buffer {
    const b = this.buf;
    const store = this.store;
    if (store !== null && b.buffer === store.buffer) {
      const end = b.byteOffset - store.byteOffset + b.length;
      if (end === this.storeUsed && end + chunk.length <= store.length) {
        chunk.copy(store, end);
        this.storeUsed = end + chunk.length;
        return store.subarray(end - b.length, this.storeUsed);
      }
    }
    const needed = b.length + chunk.length;
    const size = Math.max(needed, Math.min(Math.max(4096, 2 * needed), this.maxMessageBytes));
    const next = Buffer.allocUnsafe(size);
    b.copy(next, 0);
    chunk.copy(next, b.length);
    this.store = next;
    this.storeUsed = b.length + chunk.length;
    return next.subarray(0, this.storeUsed);
  }

  private fail(out: FrameEvent[], reason: string, head?: Buffer): FrameEvent[] {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    out.push(head ? { kind: 'error', reason, head } : { kind: 'error', reason });
    return out;
  }
}
