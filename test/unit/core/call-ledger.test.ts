import { CallLedger } from '../../../src/core/call-ledger';

const T0 = 1_700_000_000_000;

describe('CallLedger', () => {
  it('counts slots per account and gives them back on release', () => {
    const l = new CallLedger();
    expect(l.take('c1', 'acme', T0)).toBe(true);
    expect(l.take('c2', 'acme', T0)).toBe(true);
    expect(l.take('c3', 'other', T0)).toBe(true);
    expect(l.count('acme')).toBe(2);
    expect(l.count('other')).toBe(1);
    expect(l.has('c1')).toBe(true);
    l.release('c1');
    expect(l.count('acme')).toBe(1);
    expect(l.has('c1')).toBe(false);
    expect(l.size).toBe(2);
  });

  it('release is idempotent and ignores unknown Call-IDs', () => {
    const l = new CallLedger();
    l.take('c1', 'acme', T0);
    l.release('c1');
    l.release('c1');
    l.release('never-seen');
    expect(l.count('acme')).toBe(0);
    expect(l.size).toBe(0);
  });

  it('does not double-count a Call-ID taken twice', () => {
    const l = new CallLedger();
    expect(l.take('c1', 'acme', T0)).toBe(true);
    expect(l.take('c1', 'acme', T0 + 5)).toBe(false);
    expect(l.count('acme')).toBe(1);
  });

  it('the backstop frees a slot after max_call_seconds of call time', () => {
    const l = new CallLedger({ maxCallSeconds: 60 });
    l.take('lost-bye', 'acme', T0);
    l.advance(T0 + 60_000);
    expect(l.count('acme')).toBe(1);
    l.advance(T0 + 61_001);
    expect(l.count('acme')).toBe(0);
    expect(l.has('lost-bye')).toBe(false);
    expect(l.size).toBe(0);
  });

  it('touch() restarts the backstop timer', () => {
    const l = new CallLedger({ maxCallSeconds: 60 });
    l.take('long', 'acme', T0);
    l.touch('long', T0 + 50_000);
    l.advance(T0 + 100_000);
    expect(l.has('long')).toBe(true);
    expect(l.count('acme')).toBe(1);
    l.advance(T0 + 111_001);
    expect(l.count('acme')).toBe(0);
  });

  it('touch() does not resurrect an expired slot', () => {
    const l = new CallLedger({ maxCallSeconds: 10 });
    l.take('c', 'acme', T0);
    l.touch('c', T0 + 10_500);
    expect(l.has('c')).toBe(false);
    expect(l.count('acme')).toBe(0);
  });

  it('a Call-ID can take a new slot after its old one expired, counted once', () => {
    const l = new CallLedger({ maxCallSeconds: 10 });
    l.take('c', 'acme', T0);
    expect(l.take('c', 'acme', T0 + 10_001)).toBe(true);
    expect(l.count('acme')).toBe(1);
  });

  it('eviction at maxLiveCalls gives the slot back', () => {
    const l = new CallLedger({ maxLiveCalls: 2 });
    l.take('c1', 'a', T0);
    l.take('c2', 'a', T0);
    l.take('c3', 'b', T0);
    expect(l.size).toBe(2);
    expect(l.count('a')).toBe(1);
    expect(l.count('b')).toBe(1);
    expect(l.has('c1')).toBe(false);
  });

  it('with a long max_call_seconds the sweep runs less often but has() sees expiry at once', () => {
    const l = new CallLedger(); // 14 400 s: sweeps every 60 s of call time
    l.take('c', 'acme', T0);
    l.advance(T0 + 14_400_001);
    expect(l.has('c')).toBe(false);
    l.advance(T0 + 14_400_000 + 60_001);
    expect(l.count('acme')).toBe(0);
    expect(l.size).toBe(0);
  });

  it('a held LiveCounter counts the same slots as the account id', () => {
    const l = new CallLedger();
    const c = l.counter('acme');
    expect(l.counter('acme')).toBe(c);
    l.take('c1', c, T0);
    l.take('c2', 'acme', T0);
    expect(c.live).toBe(2);
    expect(l.count('acme')).toBe(2);
    l.release('c1');
    expect(c.live).toBe(1);
  });

  it('drops idle counters after a minute and takes through a detached one safely', () => {
    const l = new CallLedger();
    const c = l.counter('acme');
    l.take('c1', c, T0);
    l.release('c1');
    l.advance(T0 + 60_001);
    expect(c.detached).toBe(true);
    expect(l.take('c2', c, T0 + 60_002)).toBe(true);
    expect(l.count('acme')).toBe(1);
    expect(l.counter('acme')).not.toBe(c);
  });

  it('keeps counters that still have live calls', () => {
    const l = new CallLedger();
    const c = l.counter('acme');
    l.take('c1', c, T0);
    l.advance(T0 + 120_000);
    expect(c.detached).toBe(false);
    expect(l.count('acme')).toBe(1);
  });
});
