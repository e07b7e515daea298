import { keptCopy, outBuffer } from '../../../src/sip/out-buffer';

describe('out-buffer', () => {
  it('cuts outgoing messages from a shared slab', () => {
    const a = outBuffer(100);
    const b = outBuffer(100);
    expect(a.buffer).toBe(b.buffer);
    expect(a.byteOffset + 100).toBe(b.byteOffset);
  });

  it('a kept copy has the same bytes and does not pin the slab it was sent from', () => {
    const sent = outBuffer(11);
    sent.write('SIP/2.0 200', 0, 'latin1');
    const kept = keptCopy(sent);
    expect(kept.toString('latin1')).toBe('SIP/2.0 200');
    expect(kept.buffer).not.toBe(sent.buffer);
    const next = keptCopy(sent);
    expect(next.buffer).toBe(kept.buffer); // kept messages share their own slabs
    sent.fill(0);
    expect(kept.toString('latin1')).toBe('SIP/2.0 200');
  });

  it('a big message gets memory of its own', () => {
    const big = Buffer.alloc(20_000, 65);
    const kept = keptCopy(big);
    expect(kept.byteLength).toBe(20_000);
    expect(kept.buffer.byteLength).toBe(20_000);
    expect(kept.equals(big)).toBe(true);
  });
});
