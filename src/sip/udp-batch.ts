/**
 * Batched UDP I/O for the embedded proxy: the TypeScript face of the native addon
 * native/udp_batch.c (build/Release/udp_batch.node, Linux only).
 *
 * node:dgram makes one recvmsg system call and one JavaScript callback (with a new Buffer and an
 * rinfo object) per datagram received, and one trip through its JavaScript layer and one sendmsg
 * per datagram sent. The addon reads up to 64 datagrams per recvmmsg into a native arena, hands
 * them to JavaScript in one callback, and sends with sendmmsg from a native queue. The README
 * ("How it is built") has the measurements.
 *
 *   const s = createUdpBatchSocket('udp4', { recvBufferSize: 8 << 20, sendBufferSize: 8 << 20 });
 *   s.onBatch((b) => {                    // one call per recvmmsg batch
 *     for (let i = 0; i < b.count; i++) {
 *       const msg = b.text(i);            // the datagram as a latin1 string, ours to keep
 *       s.send(reply(msg), b.port(i), b.address(i));
 *     }
 *   });                                   // the replies leave in one sendmmsg when it returns
 *   s.bind(5060, '0.0.0.0');
 *
 * Sends are queued in native memory and leave with sendmmsg when 64 are queued, when a receive
 * batch's callback returns, on flush(), and otherwise before the event loop next waits (sends from
 * timers need no flush()).
 *
 * Addresses cross into native code as numbers. Their text forms are cached both ways (bounded
 * maps, cleared when full), so a steady set of peers costs no inet_ntop/inet_pton and no new
 * strings. Address text is what node:dgram reports, except that an IPv4 peer of a dual-stack udp6
 * socket is a.b.c.d, not ::ffff:a.b.c.d (the proxy names IPv4 peers that way everywhere).
 *
 * When the addon is missing (another OS, no compiler at install time: native/install.js lets
 * that pass), udpBatchUnavailable() says why and the proxy stays on node:dgram. Loading it never
 * throws out of this module.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** One recvmmsg batch. Valid only during the onBatch callback: the next batch reuses it. */
export interface UdpBatch {
  /** Datagrams in this batch (1..64). */
  readonly count: number;
  /** Datagram `i` as a latin1 string (one char per byte): a copy the caller owns. */
  text(i: number): string;
  /** Payload bytes of datagram `i`. */
  length(i: number): number;
  /** Source port of datagram `i`. */
  port(i: number): number;
  /** Source address of datagram `i` (dotted IPv4, or IPv6 as node:dgram writes it). */
  address(i: number): string;
  /** Datagram `i` as a Buffer over the native arena, not a copy: gone when the callback returns. */
  view(i: number): Buffer;
  /**
   * How long datagram `i` waited in the socket's receive queue before this batch read it, in µs
   * (the kernel's receive timestamp, SO_TIMESTAMPNS); -1 when the kernel gave none.
   */
  queuedUs(i: number): number;
}

/** Counters since the socket was created; readable after close(). */
export interface UdpBatchStats {
  /** Datagrams handed to onBatch. */
  rxDatagrams: number;
  /** onBatch calls. */
  rxBatches: number;
  /** recvmmsg calls that returned datagrams. */
  rxSyscalls: number;
  /** Readable events from the event loop. */
  rxWakeups: number;
  /** Datagrams dropped as truncated (cannot happen: a receive slot holds 64 KiB). */
  rxTruncated: number;
  /** recvmmsg errors and socket errors reported by poll (SO_ERROR), each counted and passed over. */
  rxErrors: number;
  /** Datagrams the kernel accepted. */
  txDatagrams: number;
  /** sendmmsg calls that sent something. */
  txSyscalls: number;
  /** Datagrams the kernel refused (e.g. EACCES, ENETUNREACH); each skipped, the last errno kept. */
  txErrors: number;
  /** Times the socket send buffer was full (the queue then waits for the socket to be writable). */
  txEagain: number;
  /** send() calls that returned false: queue full while the socket buffer was full. */
  txDropped: number;
  /** Datagrams waiting in the native queue now. */
  txQueued: number;
  /** errno of the last rx or tx error (0 if none). */
  lastErrno: number;
}

export interface UdpBatchSocket {
  readonly family: 4 | 6;
  /**
   * Binds synchronously; returns the bound port (the real one when 0 was asked for). Throws an
   * Error with `.code` (EADDRINUSE, EADDRNOTAVAIL, EACCES, EINVAL...), `.errno` and `.syscall`,
   * whose message names address:port.
   */
  bind(port: number, address: string): number;
  /** The function called once per received batch; null stops reading. */
  onBatch(fn: ((batch: UdpBatch) => void) | null): void;
  /**
   * Queues a datagram: a latin1 string (every char ≤ 0xFF, one per byte) or bytes. Returns false
   * when it was dropped (native queue and socket send buffer both full; counted in txDropped).
   * Throws on an address that is not an IP literal of the socket's family (a udp6 socket also
   * takes IPv4), on more than 65,535 bytes (EMSGSIZE) and after close() (EBADF). Errors the kernel
   * reports later are counted in stats() (txErrors, lastErrno).
   */
  send(data: string | Uint8Array, port: number, address: string): boolean;
  /** Sends what is queued now (it would leave before the event loop next waits anyway). */
  flush(): void;
  /** Sends what it can of the queue, then closes the socket (the port is free at once). Idempotent, safe inside onBatch. */
  close(): void;
  /** An open socket keeps the process alive (ref, the default) or not (unref). */
  ref(): void;
  unref(): void;
  address(): { address: string; port: number; family: 4 | 6 };
  /** SO_RCVBUF and SO_SNDBUF as getsockopt reports them (Linux doubles what was asked, up to its maximum). */
  bufferSizes(): { recv: number; send: number };
  stats(): UdpBatchStats;
}

export interface UdpBatchOptions {
  /** SO_RCVBUF to ask for; 0 keeps the system default. */
  recvBufferSize: number;
  /** SO_SNDBUF to ask for; 0 keeps the system default. */
  sendBufferSize: number;
}

// ---- the addon ----------------------------------------------------------------------------------

declare const handleBrand: unique symbol;
/** The native socket (a type-tagged external). */
interface Handle {
  readonly [handleBrand]: true;
}

/** Buffer's own latin1 decoder, which toString('latin1', start, end) calls after some dispatch. */
interface ArenaBuffer extends Buffer {
  latin1Slice(start: number, end: number): string;
}

type Receiver = (arena: ArenaBuffer, count: number, meta: Int32Array) => void;

/** native/udp_batch.c's exports. */
interface Native {
  /** Int32 fields per datagram in `meta`: offset, length, port, 4|6, four address words, scope id. */
  readonly META_FIELDS: number;
  createSocket(family: 4 | 6, recvBufferSize: number, sendBufferSize: number): Handle;
  bind(h: Handle, address: string, port: number): number;
  setReceiver(h: Handle, fn: Receiver | null): void;
  send(h: Handle, data: string | Uint8Array, port: number, a0: number, a1?: number, a2?: number, a3?: number, scope?: number): boolean;
  flush(h: Handle): void;
  close(h: Handle): void;
  ref(h: Handle, on: boolean): void;
  stats(h: Handle): UdpBatchStats;
  bufferSizes(h: Handle): { recv: number; send: number };
  /** [family, port, a0, a1, a2, a3, scope] */
  address(h: Handle): number[];
  /** [a0, a1, a2, a3, scope], or null when `text` is not an address literal of that family. */
  parseAddress(text: string, family: 4 | 6): number[] | null;
  formatAddress(family: 4 | 6, a0: number, a1: number, a2: number, a3: number, scope: number): string;
}

const NATIVE_FUNCTIONS = [
  'createSocket', 'bind', 'setReceiver', 'send', 'flush', 'close', 'ref', 'stats', 'bufferSizes',
  'address', 'parseAddress', 'formatAddress',
] as const;

function isNative(mod: unknown): mod is Native {
  if (typeof mod !== 'object' || mod === null) return false;
  const m = mod as Record<string, unknown>;
  return typeof m.META_FIELDS === 'number' && NATIVE_FUNCTIONS.every((k) => typeof m[k] === 'function');
}

/** The directory of the nearest package.json above this file: src/sip/ (ts-jest), dist/sip/ and dist-bench/src/sip/ all have the repository root there. */
function packageRoot(): string {
  for (let dir = __dirname; ; ) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.join(__dirname, '..', '..');
    dir = up;
  }
}

let native: Native | undefined;
let unavailable: string | undefined;
let loaded = false;

function load(): Native | undefined {
  if (loaded) return native;
  loaded = true;
  if (process.platform !== 'linux') {
    unavailable = `the native UDP addon needs Linux (recvmmsg/sendmmsg); this is ${process.platform}`;
    return undefined;
  }
  let file = path.join('build', 'Release', 'udp_batch.node');
  try {
    file = path.join(packageRoot(), file);
    const mod: unknown = require(file);
    if (isNative(mod)) native = mod;
    else unavailable = `${file} is not the udp_batch addon this code expects (rebuild it: npm run install)`;
  } catch (e) {
    // Not `instanceof Error`: under jest the error comes from another realm. The first line
    // only: node adds the require stack below it.
    const err = typeof e === 'object' && e !== null ? (e as { message?: unknown; code?: unknown }) : {};
    const why = (typeof err.message === 'string' ? err.message : String(e)).split('\n', 1)[0];
    const code = err.code;
    const hint = code === 'MODULE_NOT_FOUND' ? ' (npm install builds it; build/udp_batch-install.log says why it did not)' : '';
    unavailable = `cannot load ${file}: ${why}${hint}`;
  }
  return native;
}

/** undefined when the addon is loaded; otherwise why not (not Linux, not built: the load error). */
export function udpBatchUnavailable(): string | undefined {
  load();
  return unavailable;
}

// ---- address text, cached both ways --------------------------------------------------------------

/** Entries per cache; a full cache is cleared at once (cheap, and rare: it takes that many peers). */
const CACHE_MAX = 4096;
const v4Texts = new Map<number, string>();
const v6Texts = new Map<string, string>();
/** Address text → [a0, a1, a2, a3, scope], per socket family. */
const parsed: Record<4 | 6, Map<string, readonly number[]>> = { 4: new Map(), 6: new Map() };

function v4Text(n: number): string {
  let t = v4Texts.get(n);
  if (t === undefined) {
    t = `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
    if (v4Texts.size >= CACHE_MAX) v4Texts.clear();
    v4Texts.set(n, t);
  }
  return t;
}

function v6Text(lib: Native, a: number, b: number, c: number, d: number, scope: number): string {
  const key = `${a},${b},${c},${d},${scope}`;
  let t = v6Texts.get(key);
  if (t === undefined) {
    t = lib.formatAddress(6, a, b, c, d, scope);
    if (v6Texts.size >= CACHE_MAX) v6Texts.clear();
    v6Texts.set(key, t);
  }
  return t;
}

interface AddressError extends TypeError {
  code: string;
}

function addressWords(lib: Native, text: string, family: 4 | 6): readonly number[] {
  const cache = parsed[family];
  let w = cache.get(text);
  if (w === undefined) {
    const got = typeof text === 'string' ? lib.parseAddress(text, family) : null;
    if (got === null) {
      const kind = family === 4 ? 'an IPv4 address' : 'an IPv6 or IPv4 address';
      const e = new TypeError(`udp${family} send: "${String(text)}" is not ${kind}`) as AddressError;
      e.code = 'ERR_INVALID_IP_ADDRESS';
      throw e;
    }
    w = got;
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(text, w);
  }
  return w;
}

// ---- the socket ----------------------------------------------------------------------------------

const NO_ARENA = Buffer.alloc(0) as ArenaBuffer;
const HAS_LATIN1_SLICE = typeof (NO_ARENA as Partial<ArenaBuffer>).latin1Slice === 'function';

/** One per socket, refilled for every batch (no allocation per batch). */
class Batch implements UdpBatch {
  count = 0;
  arena: ArenaBuffer = NO_ARENA;
  meta: Int32Array = new Int32Array(0);

  constructor(
    private readonly lib: Native,
    private readonly fields: number,
  ) {}

  /** Index of datagram i's record in `meta`. Past `count` the records are stale: refuse them. */
  private at(i: number): number {
    if (!(i >= 0 && i < this.count)) throw new RangeError(`datagram ${i} is not in this batch of ${this.count}`);
    return i * this.fields;
  }

  text(i: number): string {
    const k = this.at(i);
    const off = this.meta[k];
    const end = off + this.meta[k + 1];
    // latin1Slice copies into a new V8 string: 76-89 ns for a 629-byte INVITE here, against
    // 842-987 ns for Buffer.allocUnsafeSlow plus a copy. The proxy keeps some requests for
    // minutes, so what it keeps must be its own, not a view of the arena.
    return HAS_LATIN1_SLICE ? this.arena.latin1Slice(off, end) : this.arena.toString('latin1', off, end);
  }

  length(i: number): number {
    return this.meta[this.at(i) + 1];
  }

  port(i: number): number {
    return this.meta[this.at(i) + 2];
  }

  address(i: number): string {
    const m = this.meta;
    const k = this.at(i);
    return m[k + 3] === 4 ? v4Text(m[k + 4]) : v6Text(this.lib, m[k + 4], m[k + 5], m[k + 6], m[k + 7], m[k + 8]);
  }

  queuedUs(i: number): number {
    return this.meta[this.at(i) + 9];
  }

  view(i: number): Buffer {
    const k = this.at(i);
    const off = this.meta[k];
    return this.arena.subarray(off, off + this.meta[k + 1]);
  }
}

class BatchSocket implements UdpBatchSocket {
  private readonly h: Handle;
  private readonly batch: Batch;

  constructor(
    private readonly lib: Native,
    readonly family: 4 | 6,
    opts: UdpBatchOptions,
  ) {
    this.h = lib.createSocket(family, opts.recvBufferSize, opts.sendBufferSize);
    this.batch = new Batch(lib, lib.META_FIELDS);
  }

  bind(port: number, address: string): number {
    return this.lib.bind(this.h, address, port);
  }

  onBatch(fn: ((batch: UdpBatch) => void) | null): void {
    if (fn === null) {
      this.lib.setReceiver(this.h, null);
      return;
    }
    const b = this.batch;
    this.lib.setReceiver(this.h, (arena, count, meta) => {
      b.arena = arena;
      b.meta = meta;
      b.count = count;
      try {
        fn(b);
      } finally {
        b.count = 0; // a batch kept past its callback reads nothing stale
      }
    });
  }

  send(data: string | Uint8Array, port: number, address: string): boolean {
    const w = addressWords(this.lib, address, this.family);
    return this.family === 4
      ? this.lib.send(this.h, data, port, w[0])
      : this.lib.send(this.h, data, port, w[0], w[1], w[2], w[3], w[4]);
  }

  flush(): void {
    this.lib.flush(this.h);
  }

  close(): void {
    this.lib.close(this.h);
  }

  ref(): void {
    this.lib.ref(this.h, true);
  }

  unref(): void {
    this.lib.ref(this.h, false);
  }

  address(): { address: string; port: number; family: 4 | 6 } {
    const a = this.lib.address(this.h);
    const family = a[0] === 4 ? 4 : 6;
    const address = family === 4 ? v4Text(a[2]) : v6Text(this.lib, a[2], a[3], a[4], a[5], a[6]);
    return { address, port: a[1], family };
  }

  bufferSizes(): { recv: number; send: number } {
    return this.lib.bufferSizes(this.h);
  }

  stats(): UdpBatchStats {
    return this.lib.stats(this.h);
  }
}

/** A new unbound socket. Throws (code ERR_UDP_BATCH_UNAVAILABLE) when the addon is not loaded. */
export function createUdpBatchSocket(type: 'udp4' | 'udp6', opts: UdpBatchOptions): UdpBatchSocket {
  const lib = load();
  if (!lib) {
    const e = new Error(`udp_batch is unavailable: ${unavailable}`) as Error & { code: string };
    e.code = 'ERR_UDP_BATCH_UNAVAILABLE';
    throw e;
  }
  if (type !== 'udp4' && type !== 'udp6') throw new TypeError(`socket type must be udp4 or udp6, not ${String(type)}`);
  return new BatchSocket(lib, type === 'udp4' ? 4 : 6, opts);
}
