/**
 * Memory for the messages the proxy sends (about seven a call).
 *
 * Buffer.allocUnsafe() and Buffer.from(string) carve small buffers out of Node's shared 8 KiB
 * pool, and every new pool is an ArrayBuffer allocation that showed as ~3 % of the proxy's CPU per
 * call. Carving them out of 64 KiB slabs instead makes that eight times rarer.
 *
 * A slab, like a pool, lives while any message cut from it is referenced, and slabs are never
 * written twice. Most messages are dropped once sent, but a transaction keeps its final response
 * (and a client transaction its ACK) for up to 32 s to answer retransmissions; one kept message
 * would pin the whole slab around it, i.e. every byte sent in those seconds (~350 MB at 10,000
 * calls/s). So kept messages are copied into slabs of their own (keptCopy): those hold only
 * messages that are all kept for about as long, so they are freed about together.
 */
const SLAB_BYTES = 64 * 1024;
/** Bigger messages get their own memory, so one does not waste most of a slab. */
const MAX_SLICE = SLAB_BYTES >>> 3;

let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let used = 0;

/** Uninitialised memory for an outgoing message of `size` bytes; the caller fills all of it. */
export function outBuffer(size: number): Buffer {
  if (size > MAX_SLICE) return Buffer.allocUnsafeSlow(size);
  if (used + size > SLAB_BYTES) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    used = 0;
  }
  const out = slab.subarray(used, used + size);
  used += size;
  return out;
}

/** Buffer.from(s, 'latin1') in slab memory: `s` is a byte string (one char per byte). */
export function latin1Buffer(s: string): Buffer {
  const out = outBuffer(s.length);
  out.write(s, 0, s.length, 'latin1');
  return out;
}

let keptSlab = Buffer.allocUnsafeSlow(SLAB_BYTES);
let keptUsed = 0;

/** A copy of `buf` for a transaction to keep, in memory shared only with other kept messages. */
export function keptCopy(buf: Buffer): Buffer {
  const size = buf.length;
  if (size > MAX_SLICE) {
    const own = Buffer.allocUnsafeSlow(size);
    buf.copy(own);
    return own;
  }
  if (keptUsed + size > SLAB_BYTES) {
    keptSlab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    keptUsed = 0;
  }
  const out = keptSlab.subarray(keptUsed, keptUsed + size);
  buf.copy(out);
  keptUsed += size;
  return out;
}
