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
const CL_RE = /^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*?)[ \t]*$/im;

export class StreamFramer {
  private buf: Buffer = Buffer.alloc(0);
  private failed = false;

  constructor(private readonly maxMessageBytes: number) {}

  /** Bytes held waiting for the rest of a message. */
  get pending(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): FrameEvent[] {
    if (this.failed) return [];
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
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
      const headEnd = b.indexOf(CRLFCRLF);
      if (headEnd < 0) {
        if (b.length > this.maxMessageBytes) return this.fail(out, `header block over ${this.maxMessageBytes} bytes`);
        break;
      }
      const head = b.subarray(0, headEnd + 4);
      const m = CL_RE.exec(head.toString('latin1'));
      if (!m) return this.fail(out, 'missing Content-Length (required on stream transports)', head);
      if (!/^[0-9]{1,9}$/.test(m[1])) return this.fail(out, `invalid Content-Length "${m[1].slice(0, 20)}"`, head);
      const total = headEnd + 4 + Number(m[1]);
      if (total > this.maxMessageBytes) return this.fail(out, `message of ${total} bytes over the ${this.maxMessageBytes} limit`, head);
      if (b.length < total) break;
      out.push({ kind: 'message', data: b.subarray(0, total) });
      this.buf = b.subarray(total);
    }
    return out;
  }

  private fail(out: FrameEvent[], reason: string, head?: Buffer): FrameEvent[] {
    this.failed = true;
    this.buf = Buffer.alloc(0);
    out.push(head ? { kind: 'error', reason, head } : { kind: 'error', reason });
    return out;
  }
}
